// The live byte counters with real processes: `mtun ca` and two `mtun agent` processes on
// loopback (node-a 127.0.0.1, node-b 127.0.0.2, HBONE with real mTLS between them), a long
// transfer from a pod on node-a to a pod on node-b, and each agent's /metrics read over HTTP
// at every step while the connection is open: Istio's directions for both reporters, exact
// so far; and the totals after the close. (metrics-live.test.ts is the in-process twin.)
import { writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { socks5Connect } from '../../lib/socks5-client.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { startMtun } from '../helpers/process.js';
import { total } from '../helpers/prom.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const STEPS = 4;
const NODES = { 'node-a': '127.0.0.1', 'node-b': '127.0.0.2' } as const;
type NodeName = keyof typeof NODES;

const mesh = (net: number) => `
apiVersion: v1
kind: Node
metadata: {name: node-a}
status: {addresses: [{type: InternalIP, address: 127.0.0.1}]}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
status: {addresses: [{type: InternalIP, address: 127.0.0.2}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {serviceAccountName: web, nodeName: node-a}
status: {podIP: 127.${net}.10.1}
---
apiVersion: v1
kind: Pod
metadata:
  name: sink-7f9c6d5b8-abcde
  generateName: sink-7f9c6d5b8-
  namespace: shop
  labels: {app: sink, pod-template-hash: 7f9c6d5b8}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: sink-7f9c6d5b8, uid: u1, controller: true}]
spec: {serviceAccountName: sink, nodeName: node-b}
status: {podIP: 127.${net}.20.1}
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
  for (const [node, ip] of Object.entries(NODES) as [NodeName, string][]) {
    const p = {
      socks: await freePort([ip]),
      metrics: await freePort([ip]),
      ready: await freePort([ip]),
    };
    ports.set(node, p);
    startMtun(t, [
      'agent',
      ...['--node', node, '--mesh', join(dir, 'mesh.yaml'), '--ca', url],
      ...['--ca-token-file', join(dir, `token-${node.slice(-1)}`)],
      ...['--ca-bundle', join(dir, 'ca', 'root-cert.pem'), '--listen-ip', ip],
      ...['--inbound', String(hbone), '--outbound', '0', '--inbound-plaintext', '0'],
      ...['--socks5', `${ip}:${p.socks}`, '--admin', 'off'],
      ...['--metrics', `${ip}:${p.metrics}`, '--readiness', `${ip}:${p.ready}`],
      ...['--log-level', 'warn'],
    ]);
  }
  for (const [node, ip] of Object.entries(NODES) as [NodeName, string][]) {
    await eventually(
      async () =>
        (await fetch(`http://${ip}:${ports.get(node)!.ready}/healthz/ready`).catch(() => undefined))
          ?.status === 200,
      `${node} ready`,
      60_000,
      100,
    );
  }

  let got = 0;
  let server: Socket | undefined;
  const sink = createServer({ allowHalfOpen: true }, (s) => {
    server = s;
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => sink.listen(0, `127.${net}.20.1`, r));
  t.teardown(() => new Promise((r) => sink.close(r)));
  const port = (sink.address() as { port: number }).port;

  const counters = async () => {
    const read = async (node: NodeName, reporter: string) => {
      const p = ports.get(node)!;
      const text = await (await fetch(`http://${NODES[node]}:${p.metrics}/metrics`)).text();
      // The Deployment's name, not the pod's (issue 14: workload from the owner chain).
      const where = { reporter, source_workload: 'web-1', destination_workload: 'sink' };
      return {
        received: total(text, 'istio_tcp_received_bytes_total', where),
        sent: total(text, 'istio_tcp_sent_bytes_total', where),
        closed: total(text, 'istio_tcp_connections_closed_total', where),
      };
    };
    return {
      source: await read('node-a', 'source'),
      destination: await read('node-b', 'destination'),
    };
  };

  const client = await socks5Connect(
    { host: NODES['node-a'], port: ports.get('node-a')!.socks },
    { host: `127.${net}.20.1`, port },
    { localAddress: `127.${net}.10.1` },
  );
  let back = 0;
  client.on('data', (d: Buffer) => (back += d.length));
  const chunk = Buffer.alloc(MiB, 0x6d);
  for (let step = 1; step <= STEPS; step++) {
    client.write(chunk);
    await eventually(() => got === step * MiB, `the pod got ${step} MiB`, 30_000);
    for (const [reporter, v] of Object.entries(await counters())) {
      t.equal(v.received, step * MiB, `${reporter}: received = what the client sent so far`);
      t.equal(v.sent, 0, `${reporter}: nothing went back yet`);
      t.equal(v.closed, 0, `${reporter}: still open`);
    }
  }
  for (let step = 1; step <= STEPS; step++) {
    server!.write(chunk);
    await eventually(() => back === step * MiB, `the client got ${step} MiB`, 30_000);
    for (const [reporter, v] of Object.entries(await counters())) {
      t.equal(v.sent, step * MiB, `${reporter}: sent = what went back so far`);
      t.equal(v.received, STEPS * MiB, `${reporter}: received unchanged`);
      t.equal(v.closed, 0, `${reporter}: still open`);
    }
  }
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  client.end();
  await closed;
  await eventually(
    async () => {
      const c = await counters();
      return c.source.closed === 1 && c.destination.closed === 1;
    },
    'both agents counted the close',
    15_000,
  );
  for (const [reporter, v] of Object.entries(await counters())) {
    t.equal(v.received, STEPS * MiB, `${reporter}: total received = bytes the client sent`);
    t.equal(v.sent, STEPS * MiB, `${reporter}: total sent = bytes sent back`);
  }
});
