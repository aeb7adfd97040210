// Two agents (real `mtun agent` processes, HBONE between them, real certificates from a
// `mtun ca` process, a policy in force) against direct TCP, measured in the same run on
// loopback: bulk throughput, 64-byte round-trip latency, and agent memory with 1,000 open
// tunnels. With `--engine both`, one agent pair per HBONE engine (the same CA), the pairs'
// measurements interleaved within each round, and the ratio own/node of every figure.
// Bounded in time and count; every process is stopped at the end.
// Usage: node --import tsx bench/agent-pair.ts --help
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HboneEngine } from '../hbone/index.js';
import { socks5Connect } from '../lib/socks5-client.js';
import { scriptArgs } from './lib/args.js';
import { ENGINE_LABEL, engineArgs, engineOption, enginesOf, ownOverNode } from './lib/engines.js';
import {
  bulk,
  bulkStreams,
  type Connector,
  idleConnections,
  median,
  roundTrips,
  startTarget,
  tcpConnector,
} from './lib/load.js';
import { cpuSeconds, mtun, type Proc, rssKiB } from './lib/procs.js';
import { benchAgentArgs, CLIENT_POD, SERVER_POD, startBenchCa } from './suite/mtun-pair.js';

const args = scriptArgs(
  'usage: node --import tsx bench/agent-pair.ts [options]\n\nTwo mtun agents (and a CA) against direct TCP on loopback: bulk, round trips, memory per tunnel.',
  {
    seconds: { default: 4, min: 0.1, max: 30, help: 'seconds per bulk measurement' },
    workers: { default: 1, min: 1, max: 8, integer: true, help: "each agent's --workers" },
    tunnels: {
      default: 1000,
      min: 1,
      max: 5000,
      integer: true,
      help: 'idle tunnels for the memory figure',
    },
    rounds: { default: 3, min: 1, max: 10, integer: true, help: 'interleaved rounds' },
    engine: engineOption('a pair per engine, rounds interleaved,'),
  },
);
const { seconds: SECONDS, tunnels: TUNNELS, rounds: ROUNDS } = args;
const ENGINES = enginesOf(args.engine);

/** One engine's agent pair and what was measured through it. */
interface Pair {
  readonly engine: HboneEngine;
  readonly a: Proc;
  readonly b: Proc;
  readonly connect: Connector;
  /** Samples per figure, one per round. */
  readonly rows: Record<'gbps' | 'gbps8' | 'p50' | 'p99', number[]>;
  cpu: number;
  bytes: number;
  memory?: { idleA: number; idleB: number; loadedA: number; loadedB: number; opened: number };
  answered?: number;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'mtun-bench-pair-'));
  const procs: Proc[] = [];
  const target = await startTarget(SERVER_POD, 9080);
  try {
    const { ca, url } = await startBenchCa(dir);
    procs.push(ca);
    const base = 25000 + Math.floor(Math.random() * 5000);
    const pairs: Pair[] = [];
    for (const [i, engine] of ENGINES.entries()) {
      // HBONE on `hbone`, SOCKS5 on +1; the capture ports (+2, +3) too, so that two pairs on
      // the same addresses do not both want 15001 and 15006.
      const hbone = base + 10 * i;
      const agent = (node: 'node-a' | 'node-b') =>
        mtun([
          'agent',
          ...benchAgentArgs(dir, url, node, hbone),
          ...['--outbound', String(hbone + 2), '--inbound-plaintext', String(hbone + 3)],
          ...['--admin', 'off', '--metrics', 'off', '--readiness', 'off'],
          ...['--workers', String(args.workers)],
          ...['--log-level', 'info'],
          ...engineArgs(engine),
        ]);
      const a = agent('node-a');
      const b = agent('node-b');
      procs.push(a, b);
      const connect: Connector = () =>
        socks5Connect(
          { host: '127.0.0.1', port: hbone + 1 },
          { host: SERVER_POD, port: 9080 },
          { localAddress: CLIENT_POD },
        );
      pairs.push({
        engine,
        a,
        b,
        connect,
        rows: { gbps: [], gbps8: [], p50: [], p99: [] },
        cpu: 0,
        bytes: 0,
      });
    }
    for (const p of pairs) {
      await p.a.waitFor(/certificate loaded/);
      await p.b.waitFor(/certificate loaded/);
    }
    const direct = tcpConnector(SERVER_POD, 9080, CLIENT_POD);
    // Warm up (certificates, pooled HBONE connection).
    for (const p of pairs) for (let i = 0; i < 50; i++) await roundTrips(p.connect, 5, 2);

    // Memory first, on fresh agents (bulk transfers would leave their buffers in the RSS),
    // one pair at a time.
    for (const p of pairs) {
      const idleA = rssKiB(p.a.child.pid!);
      const idleB = rssKiB(p.b.child.pid!);
      let loaded = [idleA, idleB];
      // Each answers once opened, and again after the reading.
      const idle = await idleConnections(p.connect, TUNNELS, 120, async () => {
        loaded = [rssKiB(p.a.child.pid!), rssKiB(p.b.child.pid!)];
      });
      p.memory = { idleA, idleB, loadedA: loaded[0]!, loadedB: loaded[1]!, opened: idle.opened };
      p.answered = idle.answered;
    }

    const direct1: number[] = [];
    const direct8: number[] = [];
    const directP50: number[] = [];
    const directP99: number[] = [];
    const cpuOf = (p: Pair) => cpuSeconds(p.a.child.pid!) + cpuSeconds(p.b.child.pid!);
    for (let r = 0; r < ROUNDS; r++) {
      direct1.push((await bulk(direct, 4 * 2 ** 30, SECONDS)).gbps);
      for (const p of pairs) {
        const cpu0 = cpuOf(p);
        const g = await bulk(p.connect, 4 * 2 ** 30, SECONDS);
        p.bytes += g.bytes;
        p.cpu += cpuOf(p) - cpu0;
        p.rows.gbps.push(g.gbps);
      }
      direct8.push((await bulkStreams(direct, 8, 2 ** 30, SECONDS)).gbps);
      for (const p of pairs)
        p.rows.gbps8.push((await bulkStreams(p.connect, 8, 2 ** 30, SECONDS)).gbps);
      const dl = await roundTrips(direct, 3000, SECONDS);
      directP50.push(dl.p50Us);
      directP99.push(dl.p99Us);
      for (const p of pairs) {
        const ml = await roundTrips(p.connect, 3000, SECONDS);
        p.rows.p50.push(ml.p50Us);
        p.rows.p99.push(ml.p99Us);
      }
    }

    const f = (n: number, d = 2) => n.toFixed(d);
    const x = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–');
    const both = pairs.length > 1;
    /** One figure: direct, each engine (with its ratio to direct), and own/node. */
    const line = (label: string, unit: string, d: number, dv: number, of: (p: Pair) => number) => {
      const by = Object.fromEntries(pairs.map((p) => [p.engine, of(p)]));
      const cells = pairs.map(
        (p) =>
          `${both ? ENGINE_LABEL[p.engine] : 'mesh'} ${f(of(p), d)} ${unit} (${x(of(p) / dv)})`,
      );
      console.log(
        `${label.padEnd(18)} direct ${f(dv, d)} ${unit}   ${cells.join('   ')}${both ? `   own/node ${ownOverNode(by)}` : ''}`,
      );
    };
    console.log(
      `agent pair vs direct TCP, loopback, median of ${ROUNDS} interleaved rounds, workers=${args.workers}, HBONE engine ${pairs.map((p) => ENGINE_LABEL[p.engine]).join(' and ')}; (×) = ratio to direct`,
    );
    line('bulk 1 stream', 'Gb/s', 2, median(direct1), (p) => median(p.rows.gbps));
    line('bulk 8 streams', 'Gb/s', 2, median(direct8), (p) => median(p.rows.gbps8));
    line('64 B rt p50', 'µs', 0, median(directP50), (p) => median(p.rows.p50));
    line('64 B rt p99', 'µs', 0, median(directP99), (p) => median(p.rows.p99));
    const cpuPerGB = (p: Pair) => p.cpu / (p.bytes / 1e9);
    for (const p of pairs)
      console.log(
        `agent CPU          ${both ? `${ENGINE_LABEL[p.engine]} ` : ''}${f(cpuPerGB(p))} CPU-seconds per GB (both agents, bulk 1 stream)`,
      );
    const perTunnel = (p: Pair, side: 'A' | 'B') =>
      (p.memory![`loaded${side}`] - p.memory![`idle${side}`]) / Math.max(1, p.memory!.opened);
    for (const p of pairs) {
      const m = p.memory!;
      console.log(
        `${both ? `${ENGINE_LABEL[p.engine]}: ` : ''}${m.opened} open tunnels  node-a RSS ${f(m.idleA / 1024, 1)} → ${f(m.loadedA / 1024, 1)} MiB (${f(perTunnel(p, 'A'), 1)} KiB/tunnel); node-b ${f(m.idleB / 1024, 1)} → ${f(m.loadedB / 1024, 1)} MiB (${f(perTunnel(p, 'B'), 1)} KiB/tunnel); ${p.answered}/${TUNNELS} answered`,
      );
    }
    if (both) {
      const ratio = (of: (p: Pair) => number) =>
        ownOverNode(Object.fromEntries(pairs.map((p) => [p.engine, of(p)])));
      console.log(
        `own/node           CPU per GB ${ratio(cpuPerGB)}; KiB per tunnel node-a ${ratio((p) => perTunnel(p, 'A'))}, node-b ${ratio((p) => perTunnel(p, 'B'))}`,
      );
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await new Promise((r) => target.close(() => r(undefined)));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
