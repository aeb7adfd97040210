// A two-node cluster in network namespaces, wired the way kind/kindnet wires pods (ptp):
// every pod is a namespace with one veth to its node, a /32 address and a default route to
// the node's gateway address, which sits on every node-side veth. The nodes, a host
// outside the mesh and the control plane (the CA) share one L2 segment (a bridge in its
// own namespace). Everything is in 198.18.0.0/15. The pods are the caller's: the root-only
// tests wire theirs (tests/namespaced/pods.ts), the benchmark its own
// (bench/suite/netns-topology.ts).
//
//   fabric 198.18.0.0/24: node-1 .1, node-2 .2, ext .3, ctl .4
//   node-1 pods 198.18.1.0/24, node-2 pods 198.18.2.0/24 (gateway .1 on each node)
import type { Netns } from './netns.js';

/** The node namespaces' tags. */
export const NODES = ['n1', 'n2'] as const;
export type NodeTag = (typeof NODES)[number];

export const NODE_IP = { n1: '198.18.0.1', n2: '198.18.0.2' } as const;
/** The nodes' names in the mesh (spec.nodeName, --node). */
export const NODE_NAME = { n1: 'node-1', n2: 'node-2' } as const;
export const EXT_IP = '198.18.0.3';
export const CTL_IP = '198.18.0.4';
/** Each node's pod network (a /24; the node's gateway address is .1). */
export const POD_NET = { n1: '198.18.1', n2: '198.18.2' } as const;

/** Where a pod sits: its namespace tag, its node and its address (all the wiring needs). */
export interface PodWiring {
  readonly tag: string;
  readonly node: NodeTag;
  readonly ip: string;
}

export interface TopologyOptions {
  /** The fabric's hosts besides the two nodes. Default: ext and ctl. */
  readonly hosts?: readonly ('ext' | 'ctl')[];
  /** sysctls (key=value) for a pod's namespace, e.g. for a load client. */
  readonly podSysctls?: (pod: PodWiring) => readonly string[];
}

/** Builds every namespace, link, address and route, for these pods. Throws naming the
 *  failed command. */
export async function buildTopology(
  ns: Netns,
  pods: readonly PodWiring[],
  opts: TopologyOptions = {},
): Promise<void> {
  const extra = opts.hosts ?? ['ext', 'ctl'];
  const ip = (...args: string[]) => ns.must('ip', args);
  const sysctl = (tag: string, ...kv: string[]) =>
    ns.must('ip', ['netns', 'exec', ns.name(tag), 'sysctl', '-qw', ...kv]);
  for (const tag of ['fab', 'n1', 'n2', ...extra, ...pods.map((p) => p.tag)]) await ns.add(tag);
  const fab = ns.name('fab');
  await ip('-n', fab, 'link', 'add', 'br0', 'type', 'bridge');
  await ip('-n', fab, 'link', 'set', 'br0', 'up');
  const hostIp = { n1: NODE_IP.n1, n2: NODE_IP.n2, ext: EXT_IP, ctl: CTL_IP };
  const hosts = (['n1', 'n2', ...extra] as const).map((tag): [string, string] => [
    tag,
    hostIp[tag],
  ]);
  for (const [tag, addr] of hosts) {
    const port = `p-${tag}`;
    await ip(
      'link',
      'add',
      'eth0',
      'netns',
      ns.name(tag),
      'type',
      'veth',
      'peer',
      'name',
      port,
      'netns',
      fab,
    );
    await ip('-n', fab, 'link', 'set', port, 'master', 'br0', 'up');
    await ip('-n', ns.name(tag), 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
    await ip('-n', ns.name(tag), 'link', 'set', 'eth0', 'up');
  }
  for (const node of ['n1', 'n2'] as const) {
    // Nodes forward between pods and the fabric; loose reverse-path checks, as on kind nodes.
    await sysctl(
      node,
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    );
    const other = node === 'n1' ? 'n2' : 'n1';
    await ip('-n', ns.name(node), 'route', 'add', `${POD_NET[other]}.0/24`, 'via', NODE_IP[other]);
    if (extra.includes('ext'))
      await ip('-n', ns.name('ext'), 'route', 'add', `${POD_NET[node]}.0/24`, 'via', NODE_IP[node]);
  }
  for (const p of pods) {
    const node = ns.name(p.node);
    const pn = ns.name(p.tag);
    const host = `v-${p.tag}`.slice(0, 15);
    await ip(
      'link',
      'add',
      'eth0',
      'netns',
      pn,
      'type',
      'veth',
      'peer',
      'name',
      host,
      'netns',
      node,
    );
    // The gateway address on the node side: REDIRECT delivers to the incoming interface's address.
    await ip('-n', node, 'addr', 'add', `${POD_NET[p.node]}.1/32`, 'dev', host);
    await ip('-n', node, 'link', 'set', host, 'up');
    await ip('-n', node, 'route', 'add', `${p.ip}/32`, 'dev', host);
    await ip('-n', pn, 'addr', 'add', `${p.ip}/32`, 'dev', 'eth0');
    await ip('-n', pn, 'link', 'set', 'eth0', 'up');
    await ip('-n', pn, 'route', 'add', `${POD_NET[p.node]}.1`, 'dev', 'eth0', 'scope', 'link');
    await ip('-n', pn, 'route', 'add', 'default', 'via', `${POD_NET[p.node]}.1`, 'dev', 'eth0');
    const tune = opts.podSysctls?.(p) ?? [];
    if (tune.length > 0) await sysctl(p.tag, ...tune);
  }
}
