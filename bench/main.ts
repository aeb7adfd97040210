// mtun's load-test suite: direct TCP, mtun (two agents, HBONE, CA certificates, a policy),
// Run bench/setup.sh first (as root) to install the C peers.
// the C mutual-TLS 1.3 proxy pairs (stunnel, HAProxy, nginx stream) and mtun --workers 2,
// side by side in one run on this machine, rounds interleaved. Bounded in count and time;
// every process and temp dir is removed at the end, whatever happened.
// Usage: npm run bench [-- --full] [--configs a,b] [--profile DIR] [--out PREFIX] [--netns]
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { socks5Connect } from '../lib/socks5-client.js';
import type { Connector } from './lib/load.js';
import { cpuSeconds, type Proc, peakRssKiB, rssKiB, spawnProc } from './lib/procs.js';
import { writeCerts } from './suite/certs.js';
import { SERVER_POD, startMtunPair } from './suite/mtun-pair.js';
import { missing, PEERS, type PeerKind, startPeer } from './suite/peers.js';
import { type RunResult, writeReport } from './suite/report.js';
import { bulkStreams, idleConnections, newConnections, roundTrips } from './suite/workloads.js';

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    netns: { type: 'boolean', default: false },
    configs: { type: 'string' },
    profile: { type: 'string' },
    out: { type: 'string' },
  },
});
if (values.netns) {
  console.error(
    'bench --netns: not implemented yet. The loopback mode (the default) is; the two-node\n' +
      'namespace topology (tests/namespaced/topology.ts) is the next step of issue 8.',
  );
  process.exit(2);
}

const FULL = values.full;
const P = FULL
  ? { rounds: 3, seconds: 4, rrCount: 50_000, conns: 20_000, idle: 10_000, idleSeconds: 90 }
  : { rounds: 1, seconds: 1.5, rrCount: 20_000, conns: 5_000, idle: 2_000, idleSeconds: 30 };

interface Config {
  readonly name: string;
  readonly kind: 'direct' | 'mtun' | 'c';
  connect: Connector;
  /** The proxy processes measured for CPU and memory (both sides). */
  procs: readonly Proc[];
}

const t0 = Date.now();
let status = '';
const tty = process.stderr.isTTY;
function progress(s: string) {
  status = `[${String(Math.round((Date.now() - t0) / 1000)).padStart(4)} s] ${s}`;
  if (tty) process.stderr.write(`\r\x1b[K${status}`);
  else process.stderr.write(`${status}\n`);
}
const ticker = tty
  ? setInterval(() => progress(status.replace(/^\[[^\]]*\] /, '')), 1000)
  : undefined;
ticker?.unref();

function tcp(host: string, port: number, localAddress?: string): Connector {
  return () =>
    new Promise<Socket>((resolve, reject) => {
      const s = netConnect(
        {
          host,
          port,
          allowHalfOpen: true,
          noDelay: true,
          ...(localAddress ? { localAddress } : {}),
        },
        () => resolve(s),
      );
      s.once('error', reject);
    });
}

async function warm(c: Config): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      await roundTrips(c.connect, 20, 2);
      return;
    } catch (err) {
      if (Date.now() > end)
        throw new Error(
          `${c.name} never answered: ${err}\n${c.procs.map((p) => p.output().slice(-800)).join('\n')}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const cpuOf = (c: Config) => c.procs.reduce((a, p) => a + cpuSeconds(p.child.pid!), 0);
const rssOf = (c: Config) => c.procs.reduce((a, p) => a + rssKiB(p.child.pid!), 0);

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mtun-bench-'));
  const all: Proc[] = [];
  const result: RunResult = {
    mode: FULL ? 'full' : 'quick',
    params: P,
    startedAt: new Date().toISOString(),
    configs: {},
    missing: {},
  };
  try {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const targetPort = base;
    progress('target, certificates');
    const target = spawnProc(process.execPath, [
      '--import',
      'tsx',
      'bench/suite/target.ts',
      SERVER_POD,
      String(targetPort),
    ]);
    all.push(target);
    await target.waitFor(/target ready/);
    const certs = await writeCerts(dir);
    const want = (name: string) => !values.configs || values.configs.split(',').includes(name);
    const configs: Config[] = [];
    if (want('direct'))
      configs.push({
        name: 'direct',
        kind: 'direct',
        connect: tcp(SERVER_POD, targetPort),
        procs: [],
      });
    for (const [name, workers, port] of [
      ['mtun', 1, base + 10],
      ['mtun-w2', 2, base + 20],
    ] as const) {
      if (!want(name)) continue;
      progress(`starting ${name}`);
      const sub = join(dir, name);
      const profile =
        name === 'mtun' && values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [];
      const pair = await startMtunPair(sub, { workers, hbonePort: port, nodeArgs: profile });
      all.push(...pair.all);
      configs.push({
        name,
        kind: 'mtun',
        connect: () => socks5Connect(pair.socks, { host: SERVER_POD, port: targetPort }),
        procs: pair.agents,
      });
    }
    for (const [i, kind] of PEERS.entries()) {
      if (!want(kind)) continue;
      const why = missing(kind);
      if (why) {
        result.missing[kind] = why;
        console.error(`\n${kind}: MISSING, ${why}`);
        continue;
      }
      progress(`starting ${kind}`);
      try {
        const pair = await startPeer(
          kind as PeerKind,
          dir,
          certs,
          { client: base + 30 + 2 * i, server: base + 31 + 2 * i },
          {
            host: SERVER_POD,
            port: targetPort,
          },
        );
        all.push(...pair.procs);
        configs.push({
          name: kind,
          kind: 'c',
          connect: tcp(pair.entry.host, pair.entry.port),
          procs: pair.procs,
        });
      } catch (err) {
        result.missing[kind] = `failed to start: ${String(err).slice(0, 400)}`;
        console.error(`\n${kind}: FAILED TO START, ${err}`);
      }
    }
    for (const c of [...configs]) {
      progress(`warming ${c.name}`);
      try {
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
      progress(`${c.name}: ${P.idle} idle connections`);
      const before = rssOf(c);
      let loaded = 0;
      const idle = await idleConnections(c.connect, P.idle, P.idleSeconds, async () => {
        loaded = rssOf(c);
      });
      const r = result.configs[c.name]!;
      r.idle = {
        ...idle,
        rssBeforeKiB: before,
        rssLoadedKiB: loaded,
        kibPerConn: (loaded - before) / Math.max(1, idle.opened),
      };
    }
    for (let round = 1; round <= P.rounds; round++) {
      for (const c of configs) {
        const at = (w: string) => progress(`round ${round}/${P.rounds} · ${c.name} · ${w}`);
        const errors: string[] = [];
        result.configs[c.name]!.errors = errors;
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
        const cpu0 = cpuOf(c);
        const b1 = await guard('bulk, 1 stream', () => bulkStreams(c.connect, 1, P.seconds), {
          gbps: Number.NaN,
          bytes: 0,
        });
        const b8 = await guard('bulk, 8 streams', () => bulkStreams(c.connect, 8, P.seconds), {
          gbps: Number.NaN,
          bytes: 0,
        });
        const bulkCpu = cpuOf(c) - cpu0;
        const rr = await guard(
          '64 B round trips',
          () => roundTrips(c.connect, P.rrCount, P.seconds),
          noLat,
        );
        const cpu1 = cpuOf(c);
        const n1 = await guard(
          'new connections, 1 client',
          () => newConnections(c.connect, 1, P.conns, P.seconds),
          noLat,
        );
        const n8 = await guard(
          'new connections, 8 clients',
          () => newConnections(c.connect, 8, P.conns, P.seconds),
          noLat,
        );
        const connCpu = cpuOf(c) - cpu1;
        result.configs[c.name]!.rounds.push({
          bulk1Gbps: b1.gbps,
          bulk8Gbps: b8.gbps,
          cpuSecPerGB: c.procs.length ? bulkCpu / ((b1.bytes + b8.bytes) / 1e9) : Number.NaN,
          rr,
          conn1: n1,
          conn8: n8,
          cpuSecPerKConn: c.procs.length ? connCpu / ((n1.count + n8.count) / 1000) : Number.NaN,
        });
      }
    }
    for (const c of configs)
      result.configs[c.name]!.peakRssKiB = c.procs.reduce(
        (a, p) => a + peakRssKiB(p.child.pid!),
        0,
      );
    result.elapsedSeconds = (Date.now() - t0) / 1000;
    progress('done');
    if (tty) process.stderr.write('\n');
    await writeReport(result, values.out);
  } finally {
    progress('stopping processes');
    await Promise.all(all.reverse().map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
    if (tty) process.stderr.write('\n');
  }
}

const limit = setTimeout(
  () => {
    console.error(`\nbench: over its time limit (${FULL ? 15 : 3} min); stopping`);
    process.exit(3); // procs.ts kills every child on exit
  },
  (FULL ? 15 : 3) * 60_000,
);
limit.unref();
await main();
clearTimeout(limit);
