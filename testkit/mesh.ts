// The two-node mesh on the namespaced topology (topology.ts), as the root-only tests
// (tests/namespaced/cluster.ts) and the benchmark's netns mode (bench/suite/netns-mesh.ts)
// both run it: `mtun ca` in the control namespace on CTL_IP:15012 and one
// `mtun agent --redirect iptables` per node namespace. Here: the files of the file control
// plane, the flags of both commands, and the agents' readiness. Each caller starts the
// processes its own way (from the sources, tracked by its Netns; or from a build snapshot).
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Netns } from './netns.js';
import type { Tracked } from './process.js';
import { CTL_IP, NODE_NAME, NODES, type NodeTag } from './topology.js';

/** Where the CA listens, in ctl. */
export const CA_LISTEN = `${CTL_IP}:15012`;

/** Where the CA and the agents learn the mesh, and how the agents prove their node to the
 *  CA: `mtun ca` and `mtun agent` flags (the rest — listen addresses, state dir, CA URL and
 *  bundle, capture — is the fixture's). */
export interface ControlPlane {
  readonly caArgs: readonly string[];
  agentArgs(node: NodeTag): readonly string[];
}

/** The file source: DIR/mesh/mesh.yaml holds `meshYaml`, DIR/tokens.yaml a random token per
 *  node, DIR/token-<node> each agent's copy. */
export async function fileControlPlane(dir: string, meshYaml: string): Promise<ControlPlane> {
  const meshDir = join(dir, 'mesh');
  await mkdir(meshDir, { recursive: true });
  await writeFile(join(meshDir, 'mesh.yaml'), meshYaml);
  const tokens = { n1: randomBytes(16).toString('hex'), n2: randomBytes(16).toString('hex') };
  const lines = NODES.map((n) => `- {node: ${NODE_NAME[n]}, token: ${tokens[n]}}\n`);
  await writeFile(join(dir, 'tokens.yaml'), lines.join(''));
  for (const n of NODES) await writeFile(join(dir, `token-${n}`), tokens[n]);
  return {
    caArgs: ['--mesh', meshDir, '--tokens', join(dir, 'tokens.yaml')],
    agentArgs: (node) => ['--mesh', meshDir, '--ca-token-file', join(dir, `token-${node}`)],
  };
}

/** `mtun ca` (the words after the CLI's script): its state in DIR/ca; its root certificate,
 *  once it runs, in DIR/ca/root-cert.pem. It prints `"url":"https:...` when it listens. */
export function caArgs(dir: string, control: ControlPlane): string[] {
  return ['ca', '--state-dir', join(dir, 'ca'), ...control.caArgs, '--listen', CA_LISTEN];
}

/** `mtun agent` for `node` (the words after the CLI's script): its identity and the CA of
 *  `caArgs(dir, ...)`, capture by iptables, metrics on 127.0.0.1:15020, readiness on
 *  127.0.0.1:15021, a 1 s drain, and `admin` ('off' or an address). Flags appended after
 *  these win. */
export function agentArgs(
  node: NodeTag,
  dir: string,
  control: ControlPlane,
  admin: string,
): string[] {
  return [
    ...['agent', '--node', NODE_NAME[node], ...control.agentArgs(node)],
    ...['--ca', `https://${CA_LISTEN}`, '--ca-bundle', join(dir, 'ca', 'root-cert.pem')],
    ...['--redirect', 'iptables', '--admin', admin, '--metrics', '127.0.0.1:15020'],
    ...['--drain-period', '1s'],
  ];
}

/** Ready = capture rules installed and every local identity has its certificate: the agent's
 *  /healthz/ready, asked from its node with curl every 100 ms for at most `ms`. Fails at once
 *  when the agent exits; either failure carries the last answer (the body says what is
 *  missing) and the end of the agent's output. */
export async function untilAgentReady(
  ns: Netns,
  node: NodeTag,
  agent: Tracked,
  ms = 45_000,
): Promise<void> {
  const end = Date.now() + ms;
  const ended = () => agent.child.exitCode !== null || agent.child.signalCode !== null;
  for (;;) {
    const r = await ns.exec(node, 'curl', [
      ...['-s', '--max-time', '2', '-w', ' %{http_code}'],
      'http://127.0.0.1:15021/healthz/ready',
    ]);
    if (r.stdout.endsWith(' 200')) return;
    if (Date.now() > end || ended())
      throw new Error(`agent ${node} not ready: ${r.stdout}\n${agent.output().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
