// The mesh map's edge window (agent/observe/edges.ts): connections aggregate into one edge per
// workload pair, verdicts by policy, bytes and set-up times add up, rates decay, and memory is
// bounded (at most maxEdges, least recently opened evicted, idle edges expire).
import t from 'tap';
import { EdgeWindow } from '../../agent/observe/edges.js';
import type { TrafficLabels } from '../../agent/observe/labels.js';
import type { ConnectionFields } from '../../agent/observe/record.js';

const PP = 'spiffe://cluster.local/ns/frontend/sa/productpage';

function conn(
  over: Partial<ConnectionFields> = {},
  src = 'productpage',
  dst = 'details',
): { f: ConnectionFields; l: TrafficLabels } {
  return {
    f: {
      direction: 'inbound',
      src: { addr: '127.0.10.1:40000', identity: PP },
      dst: { addr: '127.0.20.1:9080', identity: 'spiffe://cluster.local/ns/shop/sa/details' },
      security: 'mutual_tls',
      verdict: 'allow',
      policy: 'shop/details-from-frontend',
      ...over,
    },
    l: {
      source_workload: src,
      source_workload_namespace: 'frontend',
      destination_workload: dst,
      destination_workload_namespace: 'shop',
    },
  };
}

t.test('connections between two workloads share one edge with their totals', async (t) => {
  let now = 1_000_000;
  const w = new EdgeWindow({ clock: () => now });
  const a = conn();
  const e1 = w.opened(a.f, a.l);
  const e2 = w.opened(a.f, a.l);
  t.equal(e1, e2, 'the same edge');
  e1.established(10);
  e2.established(30);
  e1.bytes(100, 200);
  e1.close(a.f);
  const denied = conn({ verdict: 'deny', policy: 'shop/deny', error: 'DENY' });
  w.opened(denied.f, denied.l).close(denied.f);
  now += 1_000;
  const [s, ...rest] = w.summary().edges;
  t.same(rest, []);
  t.match(s, {
    reporter: 'destination',
    source: { workload: 'productpage', namespace: 'frontend', principal: PP, ip: '127.0.10.1' },
    destination: { workload: 'details', namespace: 'shop' },
    security: 'mutual_tls',
    opened: 3,
    active: 1,
    closed: 2,
    allowed: 1,
    denied: 1,
    failed: 0,
    bytesFromClient: 100,
    bytesToClient: 200,
    setupMs: { count: 2, mean: 20, max: 30 },
    lastError: { code: 'DENY' },
  });
  t.same(
    [...s!.policies].sort((x, y) => x.policy.localeCompare(y.policy)),
    [
      { policy: 'shop/deny', verdict: 'deny', count: 1 },
      { policy: 'shop/details-from-frontend', verdict: 'allow', count: 1 },
    ],
  );
  // Three connections within a second: ~3/60 per second, decaying with a 1-minute constant.
  t.ok(
    s!.connectionsPerSecond > 0.045 && s!.connectionsPerSecond < 0.05,
    `${s!.connectionsPerSecond}`,
  );
  now += 60_000;
  const later = w.summary().edges[0]!;
  t.ok(later.connectionsPerSecond < 0.02, 'the rate decays when nothing new comes');
});

t.test('direction and security are part of the edge', async (t) => {
  const w = new EdgeWindow();
  const a = conn();
  w.opened(a.f, a.l);
  w.opened({ ...a.f, direction: 'outbound' }, a.l);
  w.opened({ ...a.f, security: 'none' }, a.l);
  t.same(
    w
      .summary()
      .edges.map((e) => `${e.reporter}/${e.security}`)
      .sort(),
    ['destination/mutual_tls', 'destination/none', 'source/mutual_tls'],
  );
});

t.test('an end the labels do not name is found by its pod IP, else is unknown', async (t) => {
  const w = new EdgeWindow({
    workloadByIp: (ip) =>
      ip === '127.0.10.9' ? { workload: 'batch-1', namespace: 'legacy' } : undefined,
  });
  const batch = conn({ src: { addr: '127.0.10.9:5000' }, error: 'IDENTITY_ERROR' });
  w.opened(batch.f, { ...batch.l, source_workload: 'unknown' }).close(batch.f);
  const stranger = conn({ src: { addr: '192.0.2.7:5000' } });
  w.opened(stranger.f, { ...stranger.l, source_workload: 'unknown' });
  const ends = w.summary().edges.map((e) => `${e.source.namespace}/${e.source.workload}`);
  t.same(ends.sort(), ['legacy/batch-1', 'unknown/unknown']);
  t.match(
    w.summary().edges.find((e) => e.source.workload === 'batch-1'),
    {
      failed: 1,
      allowed: 0,
      lastError: { code: 'IDENTITY_ERROR' },
    },
  );
});

t.test('bounded: at most maxEdges, the least recently opened goes first', async (t) => {
  const w = new EdgeWindow({ maxEdges: 3 });
  for (const d of ['d1', 'd2', 'd3']) {
    const c = conn({}, 'src', d);
    w.opened(c.f, c.l);
  }
  const again = conn({}, 'src', 'd1');
  w.opened(again.f, again.l); // d1 is now the most recent
  const d4 = conn({}, 'src', 'd4');
  w.opened(d4.f, d4.l);
  t.equal(w.size, 3);
  t.same(
    w
      .summary()
      .edges.map((e) => e.destination.workload)
      .sort(),
    ['d1', 'd3', 'd4'],
  );
  t.equal(w.summary().evicted, 1);
  for (let i = 0; i < 10_000; i++) {
    const c = conn({}, `s${i}`, 'x');
    w.opened(c.f, c.l);
  }
  t.equal(w.size, 3, 'still 3 after 10,000 distinct pairs');
});

t.test('an idle edge expires after the window; one with open connections stays', async (t) => {
  let now = 0;
  const w = new EdgeWindow({ windowMs: 60_000, clock: () => now });
  const closed = conn({}, 'a', 'b');
  w.opened(closed.f, closed.l).close(closed.f);
  const open = conn({}, 'a', 'c');
  w.opened(open.f, open.l);
  now = 59_000;
  t.equal(w.summary().edges.length, 2);
  now = 61_000;
  t.same(
    w.summary().edges.map((e) => e.destination.workload),
    ['c'],
  );
  t.equal(w.size, 1, 'dropped from memory, not only from the answer');
});
