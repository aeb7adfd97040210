// bench/suite/report.ts on hand-made runs: ratios to direct TCP and to the best C peer
// (the highest value when higher is better, the lowest when lower is), the targets' MET and
// MISSED lines, missing peers and errors in the report, and NaN shown as "–". Pure: no
// processes, no files.
import t from 'tap';
import { svg } from '../../bench/suite/chart.js';
import {
  type ConfigResult,
  METRICS,
  markdown,
  type Round,
  type RunResult,
  table,
  targets,
} from '../../bench/suite/report.js';

const lat = (p50Us: number, perSec: number) => ({
  count: 100,
  p50Us,
  p99Us: p50Us * 3,
  perSec,
  samplesUs: [],
  failed: 0,
});

interface Figures {
  bulk: number;
  rrP50: number;
  conns: number;
  kibPerConn?: number;
}

function config(kind: ConfigResult['kind'], f: Figures): ConfigResult {
  const round: Round = {
    bulk1Gbps: f.bulk,
    bulk8Gbps: f.bulk * 2,
    cpuSecPerGB: kind === 'direct' ? Number.NaN : 1,
    rr: lat(f.rrP50, 1e6 / f.rrP50),
    conn1: lat(f.rrP50 * 10, f.conns),
    conn8: lat(f.rrP50 * 20, f.conns * 2),
    cpuSecPerKConn: kind === 'direct' ? Number.NaN : 0.5,
  };
  return {
    kind,
    rounds: [round],
    idleRssKiB: 10_240,
    peakRssKiB: 20_480,
    idle: {
      opened: 1000,
      answered: 1000,
      failed: 0,
      rssBeforeKiB: 10_240,
      rssLoadedKiB: 10_240 + 1000 * (f.kibPerConn ?? 10),
      kibPerConn: f.kibPerConn ?? 10,
    },
  };
}

function run(configs: Record<string, ConfigResult>, missing: Record<string, string> = {}) {
  return {
    mode: 'quick',
    net: 'netns',
    params: { rounds: 1 },
    startedAt: '2026-11-22T00:00:00.000Z',
    elapsedSeconds: 42,
    configs,
    missing,
    machine: { cpu: 'test' },
  } satisfies RunResult;
}

/** The table's cell for a figure (by label prefix) and a configuration. */
function cell(r: RunResult, label: string, name: string): string {
  const lines = table(r).split('\n');
  const col = lines[0]!
    .split(' | ')
    .findIndex((h) => h.replace(/^\| /, '').replace(/ \|$/, '') === name);
  const row = lines.find((l) => l.startsWith(`| ${label}`));
  if (!row || col < 0) throw new Error(`no cell ${label} / ${name}`);
  return row.split(' | ')[col]!.replace(/ \|$/, '');
}

const base = () => ({
  direct: config('direct', { bulk: 10, rrP50: 10, conns: 5000 }),
  mtun: config('mtun', { bulk: 2, rrP50: 60, conns: 1500, kibPerConn: 16 }),
  stunnel: config('c', { bulk: 1, rrP50: 30, conns: 200 }),
  haproxy: config('c', { bulk: 4, rrP50: 50, conns: 500 }),
});

t.test('higher is better: the ratio to the best C peer uses the highest C value', async (t) => {
  const r = run(base());
  // bulk: direct 10, C best = haproxy 4 (not stunnel's 1).
  t.equal(cell(r, 'bulk, 1 stream', 'mtun'), '2.00 (0.20× d, 0.50× C)');
  t.equal(cell(r, 'bulk, 1 stream', 'haproxy'), '4.00 (0.40× d, 1.00× C)');
  t.equal(cell(r, 'bulk, 1 stream', 'direct'), '10.00 (1.00× d, 2.50× C)');
  t.equal(cell(r, 'new conns/s, 1 client', 'mtun'), '1500 (0.30× d, 3.00× C)');
});

t.test('lower is better: the ratio to the best C peer uses the lowest C value', async (t) => {
  const r = run(base());
  // round trip p50: direct 10 µs, C best = stunnel 30 µs (not haproxy's 50).
  t.equal(cell(r, '64 B round trip p50', 'mtun'), '60 (6.00× d, 2.00× C)');
  t.equal(cell(r, '64 B round trip p50', 'stunnel'), '30 (3.00× d, 1.00× C)');
  t.match(table(r), /64 B round trip p50 \(µs\), lower is better/);
  t.match(table(r), /bulk, 1 stream \(Gb\/s\), higher is better/);
});

t.test('NaN cells and ratios are shown as "–"', async (t) => {
  const configs = base();
  configs.mtun.rounds[0]!.bulk1Gbps = Number.NaN;
  const r = run(configs);
  t.equal(cell(r, 'bulk, 1 stream', 'mtun'), '–', 'a failed workload');
  t.equal(cell(r, 'proxy CPU per GB', 'direct'), '–', 'direct has no proxy');
  t.equal(cell(r, 'proxy CPU per GB', 'mtun'), '1.00 (– d, 1.00× C)', 'no direct ratio');
  t.equal(cell(r, 'RSS idle', 'direct'), '–');
  // Without any C peer every "C" ratio is "–".
  const alone = run({ direct: base().direct, mtun: base().mtun });
  t.equal(cell(alone, 'bulk, 1 stream', 'mtun'), '2.00 (0.20× d, – C)');
  t.notMatch(table(r), /NaN/);
});

t.test('targets: MET and MISSED lines with the ratios', async (t) => {
  const lines = targets(run(base()));
  t.same(lines, [
    'MISSED bulk ≥ 0.8× best C (1 stream): 0.50×',
    'MISSED bulk ≥ 0.8× best C (8 streams): 0.50×',
    'MISSED round trip p50 ≤ 1.3× best C: 2.00×',
    'MET    new conns/s ≥ 3× best C (1 client): 3.00×',
    'MET    new conns/s ≥ 3× best C (8 clients): 3.00×',
    'MET    ≤ 10 KiB per idle tunnel per agent: 8.0 KiB per agent (16.0 both)',
    'MISSED ≤ 5 KiB per idle tunnel per agent (issue 16): 8.0 KiB per agent (16.0 both)',
  ]);
  // With the direct target's RSS per connection measured: the floor is named.
  const floored = base();
  floored.direct.idle = { ...floored.mtun.idle!, floorKiBPerConn: 4.25 };
  t.equal(
    targets(run(floored))[6],
    'MISSED ≤ 5 KiB per idle tunnel per agent (issue 16): 8.0 KiB per agent (16.0 both); the floor, a Node process holding one socket per idle connection (the direct target): 4.3 KiB',
  );
  const good = base();
  good.mtun = config('mtun', { bulk: 3.6, rrP50: 33, conns: 200, kibPerConn: 24 });
  const met = targets(run(good));
  t.equal(met[0], 'MET    bulk ≥ 0.8× best C (1 stream): 0.90×');
  t.equal(met[2], 'MET    round trip p50 ≤ 1.3× best C: 1.10×');
  t.equal(met[3], 'MISSED new conns/s ≥ 3× best C (1 client): 0.40×');
  t.equal(met[5], 'MISSED ≤ 10 KiB per idle tunnel per agent: 12.0 KiB per agent (24.0 both)');
  t.same(targets(run({ direct: base().direct })), ['mtun not in this run']);
  const noC = targets(run({ direct: base().direct, mtun: base().mtun }));
  t.equal(noC[0], 'UNKNOWN bulk ≥ 0.8× best C (1 stream): –', 'no C peer: no verdict');
  t.equal(noC[5], 'MET    ≤ 10 KiB per idle tunnel per agent: 8.0 KiB per agent (16.0 both)');
});

t.test('the report names missing peers, errors, capture counters and the mode', async (t) => {
  const configs = base();
  configs.direct.captured = { n1: 0, n2: 0 };
  configs.mtun.captured = { n1: 2870, n2: 19 };
  configs.haproxy.errors = ['round 1 bulk, 8 streams: boom'];
  const md = markdown(run(configs, { nginx: 'libnginx-mod-stream not installed' }));
  t.match(md, /^# mtun bench, quick run, mode: netns, /);
  t.match(md, /- nginx: MISSING \(libnginx-mod-stream not installed\)/);
  t.match(md, /- haproxy ERROR round 1 bulk, 8 streams: boom/);
  t.match(md, /- direct: n1 0, n2 0\n- mtun: n1 2870, n2 19/);
  t.match(md, /Machine: cpu: test/);
  t.notMatch(md, /Build:/, 'no build line when not known');
  t.match(markdown({ ...run(configs), build: 'HEAD abc1234' }), /\nBuild: HEAD abc1234\.\n/);
  t.notMatch(md, /nginx \|/, 'no column for a missing peer');
});

t.test('the chart names the mode and draws no bar for a missing figure', async (t) => {
  const configs = base();
  const all = svg(run(configs));
  t.match(all, /mode: netns/);
  t.notMatch(all, /NaN|Infinity/);
  configs.mtun.rounds[0]!.bulk1Gbps = Number.NaN;
  const bars = (x: string) => x.match(/<rect x=[^>]*height/g)?.length ?? 0;
  t.equal(bars(svg(run(configs))), bars(all) - 1, 'one bar fewer');
});

t.test('every metric says which way is better', async (t) => {
  for (const m of METRICS) t.ok(m.better === 'higher' || m.better === 'lower', m.key);
});
