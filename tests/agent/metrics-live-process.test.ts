// The live byte counters with real processes: `mtun ca` and two `mtun agent` processes on
// loopback (node-a 127.0.0.1, node-b 127.0.0.2, HBONE with real mTLS between them), a long
// transfer from a pod on node-a to a pod on node-b, and each agent's /metrics read over HTTP
// at every step while the connection is open: Istio's directions for both reporters, exact
// so far; and the totals after the close. (metrics-live.test.ts is the in-process twin.)
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { socks5Connect } from '../../lib/socks5-client.js';
import { startMtun, type Tracked, untilReady } from '../../testkit/process.js';
import { startSink, stepwiseTransfer } from '../helpers/live-transfer.js';
import { freePort } from '../helpers/ports.js';
import { tcpCounters } from '../helpers/prom.js';
import { tempDir } from '../helpers/tmp.js';
import { baseMesh } from '../helpers/world.js';

const NODES = { 'node-a': '127.0.0.1', 'node-b': '127.0.0.2' } as const;
type NodeName = keyof typeof NODES;

// The world's mesh (nodes, namespace shop, web-1 on node-a) and a Deployment's pod on node-b.
const mesh = (net: number) => `${baseMesh(net)}---
apiVersion: v1
kind: Pod
metadata:
  name: sink-7f9c6d5b8-abcde
  generateName: sink-7f9c6d5b8-
  namespace: shop
  labels: {app: sink, pod-template-hash: 7f9c6d5b8}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: sink-7f9c6d5b8, uid: u1, controller: true}]
spec: {serviceAccountName: sink, nodeName: node-b}
status: {podIP: 127.${net}.20.7}
`;

t.test('two agent processes: /metrics counts a long transfer while it is open', async (t) => {
  const dir = await tempDir(t);
  const net = 100 + Math.floor(Math.random() * 150);
  await writeFile(join(dir, 'mesh.yaml'), mesh(net));
  await writeFile(
    join(dir, 'tokens.yaml'),
    '- {node: node-a, token: token-a-0123456789abcdef}\n- {node: node-b, token: token-b-0123456789abcdef}\n',
  );
  for (const n of ['a', 'b'])
    await writeFile(join(dir, `token-${n}`), `token-${n}-0123456789abcdef\n`);
  const ca = startMtun(t, [
    'ca',
    ...['--state-dir', join(dir, 'ca'), '--mesh', join(dir, 'mesh.yaml')],
    ...['--tokens', join(dir, 'tokens.yaml'), '--listen', '127.0.0.1:0'],
  ]);
  const url = (await ca.waitFor(/"url":"(https:[^"]+)"/, 30_000))[1]!;
  const hbone = await freePort(Object.values(NODES));
  const ports = new Map<NodeName, { socks: number; metrics: number; ready: number }>();
  const agents = new Map<NodeName, Tracked>();
  for (const [node, ip] of Object.entries(NODES) as [NodeName, string][]) {
    const p = {
      socks: await freePort([ip]),
      metrics: await freePort([ip]),
      ready: await freePort([ip]),
    };
    ports.set(node, p);
    const agent = startMtun(t, [
      'agent',
      ...['--node', node, '--mesh', join(dir, 'mesh.yaml'), '--ca', url],
      ...['--ca-token-file', join(dir, `token-${node.slice(-1)}`)],
      ...['--ca-bundle', join(dir, 'ca', 'root-cert.pem'), '--listen-ip', ip],
      ...['--inbound', String(hbone), '--outbound', '0', '--inbound-plaintext', '0'],
      ...['--socks5', `${ip}:${p.socks}`, '--admin', 'off'],
      ...['--metrics', `${ip}:${p.metrics}`, '--readiness', `${ip}:${p.ready}`],
      ...['--log-level', 'warn'],
    ]);
    agents.set(node, agent);
  }
  for (const [node, ip] of Object.entries(NODES) as [NodeName, string][])
    await untilReady(
      agents.get(node)!,
      `http://${ip}:${ports.get(node)!.ready}/healthz/ready`,
      node,
    );

  const sink = await startSink(t, `127.${net}.20.7`);
  const read = async (node: NodeName, reporter: string) => {
    const p = ports.get(node)!;
    const text = await (await fetch(`http://${NODES[node]}:${p.metrics}/metrics`)).text();
    // The Deployment's name, not the pod's (issue 14: workload from the owner chain).
    return tcpCounters(text, { reporter, source_workload: 'web-1', destination_workload: 'sink' });
  };
  const client = await socks5Connect(
    { host: NODES['node-a'], port: ports.get('node-a')!.socks },
    { host: `127.${net}.20.7`, port: sink.port },
    { localAddress: `127.${net}.10.1` },
  );
  await stepwiseTransfer(t, {
    client,
    sink,
    counters: async () => ({
      source: await read('node-a', 'source'),
      destination: await read('node-b', 'destination'),
    }),
    steps: 4,
    chunkBytes: 1024 * 1024,
    waitMs: 30_000,
  });
});
