// The registry of open connections that publishes their bytes: on a timer as well as at
// scrape, bounded (past the bound a connection is counted at close only, still exactly),
// and quiet when nothing is open.
import t from 'tap';
import { LiveBytes } from '../../agent/observe/live-bytes.js';
import { AgentMetrics } from '../../agent/observe/metrics.js';
import { ConnectionRecord } from '../../agent/observe/record.js';
import { eventually } from '../helpers/eventually.js';
import { tcpCounters } from '../helpers/prom.js';

t.test('publishes every few seconds without a scrape, and stops when none is open', async (t) => {
  const live = new LiveBytes(20);
  t.teardown(() => live.close());
  let calls = 0;
  const c = { publishBytes: () => void calls++ };
  live.add(c);
  await eventually(() => calls >= 3, 'three timer rounds');
  live.delete(c);
  const after = calls;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(calls, after, 'no timer rounds once nothing is tracked');
});

t.test('bounded: past the bound, a connection is counted at close only, exactly', async (t) => {
  const metrics = new AgentMetrics({ maxLiveConnections: 2 });
  t.teardown(() => metrics.close());
  let close!: () => void;
  const closing = new Promise<void>((r) => {
    close = r;
  });
  let moved = 0;
  const connections = [0, 1, 2].map((i) =>
    ConnectionRecord.run(
      {
        direction: 'outbound',
        src: { addr: `10.0.0.${i}:1` },
        dst: { addr: '10.1.0.1:80' },
        security: 'none',
      },
      metrics,
      { write: () => {} },
      async (r) => {
        r.watch({ bytes: () => ({ sent: moved, received: 2 * moved }) });
        await closing;
        return { sent: 1500, received: 3000, error: undefined };
      },
      { refuse: () => {} },
    ),
  );
  t.equal(metrics.liveConnections, 2, 'the third is not tracked');
  moved = 1000;
  const open = tcpCounters(await metrics.registry.metrics(), { reporter: 'source' });
  t.equal(open.received, 2000, 'the two tracked ones published at scrape');
  t.equal(open.sent, 4000);
  close();
  await Promise.all(connections);
  const closed = tcpCounters(await metrics.registry.metrics(), { reporter: 'source' });
  t.same(closed, { received: 4500, sent: 9000, closed: 3 }, 'the rest at close: totals exact');
  t.equal(metrics.liveConnections, 0);
});
