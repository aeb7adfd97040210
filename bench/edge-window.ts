// What the mesh map's edge window (agent/observe/edges.ts) costs an agent, at 10,000
// connections. Two parts:
//  1. Real agents: the benchmark mesh (CA and two agents from dist/, admin and metrics on),
//     N connections opened and held through node-a's SOCKS5 listener to the server pod; each
//     agent's RSS (/proc) and V8 heap (its nodejs_heap_size_used_bytes) before and while they
//     are open, and what its admin /edges holds (how many edges, how many connections).
//  2. The window alone, in this process (run with --expose-gc): heap after N connections on
//     one edge, and after N connections each between a different pair of workloads (the
//     worst case: the window stops at its maxEdges and evicts the oldest).
// Usage: node --expose-gc --import tsx bench/edge-window.ts --help
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeWindow } from '../agent/observe/edges.js';
import type { TrafficLabels } from '../agent/observe/labels.js';
import type { MapSummary } from '../agent/observe/map-summary.js';
import type { ConnectionFields } from '../agent/observe/record.js';
import { socks5Connect } from '../lib/socks5-client.js';
import { scriptArgs } from './lib/args.js';
import { idleConnections, untilAnswering } from './lib/load.js';
import { mtun, type Proc, rssKiB, startTargetProcess } from './lib/procs.js';
import { benchAgentArgs, SERVER_POD, startBenchCa } from './suite/mtun-pair.js';

const { connections: N, agents: withAgents } = scriptArgs(
  'usage: node --expose-gc --import tsx bench/edge-window.ts [options]\n\nThe mesh map edge window at N connections: in two real agents (RSS, heap, /edges) and alone (heap).',
  {
    connections: { default: 10_000, min: 1, max: 20_000, integer: true, help: 'connections' },
    agents: { default: 1, min: 0, max: 1, integer: true, help: '1: also measure real agents' },
  },
);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;

async function realAgents(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mtun-edge-window-'));
  const procs: Proc[] = [];
  try {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    await startTargetProcess(SERVER_POD, port, procs);
    await mkdir(join(dir, 'mesh'), { recursive: true });
    const { ca, url } = await startBenchCa(join(dir, 'mesh'));
    procs.push(ca);
    const hbone = port + 10;
    const agents = (['node-a', 'node-b'] as const).map((node, i) => {
      const ip = `127.0.0.${i + 1}`;
      return mtun([
        'agent',
        ...benchAgentArgs(join(dir, 'mesh'), url, node, hbone),
        ...['--outbound', String(hbone + 2), '--inbound-plaintext', String(hbone + 3)],
        ...['--socks5-workload', 'bench/client', '--log-level', 'warn'],
        ...['--admin', `${ip}:${hbone + 4}`, '--metrics', `${ip}:${hbone + 5}`],
        ...['--readiness', 'off'],
      ]);
    });
    procs.push(...agents);
    const admin = (i: number) => `http://127.0.0.${i + 1}:${hbone + 4}`;
    const metrics = (i: number) => `http://127.0.0.${i + 1}:${hbone + 5}/metrics`;
    const connect = () =>
      socks5Connect({ host: '127.0.0.1', port: hbone + 1 }, { host: SERVER_POD, port });
    await untilAnswering(connect);
    const read = async (i: number) => {
      const text = await (await fetch(metrics(i))).text();
      const heap = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1]);
      // An agent without the map (an older build, for comparison) has no /edges.
      const res = await fetch(`${admin(i)}/edges`);
      const edges = (res.ok ? await res.json() : { edges: [] }) as MapSummary;
      return {
        rss: rssKiB(agents[i]!.child.pid!) * 1024,
        heap,
        edges: edges.edges.length,
        open: edges.edges.reduce((n, e) => n + e.active, 0),
        opened: edges.edges.reduce((n, e) => n + e.opened, 0),
        bytes: JSON.stringify(edges).length,
      };
    };
    const before = [await read(0), await read(1)];
    let during: typeof before = [];
    const idle = await idleConnections(connect, N, 120, async () => {
      during = [await read(0), await read(1)];
    });
    console.log(`real agents: ${idle.opened} connections held open (${idle.failed} failed)`);
    for (const [i, name] of ['node-a (source side)', 'node-b (destination side)'].entries()) {
      const b = before[i]!;
      const d = during[i]!;
      console.log(
        `  ${name}: RSS ${kib(b.rss)} -> ${kib(d.rss)} (+${((d.rss - b.rss) / idle.opened / 1024).toFixed(1)} KiB/conn), heap ${kib(b.heap)} -> ${kib(d.heap)}; /edges: ${d.edges} edge(s), ${d.open} open of ${d.opened} opened, ${d.bytes} B of JSON`,
      );
    }
  } finally {
    await Promise.all(procs.reverse().map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

function windowAlone(): void {
  const fields = (src: string, dst: string): ConnectionFields => ({
    direction: 'inbound',
    src: { addr: '10.0.0.1:40000', identity: `spiffe://cluster.local/ns/a/sa/${src}` },
    dst: { addr: '10.0.0.2:9080', identity: `spiffe://cluster.local/ns/b/sa/${dst}` },
    security: 'mutual_tls',
    verdict: 'allow',
    policy: 'b/allow-a',
  });
  const labels = (src: string, dst: string): TrafficLabels => ({
    source_workload: src,
    source_workload_namespace: 'a',
    destination_workload: dst,
    destination_workload_namespace: 'b',
  });
  const heap = () => {
    gc!();
    gc!();
    return process.memoryUsage().heapUsed;
  };
  for (const distinct of [false, true]) {
    const w = new EdgeWindow();
    // The fields and labels exist anyway (the connection record has them): made beforehand.
    const inputs = Array.from({ length: N }, (_, i) =>
      distinct
        ? { f: fields(`src-${i}`, `dst-${i}`), l: labels(`src-${i}`, `dst-${i}`) }
        : { f: fields('src', 'dst'), l: labels('src', 'dst') },
    );
    const h0 = heap();
    const edges = inputs.map((x) => w.opened(x.f, x.l));
    const h1 = heap();
    for (const [i, e] of edges.entries()) {
      e.bytes(100, 200);
      e.established(1.5);
      e.close(inputs[i]!.f);
    }
    edges.length = 0; // the records are gone once their connections closed
    const h2 = heap();
    if (inputs.length !== N) throw new Error('inputs must stay alive until here');
    console.log(
      `window alone, ${N} connections ${distinct ? 'each between different workloads' : 'between two workloads'}: ${w.size} edge(s) kept (max ${w.maxEdges}); heap +${kib(h1 - h0)} while open, +${kib(h2 - h0)} kept after they closed (while open, each record also holds its edge, evicted or not)`,
    );
  }
}

windowAlone();
if (withAgents) await realAgents();
