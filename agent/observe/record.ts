// One record per proxied connection, filled in as the connection goes and reported exactly
// once (metrics + access log). Once by construction: a record exists only inside
// `ConnectionRecord.run`, which reports it when the path is over, whatever it ended on (a
// thrown ConnectionFailure, a bug, or a join that completed), or, for a path that handed
// its open connection off (HANDED_OFF), when the splice it was handed to ends (`carried`;
// splice() calls back exactly once). While the connection is open, its bytes are published
// from its sockets' counters (`watch`).
//
// The access-log line is ztunnel's (src/proxy/metrics.rs ConnectionResult::record_internal):
// the same field names and meanings, info when the connection completed, error (with the
// error text in `error`) when it failed; plus mtun's verdict/policy/reason/response_flags.

import { type ConnectionFailure, failureOf, responseFlagOf } from '../outcome.js';
import type { Edge } from './edges.js';
import type { TrafficLabels } from './labels.js';
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
  /** `addr` is the target (pod ip:port); `hboneAddr` the tunnel's address, when tunnelled. */
  dst: Peer & { hboneAddr?: string; service?: string };
  /** mutual_tls when the connection crossed HBONE, else none. */
  security: 'mutual_tls' | 'none';
  verdict?: 'allow' | 'deny';
  policy?: string | null;
  reason?: string;
  /** A stable error code when the connection failed (DENY, CONNECT, TLS_FAILURE, ...). */
  error?: string;
  errorMessage?: string;
  /** Plaintext from a mesh pod's address: its node's capture was bypassed. */
  captureBypass?: boolean;
}

export type AccessLogLevel = 'info' | 'error';

export interface AccessLogSink {
  write(line: Record<string, unknown>, level?: AccessLogLevel): void;
}

/** What a connection's sockets have moved so far: towards the destination, and back. */
/** What a connection's live byte counts are read from (its sockets' counters). */
export interface ByteSource {
  bytes(): ByteCount;
}

export interface ByteCount {
  readonly sent: number;
  readonly received: number;
}

/** The client side of a connection, as far as its record is concerned: it is answered with
 *  the failure (agent/proxy/downstream.ts). */
export interface Refusable {
  refuse(failure: ConnectionFailure): void;
}

/** What a joined connection moved once both sides are closed, and its first error. */
export interface Transfer {
  /** Towards the destination: what the client sent. */
  readonly sent: number;
  /** From the destination: what went back to the client. */
  readonly received: number;
  readonly error: Error | undefined;
}

/** What a path returns once it handed its connection to an object that reports the
 *  Transfer itself (`record.carried`) when both sides are closed: no promise then stays
 *  pending for as long as the connection is open (each pending one, with its reactions and
 *  their scopes, is heap per open tunnel: bench/tunnel-heap.ts). */
export const HANDED_OFF: unique symbol = Symbol('mtun.handedOff');

/** A path's result: the Transfer when the path itself saw the end, or HANDED_OFF. */
export type PathResult = Transfer | typeof HANDED_OFF;

export class ConnectionRecord {
  readonly fields: ConnectionFields;
  readonly #startedAt = performance.now();
  /** Final totals, from the path's Transfer. */
  private bytesSent = 0; // towards the destination: what the client sent
  private bytesReceived = 0; // from the destination: what went back to the client
  #finished = false;
  readonly #metrics: ConnectionMetrics;
  readonly #log: AccessLogSink;
  readonly #labels: TrafficLabels;
  /** The map's edge this connection counts on (edges.ts), when the metrics keep edges. */
  readonly #edge: Edge | undefined;
  #sample: ByteSource | undefined;
  #publishedSent = 0;
  #publishedReceived = 0;

  /** Opens a record (counted as opened at once), runs the connection's path, and reports the
   *  record when the path is over: with the Transfer it returned, or with the failure it
   *  threw, which `client.refuse` answers first (a reset, a SOCKS5 reply, an HBONE
   *  status). The one place a record is reported. Not an async function: a suspended frame
   *  per open connection costs ~0.5 KiB of heap (bench/tunnel-heap.ts); one reaction on the
   *  path's promise does not. */
  static run(
    fields: ConnectionFields,
    metrics: ConnectionMetrics,
    log: AccessLogSink,
    path: (record: ConnectionRecord) => Promise<PathResult>,
    client: Refusable,
  ): Promise<void> {
    const record = new ConnectionRecord(fields, metrics, log);
    let carried: Promise<PathResult>;
    try {
      carried = path(record);
    } catch (err) {
      carried = Promise.reject(err);
    }
    return carried.then(
      (t) => {
        if (t !== HANDED_OFF) record.#close(t, undefined, client);
      },
      (err: unknown) => record.#close(undefined, err, client),
    );
  }

  /** The Transfer of a connection its path handed off (HANDED_OFF), once both sides are
   *  closed: the record is reported now. */
  carried(t: Transfer): void {
    this.#close(t, undefined, undefined);
  }

  #close(t: Transfer | undefined, err: unknown, client: Refusable | undefined): void {
    try {
      if (t) {
        this.bytesSent = t.sent;
        this.bytesReceived = t.received;
        if (t.error) this.fail('CONNECTION_RESET', t.error.message);
      } else {
        const failure = failureOf(err);
        this.fail(failure.code, failure.message);
        try {
          client?.refuse(failure);
        } catch {
          // A client that cannot be answered any more (its socket or stream went away) has
          // nothing left to tell; the record still says why it ended.
        }
      }
    } finally {
      this.#finish();
    }
  }

  private constructor(fields: ConnectionFields, metrics: ConnectionMetrics, log: AccessLogSink) {
    this.fields = fields;
    this.#metrics = metrics;
    this.#log = log;
    this.#labels = metrics.opened(fields);
    this.#edge = metrics.edges?.opened(fields, this.#labels);
  }

  /** The upstream side is established (tunnel or TCP): the set-up time the map shows. */
  established(): void {
    this.#edge?.established(performance.now() - this.#startedAt);
  }

  /** Publishes bytes while the connection is open, read from `sample` (socket counters:
   *  the data path is not touched). The totals at close settle the sum exactly. */
  watch(sample: ByteSource): void {
    if (this.#finished || this.#sample) return;
    this.#sample = sample;
    this.#metrics.track(this);
  }

  publishBytes(): void {
    if (this.#sample) {
      const now = this.#sample.bytes();
      this.#publishUpTo(now.sent, now.received);
    }
  }

  // Counters only go up: a socket counter that goes back (unsent data dropped at a reset)
  // is published no further than it got.
  #publishUpTo(sent: number, received: number): void {
    const dSent = Math.max(0, sent - this.#publishedSent);
    const dReceived = Math.max(0, received - this.#publishedReceived);
    if (dSent === 0 && dReceived === 0) return;
    this.#publishedSent += dSent;
    this.#publishedReceived += dReceived;
    this.#metrics.bytes(this.#labels, dSent, dReceived);
    this.#edge?.bytes(dSent, dReceived);
  }

  /** Notes how the connection failed; the first failure noted is the one reported (a
   *  policy change that closes it notes DENY before the join sees the reset). */
  fail(code: string, message: string): void {
    this.fields.error ??= code;
    this.fields.errorMessage ??= message;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#sample) this.#metrics.untrack(this);
    this.#sample = undefined;
    this.#publishUpTo(this.bytesSent, this.bytesReceived);
    const f = this.fields;
    this.#metrics.closed(this.#labels, f);
    this.#edge?.close(f);
    this.#log.write(this.#accessLine(), f.error ? 'error' : 'info');
  }

  #accessLine(): Record<string, unknown> {
    const f = this.fields;
    const l = this.#labels;
    const known = (v: string | undefined) => (v === undefined || v === 'unknown' ? undefined : v);
    const mtls = f.security === 'mutual_tls';
    const inbound = f.direction !== 'outbound';
    return {
      // ztunnel's fields, in its order.
      'src.addr': f.src.addr,
      // The pod name, falling back to the canonical service (ConnectionResultBuilder::new).
      'src.workload': f.src.workload ?? known(l.source_canonical_service),
      'src.namespace': f.src.namespace,
      'src.identity': mtls ? f.src.identity : undefined,
      'src.cluster': known(l.source_cluster),
      // dst.addr is the L4 address (with HBONE, the tunnel's :15008 one), dst.hbone_addr
      // the CONNECT target: "for consistency with outbound logs" (ztunnel inbound.rs).
      'dst.addr': f.dst.hboneAddr ?? f.dst.addr,
      'dst.hbone_addr': f.dst.hboneAddr ? f.dst.addr : undefined,
      'dst.service': f.dst.service,
      'dst.workload': f.dst.workload ?? known(l.destination_canonical_service),
      'dst.namespace': f.dst.namespace,
      'dst.identity': mtls ? f.dst.identity : undefined,
      'dst.cluster': known(l.destination_cluster),
      direction: inbound ? 'inbound' : 'outbound',
      // "Istio flips the metric for source: unflip for logs": outbound lines count from the
      // client's side, inbound lines from the server's (what this agent sent back).
      bytes_sent: inbound ? this.bytesReceived : this.bytesSent,
      bytes_recv: inbound ? this.bytesSent : this.bytesReceived,
      duration: `${Math.round(performance.now() - this.#startedAt)}ms`,
      error: f.error ? (f.errorMessage ?? f.error) : undefined,
      // mtun's own.
      security: f.security,
      verdict: f.verdict,
      policy: f.policy ?? undefined,
      reason: f.reason,
      response_flags: f.error ? responseFlagOf(f.error) : undefined,
      error_code: f.error,
      capture_bypass: f.captureBypass || undefined,
    };
  }
}
