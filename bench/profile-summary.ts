// Summarizes V8 .cpuprofile files (from `npm run bench -- --profile DIR`, which runs the
// mtun agents with --cpu-prof): self time by function and by file, the top entries each.
// Usage: node --import tsx bench/profile-summary.ts DIR [TOP]
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../lib/errors.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
const USAGE = `usage: node --import tsx bench/profile-summary.ts DIR [TOP]

Self time by function and by file of every .cpuprofile in DIR, the TOP (default 25) first.`;
const [dir, topArg] = process.argv.slice(2);
if (dir === '--help' || dir === '-h') {
  console.log(USAGE);
  process.exit(0);
}
const top = Number(topArg ?? 25);
if (!dir || !Number.isInteger(top) || top < 1) {
  console.error(
    `${dir ? `TOP: expected a whole number from 1, got '${topArg}'` : 'DIR is missing'}\n\n${USAGE}`,
  );
  process.exit(2);
}
const profiles = (() => {
  try {
    return readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'));
  } catch (err) {
    console.error(`${dir}: ${errorMessage(err)}`);
    process.exit(2);
  }
})();
if (profiles.length === 0) {
  console.error(`${dir}: no .cpuprofile files (run npm run bench -- --profile ${dir})`);
  process.exit(2);
}
for (const f of profiles) {
  const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { nodes: Node[]; samples: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  for (const id of p.samples) {
    const n = byId.get(id)!;
    const url = n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/') || '(native)';
    const k = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    fn.set(k, (fn.get(k) ?? 0) + 1);
    file.set(url, (file.get(url) ?? 0) + 1);
  }
  const total = p.samples.length;
  const show = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`)
      .join('\n');
  console.log(
    `== ${f} (${total} samples)\n-- by function\n${show(fn, top)}\n-- by file\n${show(file, 12)}`,
  );
}
