// One pooled HTTP/2 connection to a peer, with an explicit lifecycle:
//
//   connecting --(TLS verified + server SETTINGS received)--> ready
//   connecting --(dial/handshake error, timeout, destroy)---> closed
//   ready -------(GOAWAY, idle, rotated, pool closing)------> draining
//   ready | draining --(session closed, error, PING timeout)--> closed
//
// Invariants:
// - streams are only opened in `ready`; `reserved` counts streams opened or promised to a
//   waiter and never exceeds `capacity` (= min(maxStreams, peer's MAX_CONCURRENT_STREAMS)),
//   except that a peer limit below maxStreams is only learned at `ready`: streams promised
//   before that beyond the limit are refused by the peer (REFUSED_STREAM, retried once);
// - in `ready`, the idle timer is armed exactly when reserved === 0;
// - every timer is unref()ed and cleared on the way to `closed`;
// - `ready` (the promise) settles exactly once: resolved on reaching `ready`, rejected with a
//   typed error if the connection closes first.
// Ready waits for the server's SETTINGS, not just the TLS handshake: in TLS 1.3 the client
// finishes its handshake before the server has judged the client certificate, and a
// refusing server simply closes. Waiting turns that into a clear error instead of streams
// dying one by one.
import type { SecureContext } from 'node:tls';
import type { SpiffeId } from '../../identity/spiffe-id.js';
import type { Logger } from '../../lib/logger.js';
import { formatSocketAddr, type SocketAddr } from '../address.js';
import type { WorkloadCertificate } from '../certificates.js';
import {
  ClientClosedError,
  ConnectFailedError,
  logSessionError,
  TimeoutError,
  TlsFailureError,
} from '../errors.js';
import type { RemoteSettings } from '../h2/config.js';
import { ErrorCode } from '../h2/frame.js';
import { H2Session } from '../h2/session.js';
import type { H2Stream } from '../h2/stream.js';
import { keepalive } from '../keepalive.js';
import type { Http2Tuning } from '../settings.js';
import { StateMachine } from '../state-machine.js';
import { dialTls } from './dial.js';

export type ConnectionState = 'connecting' | 'ready' | 'draining' | 'closed';

export interface ConnectionTarget {
  readonly key: string;
  readonly via: SocketAddr;
  readonly servername: string | undefined;
  readonly certificate: WorkloadCertificate;
  readonly bundle: readonly string[];
  readonly context: SecureContext;
  readonly expectedIdentities: readonly SpiffeId[];
}

export interface ConnectionSettings {
  readonly connectTimeoutMs: number;
  readonly maxStreams: number;
  readonly idleTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly http2: Http2Tuning;
}

let nextId = 1;

export class PooledConnection {
  readonly id = nextId++;
  readonly ready: Promise<void>;
  private readonly sm: StateMachine<ConnectionState>;
  private session: H2Session | undefined;
  private reserved = 0;
  private capacity: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private stopKeepalive: () => void = () => {};
  private settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private closeReason: Error | undefined;
  private readonly dialing = new AbortController();
  peerIdentity: SpiffeId | undefined;

  constructor(
    readonly target: ConnectionTarget,
    private readonly settings: ConnectionSettings,
    private readonly log: Logger,
    onStateChange: (conn: PooledConnection, from: ConnectionState, to: ConnectionState) => void,
  ) {
    this.capacity = settings.maxStreams;
    this.sm = new StateMachine<ConnectionState>(
      'connecting',
      `hbone connection ${this.id}`,
      (from, to) => onStateChange(this, from, to),
    );
    this.ready = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.ready.catch(() => {}); // waiters see the rejection; an unawaited one is not a crash
    void this.run();
  }

  get state(): ConnectionState {
    return this.sm.state;
  }

  get activeStreams(): number {
    return this.reserved;
  }

  /** Whether one more stream may be promised on this connection. */
  hasCapacity(): boolean {
    return this.sm.is('connecting', 'ready') && this.reserved < this.capacity;
  }

  reserve(): void {
    if (!this.hasCapacity())
      throw new Error(`hbone connection ${this.id}: reserve without capacity`);
    this.reserved++;
    this.disarmIdle();
  }

  release(): void {
    this.reserved--;
    if (this.reserved === 0 && this.sm.is('ready')) this.armIdle();
  }

  /** release() as one listener per connection, shared by its streams' 'close' (a closure
   *  per stream would live as long as the tunnel). */
  readonly releaseOne = (): void => this.release();

  /** Opens a CONNECT stream; only valid on a ready connection with a reserved slot. */
  request(headers: Record<string, string>): H2Stream {
    if (!this.sm.is('ready') || !this.session) {
      throw new ConnectFailedError(`hbone connection ${this.id} is ${this.sm.state}`);
    }
    return this.session.request(headers);
  }

  /** No new streams; existing ones finish, then the session closes (GOAWAY(NO_ERROR)). */
  drain(reason: string): void {
    if (!this.sm.is('ready')) return;
    this.log.debug({ conn: this.id, reason }, 'hbone connection draining');
    this.sm.transition(['ready'], 'draining');
    this.disarmIdle();
    this.session?.close();
  }

  destroy(err?: Error): void {
    if (this.sm.is('closed')) return;
    this.closeReason ??= err;
    // Every open stream is reset with CONNECT_ERROR, the image of a TCP reset (RFC 9113
    // §8.5): these tunnels are being cut, never ended cleanly. GOAWAY says so too.
    if (this.session)
      this.session.destroy(
        this.closeReason ?? new ClientClosedError('connection destroyed'),
        ErrorCode.CONNECT_ERROR,
      );
    else this.dialing.abort(this.closeReason ?? new ClientClosedError('connection destroyed'));
  }

  private async run(): Promise<void> {
    const t = this.target;
    const deadline = Date.now() + this.settings.connectTimeoutMs;
    try {
      const dialed = await dialTls({
        via: t.via,
        servername: t.servername,
        context: t.context,
        expectedIdentities: t.expectedIdentities,
        timeoutMs: this.settings.connectTimeoutMs,
        signal: this.dialing.signal,
      });
      if (!this.sm.is('connecting')) {
        dialed.socket.destroy(); // destroyed while dialing (pool closed)
        return;
      }
      this.peerIdentity = dialed.peerIdentity;
      const h = this.settings.http2;
      // The session never stops reading while its writes wait, so two busy peers cannot
      // deadlock on each other's full windows (h2/session.ts, "output").
      const session = new H2Session(dialed.socket, {
        role: 'client',
        local: {
          streamWindowBytes: h.streamWindowBytes,
          connectionWindowBytes: h.connectionWindowBytes,
          maxFrameBytes: h.maxFrameBytes,
          maxConcurrentStreams: this.settings.maxStreams,
          maxHeaderListBytes: 16 * 1024,
        },
      });
      this.session = session;
      session.on('error', (err: Error) => {
        this.closeReason ??= err;
        logSessionError(this.log, err);
      });
      // A GOAWAY, whatever its code, lets the streams up to its last stream id finish
      // (RFC 9113 §6.8; the h2 crate under ztunnel's pool does the same): an nghttp2 server
      // sends GOAWAY(INTERNAL_ERROR) past its RST_STREAM rate, which a busy pool of
      // applications that end with resets reaches by itself (issue 12).
      session.on('goaway', (code: number, lastStreamId: number) => {
        this.closeReason ??= new ConnectFailedError(`server sent GOAWAY (code ${code})`);
        if (code !== ErrorCode.NO_ERROR) {
          this.log.warn(
            { conn: this.id, peer: formatSocketAddr(t.via), code, lastStreamId },
            'hbone: server sent GOAWAY with an error; open tunnels continue, new ones use another connection',
          );
        }
        this.drain(`GOAWAY ${code}`);
      });
      session.once('close', () => this.toClosed());
      const timer = setTimeout(
        () =>
          this.destroy(
            new TimeoutError(`no HTTP/2 SETTINGS from ${formatSocketAddr(t.via)} in time`),
          ),
        Math.max(0, deadline - Date.now()),
      );
      timer.unref();
      session.once('remoteSettings', (remote: RemoteSettings) => {
        clearTimeout(timer);
        if (!this.sm.is('connecting')) return;
        this.capacity = Math.min(this.settings.maxStreams, remote.maxConcurrentStreams);
        this.sm.transition(['connecting'], 'ready');
        this.startKeepalive(session);
        if (this.reserved === 0) this.armIdle();
        this.settle?.resolve();
        this.settle = undefined;
      });
    } catch (err) {
      this.closeReason ??= err as Error;
      this.toClosed();
    }
  }

  private toClosed(): void {
    if (this.sm.is('closed')) return;
    const wasConnecting = this.sm.is('connecting');
    this.sm.transition(['connecting', 'ready', 'draining'], 'closed');
    this.disarmIdle();
    this.stopKeepalive();
    if (this.settle) {
      this.settle.reject(this.connectFailure());
      this.settle = undefined;
    }
    if (!wasConnecting) this.log.debug({ conn: this.id }, 'hbone connection closed');
  }

  /** Why `ready` failed. A close after a verified TLS handshake but before SETTINGS, for
   *  no reason of ours, is the server refusing our certificate. */
  private connectFailure(): Error {
    const reason = this.closeReason;
    if (
      this.session &&
      !(reason instanceof TimeoutError) &&
      !(reason instanceof ClientClosedError)
    ) {
      return new TlsFailureError(
        `${formatSocketAddr(this.target.via)} closed the connection after the TLS handshake ` +
          'without HTTP/2 SETTINGS: in TLS 1.3 that is how a server refuses a client ' +
          'certificate (its log says why)',
        { cause: reason },
      );
    }
    return reason ?? new ConnectFailedError(`hbone connection ${this.id} closed while connecting`);
  }

  private armIdle(): void {
    if (this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.drain('idle');
    }, this.settings.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private disarmIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private startKeepalive(session: H2Session): void {
    this.stopKeepalive = keepalive(
      session,
      this.settings.keepaliveIntervalMs,
      this.settings.keepaliveTimeoutMs,
      () => {
        this.log.warn({ conn: this.id }, 'hbone connection: PING not answered, closing');
        this.destroy(new TimeoutError(`no PING ack within ${this.settings.keepaliveTimeoutMs} ms`));
      },
    );
  }
}
