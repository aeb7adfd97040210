// The agent's recent traffic as edges between workloads, for the mesh map (`mtun map`, the
// demo): who talked to whom, with which verified identities, mTLS or not, allowed or denied
// by which policy, bytes, rates and tunnel set-up time. Bounded by construction: connections
// are aggregated into one edge per {reporter, source workload, destination workload,
// security}, at most `maxEdges` edges (the least recently opened goes first), and an edge
// with nothing open that was last seen more than `windowMs` ago is dropped. A connection
// record holds its edge (as it holds its metric labels) and updates it in O(1).
import { type TrafficLabels, UNKNOWN } from './labels.js';
import type { ConnectionFields } from './record.js';
import { ipOf } from './resolve.js';

/** One end of an edge: a workload (Istio's workload name) or `unknown`. */
export interface EdgeEnd {
  readonly workload: string;
  readonly namespace: string;
}

export interface EdgeSummary {
  readonly reporter: 'source' | 'destination';
  readonly source: EdgeEnd & { readonly principal?: string; readonly ip?: string };
  readonly destination: EdgeEnd & { readonly principal?: string; readonly service?: string };
  readonly security: 'mutual_tls' | 'none';
  readonly opened: number;
  readonly active: number;
  readonly closed: number;
  readonly allowed: number;
  readonly denied: number;
  /** Closed with an error other than a policy denial (refused, reset, no identity, ...). */
  readonly failed: number;
  /** Verdicts by deciding policy (`-` when no policy named), at most MAX_POLICIES. */
  readonly policies: readonly { policy: string; verdict: string; count: number }[];
  readonly lastError?: { readonly code: string; readonly message: string };
  /** What the client sent, and what went back to it (Istio's received/sent meanings). */
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
  /** Exponentially decaying rates with a one-minute time constant. */
  readonly connectionsPerSecond: number;
  readonly bytesPerSecond: number;
  /** Time from accepting the connection to an established upstream (tunnel or TCP). */
  readonly setupMs?: { readonly count: number; readonly mean: number; readonly max: number };
  readonly firstSeen: number;
  readonly lastSeen: number;
}

const TAU_MS = 60_000;
const MAX_POLICIES = 8;

/** A rate that decays with time constant TAU_MS: O(1) memory, no buckets. */
class DecayingRate {
  #value = 0;
  #at = 0;
  add(n: number, now: number): void {
    this.#value = this.read(now) + (n * 1000) / TAU_MS;
    this.#at = now;
  }
  read(now: number): number {
    return this.#value * Math.exp(-Math.max(0, now - this.#at) / TAU_MS);
  }
}

/** The handle a connection record keeps: every call is O(1). */
export class Edge {
  readonly reporter: 'source' | 'destination';
  readonly source: { workload: string; namespace: string; principal?: string; ip?: string };
  readonly destination: {
    workload: string;
    namespace: string;
    principal?: string;
    service?: string;
  };
  readonly security: 'mutual_tls' | 'none';
  opened = 0;
  active = 0;
  closed = 0;
  allowed = 0;
  denied = 0;
  failed = 0;
  bytesFromClient = 0;
  bytesToClient = 0;
  #policies: Map<string, number> | undefined; // made at the first verdict: most edges have one
  #lastError: { code: string; message: string } | undefined;
  readonly #connections = new DecayingRate();
  readonly #bytes = new DecayingRate();
  #setupCount = 0;
  #setupSum = 0;
  #setupMax = 0;
  readonly firstSeen: number;
  lastSeen: number;
  readonly #clock: () => number;

  constructor(
    init: Pick<Edge, 'reporter' | 'source' | 'destination' | 'security'>,
    clock: () => number,
  ) {
    this.reporter = init.reporter;
    this.source = init.source;
    this.destination = init.destination;
    this.security = init.security;
    this.#clock = clock;
    this.firstSeen = this.lastSeen = clock();
  }

  open(f: ConnectionFields): void {
    const now = this.#clock();
    this.opened++;
    this.active++;
    this.lastSeen = now;
    this.#connections.add(1, now);
    // The latest identities seen: the workload is the key, the identity its detail.
    if (f.security === 'mutual_tls' && f.src.identity) this.source.principal = f.src.identity;
    const ip = ipOf(f.src.addr);
    if (ip) this.source.ip = ip;
  }

  bytes(fromClient: number, toClient: number): void {
    this.bytesFromClient += fromClient;
    this.bytesToClient += toClient;
    this.#bytes.add(fromClient + toClient, this.#clock());
  }

  established(setupMs: number): void {
    this.#setupCount++;
    this.#setupSum += setupMs;
    if (setupMs > this.#setupMax) this.#setupMax = setupMs;
  }

  close(f: ConnectionFields): void {
    this.active = Math.max(0, this.active - 1);
    this.closed++;
    this.lastSeen = this.#clock();
    if (f.dst.identity) this.destination.principal = f.dst.identity;
    const denied = f.verdict === 'deny' || f.error === 'DENY';
    if (denied) this.denied++;
    else if (f.error) this.failed++;
    else this.allowed++;
    if (f.error) this.#lastError = { code: f.error, message: f.errorMessage ?? f.error };
    if (f.verdict) {
      const key = `${f.policy ?? '-'}\u0000${f.verdict}`;
      this.#policies ??= new Map();
      const p = this.#policies;
      if (p.has(key) || p.size < MAX_POLICIES) p.set(key, (p.get(key) ?? 0) + 1);
    }
  }

  summary(now: number): EdgeSummary {
    return {
      reporter: this.reporter,
      source: { ...this.source },
      destination: { ...this.destination },
      security: this.security,
      opened: this.opened,
      active: this.active,
      closed: this.closed,
      allowed: this.allowed,
      denied: this.denied,
      failed: this.failed,
      policies: [...(this.#policies ?? [])].map(([k, count]) => {
        const [policy, verdict] = k.split('\u0000') as [string, string];
        return { policy, verdict, count };
      }),
      ...(this.#lastError ? { lastError: { ...this.#lastError } } : {}),
      bytesFromClient: this.bytesFromClient,
      bytesToClient: this.bytesToClient,
      connectionsPerSecond: round3(this.#connections.read(now)),
      bytesPerSecond: round3(this.#bytes.read(now)),
      ...(this.#setupCount > 0
        ? {
            setupMs: {
              count: this.#setupCount,
              mean: round3(this.#setupSum / this.#setupCount),
              max: round3(this.#setupMax),
            },
          }
        : {}),
      firstSeen: this.firstSeen,
      lastSeen: this.lastSeen,
    };
  }
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

export interface EdgeWindowOptions {
  /** At most this many edges (default 2,000: a few hundred workloads talking). */
  readonly maxEdges?: number;
  /** An idle edge is dropped this long after it was last seen (default 5 minutes). */
  readonly windowMs?: number;
  /** A workload by pod IP, for ends the labels could not name (a non-mesh caller). */
  readonly workloadByIp?: (ip: string) => EdgeEnd | undefined;
  readonly clock?: () => number;
}

export class EdgeWindow {
  readonly maxEdges: number;
  readonly windowMs: number;
  /** Insertion order is recency of the last open: the first entry is evicted first. */
  readonly #edges = new Map<string, Edge>();
  readonly #byIp: (ip: string) => EdgeEnd | undefined;
  readonly #clock: () => number;
  #evicted = 0;

  constructor(opts: EdgeWindowOptions = {}) {
    this.maxEdges = opts.maxEdges ?? 2_000;
    this.windowMs = opts.windowMs ?? 300_000;
    this.#byIp = opts.workloadByIp ?? (() => undefined);
    this.#clock = opts.clock ?? Date.now;
  }

  get size(): number {
    return this.#edges.size;
  }

  /** Counts a connection as opened on its edge (created if new) and returns the edge. */
  opened(f: ConnectionFields, labels: TrafficLabels): Edge {
    const reporter = f.direction === 'outbound' ? 'source' : 'destination';
    const src = this.#end(labels.source_workload, labels.source_workload_namespace, f.src.addr);
    const dst = this.#end(
      labels.destination_workload,
      labels.destination_workload_namespace,
      f.dst.addr,
    );
    const key = `${reporter}|${src.namespace}/${src.workload}|${dst.namespace}/${dst.workload}|${f.security}`;
    let edge = this.#edges.get(key);
    if (edge) {
      this.#edges.delete(key); // to the end: most recently used
    } else {
      if (this.#edges.size >= this.maxEdges) {
        this.#edges.delete(this.#edges.keys().next().value as string);
        this.#evicted++;
      }
      edge = new Edge(
        {
          reporter,
          source: { ...src },
          destination: {
            ...dst,
            ...(f.dst.service ? { service: f.dst.service } : {}),
          },
          security: f.security,
        },
        this.#clock,
      );
    }
    this.#edges.set(key, edge);
    edge.open(f);
    return edge;
  }

  #end(workload: string | undefined, namespace: string | undefined, addr?: string): EdgeEnd {
    if (workload && workload !== UNKNOWN) return { workload, namespace: namespace ?? UNKNOWN };
    const ip = ipOf(addr);
    return (ip && this.#byIp(ip)) || { workload: UNKNOWN, namespace: UNKNOWN };
  }

  /** The edges seen within the window (expired idle ones are dropped here). */
  summary(): {
    windowMs: number;
    maxEdges: number;
    evicted: number;
    edges: EdgeSummary[];
  } {
    const now = this.#clock();
    const out: EdgeSummary[] = [];
    for (const [key, e] of this.#edges) {
      if (e.active === 0 && now - e.lastSeen > this.windowMs) this.#edges.delete(key);
      else out.push(e.summary(now));
    }
    return { windowMs: this.windowMs, maxEdges: this.maxEdges, evicted: this.#evicted, edges: out };
  }
}
