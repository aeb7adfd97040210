// The mesh running on the namespaced topology (testkit/mesh.ts), for the tests: a real
// `mtun ca` process in the control namespace, one real `mtun agent --redirect iptables` per
// node namespace, both from the sources, and unmodified programs in the tests' pods
// (python3's http.server, curl, iperf3, tcpdump). The CA and agents read the mesh from
// files by default; a ControlPlane can feed them otherwise (kube-control.ts: the Kubernetes
// API). Everything started here is tracked by the Netns and killed at teardown, whatever
// happened.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import { loadCapture } from '../../agent/capture/native.js';
import {
  agentArgs,
  type ControlPlane,
  caArgs,
  fileControlPlane,
  untilAgentReady,
} from '../../testkit/mesh.js';
import { cannotRun, Netns, savedRules, sweepLeftovers } from '../../testkit/netns.js';
import { MTUN_CLI, type Tracked, terminate, track } from '../../testkit/process.js';
import { buildTopology } from '../../testkit/topology.js';
import { eventually } from '../helpers/eventually.js';
import { tempDir } from '../helpers/tmp.js';
import { meshYaml, PODS, podByName, SERVICE_VIP } from './pods.js';

export interface Cluster {
  readonly ns: Netns;
  readonly dir: string;
  /** Files the pods' HTTP servers serve: hello.txt, and marker.bin (the marker, repeated). */
  readonly www: string;
  readonly marker: string;
  /** The `mtun ca` process in ctl. */
  readonly ca: Tracked;
  readonly agents: Map<'n1' | 'n2', Tracked>;
  startAgent(node: 'n1' | 'n2'): Promise<Tracked>;
  /** SIGTERM, and the exit code. */
  stopAgent(node: 'n1' | 'n2'): Promise<number | null>;
  /** Access-log lines of a node's agent (all of its runs). */
  access(node: 'n1' | 'n2'): Record<string, unknown>[];
  /** curl from a pod (or ext/legacy): exit code, body. Never retries. */
  curl(
    from: string,
    url: string,
    maxSeconds?: number,
  ): Promise<{ code: number; body: string; stderr: string }>;
  /** iptables-save of a namespace, comments and counters removed. */
  rules(tag: string): Promise<string>;
}

/** Why a cluster cannot run here (root, curl, python3, `extraTools`, the native addon for
 *  capture), or undefined when it can. */
export function clusterCannotRun(extraTools: readonly string[] = []): string | undefined {
  return (
    cannotRun(['curl', 'python3', ...extraTools]) ??
    (loadCapture().available ? undefined : 'needs the native addon (npm run build:native)')
  );
}

export interface ClusterOptions {
  /** Sets up the control plane once the topology is built (its namespaces exist).
   *  Default: the files in DIR/mesh (meshYaml()) and a tokens file (fileControlPlane). */
  readonly controlPlane?: (ns: Netns, dir: string) => Promise<ControlPlane>;
  /** More `mtun agent` flags for a node, read at every (re)start; later flags win. */
  readonly extraAgentArgs?: (node: 'n1' | 'n2') => readonly string[];
}

export async function startCluster(t: Test, opts: ClusterOptions = {}): Promise<Cluster> {
  sweepLeftovers();
  const ns = new Netns();
  t.teardown(() => ns.destroy());
  const dir = await tempDir(t, 'mtun-ns-');
  await buildTopology(ns, PODS);

  const www = join(dir, 'www');
  await mkdir(www);
  const marker = `MTUN-MARKER-${randomBytes(8).toString('hex')}`;
  await writeFile(join(www, 'hello.txt'), 'hello from a pod\n');
  await writeFile(join(www, 'marker.bin'), `${marker}\n`.repeat(4096));
  const control = opts.controlPlane
    ? await opts.controlPlane(ns, dir)
    : await fileControlPlane(dir, meshYaml());

  const ca = track(
    ns.spawn('ctl', process.execPath, [...MTUN_CLI, ...caArgs(dir, control)]),
    'mtun ca',
  );
  // The pods' servers: HTTP on 8080 everywhere, and 9090 where a DENY policy applies.
  const servers: [string, number][] = [
    ...PODS.map((p): [string, number] => [p.name, 8080]),
    ['web-2', 9090],
    ['peer-1', 9090],
  ];
  for (const [name, port] of servers) {
    const p = podByName(name);
    ns.spawn(p.tag, 'python3', [
      '-m',
      'http.server',
      String(port),
      '--bind',
      p.ip,
      '--directory',
      www,
    ]);
  }
  await ca.waitFor(/"url":"https:/);

  const agents = new Map<'n1' | 'n2', Tracked>();
  const logs: Record<'n1' | 'n2', Tracked[]> = { n1: [], n2: [] };
  const startAgent = async (node: 'n1' | 'n2'): Promise<Tracked> => {
    const proc = track(
      ns.spawn(node, process.execPath, [
        ...MTUN_CLI,
        ...agentArgs(node, dir, control, '127.0.0.1:15000'),
        ...(opts.extraAgentArgs?.(node) ?? []),
      ]),
      `mtun agent ${node}`,
    );
    agents.set(node, proc);
    logs[node].push(proc);
    // Bounded, but not at the default 30 s: an agent run from TypeScript (tsx compiles it at
    // start) next to another namespaced test on two cores has taken longer in CI.
    await proc.waitFor(/"msg":"capture rules installed"/, 90_000);
    await untilAgentReady(ns, node, proc);
    return proc;
  };
  const cluster: Cluster = {
    ns,
    dir,
    www,
    marker,
    ca,
    agents,
    startAgent,
    async stopAgent(node) {
      const proc = agents.get(node);
      return proc ? terminate(proc.child) : null;
    },
    access(node) {
      return logs[node].flatMap((p) =>
        p
          .output()
          .split('\n')
          .filter((l) => l.includes('"module":"access"'))
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      );
    },
    async curl(from, url, maxSeconds = 10) {
      const res = await ns.exec(from, 'curl', ['-sS', '--max-time', String(maxSeconds), url], {
        timeoutMs: (maxSeconds + 5) * 1000,
      });
      return { code: res.code, body: res.stdout, stderr: res.stderr.trim() };
    },
    async rules(tag) {
      return savedRules((await ns.exec(tag, 'iptables-save', [])).stdout).join('\n');
    },
  };
  await Promise.all([startAgent('n1'), startAgent('n2')]);
  // Every pod server answers, asked from its node (the node's own connections are never
  // captured), so no test starts before its server listens.
  for (const [name, port] of servers) {
    const p = podByName(name);
    await waitUntil(
      async () => (await cluster.curl(p.node, `http://${p.ip}:${port}/hello.txt`, 2)).code === 0,
      `${name}:${port} listening`,
    );
  }
  return cluster;
}

/** curl's exit when the agent resets an accepted connection: while curl still counts it as
 *  connecting (7), with an empty reply (52), while sending the request (55: the reset came
 *  before curl's write, which a busy machine makes likely), or on receive (56). The access
 *  log then shows that the agent accepted and denied it. */
export const CLOSED: readonly number[] = [7, 52, 55, 56];

/** curl from `from` gets the pod's hello.txt, whole. */
export async function hello(t: Test, c: Cluster, from: string, url: string): Promise<void> {
  const res = await c.curl(from, url);
  t.equal(res.code, 0, `${from} -> ${url}: ${res.stderr || 'ok'}`);
  t.equal(res.body, 'hello from a pod\n');
}

/** client-1's SPIFFE ID, as the server side must log it. */
export const CLIENT_ID = 'spiffe://cluster.local/ns/apps/sa/client';

/** The check both control planes must pass: curl from client-1 (node-1) to web-2 (node-2)
 *  by pod IP went through HBONE, and node-2 logged client-1's verified identity. */
export async function podToPodThroughHbone(t: Test, c: Cluster): Promise<void> {
  const web = podByName('web-2').ip;
  await hello(t, c, 'client-1', `http://${web}:8080/hello.txt`);
  const server = await accessAfter(c, 'n2', {
    direction: 'inbound',
    'dst.hbone_addr': `${web}:8080`,
  });
  t.ok(server.length >= 1, 'the server side logged it');
  t.equal(server.at(-1)?.['dst.addr'], `${web}:15008`, "ztunnel's dst.addr: the tunnel's address");
  t.equal(server.at(-1)?.['src.identity'], CLIENT_ID, "the caller's verified SPIFFE identity");
  t.equal(server.at(-1)?.['src.workload'], 'client-1');
  t.equal(server.at(-1)?.verdict, 'allow');
  const client = await accessAfter(c, 'n1', {
    direction: 'outbound',
    'dst.hbone_addr': `${web}:8080`,
  });
  t.equal(client.at(-1)?.security, 'mutual_tls');
  t.equal(client.at(-1)?.['dst.addr'], `${web}:15008`, 'dialed podIP:15008, captured on node-2');
}

/** curl from client-1 by the Service VIP (only the agents know it) reached web-2. */
export async function serviceVipThroughHbone(t: Test, c: Cluster): Promise<void> {
  await hello(t, c, 'client-1', `http://${SERVICE_VIP}/hello.txt`);
  const server = await accessAfter(c, 'n2', {
    direction: 'inbound',
    'dst.service': 'web.strict.svc.cluster.local',
  });
  t.equal(server.at(-1)?.['src.identity'], CLIENT_ID);
  t.equal(
    server.at(-1)?.['dst.hbone_addr'],
    `${podByName('web-2').ip}:8080`,
    'the VIP resolved to the pod',
  );
}

/** `eventually` for checks that run a command (curl, ip) each time: every 100 ms, up to 20 s. */
export const waitUntil = (cond: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> =>
  eventually(cond, what, ms, 100);

/** Lines of a node's access log that match every given field. A connection is logged when
 *  it ends, which on the far side can be a moment after the client is done: wait (bounded). */
export async function accessAfter(
  c: Cluster,
  node: 'n1' | 'n2',
  match: Record<string, unknown>,
  atLeast = 1,
  ms = 5_000,
): Promise<Record<string, unknown>[]> {
  const end = Date.now() + ms;
  for (;;) {
    const lines = accessLines(c, node, match);
    if (lines.length >= atLeast || Date.now() > end) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Lines of a node's access log that match every given field. */
function accessLines(
  c: Cluster,
  node: 'n1' | 'n2',
  match: Record<string, unknown>,
): Record<string, unknown>[] {
  return c.access(node).filter((l) => Object.entries(match).every(([k, v]) => l[k] === v));
}
