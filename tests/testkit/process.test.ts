// testkit/process.ts's output buffer: bounded, and cut only at line starts (the namespaced
// tests parse the agents' access log from it as JSON lines).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';
import { track } from '../../testkit/process.js';

t.test('output beyond 1 MiB keeps the newest whole lines only', async (t) => {
  // 30,000 JSON lines of ~60 bytes, about 1.7 MiB, written by a real child process.
  const script =
    "for (let i = 0; i < 30000; i++) process.stdout.write(JSON.stringify({ i, pad: 'x'.repeat(40) }) + '\\n');";
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = track(child, 'writer');
  await once(child, 'close');
  const out = p.output();
  t.ok(out.length <= 1 << 20, `bounded (${out.length} bytes)`);
  const lines = out.split('\n').filter(Boolean);
  const parsed = lines.map((l) => JSON.parse(l) as { i: number });
  t.equal(parsed.at(-1)?.i, 29_999, 'the newest line is there');
  t.ok((parsed[0]?.i ?? 0) > 0, 'the oldest lines were dropped');
  t.ok(
    parsed.every((l, k) => k === 0 || l.i === (parsed[k - 1]?.i ?? NaN) + 1),
    'every kept line whole and in order',
  );
});
