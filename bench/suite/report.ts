// The run's results as text, pure: the figures (METRICS), the table (each figure with its
// ratio to direct TCP and to the best C peer for that figure), the targets' verdicts and the
// Markdown report. chart.ts draws the SVG; report-files.ts writes the files.

interface Lat {
  count: number;
  p50Us: number;
  p99Us: number;
  perSec: number;
  samplesUs: number[];
}
export interface Round {
  bulk1Gbps: number;
  bulk8Gbps: number;
  cpuSecPerGB: number;
  rr: Lat;
  conn1: Lat & { failed: number };
  conn8: Lat & { failed: number };
  cpuSecPerKConn: number;
}
export interface ConfigResult {
  kind: 'direct' | 'mtun' | 'c';
  rounds: Round[];
  idleRssKiB: number;
  peakRssKiB: number;
  errors?: string[];
  /** netns mode: connections the agents' capture rules matched during this configuration's
   *  workloads, per node (0 for direct and the C peers: their traffic passes untouched). */
  captured?: Record<string, number>;
  idle?: {
    opened: number;
    answered: number;
    failed: number;
    rssBeforeKiB: number;
    rssLoadedKiB: number;
    kibPerConn: number;
    /** direct only: the target's RSS per idle connection, the floor of a Node process that
     *  holds one socket per connection (runner.ts Config.floor). */
    floorKiBPerConn?: number;
  };
}
/** A configuration's error list, created on first use. */
export function errorsOf(c: ConfigResult): string[] {
  if (!c.errors) c.errors = [];
  return c.errors;
}

export interface RunResult {
  /** quick or full. */
  mode: string;
  /** Where it ran: loopback (default) or netns (the two-node namespace topology). */
  net?: 'loopback' | 'netns';
  /** How the configurations are wired, one paragraph for the report. */
  setup?: string;
  /** Which code ran (commit, when dist/ was built); the agents run from a copy made at start. */
  build?: string;
  params: object;
  startedAt: string;
  elapsedSeconds?: number;
  configs: Record<string, ConfigResult>;
  missing: Record<string, string>;
  machine?: Record<string, string>;
}

export interface Metric {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly get: (c: ConfigResult) => number;
  readonly digits: number;
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : Number.NaN;
};
const med = (f: (r: Round) => number) => (c: ConfigResult) => median(c.rounds.map(f));

export const METRICS: readonly Metric[] = [
  {
    key: 'bulk1',
    label: 'bulk, 1 stream',
    unit: 'Gb/s',
    better: 'higher',
    digits: 2,
    get: med((r) => r.bulk1Gbps),
  },
  {
    key: 'bulk8',
    label: 'bulk, 8 streams',
    unit: 'Gb/s',
    better: 'higher',
    digits: 2,
    get: med((r) => r.bulk8Gbps),
  },
  {
    key: 'rrP50',
    label: '64 B round trip p50',
    unit: 'µs',
    better: 'lower',
    digits: 0,
    get: med((r) => r.rr.p50Us),
  },
  {
    key: 'rrP99',
    label: '64 B round trip p99',
    unit: 'µs',
    better: 'lower',
    digits: 0,
    get: med((r) => r.rr.p99Us),
  },
  {
    key: 'rrRate',
    label: '64 B round trips/s',
    unit: '/s',
    better: 'higher',
    digits: 0,
    get: med((r) => r.rr.perSec),
  },
  {
    key: 'conn1',
    label: 'new conns/s, 1 client',
    unit: '/s',
    better: 'higher',
    digits: 0,
    get: med((r) => r.conn1.perSec),
  },
  {
    key: 'conn1P50',
    label: 'setup→reply p50, 1 client',
    unit: 'µs',
    better: 'lower',
    digits: 0,
    get: med((r) => r.conn1.p50Us),
  },
  {
    key: 'conn1P99',
    label: 'setup→reply p99, 1 client',
    unit: 'µs',
    better: 'lower',
    digits: 0,
    get: med((r) => r.conn1.p99Us),
  },
  {
    key: 'conn8',
    label: 'new conns/s, 8 clients',
    unit: '/s',
    better: 'higher',
    digits: 0,
    get: med((r) => r.conn8.perSec),
  },
  {
    key: 'conn8P50',
    label: 'setup→reply p50, 8 clients',
    unit: 'µs',
    better: 'lower',
    digits: 0,
    get: med((r) => r.conn8.p50Us),
  },
  {
    key: 'conn8P99',
    label: 'setup→reply p99, 8 clients',
    unit: 'µs',
    better: 'lower',
    digits: 0,
    get: med((r) => r.conn8.p99Us),
  },
  {
    key: 'cpuGB',
    label: 'proxy CPU per GB (both sides)',
    unit: 's',
    better: 'lower',
    digits: 2,
    get: med((r) => r.cpuSecPerGB),
  },
  {
    key: 'cpuKConn',
    label: 'proxy CPU per 1,000 conns',
    unit: 's',
    better: 'lower',
    digits: 3,
    get: med((r) => r.cpuSecPerKConn),
  },
  {
    key: 'idleConn',
    label: 'memory per idle conn (both sides)',
    unit: 'KiB',
    better: 'lower',
    digits: 1,
    get: (c) => (c.kind === 'direct' ? Number.NaN : (c.idle?.kibPerConn ?? Number.NaN)),
  },
  {
    key: 'idleAns',
    label: 'idle conns answering',
    unit: '',
    better: 'higher',
    digits: 0,
    get: (c) => c.idle?.answered ?? Number.NaN,
  },
  {
    key: 'rssIdle',
    label: 'RSS idle (both sides)',
    unit: 'MiB',
    better: 'lower',
    digits: 1,
    get: (c) => (c.kind === 'direct' ? Number.NaN : c.idleRssKiB / 1024),
  },
  {
    key: 'rssPeak',
    label: 'RSS peak (both sides)',
    unit: 'MiB',
    better: 'lower',
    digits: 1,
    get: (c) => (c.kind === 'direct' ? Number.NaN : c.peakRssKiB / 1024),
  },
];

/** The best C peer's value of a figure: the highest or the lowest, as the figure wants. */
export function best(run: RunResult, m: Metric): number {
  const vals = Object.values(run.configs)
    .filter((c) => c.kind === 'c')
    .map(m.get)
    .filter((v) => !Number.isNaN(v));
  if (!vals.length) return Number.NaN;
  return m.better === 'higher' ? Math.max(...vals) : Math.min(...vals);
}

const fmt = (v: number, d: number) => (Number.isNaN(v) ? '–' : v.toFixed(d));
const ratio = (v: number, ref: number) =>
  Number.isNaN(v) || Number.isNaN(ref) || ref === 0 ? '–' : `${(v / ref).toFixed(2)}×`;

export function table(run: RunResult): string {
  const names = Object.keys(run.configs);
  const lines = [`| figure | ${names.join(' | ')} |`, `|---|${names.map(() => '---').join('|')}|`];
  for (const m of METRICS) {
    const direct = run.configs['direct'] ? m.get(run.configs['direct']) : Number.NaN;
    const b = best(run, m);
    const cells = names.map((n) => {
      const v = m.get(run.configs[n]!);
      const rs = [ratio(v, direct), ratio(v, b)];
      return Number.isNaN(v) ? '–' : `${fmt(v, m.digits)} (${rs[0]} d, ${rs[1]} C)`;
    });
    lines.push(
      `| ${m.label}${m.unit ? ` (${m.unit})` : ''}, ${m.better} is better | ${cells.join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** The targets' verdicts for the single-process mtun pair (the row `mtun`). */
export function targets(run: RunResult): string[] {
  const mt = run.configs['mtun'];
  if (!mt) return ['mtun not in this run'];
  const m = (k: string) => METRICS.find((x) => x.key === k)!;
  const out: string[] = [];
  // No figure (no C peer, a failed workload) is neither met nor missed: UNKNOWN, shown as "–".
  const chk = (name: string, v: number, ok: (v: number) => boolean, text: string) =>
    out.push(`${Number.isNaN(v) ? 'UNKNOWN' : ok(v) ? 'MET   ' : 'MISSED'} ${name}: ${text}`);
  const r = (k: string) => m(k).get(mt) / best(run, m(k));
  const x = (v: number) => (Number.isNaN(v) ? '–' : `${v.toFixed(2)}×`);
  const ratioChk = (name: string, k: string, ok: (v: number) => boolean) =>
    chk(name, r(k), ok, x(r(k)));
  ratioChk('bulk ≥ 0.8× best C (1 stream)', 'bulk1', (v) => v >= 0.8);
  ratioChk('bulk ≥ 0.8× best C (8 streams)', 'bulk8', (v) => v >= 0.8);
  ratioChk('round trip p50 ≤ 1.3× best C', 'rrP50', (v) => v <= 1.3);
  ratioChk('new conns/s ≥ 3× best C (1 client)', 'conn1', (v) => v >= 3);
  ratioChk('new conns/s ≥ 3× best C (8 clients)', 'conn8', (v) => v >= 3);
  const perAgent = m('idleConn').get(mt) / 2;
  const perAgentText = Number.isNaN(perAgent)
    ? '–'
    : `${perAgent.toFixed(1)} KiB per agent (${m('idleConn').get(mt).toFixed(1)} both)`;
  chk('≤ 10 KiB per idle tunnel per agent', perAgent, (v) => v <= 10, perAgentText);
  const floor = run.configs['direct']?.idle?.floorKiBPerConn;
  chk(
    '≤ 5 KiB per idle tunnel per agent (issue 16)',
    perAgent,
    (v) => v <= 5,
    floor === undefined
      ? perAgentText
      : `${perAgentText}; the floor, a Node process holding one socket per idle connection (the direct target): ${floor.toFixed(1)} KiB`,
  );
  return out;
}

/** The Markdown report: title with the mode, machine, parameters, table, missing peers,
 *  capture counters (netns), errors and the targets. Pure. */
export function markdown(run: RunResult): string {
  const t = table(run);
  const tg = targets(run);
  const miss = Object.entries(run.missing).map(([k, v]) => `- ${k}: MISSING (${v})`);
  const cap = Object.entries(run.configs)
    .filter(([, c]) => c.captured)
    .map(
      ([n, c]) =>
        `- ${n}: ${Object.entries(c.captured!)
          .map(([node, v]) => `${node} ${v}`)
          .join(', ')}`,
    );
  return [
    `# mtun bench, ${run.mode} run, mode: ${run.net ?? 'loopback'}, ${run.startedAt} (${Math.round(run.elapsedSeconds ?? 0)} s)`,
    '',
    'Machine: ' +
      Object.entries(run.machine ?? {})
        .map(([k, v]) => `${k}: ${v}`)
        .join('; '),
    '',
    ...(run.build ? [`Build: ${run.build}.`, ''] : []),
    `Parameters: ${JSON.stringify(run.params)}. ${run.setup ?? 'Loopback.'} Medians of the rounds. Each cell: value (ratio to direct TCP "d", ratio to the best C peer for that figure "C").`,
    '',
    t,
    '',
    ...(miss.length ? ['Peers missing:', ...miss, ''] : []),
    ...(cap.length
      ? [
          "Connections matched by the agents' capture rules (iptables counters) during each configuration's workloads:",
          ...cap,
          '',
        ]
      : []),
    ...Object.entries(run.configs).flatMap(([n, c]) =>
      (c.errors ?? []).map((e) => `- ${n} ERROR ${e}`),
    ),
    '',
    'Targets (mtun, ratios in this run):',
    '',
    ...tg.map((x) => `- ${x}`),
    '',
  ].join('\n');
}
