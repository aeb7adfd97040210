// The run's chart as an SVG a reader can open: one panel per headline figure, a bar per
// configuration as its ratio to the best C peer for that figure. Pure.
import { best, METRICS, type RunResult } from './report.js';

export function svg(run: RunResult): string {
  // One panel per headline figure; a bar per configuration, as its ratio to the best C peer.
  const keys = ['bulk1', 'bulk8', 'rrP50', 'conn1', 'conn8', 'cpuGB', 'idleConn'];
  const names = Object.keys(run.configs);
  const colors: Record<string, string> = {
    direct: '#999',
    mtun: '#1f77b4',
    'mtun-w2': '#6baed6',
    stunnel: '#d62728',
    haproxy: '#ff7f0e',
    nginx: '#2ca02c',
  };
  const W = 260,
    H = 200,
    pad = 30;
  const parts: string[] = [];
  keys.forEach((k, i) => {
    const m = METRICS.find((x) => x.key === k)!;
    const b = best(run, m);
    const x0 = (i % 4) * W + 10,
      y0 = Math.floor(i / 4) * (H + 40) + 40;
    const vals = names.map((n) => m.get(run.configs[n]!) / b);
    const max = Math.max(1.2, ...vals.filter((v) => Number.isFinite(v)));
    parts.push(
      `<text x="${x0}" y="${y0 - 8}" font-size="12" font-weight="bold">${m.label} (${m.better} is better)</text>`,
    );
    const bw = (W - pad) / names.length;
    const yOf = (v: number) => y0 + H - (v / max) * H;
    parts.push(
      `<line x1="${x0}" x2="${x0 + W - 20}" y1="${yOf(1)}" y2="${yOf(1)}" stroke="#000" stroke-dasharray="3,3"/>`,
    );
    parts.push(`<text x="${x0 + W - 18}" y="${yOf(1) + 4}" font-size="9">1×</text>`);
    names.forEach((n, j) => {
      const v = vals[j]!;
      if (!Number.isFinite(v)) return;
      const x = x0 + j * bw;
      parts.push(
        `<rect x="${x}" y="${yOf(v)}" width="${bw - 4}" height="${y0 + H - yOf(v)}" fill="${colors[n] ?? '#555'}"/>`,
      );
      parts.push(
        `<text x="${x + (bw - 4) / 2}" y="${yOf(v) - 2}" font-size="9" text-anchor="middle">${v.toFixed(2)}</text>`,
      );
    });
  });
  const legend = names.map(
    (n, j) =>
      `<rect x="${10 + j * 110}" y="${2 * (H + 40) + 40}" width="10" height="10" fill="${colors[n] ?? '#555'}"/><text x="${24 + j * 110}" y="${2 * (H + 40) + 49}" font-size="11">${n}</text>`,
  );
  const width = 4 * W + 20,
    height = 2 * (H + 40) + 70;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="16" font-size="14" font-weight="bold">mtun bench (${run.mode}, mode: ${run.net ?? 'loopback'}, ${run.startedAt}): each figure as a ratio to the best C peer (stunnel, HAProxy, nginx)</text>
${parts.join('\n')}
${legend.join('\n')}
</svg>
`;
}
