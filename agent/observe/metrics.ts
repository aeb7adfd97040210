// Prometheus metrics of the agent: Istio's TCP metrics with ztunnel's names, labels and
// meanings (istio/ztunnel src/proxy/metrics.rs), ztunnel's build and process metrics, and
// mtun's own. One registry per agent, no globals.
//
// Directions, for both reporters (ztunnel src/copy.rs copy_bidirectional: client→server is
// `increment_recv`, server→client `increment_send`): istio_tcp_received_bytes_total is what
// the client sent, istio_tcp_sent_bytes_total what went back to it. Byte counters carry the
// labels chosen when the connection opened (ztunnel fetches its byte counters in
// ConnectionResultBuilder::build, with response_flags "-"); opened/closed/failed carry the
// final flag. Open connections publish their bytes while they are open (live-bytes.ts).
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { MeshSnapshot } from '../../mesh/snapshot.js';
import { responseFlagOf } from '../outcome.js';
import { EdgeWindow } from './edges.js';
import {
  ALL_TRAFFIC_LABELS,
  type TrafficLabel,
  type TrafficLabels,
  trafficLabels,
} from './labels.js';
import { LiveBytes, type LiveConnection } from './live-bytes.js';
import type { ConnectionFields } from './record.js';
import { type TelemetrySettings, trafficInput } from './resolve.js';

/** What a connection record needs: labels at open, bytes as they move, the final flag. */
export interface ConnectionMetrics {
  /** Counts the connection as opened; returns the labels its bytes are counted under. */
  opened(f: ConnectionFields): TrafficLabels;
  /** Adds bytes (deltas) under the labels `opened` returned. */
  bytes(labels: TrafficLabels, fromClient: number, toClient: number): void;
  /** Counts the close (and a failure) under the open labels with the final flag. */
  closed(labels: TrafficLabels, f: ConnectionFields): void;
  /** Publishes the connection's bytes while it is open, until `untrack`. */
  track(c: LiveConnection): void;
  untrack(c: LiveConnection): void;
  /** The recent edges between workloads, for the mesh map (edges.ts). */
  readonly edges?: EdgeWindow;
}

export interface AgentMetricsOptions {
  /** `istio_build{component, tag}`. */
  readonly component?: string;
  readonly version?: string;
  /** prom-client's default process metrics (off in tests that build many registries). */
  readonly processMetrics?: boolean;
  /** How often open connections publish their bytes besides at every scrape. */
  readonly publishEveryMs?: number;
  /** At most this many open connections publish while open (default 100,000). */
  readonly maxLiveConnections?: number;
  /** The mesh the labels are looked up in (default: an empty one: every label unknown). */
  readonly snapshot?: () => MeshSnapshot;
  readonly telemetry?: TelemetrySettings;
}

export class AgentMetrics implements ConnectionMetrics {
  readonly registry = new Registry();
  readonly #live: LiveBytes;
  readonly #opened = this.#traffic(
    'istio_tcp_connections_opened_total',
    'The total number of TCP connections opened',
  );
  readonly #closed = this.#traffic(
    'istio_tcp_connections_closed_total',
    'The total number of TCP connections closed',
  );
  readonly #failed = this.#traffic(
    'istio_tcp_connections_failed_total',
    'The total number of TCP connections that failed to establish (unstable)',
  );
  readonly #received = this.#traffic(
    'istio_tcp_received_bytes_total',
    'The size of total bytes received during request in case of a TCP connection',
    () => this.#live.publish(),
  );
  readonly #sent = this.#traffic(
    'istio_tcp_sent_bytes_total',
    'The size of total bytes sent during response in case of a TCP connection',
    () => this.#live.publish(),
  );
  readonly #openByDirection: Record<ConnectionFields['direction'], number> = {
    outbound: 0,
    inbound: 0,
    inbound_plaintext: 0,
  };
  /** ztunnel's istio_tcp_sockets_open counts accepted sockets (src/proxy/inbound.rs,
   *  outbound.rs, inbound_passthrough.rs record_socket_open): the applications' connections
   *  (source), and on the destination side the TCP connections on 15008 (one per HBONE
   *  connection, however many tunnels it carries) and the plaintext ones. */
  setSocketsOpen(hboneConnections: number): void {
    this.socketsOpen.set({ reporter: 'source' }, this.#openByDirection.outbound);
    this.socketsOpen.set(
      { reporter: 'destination' },
      hboneConnections + this.#openByDirection.inbound_plaintext,
    );
  }
  readonly socketsOpen = new Gauge({
    name: 'istio_tcp_sockets_open',
    help: 'The current number of open TCP sockets (unstable)',
    labelNames: ['reporter'] as const,
    registers: [this.registry],
  });
  readonly policyDecisions = new Counter({
    name: 'mtun_policy_decisions_total',
    help: 'Inbound policy decisions by verdict',
    labelNames: ['verdict'] as const,
    registers: [this.registry],
  });
  readonly policyStatus = new Gauge({
    name: 'mtun_authorization_policy_status',
    help: "AuthorizationPolicies that ztunnel would not (fully) enforce, by Istio's ZtunnelAccepted reason",
    aggregator: 'max',
    labelNames: ['policy', 'reason'] as const,
    registers: [this.registry],
  });
  readonly certExpirySeconds = new Gauge({
    name: 'mtun_certificate_expiry_seconds',
    help: 'Seconds until the certificate of an identity expires',
    aggregator: 'min', // across --workers: the one that expires first
    labelNames: ['identity'] as const,
    registers: [this.registry],
  });
  readonly poolConnections = new Gauge({
    name: 'mtun_hbone_pool_connections',
    help: 'Open pooled HBONE client connections',
    registers: [this.registry],
  });
  readonly caRequests = new Counter({
    name: 'mtun_ca_requests_total',
    help: 'Certificate requests to the CA by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly activeConnections = new Gauge({
    name: 'mtun_active_connections',
    help: 'Proxied connections open now, by direction',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  readonly #snapshot: () => MeshSnapshot;
  readonly #settings: TelemetrySettings;
  readonly edges: EdgeWindow;

  constructor(opts: AgentMetricsOptions = {}) {
    const empty = MeshSnapshot.empty();
    this.#snapshot = opts.snapshot ?? (() => empty);
    this.#settings = opts.telemetry ?? { clusterId: 'Kubernetes', trustDomain: 'cluster.local' };
    this.#live = new LiveBytes(opts.publishEveryMs ?? 5_000, opts.maxLiveConnections);
    this.edges = new EdgeWindow({
      workloadByIp: (ip) => {
        const w = this.#snapshot().workloadByIp(ip);
        return w && { workload: w.workloadName, namespace: w.meta.namespace };
      },
    });
    // ztunnel src/metrics/meta.rs: istio_build{component, tag} = 1; the tag is the version.
    new Gauge({
      name: 'istio_build',
      help: 'Istio component build info',
      labelNames: ['component', 'tag'] as const,
      aggregator: 'max',
      registers: [this.registry],
    }).set({ component: opts.component ?? 'mtun', tag: opts.version ?? 'unknown' }, 1);
    // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ... as
    // ztunnel's src/metrics/process.rs exports them (plus Node's own nodejs_* ones).
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  #traffic(name: string, help: string, collect?: () => void): Counter<TrafficLabel> {
    return new Counter({
      name,
      help,
      labelNames: ALL_TRAFFIC_LABELS,
      registers: [this.registry],
      ...(collect ? { collect } : {}),
    });
  }

  opened(f: ConnectionFields): TrafficLabels {
    const labels = this.#intern(
      trafficLabels(trafficInput(f, this.#snapshot(), this.#settings, '-')),
    );
    this.#opened.inc(labels);
    this.activeConnections.inc({ direction: f.direction });
    this.#openByDirection[f.direction]++;
    return labels;
  }

  bytes(labels: TrafficLabels, fromClient: number, toClient: number): void {
    if (fromClient > 0) this.#received.inc(labels, fromClient);
    if (toClient > 0) this.#sent.inc(labels, toClient);
  }

  closed(openLabels: TrafficLabels, f: ConnectionFields): void {
    const flag = responseFlagOf(f.error);
    const labels = { ...openLabels, response_flags: flag };
    this.#closed.inc(labels);
    if (flag !== '-') this.#failed.inc(labels);
    this.activeConnections.dec({ direction: f.direction });
    this.#openByDirection[f.direction]--;
    if (f.verdict) this.policyDecisions.inc({ verdict: f.verdict });
  }

  track(c: LiveConnection): void {
    this.#live.add(c);
  }

  untrack(c: LiveConnection): void {
    this.#live.delete(c);
  }

  // Connections between the same workloads share one label object: an open connection
  // keeps its labels for its byte counters, and idle connections are counted in tens of
  // thousands (~250 B each otherwise). Bounded: past the limit the table starts again.
  readonly #interned = new Map<string, TrafficLabels>();
  #intern(labels: TrafficLabels): TrafficLabels {
    let key = '';
    for (const l of ALL_TRAFFIC_LABELS) key += `${labels[l] ?? ''}\u0000`;
    const known = this.#interned.get(key);
    if (known) return known;
    if (this.#interned.size >= 10_000) this.#interned.clear();
    this.#interned.set(key, Object.freeze(labels));
    return labels;
  }

  /** Open connections tracked for live bytes (bounded; see live-bytes.ts). */
  get liveConnections(): number {
    return this.#live.size;
  }

  close(): void {
    this.#live.close();
  }
}
