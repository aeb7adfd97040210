// Trimming on arrival must not change what the model sees: a full API object and its trimmed
// form convert to the same internal objects. Plus the selection of pods and the backoff table.
import t from 'tap';
import { convertDocuments } from '../../mesh/convert/index.js';
import { type BackoffOptions, backoffMs } from '../../mesh/kube/backoff.js';
import {
  LAST_APPLIED,
  RESOURCES,
  type ResourceName,
  type Wire,
} from '../../mesh/kube/resources.js';
import {
  authorizationPolicy,
  namespace,
  node,
  peerAuthentication,
  pod,
  service,
} from './objects.js';

const origin = { source: 'kubernetes' };

function convert(docs: Wire[]) {
  const o = convertDocuments(
    docs.map((doc) => ({ doc, origin })),
    { clusterDomain: 'cluster.local' },
  );
  // Maps do not compare in t.same; turn them into entries.
  return JSON.parse(
    JSON.stringify(o, (_k, v) => (v instanceof Map ? [...v.entries()] : v)),
  ) as unknown;
}

const full: [ResourceName, Wire][] = [
  [
    'namespaces',
    {
      ...namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }),
      metadata: {
        name: 'shop',
        uid: 'u-ns',
        resourceVersion: '5',
        creationTimestamp: '2024-01-01T00:00:00Z',
        labels: { 'istio.io/dataplane-mode': 'ambient' },
        managedFields: [{}],
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    },
  ],
  [
    'nodes',
    {
      ...node('n1', '198.18.0.1'),
      spec: { podCIDR: '10.244.0.0/24' },
      status: { ...(node('n1', '198.18.0.1')['status'] as Wire), capacity: { cpu: '4' } },
    },
  ],
  [
    'pods',
    {
      ...pod({
        ns: 'shop',
        name: 'web-1',
        sa: 'web',
        node: 'n1',
        ip: '198.18.10.1',
        labels: { app: 'web' },
        uid: 'u-1',
      }),
    },
  ],
  [
    'services',
    { ...service('shop', 'web', '198.19.0.1', { app: 'web' }), status: { loadBalancer: {} } },
  ],
  [
    'authorizationpolicies',
    {
      ...authorizationPolicy('shop', 'p', {
        action: 'DENY',
        rules: [{ from: [{ source: { namespaces: ['x'] } }] }],
      }),
      metadata: { name: 'p', namespace: 'shop', annotations: { 'istio.io/dry-run': 'true' } },
    },
  ],
  [
    'peerauthentications',
    peerAuthentication('shop', 'default', {
      selector: { matchLabels: { app: 'web' } },
      mtls: { mode: 'STRICT' },
      portLevelMtls: { '8080': { mode: 'PERMISSIVE' } },
    }),
  ],
  [
    // A Deployment's pod: Istio's workload name comes from its owner reference.
    'pods',
    (() => {
      const p = pod({
        ns: 'shop',
        name: 'ratings-v1-5d9c8b7f6d-q2w3e',
        sa: 'ratings',
        node: 'n1',
        ip: '198.18.10.2',
        labels: { app: 'ratings', 'pod-template-hash': '5d9c8b7f6d' },
      });
      Object.assign(p['metadata'] as Wire, {
        generateName: 'ratings-v1-5d9c8b7f6d-',
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'ratings-v1-5d9c8b7f6d',
            uid: 'u-rs',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      });
      return p;
    })(),
  ],
];

t.test('a trimmed object converts exactly like the full one', async (t) => {
  const trimmed = full.map(([r, o]) => RESOURCES[r].trim(o));
  const original = full.map(([, o]) => structuredClone(o));
  // The one field dropped on purpose (kubectl's copy of the object).
  for (const i of [2, 6])
    delete (original[i]!['metadata'] as { annotations: Wire }).annotations[LAST_APPLIED];
  t.same(convert(trimmed), convert(original));
  const names = (convert(trimmed) as { workloads: { workloadName: string }[] }).workloads.map(
    (w) => w.workloadName,
  );
  t.same(names, ['web-1', 'ratings-v1'], "the Deployment's name survives the trim");
  const p = trimmed[2]!;
  t.notOk((p['metadata'] as Wire)['managedFields'], 'managedFields dropped');
  t.same((p['metadata'] as Wire)['annotations'], {}, 'last-applied dropped');
  t.notOk(JSON.stringify(p).includes('example/app'), 'container images dropped');
});

t.test('list items (no apiVersion/kind) get them back', async (t) => {
  for (const [r, o] of full) {
    const { apiVersion: _a, kind: _k, ...bare } = o;
    const tr = RESOURCES[r].trim(bare);
    t.equal(tr['kind'], o['kind'], r);
    t.equal(tr['apiVersion'], o['apiVersion'], r);
  }
});

t.test('pods that cannot be workloads are not selected', async (t) => {
  const sel = RESOURCES.pods.selected;
  t.ok(sel(pod({ ns: 'a', name: 'p', sa: 's', node: 'n', ip: '198.18.0.9' })));
  t.ok(sel(pod({ ns: 'a', name: 'p', sa: 's' })), 'pending pods are kept (no IP yet)');
  t.notOk(
    sel(pod({ ns: 'a', name: 'p', sa: 's', node: 'n', ip: '198.18.0.1', hostNetwork: true })),
  );
  t.notOk(
    sel(pod({ ns: 'a', name: 'p', sa: 's', node: 'n', ip: '198.18.0.9', phase: 'Succeeded' })),
  );
  t.notOk(sel(pod({ ns: 'a', name: 'p', sa: 's', node: 'n', ip: '198.18.0.9', phase: 'Failed' })));
});

t.test('backoff doubles to its cap with bounded jitter', async (t) => {
  const o: BackoffOptions = { initialMs: 500, maxMs: 30_000, jitter: 0.2 };
  const mid = () => 0.5;
  t.same(
    [1, 2, 3, 4, 6, 7, 8, 100].map((a) => backoffMs(a, o, mid)),
    [500, 1000, 2000, 4000, 16000, 30000, 30000, 30000],
  );
  t.equal(
    backoffMs(1, o, () => 0),
    400,
  );
  t.equal(
    backoffMs(1, o, () => 0.999999),
    600,
  );
  t.ok(backoffMs(50, o, () => 0.999999) <= 36_000);
});
