// What an open idle tunnel costs each agent, object by object: the benchmark mesh (CA, two
// agents from dist/, a policy) with N idle tunnels opened through node-a's SOCKS5 listener,
// a V8 heap snapshot of each agent before and after (`--heapsnapshot-signal`), and the
// difference per tunnel by node type and constructor, next to the RSS difference. The
// floor, measured in the same run: the target's RSS difference per connection, a Node
// process holding one accepted socket per tunnel, which is what any Node agent holds at
// least for each tunnel.
// Usage: node --import tsx bench/tunnel-heap.ts --help
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortBlock } from '../lib/free-ports.js';
import { socks5Connect } from '../lib/socks5-client.js';
import { scriptArgs } from './lib/args.js';
import { idleConnections, untilAnswering } from './lib/load.js';
import { type Proc, rssKiB, startTargetProcess } from './lib/procs.js';
import { SERVER_POD, startMtunPair } from './suite/mtun-pair.js';

const {
  tunnels: N,
  top: TOP,
  closures: CLOSURES,
} = scriptArgs(
  'usage: node --import tsx bench/tunnel-heap.ts [options]\n\nHeap per idle tunnel in each agent, by constructor, from V8 heap snapshots.',
  {
    tunnels: { default: 3000, min: 1, max: 20_000, integer: true, help: 'idle tunnels to open' },
    top: { default: 25, min: 1, max: 500, integer: true, help: 'rows of the table' },
    closures: {
      default: 0,
      min: 0,
      max: 1,
      integer: true,
      help: '1: also list the closures each tunnel keeps, by where they are defined',
    },
  },
);

interface Snapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[]]; location_fields?: string[] };
  };
  nodes: number[];
  strings: string[];
  locations?: number[];
}

/** Closures by where their function is defined (V8's script id, line, column; the name if
 *  it has one): which listeners and callbacks each tunnel keeps alive. */
function closuresByLocation(s: Snapshot): Map<string, { count: number; bytes: number }> {
  const m = s.snapshot.meta;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) =>
    m.node_fields.indexOf(f),
  ) as [number, number, number];
  const lf = m.location_fields ?? [];
  const lw = lf.length;
  const out = new Map<string, { count: number; bytes: number }>();
  const loc = s.locations ?? [];
  for (let i = 0; lw > 0 && i < loc.length; i += lw) {
    const node = loc[i + lf.indexOf('object_index')]!;
    if (m.node_types[0][s.nodes[node + typeAt]!] !== 'closure') continue;
    const where = `script ${loc[i + lf.indexOf('script_id')]} ${loc[i + lf.indexOf('line')]! + 1}:${loc[i + lf.indexOf('column')]! + 1}`;
    const key = `${where} ${s.strings[s.nodes[node + nameAt]!]!.slice(0, 40)}`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[node + sizeAt]!;
    out.set(key, e);
  }
  return out;
}

/** Bytes and counts by "type:name" (strings and code lumped per type). */
function byConstructor(s: Snapshot): Map<string, { count: number; bytes: number }> {
  const m = s.snapshot.meta;
  const width = m.node_fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) =>
    m.node_fields.indexOf(f),
  ) as [number, number, number];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = m.node_types[0][s.nodes[i + typeAt]!]!;
    const name = /string|code/.test(type) ? '' : s.strings[s.nodes[i + nameAt]!]!.slice(0, 50);
    const key = `${type}:${name}`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + sizeAt]!;
    out.set(key, e);
  }
  return out;
}

async function snapshotOf(agent: Proc, dir: string): Promise<Snapshot> {
  const before = new Set(await readdir(dir));
  agent.child.kill('SIGUSR2');
  const end = Date.now() + 120_000;
  for (;;) {
    const file = (await readdir(dir)).find(
      (f) => !before.has(f) && f.includes(`.${agent.child.pid}.`) && f.endsWith('.heapsnapshot'),
    );
    if (file) {
      // V8 writes it in pieces: parse once it is whole.
      for (;;) {
        try {
          return JSON.parse(await readFile(join(dir, file), 'utf8')) as Snapshot;
        } catch (err) {
          if (Date.now() > end) throw err;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }
    if (Date.now() > end) throw new Error(`no heap snapshot from pid ${agent.child.pid}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const NAMES = ['node-a (client side)', 'node-b (server side)'];

/** The measurement: starts the target on `targetPort` and the agents (HBONE on `hbonePort`
 *  and the three ports above, state in `dir`), prints the tables, stops them. */
async function measure(dir: string, targetPort: number, hbonePort: number): Promise<void> {
  const procs: Proc[] = [];
  try {
    // The target in a process of its own: its RSS difference per connection is the floor.
    await startTargetProcess(SERVER_POD, targetPort, procs);
    const target = procs[0]!;
    const snaps = join(dir, 'snapshots');
    await mkdir(snaps, { recursive: true });
    const pair = await startMtunPair(join(dir, 'mesh'), {
      workers: 1,
      hbonePort,
      nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snaps}`],
    });
    procs.push(...pair.all);
    const connect = () => socks5Connect(pair.socks, { host: SERVER_POD, port: targetPort });
    await untilAnswering(connect);
    const first: Snapshot[] = [];
    for (const a of pair.agents) first.push(await snapshotOf(a, snaps));
    const rssBefore = pair.agents.map((a) => rssKiB(a.child.pid!));
    const targetBefore = rssKiB(target.child.pid!);
    let rssLoaded: number[] = [];
    let targetLoaded = 0;
    const second: Snapshot[] = [];
    const idle = await idleConnections(connect, N, 60, async () => {
      rssLoaded = pair.agents.map((a) => rssKiB(a.child.pid!));
      targetLoaded = rssKiB(target.child.pid!);
      for (const a of pair.agents) second.push(await snapshotOf(a, snaps));
    });
    console.log(`${idle.opened} idle tunnels opened, ${idle.answered} answered afterwards`);
    const floorKiB = (targetLoaded - targetBefore) / idle.opened;
    console.log(
      `floor: the target, a Node process that holds one accepted socket per tunnel (and echoes), RSS ${floorKiB.toFixed(1)} KiB per connection`,
    );
    for (const [i, name] of NAMES.entries()) {
      const a = byConstructor(first[i]!);
      const b = byConstructor(second[i]!);
      const rows = [...b].map(([key, v]) => {
        const u = a.get(key) ?? { count: 0, bytes: 0 };
        return {
          key,
          count: (v.count - u.count) / idle.opened,
          bytes: (v.bytes - u.bytes) / idle.opened,
        };
      });
      const total = rows.reduce((s, r) => s + r.bytes, 0);
      const rssPerTunnel = (rssLoaded[i]! - rssBefore[i]!) / idle.opened;
      console.log(
        `\n${name}: heap snapshot ${(total / 1024).toFixed(1)} KiB per tunnel; RSS ${rssPerTunnel.toFixed(1)} KiB per tunnel`,
      );
      for (const r of rows.sort((x, y) => y.bytes - x.bytes).slice(0, TOP))
        console.log(
          `${r.bytes.toFixed(0).padStart(7)} B ${r.count.toFixed(2).padStart(6)}×  ${r.key}`,
        );
      if (CLOSURES) {
        const ca = closuresByLocation(first[i]!);
        const cb = closuresByLocation(second[i]!);
        console.log('  closures per tunnel by definition (script id, line:column of dist/):');
        for (const [key, v] of [...cb].sort((x, y) => y[1].count - x[1].count)) {
          const per = (v.count - (ca.get(key)?.count ?? 0)) / idle.opened;
          if (per >= 0.5) console.log(`  ${per.toFixed(2).padStart(6)}×  ${key}`);
        }
      }
    }
  } finally {
    await Promise.all(procs.reverse().map((p) => p.stop()));
  }
}

const dir = await mkdtemp(join(tmpdir(), 'mtun-tunnel-heap-'));
try {
  // The target on the block's first port; the agents on 4 ports from +1.
  const port = await freePortBlock(5, ['127.0.0.1', '127.0.0.2', SERVER_POD]);
  await measure(dir, port, port + 1);
} finally {
  await rm(dir, { recursive: true, force: true });
}
