// From a connection record to Istio's label values (agent/observe/resolve.ts + labels.ts):
// localities from the node's topology labels, principals only where ztunnel sets them,
// `unknown` for what is not known, locality labels only once a workload is known.
import t from 'tap';
import { trafficLabels } from '../../agent/observe/labels.js';
import type { ConnectionFields } from '../../agent/observe/record.js';
import { trafficInput } from '../../agent/observe/resolve.js';
import { convertDocuments } from '../../mesh/convert/index.js';
import { MeshSnapshot } from '../../mesh/snapshot.js';

const doc = (d: object, i: number) => ({ doc: d, origin: { source: 'x.yaml', document: i } });
const snapshot = new MeshSnapshot(
  convertDocuments(
    [
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: 'n1',
          labels: {
            'topology.kubernetes.io/region': 'eu-west',
            'topology.kubernetes.io/zone': 'eu-west-1a',
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'db-0',
          generateName: 'db-',
          namespace: 'data',
          labels: { app: 'db' },
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', controller: true },
          ],
        },
        spec: { serviceAccountName: 'db', nodeName: 'n1' },
        status: { podIP: '10.0.0.5' },
      },
    ].map(doc),
    { clusterDomain: 'cluster.local' },
  ),
  1,
);
const settings = { clusterId: 'east', trustDomain: 'td.example' };

t.test('plaintext to a StatefulSet pod, with its node locality', async (t) => {
  const f: ConnectionFields = {
    direction: 'inbound_plaintext',
    src: { addr: '10.9.9.9:4000' },
    dst: { addr: '10.0.0.5:5432', workload: 'db-0', namespace: 'data' },
    security: 'none',
  };
  const l = trafficLabels(trafficInput(f, snapshot, settings, '-'));
  t.equal(l.reporter, 'destination');
  t.equal(l.destination_workload, 'db');
  t.equal(l.destination_principal, 'spiffe://td.example/ns/data/sa/db', "the workload's identity");
  t.equal(l.source_principal, 'unknown', 'no mTLS, no source principal');
  t.equal(l.connection_security_policy, 'unknown');
  t.equal(l.destination_cluster, 'east');
  t.equal(l.source_cluster, 'unknown', 'unknown source: no cluster');
  t.equal(l.destination_region, 'eu-west');
  t.equal(l.destination_zone, 'eu-west-1a');
  t.equal(l.source_region, 'unknown');
  t.equal(l.destination_service, 'unknown');
});

t.test('nothing known: no locality labels at all (ztunnel OptionallyEncode)', async (t) => {
  const f: ConnectionFields = {
    direction: 'outbound',
    src: { addr: '10.9.9.9:4000' },
    dst: { addr: '192.0.2.1:443', service: 'example.com' },
    security: 'none',
  };
  const l = trafficLabels(trafficInput(f, snapshot, settings, '-'));
  t.equal(l.reporter, 'source');
  t.equal(l.destination_service, 'example.com');
  t.equal(l.destination_service_name, 'unknown', 'not a service of the mesh');
  t.notOk('source_region' in l);
  t.notOk('destination_zone' in l);
});
