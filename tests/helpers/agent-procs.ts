// Two real `mtun agent` processes (node-a on 127.0.0.1, node-b on 127.0.0.2) and a real
// `mtun ca` process on loopback, for the tests that kill, stop and restart agents. Pods
// live in 127.<net>.0.0/16, a range of this run's own. node-a serves SOCKS5 on a fixed
// port so that a restarted agent is found where the old one was.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startMtun, type Tracked, terminate, untilReady } from '../../testkit/process.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export type NodeName = 'node-a' | 'node-b';
const NODE_IP: Record<NodeName, string> = { 'node-a': '127.0.0.1', 'node-b': '127.0.0.2' };

export interface AgentPair {
  readonly dir: string;
  /** `ip('20.1')` = 127.<net>.20.1. Pods: web-1 10.1 (node-a, sa web), app-1 20.1 (node-b). */
  ip(suffix: string): string;
  readonly socks: { host: string; port: number };
  agent(node: NodeName): Tracked;
  start(node: NodeName): Promise<Tracked>;
  /** SIGTERM; resolves with the exit code. */
  stop(node: NodeName): Promise<number | null>;
  kill(node: NodeName): Promise<void>;
  /** Open file descriptors of a node's agent process. */
  fds(node: NodeName): Promise<number>;
  /** The descriptor count once it has not changed for a second (at most 30 s): sockets of
   *  closed tunnels go as the FINs travel, which takes seconds on a loaded machine (CI runs
   *  two test files at once), while a leak never settles back. */
  steadyFds(node: NodeName): Promise<number>;
  metrics(node: NodeName): Promise<string>;
}

function mesh(net: number): string {
  return `apiVersion: v1
kind: Node
metadata: {name: node-a}
status: {addresses: [{type: InternalIP, address: 127.0.0.1}]}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
status: {addresses: [{type: InternalIP, address: 127.0.0.2}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {serviceAccountName: web, nodeName: node-a}
status: {podIP: 127.${net}.10.1}
---
apiVersion: v1
kind: Pod
metadata: {name: app-1, namespace: shop, labels: {app: app}}
spec: {serviceAccountName: app, nodeName: node-b}
status: {podIP: 127.${net}.20.1}
`;
}

export async function startAgentPair(t: Test): Promise<AgentPair> {
  const dir = await tempDir(t, 'mtun-pair-');
  const net = 100 + Math.floor(Math.random() * 150);
  const ip = (suffix: string) => `127.${net}.${suffix}`;
  await writeFile(join(dir, 'mesh.yaml'), mesh(net));
  const tokens: Record<NodeName, string> = {
    'node-a': `token-a-${net}-0123456789abcdef`,
    'node-b': `token-b-${net}-0123456789abcdef`,
  };
  await writeFile(
    join(dir, 'tokens.yaml'),
    Object.entries(tokens)
      .map(([node, token]) => `- {node: ${node}, token: ${token}}\n`)
      .join(''),
  );
  for (const [node, token] of Object.entries(tokens))
    await writeFile(join(dir, `${node}.token`), `${token}\n`);
  const ca = startMtun(t, [
    'ca',
    '--state-dir',
    join(dir, 'ca'),
    '--mesh',
    join(dir, 'mesh.yaml'),
    '--tokens',
    join(dir, 'tokens.yaml'),
    '--listen',
    '127.0.0.1:0',
  ]);
  const caUrl = (await ca.waitFor(/"url":"(https:[^"]+)"/, 20_000))[1]!;
  const hbonePort = await freePort(['127.0.0.1', '127.0.0.2']);
  const socks = { host: '127.0.0.1', port: await freePort() };
  const metricsPort: Record<NodeName, number> = {
    'node-a': await freePort(['127.0.0.1']),
    'node-b': await freePort(['127.0.0.2']),
  };
  const readyPort: Record<NodeName, number> = {
    'node-a': await freePort(['127.0.0.1']),
    'node-b': await freePort(['127.0.0.2']),
  };
  const running = new Map<NodeName, Tracked>();

  const start = async (node: NodeName): Promise<Tracked> => {
    const proc = startMtun(t, [
      'agent',
      '--node',
      node,
      '--mesh',
      join(dir, 'mesh.yaml'),
      '--ca',
      caUrl,
      '--ca-token-file',
      join(dir, `${node}.token`),
      '--ca-bundle',
      join(dir, 'ca', 'root-cert.pem'),
      '--listen-ip',
      NODE_IP[node],
      '--inbound',
      String(hbonePort),
      '--socks5',
      node === 'node-a' ? `${socks.host}:${socks.port}` : 'off',
      '--outbound',
      '0',
      '--inbound-plaintext',
      '0',
      '--admin',
      'off',
      '--metrics',
      `${NODE_IP[node]}:${metricsPort[node]}`,
      '--readiness',
      `${NODE_IP[node]}:${readyPort[node]}`,
      '--drain-period',
      '1s',
    ]);
    running.set(node, proc);
    await untilReady(proc, `http://${NODE_IP[node]}:${readyPort[node]}/healthz/ready`, node);
    return proc;
  };
  await Promise.all([start('node-a'), start('node-b')]);
  const agent = (node: NodeName) => {
    const p = running.get(node);
    if (!p) throw new Error(`${node} is not running`);
    return p;
  };
  const fds = async (node: NodeName) => (await readdir(`/proc/${agent(node).child.pid}/fd`)).length;
  return {
    dir,
    ip,
    socks,
    agent,
    start,
    stop: (node) => terminate(agent(node).child),
    async kill(node) {
      const child = agent(node).child;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    fds,
    async steadyFds(node) {
      const end = Date.now() + 30_000;
      let last = await fds(node);
      let same = 0;
      while (same < 4 && Date.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        const now = await fds(node);
        same = now === last ? same + 1 : 0;
        last = now;
      }
      return last;
    },
    async metrics(node) {
      return (await fetch(`http://${NODE_IP[node]}:${metricsPort[node]}/metrics`)).text();
    },
  };
}
