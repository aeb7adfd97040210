// The labels of Istio's TCP metrics as ztunnel writes them: the label set of every TCP
// metric compared with ztunnel's, and the values of a connection from a pod to a
// Deployment's pod through its Service, as both agents report it.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { MTUN_VERSION } from '../../agent/observe/build.js';
import { Socks5Refused, socks5Connect } from '../../lib/socks5-client.js';
import { converse, startApp, stopApps } from '../helpers/apps.js';
import { eventually } from '../helpers/eventually.js';
import { samples } from '../helpers/prom.js';
import { RATINGS_ONLY_FROM_REVIEWS, startWorld, type World } from '../helpers/world.js';

/** istio/ztunnel src/proxy/metrics.rs at 62d8265 (2026-08-20): the fields of
 *  CommonTrafficLabels, then LocalityLabels (flattened; present once a workload is known). */
const ZTUNNEL_TCP_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
  'source_region',
  'source_zone',
  'destination_region',
  'destination_zone',
];

/** ztunnel's metrics with those labels (Metrics::new, with the istio_ prefix and the
 *  _total suffix of counters). */
const TCP_METRICS = [
  'istio_tcp_connections_opened_total',
  'istio_tcp_connections_closed_total',
  'istio_tcp_connections_failed_total',
  'istio_tcp_received_bytes_total',
  'istio_tcp_sent_bytes_total',
];

// A Deployment's pod as the API shows it: generated name, ReplicaSet owner, template hash.
const PRODUCTPAGE = (ip: (s: string) => string) => `
apiVersion: v1
kind: Pod
metadata:
  name: productpage-v1-6b746f74dc-9stvs
  generateName: productpage-v1-6b746f74dc-
  namespace: shop
  labels: {app: productpage, version: v1, pod-template-hash: 6b746f74dc}
  ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: productpage-v1-6b746f74dc, uid: u1, controller: true}
spec: {serviceAccountName: productpage, nodeName: node-b}
status: {podIP: ${ip('20.7')}}
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: shop}
spec: {clusterIP: ${ip('30.5')}, selector: {app: productpage}, ports: [{port: 9080}]}
`;

async function scrape(w: World, node: 'node-a' | 'node-b'): Promise<string> {
  const at = w.mesh.agents.get(node)!.addresses().admin[0]!;
  return (await fetch(`http://${at.host}:${at.port}/metrics`)).text();
}

t.test("every TCP metric has ztunnel's label set, with ztunnel's values", async (t) => {
  const w = await startWorld(t, { files: { 'policy.yaml': RATINGS_ONLY_FROM_REVIEWS } });
  await writeFile(join(w.meshDir, 'productpage.yaml'), PRODUCTPAGE(w.ip));
  const pp = await startApp('productpage', w.ip('20.7'), 9080);
  t.teardown(() => stopApps([pp]));
  await eventually(
    () =>
      [...w.mesh.agents.values()].every(
        (a) => a.ctx.state.current.snapshot.workloadByIp(w.ip('20.7')) !== undefined,
      ),
    'both agents know the new pod',
  );
  const conn = await socks5Connect(
    w.socks('node-a'),
    { host: 'productpage.shop.svc.cluster.local', port: 9080 },
    { localAddress: w.ip('10.1') },
  );
  t.match(await converse(conn, ['hi']), /^productpage hi\n/);
  // And one refused by policy, so that the failure counter has a sample.
  const denied = await socks5Connect(
    w.socks('node-a'),
    { host: w.ip('20.3'), port: 9080 },
    { localAddress: w.ip('10.1') },
  ).catch((e) => e);
  t.type(denied, Socks5Refused);

  for (const [node, reporter] of [
    ['node-a', 'source'],
    ['node-b', 'destination'],
  ] as const) {
    let text = '';
    await eventually(async () => {
      text = await scrape(w, node);
      return samples(text, 'istio_tcp_connections_closed_total').length >= 2;
    }, `${node} counted both closes`);
    for (const metric of TCP_METRICS) {
      const all = samples(text, metric);
      t.ok(all.length > 0, `${node}: ${metric} has samples`);
      for (const s of all)
        t.same(
          Object.keys(s.labels).sort(),
          [...ZTUNNEL_TCP_LABELS].sort(),
          `${node}: ${metric} labels`,
        );
    }
    const opened = samples(text, 'istio_tcp_connections_opened_total').find(
      (s) => s.labels['destination_service_name'] === 'productpage',
    );
    t.same(
      opened?.labels,
      {
        reporter,
        source_workload: 'web-1', // a hand-named pod is its own workload
        source_canonical_service: 'web',
        source_canonical_revision: 'latest',
        source_workload_namespace: 'shop',
        source_principal: 'spiffe://cluster.local/ns/shop/sa/web',
        source_app: 'web',
        source_version: 'latest',
        source_cluster: 'Kubernetes',
        destination_service: 'productpage.shop.svc.cluster.local',
        destination_service_namespace: 'shop',
        destination_service_name: 'productpage',
        destination_workload: 'productpage-v1', // the Deployment, not the pod
        destination_canonical_service: 'productpage',
        destination_canonical_revision: 'v1',
        destination_workload_namespace: 'shop',
        destination_principal: 'spiffe://cluster.local/ns/shop/sa/productpage',
        destination_app: 'productpage',
        destination_version: 'v1',
        destination_cluster: 'Kubernetes',
        request_protocol: 'tcp',
        response_flags: '-',
        connection_security_policy: 'mutual_tls',
        source_region: 'unknown',
        source_zone: 'unknown',
        destination_region: 'unknown',
        destination_zone: 'unknown',
      },
      `${node}: the values of a connection to a Deployment's pod through its Service`,
    );
    const failed = samples(text, 'istio_tcp_connections_failed_total');
    t.same(
      failed.map((s) => [s.labels['destination_workload'], s.labels['response_flags'], s.value]),
      [['ratings-1', 'DENY', 1]],
      `${node}: the refused connection is a failure, flagged DENY`,
    );
    t.match(text, new RegExp(`istio_build\\{component="mtun",tag="${MTUN_VERSION}"\\} 1`));
    t.match(text, /process_resident_memory_bytes \d/);
    // ztunnel's open sockets: the applications' connections on the source side (all closed
    // now); on the destination side the HBONE connections on 15008, which node-a's pool
    // keeps open after its tunnels closed.
    const sockets = samples(text, 'istio_tcp_sockets_open').find(
      (s) => s.labels['reporter'] === reporter,
    )?.value;
    t.equal(
      sockets,
      reporter === 'source' ? 0 : w.mesh.agents.get('node-a')!.ctx.hbone.stats().connections,
      `${node}: istio_tcp_sockets_open{reporter="${reporter}"}`,
    );
    if (reporter === 'destination') t.ok(sockets! >= 1, 'the pooled HBONE connection is open');
  }
});

t.test('MTUN_VERSION is the package version', async (t) => {
  const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
  t.equal(MTUN_VERSION, pkg.version);
});
