// The mesh map's graph from the agents' answers (admin `/edges`, agent/observe/map-summary.ts).
// Pure. One connection is seen by up to two agents, the caller's (reporter "source") and the
// callee's (reporter "destination"), as Istio's metrics see it: the graph shows one edge per
// {source workload, destination workload, security}, taking the policy verdicts from the side
// that decides them (the destination) and the tunnel set-up time from the side that dials
// (the source); refusals that never reached a destination agent come from the source side.
import type { EdgeSummary } from '../../agent/observe/edges.js';
import type { MapSummary, MapWorkload } from '../../agent/observe/map-summary.js';

export interface AgentAnswer {
  /** Where it was asked (the agent's admin URL). */
  readonly url: string;
  readonly summary?: MapSummary;
  readonly error?: string;
}

export type EdgeStatus = 'denied' | 'refused' | 'plaintext' | 'mtls';

export interface GraphNode {
  readonly id: string;
  readonly namespace: string;
  readonly workload: string;
  readonly kind: string;
  /** undefined for `unknown` (an address the mesh model does not name). */
  readonly inMesh: boolean | undefined;
  readonly pods: number;
  readonly serviceAccounts: readonly string[];
  readonly nodes: readonly string[];
}

export interface GraphEdge {
  readonly id: string;
  readonly source: string;
  readonly target: string;
  readonly security: 'mutual_tls' | 'none';
  readonly status: EdgeStatus;
  readonly sourcePrincipal?: string;
  readonly destinationPrincipal?: string;
  readonly services: readonly string[];
  readonly opened: number;
  readonly active: number;
  readonly allowed: number;
  readonly denied: number;
  readonly failed: number;
  readonly policies: readonly { policy: string; verdict: string; count: number }[];
  readonly lastError?: { code: string; message: string };
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
  readonly connectionsPerSecond: number;
  readonly bytesPerSecond: number;
  readonly setupMs?: { count: number; mean: number; max: number };
  readonly lastSeen: number;
  /** Which agents reported it, and as which side. */
  readonly reportedBy: readonly string[];
}

export interface Graph {
  readonly at: number;
  readonly agents: readonly { url: string; node?: string; ok: boolean; error?: string }[];
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
}

const idOf = (e: { namespace: string; workload: string }) => `${e.namespace}/${e.workload}`;

/** Sums the reports of one side (a workload with pods on several nodes has several). */
function sumSide(list: { node: string; e: EdgeSummary }[]): EdgeSummary | undefined {
  if (list.length === 0) return undefined;
  return list
    .map((x) => x.e)
    .reduce((a, b) => {
      const policies = new Map<string, { policy: string; verdict: string; count: number }>();
      for (const p of [...a.policies, ...b.policies]) {
        const k = `${p.policy}\u0000${p.verdict}`;
        const had = policies.get(k);
        policies.set(k, { ...p, count: (had?.count ?? 0) + p.count });
      }
      const setups = [a.setupMs, b.setupMs].filter((s) => s !== undefined);
      const count = setups.reduce((n, s) => n + s.count, 0);
      const later = b.lastSeen >= a.lastSeen ? b : a;
      return {
        ...later,
        source: { ...a.source, ...b.source, ...later.source },
        destination: { ...a.destination, ...b.destination, ...later.destination },
        opened: a.opened + b.opened,
        active: a.active + b.active,
        closed: a.closed + b.closed,
        allowed: a.allowed + b.allowed,
        denied: a.denied + b.denied,
        failed: a.failed + b.failed,
        policies: [...policies.values()],
        bytesFromClient: a.bytesFromClient + b.bytesFromClient,
        bytesToClient: a.bytesToClient + b.bytesToClient,
        connectionsPerSecond: a.connectionsPerSecond + b.connectionsPerSecond,
        bytesPerSecond: a.bytesPerSecond + b.bytesPerSecond,
        ...(count > 0
          ? {
              setupMs: {
                count,
                mean: setups.reduce((n, s) => n + s.mean * s.count, 0) / count,
                max: Math.max(...setups.map((s) => s.max)),
              },
            }
          : {}),
        firstSeen: Math.min(a.firstSeen, b.firstSeen),
        lastSeen: later.lastSeen,
      };
    });
}

export function mergeAnswers(answers: readonly AgentAnswer[], at = Date.now()): Graph {
  const nodes = new Map<string, GraphNode>();
  const sides = new Map<
    string,
    { src: { node: string; e: EdgeSummary }[]; dst: { node: string; e: EdgeSummary }[] }
  >();
  for (const a of answers) {
    if (!a.summary) continue;
    for (const w of a.summary.workloads) if (!nodes.has(idOf(w))) nodes.set(idOf(w), node(w));
    for (const e of a.summary.edges) {
      const key = `${idOf(e.source)}|${idOf(e.destination)}|${e.security}`;
      const s = sides.get(key) ?? { src: [], dst: [] };
      sides.set(key, s);
      (e.reporter === 'source' ? s.src : s.dst).push({ node: a.summary.node, e });
    }
  }
  const edges: GraphEdge[] = [];
  for (const [id, s] of sides) {
    const src = sumSide(s.src);
    const dst = sumSide(s.dst);
    const any = (dst ?? src)!;
    for (const end of [any.source, any.destination])
      if (!nodes.has(idOf(end))) nodes.set(idOf(end), unknownNode(end));
    // A denial is decided at the destination; the source side counts the same connection
    // as denied (401) too, so the larger count is the number of denied connections.
    const denied = Math.max(src?.denied ?? 0, dst?.denied ?? 0);
    const failed = dst ? dst.failed + Math.max(0, (src?.failed ?? 0) - dst.failed) : src!.failed;
    const allowed = dst ? dst.allowed : src!.allowed;
    const status: EdgeStatus =
      denied > 0
        ? 'denied'
        : failed > 0 && allowed === 0
          ? 'refused'
          : any.security === 'none'
            ? 'plaintext'
            : 'mtls';
    const services = new Set(
      [src?.destination.service, dst?.destination.service].filter((x) => x !== undefined),
    );
    const lastError = dst?.lastError ?? src?.lastError;
    const sourcePrincipal = dst?.source.principal ?? src?.source.principal;
    const destinationPrincipal = dst?.destination.principal ?? src?.destination.principal;
    edges.push({
      id,
      source: idOf(any.source),
      target: idOf(any.destination),
      security: any.security,
      status,
      ...(sourcePrincipal ? { sourcePrincipal } : {}),
      ...(destinationPrincipal ? { destinationPrincipal } : {}),
      services: [...services],
      opened: Math.max(src?.opened ?? 0, dst?.opened ?? 0),
      active: Math.max(src?.active ?? 0, dst?.active ?? 0),
      allowed,
      denied,
      failed,
      policies: (dst ?? src)!.policies,
      ...(lastError ? { lastError } : {}),
      bytesFromClient: Math.max(src?.bytesFromClient ?? 0, dst?.bytesFromClient ?? 0),
      bytesToClient: Math.max(src?.bytesToClient ?? 0, dst?.bytesToClient ?? 0),
      connectionsPerSecond: Math.max(
        src?.connectionsPerSecond ?? 0,
        dst?.connectionsPerSecond ?? 0,
      ),
      bytesPerSecond: Math.max(src?.bytesPerSecond ?? 0, dst?.bytesPerSecond ?? 0),
      ...(src?.setupMs ? { setupMs: src.setupMs } : {}),
      lastSeen: Math.max(src?.lastSeen ?? 0, dst?.lastSeen ?? 0),
      reportedBy: [
        ...s.src.map((x) => `${x.node} (source)`),
        ...s.dst.map((x) => `${x.node} (destination)`),
      ],
    });
  }
  return {
    at,
    agents: answers.map((a) => ({
      url: a.url,
      ok: a.summary !== undefined,
      ...(a.summary ? { node: a.summary.node } : {}),
      ...(a.error ? { error: a.error } : {}),
    })),
    nodes: [...nodes.values()],
    edges,
  };
}

function node(w: MapWorkload): GraphNode {
  return {
    id: idOf(w),
    namespace: w.namespace,
    workload: w.workload,
    kind: w.kind,
    inMesh: w.inMesh,
    pods: w.pods,
    serviceAccounts: w.serviceAccounts,
    nodes: w.nodes,
  };
}

function unknownNode(e: { namespace: string; workload: string }): GraphNode {
  return {
    id: idOf(e),
    namespace: e.namespace,
    workload: e.workload,
    kind: 'unknown',
    inMesh: undefined,
    pods: 0,
    serviceAccounts: [],
    nodes: [],
  };
}
