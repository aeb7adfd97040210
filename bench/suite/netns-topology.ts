// The benchmark's two-node cluster in network namespaces, wired by the interception tests'
// builder (testkit/topology.ts) with the benchmark's own pods: each pod a namespace with
// one veth to its node, a /32 address and a default route via the node's gateway address;
// nodes and the control plane on one bridge. Only 198.18.0.0/15.
//
//   fabric 198.18.0.0/24: node-1 .1, node-2 .2, ctl .4 (the CA)
//   node-1 pods 198.18.1.0/24: client .11 (mesh), plain-client .12 (not in the mesh)
//   node-2 pods 198.18.2.0/24: server .11 (mesh), plain-server .12 (not in the mesh)
//
// The agents' capture rules name mesh pod IPs only, so the plain pods' traffic (direct TCP
// and the C peers) crosses the nodes untouched; capturedConnections() proves it.
import type { Netns } from '../../testkit/netns.js';
import { buildTopology, NODE_NAME, type NodeTag, POD_NET } from '../../testkit/topology.js';

export interface BenchPod {
  readonly tag: string;
  readonly node: NodeTag;
  readonly ip: string;
  readonly mesh: boolean;
}

export const POD = {
  client: { tag: 'client', node: 'n1', ip: `${POD_NET.n1}.11`, mesh: true },
  plainClient: { tag: 'plain-client', node: 'n1', ip: `${POD_NET.n1}.12`, mesh: false },
  server: { tag: 'server', node: 'n2', ip: `${POD_NET.n2}.11`, mesh: true },
  plainServer: { tag: 'plain-server', node: 'n2', ip: `${POD_NET.n2}.12`, mesh: false },
} as const satisfies Record<string, BenchPod>;
const PODS: readonly BenchPod[] = Object.values(POD);

/** Builds every namespace, link, address and route with the tests' builder, for these
 *  pods and the control plane (no outside host). Throws naming the failed command. */
export function buildBenchTopology(ns: Netns): Promise<void> {
  return buildTopology(ns, PODS, {
    hosts: ['ctl'],
    // Client pods open tens of thousands of short connections to one destination.
    podSysctls: (p) => (p.node === 'n1' ? ['net.ipv4.tcp_tw_reuse=1'] : []),
  });
}

/** The mesh the CA and both agents read: the two mesh pods in an ambient namespace, the
 *  plain pods in one that is not, and an ALLOW policy on the server. No Node objects: the
 *  client's agent dials podIP:15008, which node-2's rules capture. */
export function benchMeshYaml(): string {
  const pod = (name: string, ns: string, p: BenchPod, app: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${app}}}
spec: {serviceAccountName: ${app}, nodeName: ${NODE_NAME[p.node]}}
status: {phase: Running, podIP: ${p.ip}}`;
  return `${[
    `apiVersion: v1
kind: Namespace
metadata: {name: bench, labels: {istio.io/dataplane-mode: ambient}}`,
    `apiVersion: v1
kind: Namespace
metadata: {name: plain}`,
    pod('client', 'bench', POD.client, 'client'),
    pod('server', 'bench', POD.server, 'server'),
    pod('plain-client', 'plain', POD.plainClient, 'plain-client'),
    pod('plain-server', 'plain', POD.plainServer, 'plain-server'),
    `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: server-from-client, namespace: bench}
spec:
  selector: {matchLabels: {app: server}}
  rules: [{from: [{source: {principals: [cluster.local/ns/bench/sa/client]}}]}]`,
  ].join('\n---\n')}\n`;
}

/** Connections the agents' capture rules have matched on a node: the packet counters of the
 *  MTUN-PREROUTING nat rules (a nat rule sees only a connection's first packet). 0 when the
 *  chain does not exist (no agent running). */
export async function capturedConnections(ns: Netns, node: NodeTag): Promise<number> {
  const res = await ns.exec(node, 'iptables', ['-t', 'nat', '-nvxL', 'MTUN-PREROUTING']);
  if (res.code !== 0) return 0;
  let n = 0;
  for (const line of res.stdout.split('\n').slice(2)) {
    const pkts = Number(line.trim().split(/\s+/)[0]);
    if (Number.isFinite(pkts)) n += pkts;
  }
  return n;
}
