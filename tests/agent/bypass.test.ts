// The bypass detector (agent/observe/bypass.ts): counted per workload pair with Istio's
// workload labels, one warning per pair whatever the count, pairs bounded; and the
// recent-connections ring (agent/observe/recent.ts): bounded, oldest first, facts copied
// from access-log lines.
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import t from 'tap';
import { BypassDetector, isCaptureBypass } from '../../agent/observe/bypass.js';
import { RecentConnections } from '../../agent/observe/recent.js';
import { createLogger } from '../../lib/logger.js';
import { mesh, pod } from '../policy/helpers.js';

function logLines() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (b: Buffer) => {
    for (const l of b.toString().split('\n')) if (l) lines.push(JSON.parse(l));
  });
  return { logger: createLogger({ destination: stream }), lines };
}

t.test('bypass: counted per pair, warned once, bounded', async (t) => {
  const snapshot = mesh([pod('bar', 'api-2', { app: 'api' }, 'api', ['10.0.2.2'])]);
  const api = snapshot.workload('bar', 'api')!;
  const api2 = snapshot.workload('bar', 'api-2')!;
  const web = snapshot.workload('foo', 'web')!;
  const db = snapshot.workload('foo', 'db')!;
  t.ok(isCaptureBypass(api), 'a mesh pod as the source is a bypass');
  t.notOk(isCaptureBypass(undefined), 'an unknown source is plain plaintext');

  const registry = new Registry();
  const { logger, lines } = logLines();
  const d = new BypassDetector(registry, logger, 2);
  d.observe(api, '10.0.2.1', web, 'allowed');
  d.observe(api, '10.0.2.1', web, 'allowed');
  d.observe(api, '10.0.2.1', web, 'refused');
  d.observe(api, '10.0.2.1', db, 'denied');
  d.observe(api2, '10.0.2.2', web, 'allowed'); // a third pair: over the bound
  await new Promise((r) => setImmediate(r));
  t.equal(d.total, 5);
  t.same(
    d.pairs().map((p) => [p.source, p.destination, p.count, p.lastOutcome]),
    [
      ['bar/api', 'foo/web', 3, 'refused'],
      ['bar/api', 'foo/db', 1, 'denied'],
    ],
    'two pairs kept (the bound), counts and last outcome',
  );
  const warned = lines.filter((l) => String(l.msg).includes('capture was bypassed'));
  t.equal(warned.length, 2, 'one warning per remembered pair');
  t.match(warned[0], { level: 'warn', source: 'bar/api', destination: 'foo/web' });
  t.match(String((warned[0]!.likelyCauses as string[])[0]), /socketLB.hostNamespaceOnly/);
  const text = await registry.metrics();
  t.match(
    text,
    'mtun_capture_bypass_total{source_workload="api",source_workload_namespace="bar",destination_workload="web",destination_workload_namespace="foo",outcome="allowed"} 2',
  );
  t.match(
    text,
    /destination_workload="web",destination_workload_namespace="foo",outcome="refused"\} 1/,
  );
  t.match(
    text,
    /source_workload="api-2",.*outcome="allowed"\} 1/,
    'the metric counts past the bound',
  );
});

t.test('recent connections: a bounded ring, oldest first', async (t) => {
  const r = new RecentConnections(3);
  for (let i = 1; i <= 5; i++)
    r.add(
      {
        direction: 'inbound',
        'src.addr': `10.0.0.${i}:1000`,
        'dst.addr': '10.0.1.1:15008',
        'dst.hbone_addr': '10.0.1.1:8080',
        security: 'mutual_tls',
        verdict: i % 2 ? 'allow' : 'deny',
        error_code: i % 2 ? undefined : 'DENY',
        capture_bypass: i === 5 ? true : undefined,
      },
      new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
    );
  const list = r.list();
  t.same(
    list.map((c) => c.src),
    ['10.0.0.3:1000', '10.0.0.4:1000', '10.0.0.5:1000'],
  );
  t.match(list[1], {
    dst: '10.0.1.1:8080',
    hboneAddr: '10.0.1.1:15008',
    verdict: 'deny',
    error: 'DENY',
  });
  t.equal(list[2]!.captureBypass, true);
  const sunk: unknown[] = [];
  const tee = r.tee({ write: (l) => sunk.push(l) });
  tee.write({ direction: 'outbound', 'src.addr': 'x' });
  t.equal(sunk.length, 1, 'the line still goes to the access log');
  t.equal(r.list().at(-1)!.direction, 'outbound');
});
