// mtun's load-test suite: direct TCP, mtun (two agents, HBONE, CA certificates, a policy),
// the C mutual-TLS 1.3 proxy pairs (stunnel, HAProxy, nginx stream) and mtun --workers 2,
// side by side in one run on this machine, rounds interleaved. Loopback by default; with
// --netns inside a two-node network-namespace topology with real capture (root only). With
// --engines node,own the mtun pair runs once per HBONE engine, each its own row (issue 16).
// Run bench/setup.sh first (as root) to install the C peers. Bounded in count and time;
// every process, namespace and temp dir is removed at the end, whatever happened.
// Usage: npm run bench -- --help
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultEngine, HBONE_ENGINES, type HboneEngine } from '../hbone/engine.js';
import { errorMessage } from '../lib/errors.js';
import { describeBuild, snapshotBuild } from './lib/build-snapshot.js';
import type { Proc } from './lib/procs.js';
import { progressLine } from './lib/progress.js';
import { loopbackConfigs } from './suite/loopback.js';
import { cannotRunNetns, netnsConfigs } from './suite/netns.js';
import { PEERS } from './suite/peers.js';
import { pairRowName, type RunResult } from './suite/report.js';
import { writeReport } from './suite/report-files.js';
import {
  type Config,
  type Hooks,
  type MtunRow,
  type Params,
  type RunContext,
  runConfigs,
} from './suite/runner.js';

const CONFIGS = ['direct', 'mtun', 'mtun-w2', ...PEERS] as const;
const USAGE = `usage: npm run bench [-- options]

Runs mtun, direct TCP and the C mutual-TLS 1.3 proxy pairs in one run and prints each
figure with its ratio to direct and to the best C peer; writes the report (.md), the raw
samples (.json) and a chart (.svg) to bench/results/MODE-NET-TIME.* unless --out is given.
Run bench/setup.sh first (as root) to install stunnel, HAProxy and nginx.

  --full            the long run (3 rounds, 10,000 idle tunnels; ~10 min, limit 15)
                    instead of the quick one (~1.5 min, limit 3)
  --netns           in a two-node network-namespace topology with iptables capture (root only)
  --configs a,b     only these configurations: ${CONFIGS.join(', ')} (default: all)
  --engines a,b     the mtun pair once per HBONE engine (${HBONE_ENGINES.join(', ')}), a row each
                    ("mtun (node:http2)", "mtun (own h2)") with its targets; with both, also a
                    table of one against the other. Default: one row "mtun" on the default
                    engine (MTUN_HBONE_ENGINE's, else own), which mtun-w2 runs in any case.
                    Each further engine: one configuration more (~1/6 of the run's time),
                    1 min (quick) or 5 min (full) more of time limit
  --profile DIR     write V8 CPU profiles of mtun's agents to DIR (with --engines, DIR/ENGINE)
  --out PREFIX      write PREFIX.md, PREFIX.json and PREFIX.svg
  -h, --help        this text`;

function usageError(message: string): never {
  console.error(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        full: { type: 'boolean', default: false },
        netns: { type: 'boolean', default: false },
        configs: { type: 'string' },
        engines: { type: 'string' },
        profile: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    return usageError(errorMessage(err));
  }
})();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = (values.configs?.split(',') ?? []).filter(
  (c) => !(CONFIGS as readonly string[]).includes(c),
);
if (unknown.length > 0) usageError(`--configs: unknown ${unknown.join(', ')}`);
const DEFAULT_ENGINE = (() => {
  try {
    return defaultEngine();
  } catch (err) {
    return usageError(errorMessage(err));
  }
})();
/** The mtun pair's rows: one per engine of --engines (named by it), else `mtun`. */
const MTUN_ROWS: MtunRow[] = (() => {
  if (values.engines === undefined) return [{ name: 'mtun', engine: DEFAULT_ENGINE }];
  const list = values.engines.split(',');
  const bad = list.filter((e) => !(HBONE_ENGINES as readonly string[]).includes(e));
  if (bad.length > 0 || list.length === 0)
    usageError(
      `--engines: expected some of ${HBONE_ENGINES.join(', ')}, got ${JSON.stringify(values.engines)}`,
    );
  if (new Set(list).size !== list.length) usageError('--engines: an engine is named twice');
  return (list as HboneEngine[]).map((engine) => ({ name: pairRowName(engine), engine }));
})();
if (values.netns) {
  const why = cannotRunNetns();
  if (why) {
    console.error(`bench --netns: cannot run here: ${why}`);
    process.exit(2);
  }
}

const FULL = values.full;
const P: Params = FULL
  ? { rounds: 3, seconds: 4, rrCount: 50_000, conns: 20_000, idle: 10_000, idleSeconds: 90 }
  : { rounds: 1, seconds: 1.5, rrCount: 20_000, conns: 5_000, idle: 2_000, idleSeconds: 30 };
const t0 = Date.now();
const progress = progressLine(t0);

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mtun-bench-'));
  // Also on a signal or the time limit (process.exit skips the finally below).
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeDir);
  const all: Proc[] = [];
  const result: RunResult = {
    mode: FULL ? 'full' : 'quick',
    net: values.netns ? 'netns' : 'loopback',
    params: P,
    startedAt: new Date().toISOString(),
    configs: {},
    missing: {},
  };
  const want = (name: string) => !values.configs || values.configs.split(',').includes(name);
  let close = async () => {};
  try {
    progress('snapshot of the build');
    result.build = describeBuild();
    const root = await snapshotBuild(dir);
    const ctx: RunContext = {
      dir,
      params: P,
      want,
      mtunRows: MTUN_ROWS,
      defaultEngine: DEFAULT_ENGINE,
      profileDir: values.profile,
      // Loopback starts its agents once, before the rounds, from dist/ itself; netns restarts
      // them between rounds, from the snapshot.
      root: values.netns ? root : undefined,
      procs: all,
      result,
      progress,
    };
    let configs: Config[];
    let hooks: Hooks = {};
    if (values.netns) {
      ({ configs, hooks, close } = await netnsConfigs(ctx));
    } else {
      configs = await loopbackConfigs(ctx);
    }
    await runConfigs(ctx, configs, hooks);
    result.elapsedSeconds = (Date.now() - t0) / 1000;
    progress('done');
    progress.done();
    await writeReport(result, values.out);
  } finally {
    progress('stopping processes');
    await Promise.all(all.reverse().map((p) => p.stop()));
    await close();
    await rm(dir, { recursive: true, force: true });
    process.off('exit', removeDir);
    progress.done();
  }
}

// Each further engine's mtun pair is one more configuration to warm, load and measure.
const LIMIT_MIN = (FULL ? 15 : 3) + (FULL ? 5 : 1) * (MTUN_ROWS.length - 1);
const limit = setTimeout(() => {
  console.error(`\nbench: over its time limit (${LIMIT_MIN} min); stopping`);
  process.exit(3); // procs.ts kills every child on exit, netns.ts deletes the namespaces
}, LIMIT_MIN * 60_000);
limit.unref();
await main();
clearTimeout(limit);
