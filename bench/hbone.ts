// HBONE micro-benchmark: bulk throughput (one connection) and 64-byte round-trip latency
// through a client+server HBONE tunnel pair on loopback, against direct TCP and against a
// plain Node TLS pair (one mTLS 1.3 connection per TCP connection), measured in the same
// run, rounds interleaved, medians reported with ratios. Also the effect of the HTTP/2
// window and frame sizes, on one connection and on PARALLEL concurrent ones (which share one
// pooled HTTP/2 connection through the HBONE pair). The load generator and target run in this process; each pair
// runs in its own child process. Bounded: every measurement is capped in bytes/count and
// seconds. Usage: node --import tsx bench/hbone.ts --help

import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Http2Tuning } from '../hbone/settings.js';
import { scriptArgs } from './lib/args.js';
import {
  bulk,
  bulkStreams,
  type Connector,
  median,
  roundTrips,
  startTarget,
  tcpConnector,
} from './lib/load.js';
import type { PairRequest } from './lib/tunnel-pairs.js';

const args = scriptArgs(
  'usage: node --import tsx bench/hbone.ts [options]\n\nAn HBONE tunnel pair against direct TCP and a plain Node TLS pair, with HTTP/2 window variants.',
  {
    rounds: { default: 3, min: 1, max: 10, integer: true, help: 'interleaved rounds' },
    seconds: { default: 2, min: 0.1, max: 10, help: 'seconds per bulk measurement at most' },
    mib: { default: 256, min: 1, max: 4096, help: 'MiB per bulk measurement at most' },
    trips: {
      default: 3000,
      min: 1,
      max: 20_000,
      integer: true,
      help: 'round trips per latency measurement',
    },
    parallel: { default: 8, min: 1, max: 64, integer: true, help: 'concurrent bulk connections' },
  },
);
const ROUNDS = args.rounds;
const SECONDS = args.seconds;
const BYTES = args.mib * 2 ** 20;
const TRIPS = args.trips;
// Concurrent bulk connections: through an HBONE pair they share one pooled HTTP/2
// connection, which is where the connection window matters.
const PARALLEL = args.parallel;
const HOST = '127.0.0.1';
const KiB = 1024;
const MiB = 1024 * KiB;

interface Config {
  readonly name: string;
  readonly pair?: PairRequest['kind'];
  readonly tuning?: Partial<Http2Tuning>;
}

const CONFIGS: Config[] = [
  { name: 'direct TCP' },
  { name: 'Node TLS pair', pair: 'tls' },
  { name: 'HBONE pair (defaults: 4 MiB/16 MiB, 1 MiB frames)', pair: 'hbone' },
  {
    name: "HBONE, Node's defaults (64 KiB/64 KiB, 16 KiB frames)",
    pair: 'hbone',
    tuning: { streamWindowBytes: 65_535, connectionWindowBytes: 65_535, maxFrameBytes: 16 * KiB },
  },
  {
    name: 'HBONE, 1 MiB/16 MiB, 16 KiB frames',
    pair: 'hbone',
    tuning: { streamWindowBytes: MiB, connectionWindowBytes: 16 * MiB, maxFrameBytes: 16 * KiB },
  },
  {
    name: 'HBONE, 4 MiB/16 MiB, 16 KiB frames',
    pair: 'hbone',
    tuning: {
      streamWindowBytes: 4 * MiB,
      connectionWindowBytes: 16 * MiB,
      maxFrameBytes: 16 * KiB,
    },
  },
  {
    name: 'HBONE, 16 MiB/64 MiB, 1 MiB frames',
    pair: 'hbone',
    tuning: { streamWindowBytes: 16 * MiB, connectionWindowBytes: 64 * MiB, maxFrameBytes: MiB },
  },
];

async function startPair(req: PairRequest): Promise<{ port: number; worker: ChildProcess }> {
  const worker = fork(fileURLToPath(new URL('./lib/tunnel-pairs.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
  });
  worker.send(req);
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { port: number }) => resolve(m.port));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`pair process exited with ${code}`)));
  });
  return { port, worker };
}

const target = await startTarget(HOST, 0);
const targetPort = (target.address() as { port: number }).port;
const entries: Array<{ config: Config; connect: Connector; worker?: ChildProcess }> = [];
for (const config of CONFIGS) {
  if (!config.pair) {
    entries.push({ config, connect: tcpConnector(HOST, targetPort) });
    continue;
  }
  const { port, worker } = await startPair({
    kind: config.pair,
    targetPort,
    ...(config.tuning ? { tuning: config.tuning } : {}),
  });
  entries.push({ config, connect: tcpConnector(HOST, port), worker });
}

const results = entries.map(() => ({
  gbps: [] as number[],
  par: [] as number[],
  p50: [] as number[],
  p99: [] as number[],
}));
console.log(
  `hbone bench: ${ROUNDS} rounds, bulk ${BYTES / MiB} MiB or ${SECONDS} s, ${TRIPS} round trips of 64 B or ${SECONDS} s`,
);
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, e] of entries.entries()) {
    // One warm-up round trip per connection type opens pooled connections and JITs paths.
    await roundTrips(e.connect, 50, SECONDS);
    results[i]!.gbps.push((await bulk(e.connect, BYTES, SECONDS)).gbps);
    results[i]!.par.push((await bulkStreams(e.connect, PARALLEL, BYTES / PARALLEL, SECONDS)).gbps);
    const lat = await roundTrips(e.connect, TRIPS, SECONDS);
    results[i]!.p50.push(lat.p50Us);
    results[i]!.p99.push(lat.p99Us);
  }
  process.stdout.write(`round ${round + 1}/${ROUNDS} done\n`);
}

const med = results.map((r) => ({
  gbps: median(r.gbps),
  par: median(r.par),
  p50: median(r.p50),
  p99: median(r.p99),
}));
const direct = med[0]!;
const tls = med[1]!;
const pad = (s: string, n: number) => s.padEnd(n);
const cols = (xs: Array<[string, number]>) => xs.map(([v, n]) => pad(v, n)).join(' ');
const W = [56, 9, 8, 6, 12, 8, 6, 8, 7, 8, 6] as const;
console.log(
  `\n${cols([
    ['config', W[0]],
    ['bulk Gb/s', W[1]],
    ['x direct', W[2]],
    ['x TLS', W[3]],
    [`${PARALLEL}x bulk Gb/s`, W[4]],
    ['x direct', W[5]],
    ['x TLS', W[6]],
    ['RTT p50 µs', W[7]],
    ['p99 µs', W[8]],
    ['x direct', W[9]],
    ['x TLS', W[10]],
  ])}`,
);
for (const [i, e] of entries.entries()) {
  const m = med[i]!;
  console.log(
    cols([
      [e.config.name, W[0]],
      [m.gbps.toFixed(2), W[1]],
      [(m.gbps / direct.gbps).toFixed(2), W[2]],
      [(m.gbps / tls.gbps).toFixed(2), W[3]],
      [m.par.toFixed(2), W[4]],
      [(m.par / direct.par).toFixed(2), W[5]],
      [(m.par / tls.par).toFixed(2), W[6]],
      [m.p50.toFixed(0), W[7]],
      [m.p99.toFixed(0), W[8]],
      [(m.p50 / direct.p50).toFixed(2), W[9]],
      [(m.p50 / tls.p50).toFixed(2), W[10]],
    ]),
  );
}

for (const e of entries) e.worker?.send('close');
await Promise.all(
  entries.map((e) => (e.worker ? new Promise((r) => e.worker!.once('exit', r)) : undefined)),
);
target.close();
