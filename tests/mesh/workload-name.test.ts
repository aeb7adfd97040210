// Istio's workload and canonical-service names of a pod, as istiod computes them (istio/istio
// pkg/kube/util.go GetDeployMetaFromPod/GetWorkloadMetaFromPod, pkg/kube/labels/labels.go
// CanonicalService), through the file converter. Table-driven.
import t from 'tap';
import { convertDocuments } from '../../mesh/convert/index.js';
import { canonicalService, workloadOf } from '../../mesh/convert/workload-name.js';

const rs = (name: string) => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  name,
  controller: true,
});

t.test('workload name from the controller reference (GetDeployMetaFromPod)', async (t) => {
  const cases: [string, Parameters<typeof workloadOf>[0], { name: string; kind: string }][] = [
    [
      'a Deployment: the ReplicaSet name less its pod-template-hash',
      {
        name: 'reviews-v1-7d9f8c6b5-x2x7k',
        generateName: 'reviews-v1-7d9f8c6b5-',
        labels: { 'pod-template-hash': '7d9f8c6b5' },
        ownerReferences: [rs('reviews-v1-7d9f8c6b5')],
      },
      { name: 'reviews-v1', kind: 'Deployment' },
    ],
    [
      'a bare ReplicaSet (no matching hash) is its own workload',
      {
        name: 'cache-abcde',
        generateName: 'cache-',
        labels: {},
        ownerReferences: [rs('cache')],
      },
      { name: 'cache', kind: 'ReplicaSet' },
    ],
    [
      'a StatefulSet',
      {
        name: 'db-0',
        generateName: 'db-',
        labels: {},
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', controller: true },
        ],
      },
      { name: 'db', kind: 'StatefulSet' },
    ],
    [
      'a DaemonSet',
      {
        name: 'agent-q8x2m',
        generateName: 'agent-',
        labels: {},
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', controller: true },
        ],
      },
      { name: 'agent', kind: 'DaemonSet' },
    ],
    [
      "a CronJob's Job: the Job name less its timestamp",
      {
        name: 'backup-28912345-abcde',
        generateName: 'backup-28912345-',
        labels: {},
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name: 'backup-28912345', controller: true },
        ],
      },
      { name: 'backup', kind: 'CronJob' },
    ],
    [
      'a Job of its own',
      {
        name: 'migrate-abcde',
        generateName: 'migrate-',
        labels: {},
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name: 'migrate', controller: true },
        ],
      },
      { name: 'migrate', kind: 'Job' },
    ],
    [
      'a pod with a name of its own is its own workload, owner or not',
      { name: 'web-1', generateName: undefined, labels: {}, ownerReferences: [rs('web')] },
      { name: 'web-1', kind: 'Pod' },
    ],
    [
      'only the controller reference counts',
      {
        name: 'x-1',
        generateName: 'x-',
        labels: {},
        ownerReferences: [{ ...rs('other'), controller: false }],
      },
      { name: 'x-1', kind: 'Pod' },
    ],
    [
      'the service.istio.io/workload-name label overrides',
      {
        name: 'reviews-v1-7d9f8c6b5-x2x7k',
        generateName: 'reviews-v1-7d9f8c6b5-',
        labels: { 'pod-template-hash': '7d9f8c6b5', 'service.istio.io/workload-name': 'reviews' },
        ownerReferences: [rs('reviews-v1-7d9f8c6b5')],
      },
      { name: 'reviews', kind: 'Deployment' },
    ],
  ];
  for (const [what, pod, want] of cases) t.same(workloadOf(pod), want, what);
});

t.test('canonical service and revision (CanonicalService): first label present wins', async (t) => {
  const cases: [Record<string, string>, { name: string; revision: string }][] = [
    [{}, { name: 'wl', revision: 'latest' }],
    [
      { app: 'a', version: 'v1' },
      { name: 'a', revision: 'v1' },
    ],
    [
      { app: 'a', 'app.kubernetes.io/name': 'k', version: 'v1', 'app.kubernetes.io/version': 'k1' },
      { name: 'k', revision: 'k1' },
    ],
    [
      {
        app: 'a',
        'app.kubernetes.io/name': 'k',
        'service.istio.io/canonical-name': 'c',
        'service.istio.io/canonical-revision': 'c1',
        version: 'v1',
      },
      { name: 'c', revision: 'c1' },
    ],
  ];
  for (const [labels, want] of cases)
    t.same(canonicalService(labels, 'wl'), want, JSON.stringify(labels));
});

t.test('a Deployment-owned pod from YAML carries its Deployment name', async (t) => {
  const { workloads } = convertDocuments(
    [
      {
        origin: { source: 'test.yaml', document: 0 },
        doc: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: 'ratings-v1-5d9c8b7f6d-q2w3e',
            generateName: 'ratings-v1-5d9c8b7f6d-',
            namespace: 'shop',
            labels: { app: 'ratings', version: 'v1', 'pod-template-hash': '5d9c8b7f6d' },
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: 'ReplicaSet',
                name: 'ratings-v1-5d9c8b7f6d',
                uid: 'u-1',
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          },
          spec: { nodeName: 'n1' },
          status: { podIP: '10.0.0.9' },
        },
      },
    ],
    { clusterDomain: 'cluster.local' },
  );
  const w = workloads[0]!;
  t.equal(w.workloadName, 'ratings-v1');
  t.equal(w.canonicalName, 'ratings');
  t.equal(w.canonicalRevision, 'v1');
  t.same(w.ownerReferences, [
    { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'ratings-v1-5d9c8b7f6d', controller: true },
  ]);
});
