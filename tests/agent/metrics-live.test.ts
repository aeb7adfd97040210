// Istio's byte counters while a connection is open, through two agents with real mTLS and
// HBONE: after every step of a long transfer, /metrics of both agents counts exactly the
// bytes moved so far, in Istio's directions for both reporters (received = what the client
// sent, sent = what went back to it; ztunnel src/copy.rs, src/proxy/metrics.rs), before the
// connection closes; the totals after the close are the bytes moved, counted once.
// metrics-live-process.test.ts does the same with agent processes.
import t from 'tap';
import { socks5Connect } from '../../lib/socks5-client.js';
import { startSink, stepwiseTransfer } from '../helpers/live-transfer.js';
import { tcpCounters } from '../helpers/prom.js';
import { startWorld, type World } from '../helpers/world.js';

async function scrape(w: World, node: 'node-a' | 'node-b'): Promise<string> {
  const at = w.mesh.agents.get(node)!.addresses().admin[0]!; // the metrics server
  return (await fetch(`http://${at.host}:${at.port}/metrics`)).text();
}

t.test('byte counters move while the connection is open, in Istio’s directions', async (t) => {
  const w = await startWorld(t);
  const sink = await startSink(t, w.ip('20.1'));
  const read = async (node: 'node-a' | 'node-b', reporter: string) => {
    const where = { reporter, source_workload: 'web-1', destination_workload: 'reviews-1' };
    return tcpCounters(await scrape(w, node), where);
  };
  const client = await socks5Connect(
    w.socks('node-a'),
    { host: w.ip('20.1'), port: sink.port },
    { localAddress: w.ip('10.1') },
  );
  await stepwiseTransfer(t, {
    client,
    sink,
    counters: async () => ({
      source: await read('node-a', 'source'),
      destination: await read('node-b', 'destination'),
    }),
    steps: 6,
    chunkBytes: 1024 * 1024,
    waitMs: 20_000,
  });
  const inbound = w.access
    .get('node-b')!
    .find((l) => l['dst.hbone_addr'] === `${w.ip('20.1')}:${sink.port}`)!;
  t.equal(inbound['bytes_recv'], 6 * 1024 * 1024, 'the access log agrees');
  t.equal(w.mesh.agents.get('node-a')!.ctx.metrics.liveConnections, 0, 'nothing left tracked');
});
