// The agent's configuration: one typed tree, deep-frozen, built from flags by cli/agent.ts
// and passed down explicitly. Units are in the names.
import type { HostPort } from '../lib/address.js';
import type { LogLevel } from '../lib/logger.js';
import type { MeshChoice } from '../mesh/open.js';
import type { RedirectMode } from './capture/index.js';

export interface AgentConfig {
  readonly node: string;
  /** The level the agent starts with (admin /logging changes it at run time). */
  readonly logLevel: LogLevel;
  /** Who installs the capture rules: this agent (`iptables`), or nobody/a script (`none`). */
  readonly redirect: RedirectMode;
  /** Where the mesh model comes from (mesh/open.ts opens it). An agent made in-process is
   *  handed its source; this then only describes it. */
  readonly mesh: MeshChoice;
  readonly trustDomain: string;
  readonly clusterDomain: string;
  readonly rootNamespace: string;
  readonly ca: {
    readonly url: string;
    readonly tokenFile: string;
    readonly bundleFile: string;
    readonly certTtlSeconds: number | undefined;
  };
  /** Where the capture and HBONE listeners bind. */
  readonly listenIp: string;
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly inboundPlaintextPort: number;
  /** HBONE port of the other agents (ztunnel: 15008 everywhere). */
  readonly hbonePort: number;
  /** Where a tunnel's TLS connection goes. `pod`: the destination pod's IP at hbonePort with
   *  no SNI, captured by the destination node's rules (ztunnel's way; what a ztunnel node
   *  answers). `node`: the destination node's agent address with an SNI naming the pod, for
   *  meshes without capture (the local demo). */
  readonly hboneDial: 'pod' | 'node';
  readonly socks5: HostPort | undefined;
  /** `namespace/pod` whose identity SOCKS5 clients get when their source IP is no pod. */
  readonly socks5Workload: string | undefined;
  /** Relay (plain TCP to non-mesh addresses) for SOCKS5 clients whose source IP is no pod
   *  of this node. Off by default: it is an open relay for any local process. */
  readonly socks5AllowNonPodClients: boolean;
  readonly admin: HostPort | undefined;
  readonly metrics: HostPort | undefined;
  /** `/healthz/ready` (ztunnel's readiness port, 15021). */
  readonly readiness: HostPort | undefined;
  /** Istio's cluster id, the value of the `*_cluster` metric labels (istiod `CLUSTER_ID`). */
  readonly clusterId: string;
  readonly workers: number;
  readonly drainPeriodMs: number;
  readonly connectTimeoutMs: number;
  /** Refuse plaintext from a mesh pod's address (its node's capture was bypassed) even where
   *  PeerAuthentication is PERMISSIVE. Off by default, so Istio's semantics hold. */
  readonly refuseBypassedPlaintext: boolean;
  /** The hardened profile (agent/hardened.ts): STRICT mTLS and deny-by-default mesh-wide,
   *  kubelet probes to this node's pods exempt. */
  readonly hardened: boolean;
}

export const AGENT_DEFAULTS = Object.freeze({
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  listenIp: '0.0.0.0',
  outboundPort: 15001,
  inboundPlaintextPort: 15006,
  inboundPort: 15008,
  socks5: '127.0.0.1:15080',
  admin: '127.0.0.1:15000',
  metrics: '0.0.0.0:15020',
  readiness: '0.0.0.0:15021',
  clusterId: 'Kubernetes',
  drainPeriod: '5s',
  workers: 1,
});
