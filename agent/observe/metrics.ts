// Prometheus metrics of the agent: Istio's TCP metrics with Istio's names and labels (so
// existing dashboards work), plus mtun's own. One registry per agent, no globals.
import { Counter, Gauge, Registry } from 'prom-client';
import type { ConnectionFields } from './record.js';

const ISTIO_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_service',
  'request_protocol',
  'connection_security_policy',
  'response_flags',
] as const;
type IstioLabel = (typeof ISTIO_LABELS)[number];

/** The subset the connection record needs; tests may pass a recorder of their own. */
export interface ConnectionMetrics {
  opened(f: ConnectionFields): void;
  closed(f: ConnectionFields, sent: number, received: number): void;
}

export class AgentMetrics implements ConnectionMetrics {
  readonly registry = new Registry();
  readonly #opened = this.#counter('istio_tcp_connections_opened_total', 'TCP connections opened');
  readonly #closed = this.#counter('istio_tcp_connections_closed_total', 'TCP connections closed');
  readonly #sent = this.#counter(
    'istio_tcp_sent_bytes_total',
    'Bytes sent towards the destination',
  );
  readonly #received = this.#counter(
    'istio_tcp_received_bytes_total',
    'Bytes received from the destination',
  );
  readonly policyDecisions = new Counter({
    name: 'mtun_policy_decisions_total',
    help: 'Inbound policy decisions by verdict',
    labelNames: ['verdict'] as const,
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

  #counter(name: string, help: string): Counter<IstioLabel> {
    return new Counter({ name, help, labelNames: ISTIO_LABELS, registers: [this.registry] });
  }

  opened(f: ConnectionFields): void {
    this.#opened.inc(labels(f));
    this.activeConnections.inc({ direction: f.direction });
  }

  closed(f: ConnectionFields, sent: number, received: number): void {
    const l = labels(f);
    this.#closed.inc(l);
    if (sent > 0) this.#sent.inc(l, sent);
    if (received > 0) this.#received.inc(l, received);
    this.activeConnections.dec({ direction: f.direction });
    if (f.verdict) this.policyDecisions.inc({ verdict: f.verdict });
  }
}

function labels(f: ConnectionFields): Record<IstioLabel, string> {
  return {
    reporter: f.direction === 'outbound' ? 'source' : 'destination',
    source_workload: f.src.workload ?? 'unknown',
    source_workload_namespace: f.src.namespace ?? 'unknown',
    source_principal: f.src.identity ?? 'unknown',
    destination_workload: f.dst.workload ?? 'unknown',
    destination_workload_namespace: f.dst.namespace ?? 'unknown',
    destination_principal: f.dst.identity ?? 'unknown',
    destination_service: f.dst.service ?? 'unknown',
    request_protocol: 'tcp',
    connection_security_policy: f.security === 'mutual_tls' ? 'mutual_tls' : 'unknown',
    response_flags: f.error ?? '-',
  };
}
