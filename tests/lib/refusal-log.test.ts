// Rate-limited refusal warnings: a burst per key, then a trickle, with the count of what
// was left out on the next line that gets through; keys do not share a budget.
import { PassThrough } from 'node:stream';
import t from 'tap';
import { createLogger } from '../../lib/logger.js';
import { RefusalLog } from '../../lib/refusal-log.js';

t.test('a burst per key, then one line per refill, saying how many were suppressed', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
  });
  let now = 0;
  const log = new RefusalLog(createLogger({ level: 'debug', destination: sink }), {
    burst: 3,
    perMinute: 6, // one token every 10 s
    now: () => now,
  });
  for (let i = 0; i < 50; i++) log.warn('10.0.0.1|DENY', { i, code: 'DENY' }, 'refused');
  log.warn('10.0.0.2|DENY', { i: 'other' }, 'refused');
  now += 10_000;
  log.warn('10.0.0.1|DENY', { i: 50 }, 'refused');
  await new Promise((r) => setImmediate(r));
  t.same(
    lines.map((l) => [l['level'], l['i'], l['suppressed']]),
    [
      ['warn', 0, undefined],
      ['warn', 1, undefined],
      ['warn', 2, undefined],
      ['warn', 'other', undefined],
      ['warn', 50, 47],
    ],
  );
});
