// Two agents (real `mtun agent` processes, HBONE between them, real certificates from a
// `mtun ca` process, a policy in force) against direct TCP, measured in the same run on
// loopback: bulk throughput, 64-byte round-trip latency, and agent memory with 1,000 open
// tunnels. Bounded in time and count; every process is stopped at the end.
// Usage: node --import tsx bench/agent-pair.ts --help
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socks5Connect } from '../lib/socks5-client.js';
import { scriptArgs } from './lib/args.js';
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
  },
);
const { seconds: SECONDS, tunnels: TUNNELS, rounds: ROUNDS } = args;

/** Samples per figure, one per round. */
interface Samples {
  readonly gbps: number[];
  readonly gbps8: number[];
  readonly p50: number[];
  readonly p99: number[];
}
const samples = (): Samples => ({ gbps: [], gbps8: [], p50: [], p99: [] });

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'mtun-bench-pair-'));
  const procs: Proc[] = [];
  const target = await startTarget(SERVER_POD, 9080);
  try {
    const { ca, url } = await startBenchCa(dir);
    procs.push(ca);
    // HBONE on `hbone`, SOCKS5 on +1; the capture listeners on +2 and +3 rather than the
    // fixed 15001 and 15006, which another agent on this machine may hold.
    const hbone = 25000 + Math.floor(Math.random() * 5000);
    const agent = (node: 'node-a' | 'node-b') =>
      mtun([
        'agent',
        ...benchAgentArgs(dir, url, node, hbone),
        ...['--outbound', String(hbone + 2), '--inbound-plaintext', String(hbone + 3)],
        ...['--admin', 'off', '--metrics', 'off', '--readiness', 'off'],
        ...['--workers', String(args.workers)],
        ...['--log-level', 'info'],
      ]);
    const a = agent('node-a');
    const b = agent('node-b');
    procs.push(a, b);
    await a.waitFor(/certificate loaded/);
    await b.waitFor(/certificate loaded/);
    const viaMesh: Connector = () =>
      socks5Connect(
        { host: '127.0.0.1', port: hbone + 1 },
        { host: SERVER_POD, port: 9080 },
        { localAddress: CLIENT_POD },
      );
    const viaTcp = tcpConnector(SERVER_POD, 9080, CLIENT_POD);
    // Warm up (certificates, pooled HBONE connection).
    for (let i = 0; i < 50; i++) await roundTrips(viaMesh, 5, 2);

    // Memory first, on fresh agents (bulk transfers would leave their buffers in the RSS).
    const idleA = rssKiB(a.child.pid!);
    const idleB = rssKiB(b.child.pid!);
    let loadedA = idleA;
    let loadedB = idleB;
    // Each answers once opened, and again after the reading.
    const idle = await idleConnections(viaMesh, TUNNELS, 120, async () => {
      loadedA = rssKiB(a.child.pid!);
      loadedB = rssKiB(b.child.pid!);
    });
    const tunnels = Math.max(1, idle.opened);

    const direct = samples();
    const mesh = samples();
    const cpuOfAgents = () => cpuSeconds(a.child.pid!) + cpuSeconds(b.child.pid!);
    let meshCpu = 0;
    let meshBytes = 0;
    for (let r = 0; r < ROUNDS; r++) {
      direct.gbps.push((await bulk(viaTcp, 4 * 2 ** 30, SECONDS)).gbps);
      const cpu0 = cpuOfAgents();
      const g = await bulk(viaMesh, 4 * 2 ** 30, SECONDS);
      meshBytes += g.bytes;
      meshCpu += cpuOfAgents() - cpu0;
      mesh.gbps.push(g.gbps);
      direct.gbps8.push((await bulkStreams(viaTcp, 8, 2 ** 30, SECONDS)).gbps);
      mesh.gbps8.push((await bulkStreams(viaMesh, 8, 2 ** 30, SECONDS)).gbps);
      const dl = await roundTrips(viaTcp, 3000, SECONDS);
      const ml = await roundTrips(viaMesh, 3000, SECONDS);
      direct.p50.push(dl.p50Us);
      direct.p99.push(dl.p99Us);
      mesh.p50.push(ml.p50Us);
      mesh.p99.push(ml.p99Us);
    }

    const f = (n: number, d = 2) => n.toFixed(d);
    const x = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–');
    /** One figure: direct, and the mesh with its ratio to direct. */
    const line = (label: string, unit: string, d: number, k: keyof Samples) => {
      const [dv, mv] = [median(direct[k]), median(mesh[k])];
      console.log(
        `${label.padEnd(18)} direct ${f(dv, d)} ${unit}   mesh ${f(mv, d)} ${unit} (${x(mv / dv)})`,
      );
    };
    console.log(
      `agent pair vs direct TCP, loopback, median of ${ROUNDS} interleaved rounds, workers=${args.workers}; (×) = ratio to direct`,
    );
    line('bulk 1 stream', 'Gb/s', 2, 'gbps');
    line('bulk 8 streams', 'Gb/s', 2, 'gbps8');
    line('64 B rt p50', 'µs', 0, 'p50');
    line('64 B rt p99', 'µs', 0, 'p99');
    console.log(
      `agent CPU          ${f(meshCpu / (meshBytes / 1e9))} CPU-seconds per GB (both agents, bulk 1 stream)`,
    );
    console.log(
      `${idle.opened} open tunnels  node-a RSS ${f(idleA / 1024, 1)} → ${f(loadedA / 1024, 1)} MiB (${f((loadedA - idleA) / tunnels, 1)} KiB/tunnel); node-b ${f(idleB / 1024, 1)} → ${f(loadedB / 1024, 1)} MiB (${f((loadedB - idleB) / tunnels, 1)} KiB/tunnel); ${idle.answered}/${TUNNELS} answered`,
    );
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await new Promise((r) => target.close(() => r(undefined)));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
