// The HBONE client: open() = pick/share a pooled mTLS HTTP/2 connection, send CONNECT,
// resolve with the stream once the server answered 200, or reject with a typed error.
// A stream the server refused without processing (REFUSED_STREAM, e.g. beyond a GOAWAY's
// last stream id) is retried once on another connection, which RFC 9113 §8.7 makes safe;
// nothing else is retried (as ztunnel).
import type { SpiffeId } from '../../identity/spiffe-id.js';
import { errorMessage } from '../../lib/errors.js';
import { ignoreError } from '../../lib/ignore.js';
import type { Logger } from '../../lib/logger.js';
import { formatSocketAddr, type SocketAddr } from '../address.js';
import type { CertificateSource } from '../certificates.js';
import {
  ConnectFailedError,
  errorForStatus,
  IdentityUnavailableError,
  OpenAbortedError,
  TimeoutError,
} from '../errors.js';
import { ErrorCode } from '../h2/frame.js';
import type { H2Stream } from '../h2/stream.js';
import { metadataHeaders, type TunnelMetadata } from '../headers.js';
import { DEFAULT_HTTP2, type Http2Tuning } from '../settings.js';
import { sniForDestination } from '../sni.js';
import { resetTunnel } from '../splice.js';
import type { PooledConnection } from './connection.js';
import { ClientContexts } from './dial.js';
import { ConnectionPool, type PoolStats } from './pool.js';

export interface HboneClientOptions {
  readonly certificates: CertificateSource;
  readonly logger: Logger;
  /** TCP connect + TLS handshake + server SETTINGS. ztunnel: 10 s. */
  readonly connectTimeoutMs?: number;
  /** From sending CONNECT to the server's answer (covers its upstream connect). */
  readonly responseTimeoutMs?: number;
  /** ztunnel's POOL_MAX_STREAMS_PER_CONNECTION. */
  readonly maxStreamsPerConnection?: number;
  /** A connection with no stream for this long is closed. ztunnel: 5 min. */
  readonly idleTimeoutMs?: number;
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
  readonly http2?: Partial<Http2Tuning>;
}

export interface OpenRequest {
  readonly sourceIdentity: SpiffeId;
  /** The workload address the tunnel reaches (`:authority`). */
  readonly destination: SocketAddr;
  /** Secure naming: the server must present one of these. */
  readonly expectedIdentities: readonly SpiffeId[];
  /** Where to dial: the destination's IP at 15008 (captured; no SNI is sent) or another
   *  agent's own address (SNI then names the destination, see sni.ts). */
  readonly via: SocketAddr;
  readonly metadata?: TunnelMetadata;
  readonly signal?: AbortSignal;
}

export interface Tunnel {
  /** The tunnel's bytes; `end()` is a TCP FIN to the far side, `close(CONNECT_ERROR)` a reset. */
  readonly stream: H2Stream;
  readonly sourceIdentity: SpiffeId;
  readonly peerIdentity: SpiffeId;
  readonly destination: SocketAddr;
  readonly via: SocketAddr;
}

export class HboneClient {
  private readonly pool: ConnectionPool;
  private readonly contexts = new ClientContexts();
  private readonly certificates: CertificateSource;
  private readonly responseTimeoutMs: number;
  private readonly log: Logger;

  constructor(opts: HboneClientOptions) {
    this.certificates = opts.certificates;
    this.log = opts.logger;
    this.responseTimeoutMs = opts.responseTimeoutMs ?? 15_000;
    this.pool = new ConnectionPool(
      {
        connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
        maxStreams: opts.maxStreamsPerConnection ?? 100,
        idleTimeoutMs: opts.idleTimeoutMs ?? 5 * 60_000,
        keepaliveIntervalMs: opts.keepaliveIntervalMs ?? 10_000,
        keepaliveTimeoutMs: opts.keepaliveTimeoutMs ?? 20_000,
        http2: { ...DEFAULT_HTTP2, ...opts.http2 },
      },
      opts.logger,
    );
  }

  async open(req: OpenRequest): Promise<Tunnel> {
    if (req.expectedIdentities.length === 0) throw new TypeError('expectedIdentities is empty');
    const headers = {
      ':method': 'CONNECT',
      ':authority': formatSocketAddr(req.destination),
      ...metadataHeaders(req.metadata ?? {}),
    };
    for (let attempt = 0; ; attempt++) {
      const conn = await this.acquireUnlessAborted(req);
      try {
        const stream = await this.connect(conn, headers, req);
        return {
          stream,
          sourceIdentity: req.sourceIdentity,
          peerIdentity: conn.peerIdentity!,
          destination: req.destination,
          via: req.via,
        };
      } catch (err) {
        if (err instanceof RefusedStream && attempt === 0) {
          this.log.debug({ conn: conn.id }, 'hbone stream refused by the server, retrying once');
          continue;
        }
        throw err instanceof RefusedStream ? err.error : err;
      }
    }
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  /** Closes every pooled connection at once (their tunnels are reset). */
  close(): void {
    this.pool.close();
  }

  /** acquire(), but an abort while the connection is still being set up rejects at once;
   *  the slot reserved for us is given back when the connection settles. */
  private acquireUnlessAborted(req: OpenRequest): Promise<PooledConnection> {
    const signal = req.signal;
    const aborted = () =>
      new OpenAbortedError(`CONNECT ${formatSocketAddr(req.destination)}: aborted`, {
        cause: signal?.reason,
      });
    if (!signal) return this.acquire(req);
    if (signal.aborted) return Promise.reject(aborted());
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(aborted());
      signal.addEventListener('abort', onAbort, { once: true });
      this.acquire(req).then(
        (conn) => {
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) conn.release();
          else resolve(conn);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  private async acquire(req: OpenRequest): Promise<PooledConnection> {
    let certificate: Awaited<ReturnType<CertificateSource['forIdentity']>>;
    let bundle: readonly string[];
    try {
      [certificate, bundle] = await Promise.all([
        this.certificates.forIdentity(req.sourceIdentity),
        this.certificates.trustBundle(),
      ]);
    } catch (err) {
      throw new IdentityUnavailableError(
        `no certificate for ${req.sourceIdentity}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    const servername =
      req.via.ip === req.destination.ip ? undefined : sniForDestination(req.destination.ip);
    const expected = [...req.expectedIdentities].map(String).sort();
    return this.pool.acquire({
      key: `${req.sourceIdentity}|${expected.join(',')}|${formatSocketAddr(req.via)}|${servername ?? ''}`,
      via: req.via,
      servername,
      certificate,
      bundle,
      context: this.contexts.get(certificate, bundle),
      expectedIdentities: req.expectedIdentities,
    });
  }

  /** Sends CONNECT on a reserved slot; the slot is released when the stream closes. */
  private connect(
    conn: PooledConnection,
    headers: Record<string, string>,
    req: OpenRequest,
  ): Promise<H2Stream> {
    const target = headers[':authority']!;
    let stream: H2Stream;
    try {
      stream = conn.request(headers);
    } catch (err) {
      // The session started going away between acquire() and now: nothing was sent.
      conn.release();
      return Promise.reject(
        new RefusedStream(
          new ConnectFailedError(`CONNECT ${target}: ${errorMessage(err)}`, { cause: err }),
        ),
      );
    }
    // The connection's one listener (no closure per tunnel).
    stream.on('close', conn.releaseOne);
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        stream.off('response', onResponse);
        stream.off('close', onClose);
        stream.off('error', onError);
      };
      const fail = (err: Error) => {
        stream.on('error', ignoreError); // the caller never sees this stream
        reject(err);
      };
      const cancel = (err: Error) => {
        cleanup();
        resetTunnel(stream, ErrorCode.CANCEL);
        fail(err);
      };
      const timer = setTimeout(
        () =>
          cancel(
            new TimeoutError(`CONNECT ${target}: no answer within ${this.responseTimeoutMs} ms`),
          ),
        this.responseTimeoutMs,
      );
      timer.unref();
      const onAbort = () =>
        cancel(new OpenAbortedError(`CONNECT ${target}: aborted`, { cause: req.signal?.reason }));
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const onResponse = (h: Record<string, unknown>) => {
        cleanup();
        const status = Number(h[':status']);
        if (status === 200) {
          // From here until the caller attaches (and after), a session error must never
          // be an unhandled 'error' event: the agent may hold an answered stream while its
          // client goes away, and a GOAWAY or a reset then errors it (issue 19). splice()
          // records the error itself; this listener only keeps it from crashing the process.
          stream.on('error', ignoreError);
          resolve(stream);
          return;
        }
        // The server ended its side with the refusal; end ours (not a reset: resets count
        // against the server's rapid-reset budget) and drain, so the stream closes.
        stream.end();
        stream.resume();
        fail(errorForStatus(status, target));
      };
      let streamError: Error | undefined;
      const onError = (err: Error) => {
        streamError = err;
      };
      const onClose = () => {
        cleanup();
        const err = new ConnectFailedError(
          `CONNECT ${target}: stream closed before an answer (RST_STREAM ${stream.rstCode})`,
          { cause: streamError },
        );
        fail(stream.rstCode === ErrorCode.REFUSED_STREAM ? new RefusedStream(err) : err);
      };
      stream.once('response', onResponse);
      stream.once('close', onClose);
      stream.on('error', onError);
    });
  }
}

/** Internal marker: the server did not process the stream, so one retry is safe. */
class RefusedStream extends Error {
  constructor(readonly error: Error) {
    super(error.message);
  }
}
