// netns mode: the same configurations inside a two-node namespace topology
// (netns-topology.ts), with real capture and real veth hops. mtun: the mesh client pod on
// node-1 dials the mesh server pod's IP; node-1's agent captures it (PREROUTING), HBONE to
// node-2, whose agent delivers it to the target. Direct TCP and the C peers use the plain
// (non-mesh) pods, which no capture rule names: direct is plain-client → plain-server
// through both nodes; a C pair listens on node-1's address (client side) and node-2's
// (server side) and forwards to plain-server. The agents run throughout, and the capture
// counters of every configuration's workloads are in the results (0 for direct and C).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadCapture } from '../../agent/capture/native.js';
import { cannotRun, Netns, sweepLeftovers } from '../../testkit/netns.js';
import { NODE_IP } from '../../testkit/topology.js';
import { type Proc, spawnProc, startTargetProcess } from '../lib/procs.js';
import { writeCerts } from './certs.js';
import { LoadWorker, podDriver } from './netns-driver.js';
import { AgentPair } from './netns-mesh.js';
import { buildBenchTopology, capturedConnections, POD } from './netns-topology.js';
import { startPeer, startPeers, waitListening } from './peers.js';
import { errorsOf, type RunResult } from './report.js';
import { type Config, type Hooks, profileArgs, type RunContext } from './runner.js';

const TARGET_PORT = 7000;
const IPERF_PORT = 5201;

export const NETNS_SETUP =
  'Two-node network-namespace topology (netns mode): pods on veth pairs to node namespaces ' +
  'joined by a bridge. mtun: mesh client pod (node-1) → server pod IP, captured by the ' +
  "node-1 agent's iptables rules, HBONE to node-2's agent, delivered to the server pod; a " +
  'policy in force. Direct TCP and the C peers (client side in node-1, server side in node-2, ' +
  'on the node addresses) carry non-mesh pods whose traffic no capture rule matches. Bulk by ' +
  'iperf3 in the pods. One agent per node at a time: the agents restart when the run switches ' +
  'between mtun and mtun-w2.';

/** Why netns mode cannot run here, or undefined. */
export function cannotRunNetns(): string | undefined {
  const why = cannotRun(['iperf3', 'curl', 'ss']);
  if (why) return why;
  const cap = loadCapture();
  if (!cap.available)
    return `the agents' capture needs the native addon (npm run build:native): ${cap.reason}`;
  if (!existsSync('dist/cli/main.js')) return 'the agents run from dist/: npm run build first';
  return undefined;
}

export interface NetnsRun {
  readonly configs: Config[];
  readonly hooks: Hooks;
  close(): Promise<void>;
}

export async function netnsConfigs(ctx: RunContext): Promise<NetnsRun> {
  const { dir, want, procs, progress } = ctx;
  ctx.result.setup = NETNS_SETUP;
  sweepLeftovers();
  const ns = new Netns();
  let pair: AgentPair | undefined;
  const close = async () => {
    await pair?.stop();
    await ns.destroy();
  };
  try {
    progress('building the namespaces');
    await buildBenchTopology(ns);
    progress('targets, iperf3 servers, certificates');
    const targets: Proc[] = [];
    for (const pod of [POD.server, POD.plainServer]) {
      const netns = ns.name(pod.tag);
      const iperf = spawnProc('iperf3', ['-s', '-B', pod.ip, '-p', String(IPERF_PORT)], { netns });
      procs.push(iperf);
      await startTargetProcess(pod.ip, TARGET_PORT, procs, { netns });
      targets.push(procs.at(-1)!);
      await waitListening(pod.ip, IPERF_PORT, iperf, netns);
    }
    const certs = await writeCerts(dir);
    const meshWorker = LoadWorker.start(ns.name(POD.client.tag));
    const plainWorker = LoadWorker.start(ns.name(POD.plainClient.tag));
    procs.push(meshWorker.proc, plainWorker.proc);

    progress('CA and agents');
    pair = await AgentPair.create(ns, join(dir, 'mesh'), procs, {
      nodeArgs: profileArgs(ctx),
      root: ctx.root,
    });
    const agents = pair;
    // Always running, also for direct and the C peers: their capture counters must stay 0.
    await agents.ensure(1);

    const configs: Config[] = [];
    const plain = { host: POD.plainServer.ip, port: TARGET_PORT };
    const plainBulk = { netns: ns.name(POD.plainClient.tag), host: plain.host, port: IPERF_PORT };
    if (want('direct'))
      configs.push({
        name: 'direct',
        kind: 'direct',
        driver: podDriver(plainWorker, plain, plainBulk),
        procs: () => [],
        floor: () => [targets[1]!],
      });
    for (const [name, workers] of [
      ['mtun', 1],
      ['mtun-w2', 2],
    ] as const) {
      if (!want(name)) continue;
      configs.push({
        name,
        kind: 'mtun',
        driver: podDriver(
          meshWorker,
          { host: POD.server.ip, port: TARGET_PORT },
          { netns: ns.name(POD.client.tag), host: POD.server.ip, port: IPERF_PORT },
        ),
        procs: () => agents.agents,
        up: () => agents.ensure(workers),
      });
    }
    const nodes = {
      clientHost: NODE_IP.n1,
      serverHost: NODE_IP.n2,
      clientNetns: ns.name('n1'),
      serverNetns: ns.name('n2'),
    };
    const peers = await startPeers(ctx, (kind, i) => {
      const port = 20_000 + 10 * i;
      const routes = [
        { client: port, server: port + 1, target: plain },
        { client: port + 2, server: port + 3, target: { ...plain, port: IPERF_PORT } },
      ];
      return startPeer(kind, dir, certs, routes, nodes);
    });
    for (const { kind, pair } of peers) {
      procs.push(...pair.procs);
      const [rt, bulk] = [pair.entries[0]!, pair.entries[1]!];
      configs.push({
        name: kind,
        kind: 'c',
        driver: podDriver(plainWorker, rt, { ...plainBulk, ...bulk }),
        procs: () => pair.procs,
      });
    }
    const hooks: Hooks = {
      captured: async () => ({
        n1: await capturedConnections(ns, 'n1'),
        n2: await capturedConnections(ns, 'n2'),
      }),
      verify: (run) => verifyCapture(run),
    };
    return { configs, hooks, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Direct and the C peers must not have been captured, and mtun must have been: an error
 *  in the results otherwise (the figures would not mean what the table says). */
export function verifyCapture(run: RunResult): void {
  for (const c of Object.values(run.configs)) {
    const n = Object.values(c.captured ?? {}).reduce((a, b) => a + b, 0);
    if (c.kind !== 'mtun' && n > 0)
      errorsOf(c).push(`the agents captured ${n} of its connections (must be 0)`);
    if (c.kind === 'mtun' && !(c.captured?.['n1'] && c.captured['n2']))
      errorsOf(c).push('the agents did not capture its connections on both nodes');
  }
}
