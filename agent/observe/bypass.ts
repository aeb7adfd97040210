// Capture-bypass detection at the receiving agent. Every mesh pod's outbound TCP is meant
// to leave its node through that node's agent, as HBONE. Plaintext arriving on 15006 from a
// mesh pod's address therefore means the source node's capture was bypassed: a kernel load
// balancer that rewrote the destination before netfilter saw it (Cilium's socket LB without
// `socketLB.hostNamespaceOnly`, as Istio's ambient docs warn), a missing capture rule, or no
// agent on the source node. Under PERMISSIVE such a connection is accepted, and nothing
// would say that it was never encrypted: this counts it per workload pair, warns once per
// pair, and keeps the pairs for the config dump and `mtun check`. Bounded: at most
// `maxPairs` pairs are remembered (the metric keeps counting after that).
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../../lib/logger.js';
import { qualifiedName, type Workload } from '../../mesh/types.js';

export const BYPASS_CAUSES = [
  "a kernel load balancer on the source node sends the pod's traffic around netfilter (Cilium socket LB: set socketLB.hostNamespaceOnly=true)",
  "the source node's capture rules are missing for this pod (check `iptables -t nat -S MTUN-PREROUTING` there)",
  'no mtun agent (or one with --redirect none and no rules) runs on the source node',
] as const;

/** What the agent did with a bypassed connection. */
export type BypassOutcome = 'allowed' | 'denied' | 'refused';

export interface BypassPair {
  readonly source: string; // namespace/pod
  readonly sourceIp: string;
  readonly destination: string; // namespace/pod
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly lastOutcome: BypassOutcome;
}

/** A plaintext connection is a bypass when its source address is a mesh pod's. */
export function isCaptureBypass(source: Workload | undefined): source is Workload {
  return source?.inMesh === true;
}

export class BypassDetector {
  readonly #counter: Counter<
    | 'source_workload'
    | 'source_workload_namespace'
    | 'destination_workload'
    | 'destination_workload_namespace'
    | 'outcome'
  >;
  readonly #logger: Logger;
  readonly #pairs = new Map<string, BypassPair>();
  readonly #maxPairs: number;
  #total = 0;

  constructor(registry: Registry, logger: Logger, maxPairs = 1_000) {
    this.#logger = logger;
    this.#maxPairs = maxPairs;
    this.#counter = new Counter({
      name: 'mtun_capture_bypass_total',
      help: "Plaintext connections from a mesh pod's address: the source node's capture was bypassed",
      labelNames: [
        'source_workload',
        'source_workload_namespace',
        'destination_workload',
        'destination_workload_namespace',
        'outcome',
      ] as const,
      registers: [registry],
    });
  }

  get total(): number {
    return this.#total;
  }

  observe(
    source: Workload,
    sourceIp: string,
    destination: Workload,
    outcome: BypassOutcome,
    now = new Date(),
  ): void {
    this.#total++;
    // Istio's workload labels name the workload (Deployment, ...), as the TCP metrics do.
    this.#counter.inc({
      source_workload: source.workloadName,
      source_workload_namespace: source.meta.namespace,
      destination_workload: destination.workloadName,
      destination_workload_namespace: destination.meta.namespace,
      outcome,
    });
    const src = qualifiedName(source.meta);
    const dst = qualifiedName(destination.meta);
    const key = `${src} ${dst}`;
    const seen = this.#pairs.get(key);
    const at = now.toISOString();
    if (seen) {
      this.#pairs.set(key, {
        ...seen,
        sourceIp,
        count: seen.count + 1,
        lastSeen: at,
        lastOutcome: outcome,
      });
      return;
    }
    if (this.#pairs.size >= this.#maxPairs) return;
    this.#pairs.set(key, {
      source: src,
      sourceIp,
      destination: dst,
      count: 1,
      firstSeen: at,
      lastSeen: at,
      lastOutcome: outcome,
    });
    this.#logger.warn(
      { source: src, sourceIp, destination: dst, outcome, likelyCauses: BYPASS_CAUSES },
      outcome === 'allowed'
        ? 'plaintext from a mesh pod accepted: its node capture was bypassed and the connection is NOT encrypted'
        : 'plaintext from a mesh pod: its node capture was bypassed',
    );
  }

  pairs(): BypassPair[] {
    return [...this.#pairs.values()];
  }
}
