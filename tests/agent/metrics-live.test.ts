// Istio's byte counters while a connection is open, through two agents with real mTLS and
// HBONE: after every step of a long transfer, /metrics of both agents counts exactly the
// bytes moved so far, in Istio's directions for both reporters (received = what the client
// sent, sent = what went back to it; ztunnel src/copy.rs, src/proxy/metrics.rs), before the
// connection closes; the totals after the close are the bytes moved, counted once.
import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { socks5Connect } from '../../lib/socks5-client.js';
import { eventually } from '../helpers/eventually.js';
import { total } from '../helpers/prom.js';
import { startWorld, type World } from '../helpers/world.js';

const MiB = 1024 * 1024;
const STEPS = 6;

async function scrape(w: World, node: 'node-a' | 'node-b'): Promise<string> {
  const at = w.mesh.agents.get(node)!.addresses().admin[0]!; // the metrics server
  return (await fetch(`http://${at.host}:${at.port}/metrics`)).text();
}

/** This connection's counters as each agent reports them. */
async function counters(w: World) {
  const read = async (node: 'node-a' | 'node-b', reporter: string) => {
    const text = await scrape(w, node);
    const where = { reporter, source_workload: 'web-1', destination_workload: 'reviews-1' };
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
}

t.test('byte counters move while the connection is open, in Istio’s directions', async (t) => {
  const w = await startWorld(t);
  // A pod port that takes what it is sent and sends what the test asks for.
  let got = 0;
  let server: Socket | undefined;
  const sink = createServer({ allowHalfOpen: true }, (s) => {
    server = s;
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => sink.listen(0, w.ip('20.1'), r));
  t.teardown(() => new Promise((r) => sink.close(r)));
  const port = (sink.address() as { port: number }).port;

  const client = await socks5Connect(
    w.socks('node-a'),
    { host: w.ip('20.1'), port },
    { localAddress: w.ip('10.1') },
  );
  let back = 0;
  client.on('data', (d: Buffer) => (back += d.length));
  const chunk = Buffer.alloc(MiB, 0x75);

  // Upload: the client sends, nothing comes back.
  for (let step = 1; step <= STEPS; step++) {
    client.write(chunk);
    await eventually(() => got === step * MiB, `the pod got ${step} MiB`, 20_000);
    const c = await counters(w);
    for (const [reporter, v] of Object.entries(c)) {
      t.equal(v.received, step * MiB, `${reporter}: received = what the client sent so far`);
      t.equal(v.sent, 0, `${reporter}: sent = nothing went back yet`);
      t.equal(v.closed, 0, `${reporter}: still open`);
    }
  }
  // Download: the pod answers, the client's bytes stay where they were.
  for (let step = 1; step <= STEPS; step++) {
    server!.write(chunk);
    await eventually(() => back === step * MiB, `the client got ${step} MiB`, 20_000);
    const c = await counters(w);
    for (const [reporter, v] of Object.entries(c)) {
      t.equal(v.sent, step * MiB, `${reporter}: sent = what went back to the client so far`);
      t.equal(v.received, STEPS * MiB, `${reporter}: received unchanged`);
      t.equal(v.closed, 0, `${reporter}: still open`);
    }
  }
  // Close: the rest is published once; totals are the bytes moved.
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  client.end();
  await closed;
  await eventually(
    async () => {
      const c = await counters(w);
      return c.source.closed === 1 && c.destination.closed === 1;
    },
    'both agents counted the close',
    10_000,
  );
  const c = await counters(w);
  for (const [reporter, v] of Object.entries(c)) {
    t.equal(v.received, STEPS * MiB, `${reporter}: final received = bytes the client sent`);
    t.equal(v.sent, STEPS * MiB, `${reporter}: final sent = bytes the pod sent back`);
  }
  const inbound = w.access
    .get('node-b')!
    .find((l) => l['dst.hbone_addr'] === `${w.ip('20.1')}:${port}`)!;
  t.equal(inbound['bytes_recv'], STEPS * MiB, 'the access log agrees');
  t.equal(w.mesh.agents.get('node-a')!.ctx.metrics.liveConnections, 0, 'nothing left tracked');
});
