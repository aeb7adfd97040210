// What an open idle tunnel costs each agent, object by object: the benchmark mesh (CA, two
// agents from dist/, a policy) with N idle tunnels opened through node-a's SOCKS5 listener,
// a V8 heap snapshot of each agent before and after (`--heapsnapshot-signal`), and the
// difference per tunnel by node type and constructor, next to the RSS difference.
// Usage: node --import tsx bench/tunnel-heap.ts --help
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortBlock } from '../lib/free-ports.js';
import { socks5Connect } from '../lib/socks5-client.js';
import { numberArgs } from './lib/args.js';
import { idleConnections, untilAnswering } from './lib/load.js';
import { type Proc, rssKiB, startTargetProcess } from './lib/procs.js';
import { SERVER_POD, startMtunPair } from './suite/mtun-pair.js';

const { tunnels: N, top: TOP } = numberArgs(
  'usage: node --import tsx bench/tunnel-heap.ts [options]\n\nHeap per idle tunnel in each agent, by constructor, from V8 heap snapshots.',
  {
    tunnels: { default: 3000, min: 1, max: 20_000, integer: true, help: 'idle tunnels to open' },
    top: { default: 25, min: 1, max: 500, integer: true, help: 'rows of the table' },
  },
);

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
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

const dir = await mkdtemp(join(tmpdir(), 'mtun-tunnel-heap-'));
const procs: Proc[] = [];
try {
  const port = await freePortBlock(20, ['127.0.0.1', '127.0.0.2', SERVER_POD]);
  await startTargetProcess(SERVER_POD, port, procs);
  const snaps = join(dir, 'snapshots');
  await mkdir(snaps);
  const pair = await startMtunPair(join(dir, 'mesh'), {
    workers: 1,
    hbonePort: port + 10,
    nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snaps}`],
  });
  procs.push(...pair.all);
  const connect = () => socks5Connect(pair.socks, { host: SERVER_POD, port });
  await untilAnswering(connect);
  const names = ['node-a (client side)', 'node-b (server side)'];
  const first: Snapshot[] = [];
  for (const a of pair.agents) first.push(await snapshotOf(a, snaps));
  const rssBefore = pair.agents.map((a) => rssKiB(a.child.pid!));
  let rssLoaded: number[] = [];
  const second: Snapshot[] = [];
  const idle = await idleConnections(connect, N, 60, async () => {
    rssLoaded = pair.agents.map((a) => rssKiB(a.child.pid!));
    for (const a of pair.agents) second.push(await snapshotOf(a, snaps));
  });
  console.log(`${idle.opened} idle tunnels opened, ${idle.answered} answered afterwards`);
  for (const [i, name] of names.entries()) {
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
    console.log(
      `\n${name}: heap snapshot ${(total / 1024).toFixed(1)} KiB per tunnel; RSS ${((rssLoaded[i]! - rssBefore[i]!) / idle.opened).toFixed(1)} KiB per tunnel`,
    );
    for (const r of rows.sort((x, y) => y.bytes - x.bytes).slice(0, TOP))
      console.log(
        `${r.bytes.toFixed(0).padStart(7)} B ${r.count.toFixed(2).padStart(6)}×  ${r.key}`,
      );
  }
} finally {
  await Promise.all(procs.reverse().map((p) => p.stop()));
  await rm(dir, { recursive: true, force: true });
}
