// The ceiling check: two mtun agents against the best a Node data path reaches on the same
// machine in the same run (a plain Node TLS pipe pair, one mTLS 1.3 connection per TCP
// connection, both sides in one process), and the HBONE library pair without the agents,
// as ratios only. Absolute figures on a shared 2-core machine drift 2x between runs; ratios
// of interleaved rounds do not, which is what lets a CI job judge them (issue 13: the agents
// fell to 0.15-0.2x the C proxies while nothing measured them against a ceiling).
// Every round runs each configuration once, in turn; the best ratio over the rounds counts,
// so one round disturbed by a neighbour's load cannot fail the check, while a real
// regression lowers every round. Bounded: bytes and seconds per bulk, trips and seconds
// per latency sample, and every process is stopped at the end, whatever happened.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePortBlock } from '../../lib/free-ports.js';
import { socks5Connect } from '../../lib/socks5-client.js';
import { startMtunPair } from '../suite/mtun-pair.js';
import {
  bulk,
  type Connector,
  roundTrips,
  startTarget,
  tcpConnector,
  untilAnswering,
} from './load.js';
import { cpuSeconds } from './procs.js';
import type { PairRequest } from './tunnel-pairs.js';

export interface CeilingOptions {
  readonly rounds: number;
  /** Per bulk transfer, whichever comes first. */
  readonly bulkSeconds: number;
  readonly bulkBytes: number;
  /** 64-byte round trips per latency sample. */
  readonly trips: number;
  /** Tunnels opened through mtun (one byte each) and closed again before measuring, as the
   *  suite's idle-connection phase does before bulk. (It is not what makes the agents slow:
   *  the slow mode of issue 13 showed with 0 as with 1,000.) */
  readonly tunnelsBefore?: number;
}

/** One configuration in one round. */
export interface Sample {
  readonly gbps: number;
  /** CPU seconds of the proxy processes per GB moved (both sides). */
  readonly cpuSecondsPerGB: number;
  readonly rttP50Us: number;
}

export type ConfigName = 'tls' | 'hbone' | 'mtun';

export interface CeilingResult {
  readonly rounds: ReadonlyArray<Record<ConfigName, Sample>>;
  /** Best over the rounds of mtun / tls (throughput: higher is better). */
  readonly bulkRatio: number;
  /** Best over the rounds of mtun / tls (CPU per GB: lower is better). */
  readonly cpuRatio: number;
  /** Best over the rounds of mtun / tls (round-trip p50: lower is better). */
  readonly rttRatio: number;
  /** The HBONE library pair against the same ceiling, for the record. */
  readonly hboneBulkRatio: number;
}

/** The floor a CI run holds mtun to, as fractions of the Node TLS pair (see tests/bench/ceiling.test.ts). */
// Issue 13's cause was glibc trimming the heap under OpenSSL's per-record read buffer (see
// agent/malloc-tune.ts): the agents were bimodal from one start to the next, fast (bulk
// 0.9-1.6x) or slow (bulk 0.43-0.55x, CPU per GB 2.3-2.9x). With the agents and the
// ceiling's pair processes tuned alike, measured on 2026-12-04 on the 2-core machine, quiet:
// bulk 1.02-1.18x, CPU per GB 1.06-1.30x, p50 1.31-1.51x (4 runs, best of 3 rounds each);
// next to two other busy test files: bulk 1.02-2.07x, CPU per GB up to 1.71x, p50 up to
// 1.90x, and one run of the whole agent suite beside it broke a 2x CPU limit. The bulk floor
// sits above the old slow mode, the CPU limit where the slow mode began, both above today's
// noise: a relapse fails, chance does not; a 1 ms stall per chunk measured 0.09x bulk and
// 5.1x p50.
export const CEILING_LIMITS = Object.freeze({
  /** mtun bulk >= this x the TLS pair's. */
  minBulkRatio: 0.6,
  /** mtun CPU per GB <= this x the TLS pair's. */
  maxCpuRatio: 2.5,
  /** mtun round-trip p50 <= this x the TLS pair's. */
  maxRttRatio: 2.5,
});

/** Which limits `r` breaks, as sentences; empty when it passes. */
export function ceilingFailures(r: CeilingResult, limits = CEILING_LIMITS): string[] {
  const f = (n: number) => n.toFixed(2);
  const out: string[] = [];
  if (!(r.bulkRatio >= limits.minBulkRatio))
    out.push(`bulk ${f(r.bulkRatio)}x the Node TLS pair, below ${limits.minBulkRatio}x`);
  if (!(r.cpuRatio <= limits.maxCpuRatio))
    out.push(`CPU per GB ${f(r.cpuRatio)}x the Node TLS pair, above ${limits.maxCpuRatio}x`);
  if (!(r.rttRatio <= limits.maxRttRatio))
    out.push(`round-trip p50 ${f(r.rttRatio)}x the Node TLS pair, above ${limits.maxRttRatio}x`);
  return out;
}

const TARGET_IP = '127.0.40.2';

export interface Running {
  readonly via: Connector;
  readonly pids: () => number[];
}

/** A pair (tunnel-pairs.ts) in a child process of its own, added to `kids`. */
export async function startPairProcess(req: PairRequest, kids: ChildProcess[]): Promise<Running> {
  const worker = fork(fileURLToPath(new URL('./tunnel-pairs.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  kids.push(worker);
  worker.send(req);
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { port: number }) => resolve(m.port));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`pair process exited with ${code}`)));
  });
  return { via: tcpConnector('127.0.0.1', port), pids: () => [worker.pid!] };
}

async function measure(c: Running, o: CeilingOptions): Promise<Sample> {
  const cpu = () => c.pids().reduce((s, p) => s + cpuSeconds(p), 0);
  const cpu0 = cpu();
  const moved = await bulk(c.via, o.bulkBytes, o.bulkSeconds);
  const cpuSecondsPerGB = (cpu() - cpu0) / (moved.bytes / 1e9);
  const rtt = await roundTrips(c.via, o.trips, o.bulkSeconds * 2);
  return { gbps: moved.gbps, cpuSecondsPerGB, rttP50Us: rtt.p50Us };
}

/** Starts the three configurations, runs `rounds` interleaved rounds, stops everything. */
export async function measureCeiling(
  o: CeilingOptions,
  progress: (line: string) => void = () => {},
): Promise<CeilingResult> {
  const dir = await mkdtemp(join(tmpdir(), 'mtun-ceiling-'));
  const kids: ChildProcess[] = [];
  const target = await startTarget(TARGET_IP, 0);
  const targetPort = (target.address() as { port: number }).port;
  let pair: Awaited<ReturnType<typeof startMtunPair>> | undefined;
  try {
    // HBONE, SOCKS5 and capture ports of the agents: no port 0 for a pair of processes that
    // must know each other's. Below the kernel's ephemeral range (32768+): a base in
    // 31000-35000 collided with the local ports of other tests' client connections, and the
    // agents could not listen (ECONNREFUSED for 60 s under CI's parallel files).
    const hbonePort = await freePortBlock(4, ['127.0.0.1', '127.0.0.2']);
    pair = await startMtunPair(join(dir, 'mtun'), { workers: 1, hbonePort });
    const started = pair;
    const configs: Record<ConfigName, Running> = {
      tls: await startPairProcess({ kind: 'tls', targetPort, targetIp: TARGET_IP }, kids),
      hbone: await startPairProcess({ kind: 'hbone', targetPort, targetIp: TARGET_IP }, kids),
      mtun: {
        via: () => socks5Connect(started.socks, { host: TARGET_IP, port: targetPort }),
        pids: () => started.agents.map((a) => a.child.pid!),
      },
    };
    // The agents log at warn level: ready is when a tunnel answers (certificates issued,
    // listeners bound).
    await untilAnswering(configs.mtun.via, 60_000);
    const open: Socket[] = [];
    for (let i = 0; i < (o.tunnelsBefore ?? 0); i++) {
      const s = await configs.mtun.via();
      s.write('x');
      open.push(s);
    }
    for (const s of open) s.destroy();
    // Warm up: certificates, pooled connections, JIT.
    for (const c of Object.values(configs)) {
      await roundTrips(c.via, 50, 5);
      await bulk(c.via, 16 * 2 ** 20, 1);
    }
    const rounds: Record<ConfigName, Sample>[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const row = {} as Record<ConfigName, Sample>;
      for (const name of ['tls', 'hbone', 'mtun'] as const) {
        row[name] = await measure(configs[name], o);
        const s = row[name];
        progress(
          `round ${r + 1} ${name.padEnd(5)} ${s.gbps.toFixed(2)} Gb/s  ${s.cpuSecondsPerGB.toFixed(2)} CPU-s/GB  p50 ${s.rttP50Us.toFixed(0)} µs`,
        );
      }
      rounds.push(row);
    }
    const best = (f: (row: Record<ConfigName, Sample>) => number, pick: 'max' | 'min') =>
      rounds.map(f).reduce((a, b) => (pick === 'max' ? Math.max(a, b) : Math.min(a, b)));
    return {
      rounds,
      bulkRatio: best((x) => x.mtun.gbps / x.tls.gbps, 'max'),
      cpuRatio: best((x) => x.mtun.cpuSecondsPerGB / x.tls.cpuSecondsPerGB, 'min'),
      rttRatio: best((x) => x.mtun.rttP50Us / x.tls.rttP50Us, 'min'),
      hboneBulkRatio: best((x) => x.hbone.gbps / x.tls.gbps, 'max'),
    };
  } finally {
    for (const k of kids) k.kill('SIGKILL');
    if (pair) await Promise.all(pair.all.map((p) => p.stop()));
    await new Promise((r) => target.close(() => r(undefined)));
    await rm(dir, { recursive: true, force: true });
  }
}
