// mtun's load-test suite: direct TCP, mtun (two agents, HBONE, CA certificates, a policy),
// the C mutual-TLS 1.3 proxy pairs (stunnel, HAProxy, nginx stream) and mtun --workers 2,
// side by side in one run on this machine, rounds interleaved. Loopback by default; with
// --netns inside a two-node network-namespace topology with real capture (root only).
// Run bench/setup.sh first (as root) to install the C peers. Bounded in count and time;
// every process, namespace and temp dir is removed at the end, whatever happened.
// Usage: npm run bench -- --help
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../lib/errors.js';
import { describeBuild, snapshotBuild } from './lib/build-snapshot.js';
import type { Proc } from './lib/procs.js';
import { progressLine } from './lib/progress.js';
import { loopbackConfigs } from './suite/loopback.js';
import { cannotRunNetns, netnsConfigs } from './suite/netns.js';
import { PEERS } from './suite/peers.js';
import type { RunResult } from './suite/report.js';
import { writeReport } from './suite/report-files.js';
import {
  type Config,
  type Hooks,
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
  --profile DIR     write V8 CPU profiles of mtun's single-process agents to DIR
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

const LIMIT_MIN = FULL ? 15 : 3;
const limit = setTimeout(() => {
  console.error(`\nbench: over its time limit (${LIMIT_MIN} min); stopping`);
  process.exit(3); // procs.ts kills every child on exit, netns.ts deletes the namespaces
}, LIMIT_MIN * 60_000);
limit.unref();
await main();
clearTimeout(limit);
