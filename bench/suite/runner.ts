// The measuring loop shared by both modes: warm every configuration, open many idle
// connections on each (fresh processes), then the rounds (bulk 1 and 8 streams, 64-byte
// round trips, new connections with 1 and 8 clients), configurations interleaved within a
// round, proxy CPU and RSS read by pid from /proc around each block. A failed workload is an
// error in the results, never a silent gap.
import { cpuSeconds, type Proc, peakRssKiB, rssKiB } from '../lib/procs.js';
import type { Progress } from '../lib/progress.js';
import type { Driver } from './driver.js';
import { errorsOf, type RunResult } from './report.js';

export interface Params {
  readonly rounds: number;
  readonly seconds: number;
  readonly rrCount: number;
  readonly conns: number;
  readonly idle: number;
  readonly idleSeconds: number;
}

/** One run of the suite: what main.ts hands down to every step that starts or measures
 *  something, by name. */
export interface RunContext {
  /** The run's temporary directory: certificates, meshes, the peers' configurations. */
  readonly dir: string;
  readonly params: Params;
  /** Whether a configuration takes part (--configs). */
  want(name: string): boolean;
  /** --profile: where the single-process agents write V8 CPU profiles. */
  readonly profileDir: string | undefined;
  /** The build snapshot the CA and agents run from (bench/lib/build-snapshot.ts); undefined:
   *  dist/ itself, or the sources without one (bench/lib/procs.ts mtun()). */
  readonly root: string | undefined;
  /** Every process started, stopped at the end whatever happened. */
  readonly procs: Proc[];
  /** The results as they are filled in: configurations, missing peers, errors. */
  readonly result: RunResult;
  readonly progress: Progress;
}

export interface Config {
  readonly name: string;
  readonly kind: 'direct' | 'mtun' | 'c';
  readonly driver: Driver;
  /** The proxy processes measured for CPU and memory (both sides), as they are now. */
  procs(): readonly Proc[];
  /** direct: the target, a Node process that holds one plain socket per idle connection
   *  and little else; its RSS per connection is the floor under any Node proxy's memory per
   *  connection (measured first in the run, on a fresh target). */
  floor?(): readonly Proc[];
  /** Makes the configuration's processes run (netns: the agents of this variant); true when
   *  it (re)started them, so they are warmed again. */
  up?(): Promise<boolean>;
}

export interface Hooks {
  /** Connections matched by the agents' capture rules so far, per node (netns mode). */
  captured?(): Promise<Record<string, number>>;
  /** Checks the finished run (netns: who was captured), adding errors to its configurations. */
  verify?(run: RunResult): void;
}

/** `--cpu-prof` node flags for the single-process agents (--profile); none without it. */
export function profileArgs(ctx: RunContext): string[] {
  return ctx.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`] : [];
}

const cpuOf = (c: Config) => c.procs().reduce((a, p) => a + cpuSeconds(p.child.pid!), 0);
const rssOf = (c: Config) => c.procs().reduce((a, p) => a + rssKiB(p.child.pid!), 0);
const peakOf = (c: Config) => c.procs().reduce((a, p) => a + peakRssKiB(p.child.pid!), 0);

async function warm(c: Config): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      await c.driver.roundTrips(20, 2);
      return;
    } catch (err) {
      if (Date.now() > end)
        throw new Error(
          `${c.name} never answered: ${err}\n${c
            .procs()
            .map((p) => p.output().slice(-800))
            .join('\n')}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function runConfigs(
  ctx: RunContext,
  all: readonly Config[],
  hooks: Hooks = {},
): Promise<void> {
  const { params: P, result, progress } = ctx;
  const configs = [...all];
  /** Runs `work` with the configuration up and warm, capture counted and peak RSS kept. */
  const block = async <T>(c: Config, work: () => Promise<T>): Promise<T> => {
    if (await c.up?.()) {
      progress(`${c.name}: warming`);
      await warm(c);
    }
    const before = await hooks.captured?.();
    try {
      return await work();
    } finally {
      const r = result.configs[c.name]!;
      r.peakRssKiB = Math.max(r.peakRssKiB, peakOf(c));
      const after = await hooks.captured?.();
      if (before && after) {
        r.captured ??= {};
        for (const [k, v] of Object.entries(after))
          r.captured[k] = (r.captured[k] ?? 0) + v - (before[k] ?? 0);
      }
    }
  };
  for (const c of [...configs]) {
    progress(`warming ${c.name}`);
    try {
      await c.up?.();
      await warm(c);
    } catch (err) {
      result.missing[c.name] = `never answered: ${String(err).slice(0, 600)}`;
      console.error(`\n${c.name}: FAILED, ${err}`);
      configs.splice(configs.indexOf(c), 1);
      continue;
    }
    result.configs[c.name] = { kind: c.kind, rounds: [], idleRssKiB: rssOf(c), peakRssKiB: 0 };
  }
  // Idle connections first, on fresh processes (bulk buffers would hide in the baseline).
  for (const c of configs) {
    const r = result.configs[c.name]!;
    try {
      await block(c, async () => {
        progress(`${c.name}: ${P.idle} idle connections`);
        const before = rssOf(c);
        const floorOf = () => (c.floor?.() ?? []).reduce((a, p) => a + rssKiB(p.child.pid!), 0);
        const floorBefore = floorOf();
        let loaded = 0;
        let floorLoaded = 0;
        const idle = await c.driver.idle(P.idle, P.idleSeconds, async () => {
          loaded = rssOf(c);
          floorLoaded = floorOf();
        });
        r.idle = {
          ...idle,
          rssBeforeKiB: before,
          rssLoadedKiB: loaded,
          kibPerConn: (loaded - before) / Math.max(1, idle.opened),
          ...(c.floor
            ? { floorKiBPerConn: (floorLoaded - floorBefore) / Math.max(1, idle.opened) }
            : {}),
        };
      });
    } catch (err) {
      errorsOf(r).push(`idle connections: ${String(err).slice(0, 300)}`);
    }
  }
  for (let round = 1; round <= P.rounds; round++) {
    for (const c of configs) {
      const errors = errorsOf(result.configs[c.name]!);
      const at = (w: string) => progress(`round ${round}/${P.rounds} · ${c.name} · ${w}`);
      const guard = async <T>(w: string, f: () => Promise<T>, none: T): Promise<T> => {
        at(w);
        try {
          return await f();
        } catch (err) {
          errors.push(`round ${round} ${w}: ${String(err).slice(0, 300)}`);
          return none;
        }
      };
      const noLat = {
        count: 0,
        p50Us: Number.NaN,
        p99Us: Number.NaN,
        perSec: Number.NaN,
        samplesUs: [],
        failed: 0,
      };
      const noBulk = { gbps: Number.NaN, bytes: 0 };
      try {
        await block(c, async () => {
          const d = c.driver;
          const cpu0 = cpuOf(c);
          const b1 = await guard('bulk, 1 stream', () => d.bulk(1, P.seconds), noBulk);
          const b8 = await guard('bulk, 8 streams', () => d.bulk(8, P.seconds), noBulk);
          const bulkCpu = cpuOf(c) - cpu0;
          const rr = await guard(
            '64 B round trips',
            () => d.roundTrips(P.rrCount, P.seconds),
            noLat,
          );
          const cpu1 = cpuOf(c);
          const n1 = await guard(
            'new connections, 1 client',
            () => d.newConnections(1, P.conns, P.seconds),
            noLat,
          );
          const n8 = await guard(
            'new connections, 8 clients',
            () => d.newConnections(8, P.conns, P.seconds),
            noLat,
          );
          const connCpu = cpuOf(c) - cpu1;
          const measured = c.procs().length > 0;
          result.configs[c.name]!.rounds.push({
            bulk1Gbps: b1.gbps,
            bulk8Gbps: b8.gbps,
            cpuSecPerGB: measured ? bulkCpu / ((b1.bytes + b8.bytes) / 1e9) : Number.NaN,
            rr,
            conn1: n1,
            conn8: n8,
            cpuSecPerKConn: measured ? connCpu / ((n1.count + n8.count) / 1000) : Number.NaN,
          });
        });
      } catch (err) {
        errors.push(`round ${round}: ${String(err).slice(0, 300)}`);
      }
    }
  }
  hooks.verify?.(result);
}
