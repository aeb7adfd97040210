// One record per proxied connection, filled in as the connection goes and reported exactly
// once (metrics + access log) by `finish()`, whatever path the connection ended on.
import type { ConnectionMetrics } from './metrics.js';

export type Direction = 'outbound' | 'inbound' | 'inbound_plaintext';

export interface Peer {
  addr?: string;
  workload?: string;
  namespace?: string;
  identity?: string;
}

export interface ConnectionFields {
  direction: Direction;
  src: Peer;
  dst: Peer & { hboneAddr?: string; service?: string };
  /** mutual_tls when the connection crossed HBONE, else none. */
  security: 'mutual_tls' | 'none';
  verdict?: 'allow' | 'deny';
  policy?: string | null;
  reason?: string;
  /** A stable error code when the connection failed (DENY, CONNECT, TLS_FAILURE, ...). */
  error?: string;
  errorMessage?: string;
}

export interface AccessLogSink {
  write(line: Record<string, unknown>): void;
}

export class ConnectionRecord {
  readonly fields: ConnectionFields;
  readonly #startedAt = performance.now();
  readonly #startedWall = Date.now();
  bytesSent = 0; // towards the destination
  bytesReceived = 0; // from the destination
  #finished = false;
  readonly #metrics: ConnectionMetrics;
  readonly #log: AccessLogSink;

  constructor(fields: ConnectionFields, metrics: ConnectionMetrics, log: AccessLogSink) {
    this.fields = fields;
    this.#metrics = metrics;
    this.#log = log;
    metrics.opened(fields);
  }

  fail(code: string, message: string): void {
    this.fields.error ??= code;
    this.fields.errorMessage ??= message;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Idempotent: only the first call reports. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const f = this.fields;
    this.#metrics.closed(f, this.bytesSent, this.bytesReceived);
    this.#log.write({
      direction: f.direction,
      'src.addr': f.src.addr,
      'src.workload': f.src.workload,
      'src.namespace': f.src.namespace,
      'src.identity': f.src.identity,
      'dst.addr': f.dst.addr,
      'dst.hbone_addr': f.dst.hboneAddr,
      'dst.service': f.dst.service,
      'dst.workload': f.dst.workload,
      'dst.namespace': f.dst.namespace,
      'dst.identity': f.dst.identity,
      security: f.security,
      verdict: f.verdict,
      policy: f.policy ?? undefined,
      reason: f.reason,
      bytes_sent: this.bytesSent,
      bytes_recv: this.bytesReceived,
      start: new Date(this.#startedWall).toISOString(),
      duration_ms: Math.round((performance.now() - this.#startedAt) * 10) / 10,
      error: f.error,
      error_message: f.errorMessage,
    });
  }
}
