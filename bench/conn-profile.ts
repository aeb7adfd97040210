// Where the agents' CPU goes per new connection: the benchmark pair (CA, two agents from
// dist/) run with V8 CPU profiles and loaded only with new connections (connect, 64-byte
// round trip, close) through node-a's SOCKS5 listener; prints the rate, each process's user
// and kernel CPU per connection, and the self time by function of each agent's profile
// (bench/profile-summary.ts reads them again). `--pairs 1` adds the floor: the same load
// through a plain Node TCP relay pair and the HBONE library pair.
// Usage: node --import tsx bench/conn-profile.ts --help
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortBlock } from '../lib/free-ports.js';
import { socks5Connect } from '../lib/socks5-client.js';
import { scriptArgs } from './lib/args.js';
import { startPairProcess } from './lib/ceiling.js';
import { newConnections, untilAnswering } from './lib/load.js';
import { cpuSplit, type Proc, startTargetProcess } from './lib/procs.js';
import { SERVER_POD, startMtunPair } from './suite/mtun-pair.js';

const args = scriptArgs(
  'usage: node --import tsx bench/conn-profile.ts [options]\n\nCPU profiles of both agents under new connections only; the profiles stay in a temporary directory (printed).',
  {
    clients: { default: 8, min: 1, max: 64, integer: true, help: 'concurrent client loops' },
    seconds: { default: 5, min: 1, max: 60, help: 'seconds of load' },
    profile: {
      default: 1,
      min: 0,
      max: 1,
      integer: true,
      help: '0: no CPU profiles (the CPU per connection without what profiling costs)',
    },
    pairs: {
      default: 0,
      min: 0,
      max: 1,
      integer: true,
      help: '1: then the same load through a plain Node TCP relay pair and the HBONE library pair (each in one process, bench/lib/tunnel-pairs.ts), for their CPU per connection: the floor of a Node proxy pair, and HBONE without the agents',
    },
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
    nodeArgs: args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`] : [],
  });
  procs.push(...pair.all);
  const connect = () => socks5Connect(pair.socks, { host: SERVER_POD, port: base });
  await untilAnswering(connect);
  await newConnections(connect, args.clients, 500, 2); // warm-up: pool, JIT
  // The load client is this process (its descendants are the others: not cpuSplit()).
  const self = () => {
    const u = process.cpuUsage();
    return { user: u.user / 1e6, system: u.system / 1e6 };
  };
  const who: Array<[string, () => { user: number; system: number }]> = [
    ['client agent', () => cpuSplit(pair.agents[0]!.child.pid!)],
    ['server agent', () => cpuSplit(pair.agents[1]!.child.pid!)],
    ['target', () => cpuSplit(procs[0]!.child.pid!)],
    ['load client', self],
  ];
  const before = who.map(([, cpu]) => cpu());
  const r = await newConnections(connect, args.clients, 1_000_000, args.seconds);
  const n = Math.max(1, r.perSec * args.seconds);
  console.log(
    `${r.perSec.toFixed(0)} new conns/s with ${args.clients} clients, setup→reply p50 ${r.p50Us.toFixed(0)} µs, ${r.failed} failed`,
  );
  // User and kernel CPU per connection: where a connection's cost sits (JavaScript and
  // TLS in user space, syscalls and loopback TCP in the kernel).
  for (const [i, [name, cpu]] of who.entries()) {
    const now = cpu();
    const us = (s: number) => ((s * 1e6) / n).toFixed(0);
    console.log(
      `  ${name.padEnd(13)} user ${us(now.user - before[i]!.user).padStart(5)} µs, kernel ${us(now.system - before[i]!.system).padStart(5)} µs per connection`,
    );
  }
  if (args.pairs) {
    const kids: ChildProcess[] = [];
    try {
      for (const kind of ['tcp', 'hbone'] as const) {
        const pp = await startPairProcess({ kind, targetPort: base, targetIp: SERVER_POD }, kids);
        await newConnections(pp.via, args.clients, 500, 2);
        const cpu = () => cpuSplit(pp.pids()[0]!);
        const c0 = cpu();
        const q = await newConnections(pp.via, args.clients, 1_000_000, args.seconds);
        const c1 = cpu();
        const m = Math.max(1, q.perSec * args.seconds);
        const us = (sec: number) => ((sec * 1e6) / m).toFixed(0).padStart(5);
        console.log(
          `${kind === 'tcp' ? 'Node TCP relay pair' : 'HBONE library pair'}: ${q.perSec.toFixed(0)} new conns/s, both sides in one process: user ${us(c1.user - c0.user)} µs, kernel ${us(c1.system - c0.system)} µs per connection`,
        );
      }
    } finally {
      for (const k of kids) k.kill();
    }
  }
} finally {
  for (const p of procs.reverse()) await p.stop();
}
console.log(`profiles: ${profiles} (${(await readdir(profiles).catch(() => [])).length} files)`);
