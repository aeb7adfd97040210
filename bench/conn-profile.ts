// Where the agents' CPU goes per new connection: the benchmark pair (CA, two agents from
// dist/) run with V8 CPU profiles and loaded only with new connections (connect, 64-byte
// round trip, close) through node-a's SOCKS5 listener; prints the rate and the self time by
// function of each agent's profile (bench/profile-summary.ts reads them again).
// Usage: node --import tsx bench/conn-profile.ts --help
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortBlock } from '../lib/free-ports.js';
import { socks5Connect } from '../lib/socks5-client.js';
import { scriptArgs } from './lib/args.js';
import { newConnections, untilAnswering } from './lib/load.js';
import { type Proc, startTargetProcess } from './lib/procs.js';
import { SERVER_POD, startMtunPair } from './suite/mtun-pair.js';

const args = scriptArgs(
  'usage: node --import tsx bench/conn-profile.ts [options]\n\nCPU profiles of both agents under new connections only; the profiles stay in a temporary directory (printed).',
  {
    clients: { default: 8, min: 1, max: 64, integer: true, help: 'concurrent client loops' },
    seconds: { default: 5, min: 1, max: 60, help: 'seconds of load' },
    engine: { default: 'own', choices: ['node', 'own'], help: "the agents' --hbone-engine" },
  },
);

const dir = await mkdtemp(join(tmpdir(), 'mtun-conn-profile-'));
const profiles = join(dir, 'profiles');
const procs: Proc[] = [];
try {
  const base = await freePortBlock(10, ['127.0.0.1', '127.0.0.2', SERVER_POD]);
  await startTargetProcess(SERVER_POD, base, procs);
  const pair = await startMtunPair(join(dir, 'pair'), {
    workers: 1,
    hbonePort: base + 1,
    engine: args.engine,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profiles}`],
  });
  procs.push(...pair.all);
  const connect = () => socks5Connect(pair.socks, { host: SERVER_POD, port: base });
  await untilAnswering(connect);
  await newConnections(connect, args.clients, 500, 2); // warm-up: pool, JIT
  const r = await newConnections(connect, args.clients, 1_000_000, args.seconds);
  console.log(
    `${args.engine}: ${r.perSec.toFixed(0)} new conns/s with ${args.clients} clients, setup→reply p50 ${r.p50Us.toFixed(0)} µs, ${r.failed} failed`,
  );
} finally {
  for (const p of procs.reverse()) await p.stop();
}
console.log(`profiles: ${profiles} (${(await readdir(profiles).catch(() => [])).length} files)`);
