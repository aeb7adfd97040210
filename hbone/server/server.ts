// The HBONE server: a TCP listener whose connections are admitted by admission.ts (mTLS,
// every refusal logged with its reason) and then become HTTP/2 sessions whose CONNECT
// streams are checked by connect.ts and handed to `onTunnel` as IncomingTunnels: the server
// never decides, dials or splices (the agent does, agent/proxy/inbound.ts; forward.ts is the
// plain gateway for the library's own users).
//
// Invariants:
// - an admitted connection is in `sessions` until its HTTP/2 session closes; a session
//   with no stream for idleTimeoutMs is closed gracefully (GOAWAY);
// - streams cancelled by the client before our answer draw on a per-session budget; a
//   session that overdraws it (HTTP/2 rapid reset, CVE-2023-44487) is closed with
//   ENHANCE_YOUR_CALM (the engine's own flood limits stay on underneath, h2/session.ts);
// - close() stops accepting, sends GOAWAY, lets tunnels finish for graceMs, then destroys.
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../lib/logger.js';
import { formatSocketAddr, type SocketAddr, socketAddr } from '../address.js';
import type { CertificateSource } from '../certificates.js';
import { logSessionError } from '../errors.js';
import { ErrorCode } from '../h2/frame.js';
import { H2Session } from '../h2/session.js';
import type { H2Stream } from '../h2/stream.js';
import { keepalive } from '../keepalive.js';
import { DEFAULT_HTTP2, type Http2Tuning } from '../settings.js';
import { resetTunnel } from '../splice.js';
import { Admission, type SelectIdentity } from './admission.js';
import { handleConnect, type PeerInfo, type StreamContext, type TunnelSink } from './connect.js';
import { forwardTunnel } from './forward.js';
import { Refusals } from './refusals.js';
import { ResetBudget } from './reset-budget.js';

export interface HboneServerOptions {
  readonly certificates: CertificateSource;
  readonly selectIdentity: SelectIdentity;
  /** Takes each CONNECT that passed the protocol checks, to refuse or accept it (default:
   *  forward.ts, connect to the target and splice). */
  readonly onTunnel?: TunnelSink;
  readonly logger: Logger;
  /** From accept to a verified TLS session. */
  readonly handshakeTimeoutMs?: number;
  /** From admission to the client's HTTP/2 preface (its SETTINGS). */
  readonly prefaceTimeoutMs?: number;
  /** Connections still in their handshake, in all and per source IP (admission.ts). */
  readonly maxHandshakes?: number;
  readonly maxHandshakesPerSource?: number;
  /** PING each session this often, and close it when an answer takes longer than the
   *  timeout (ztunnel's h2 server: 10 s / 20 s, src/proxy/h2.rs do_ping_pong). */
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
  /** Close a session that has had no stream for this long (longer than the client's 5 min). */
  readonly idleTimeoutMs?: number;
  /** Per connection; ztunnel's server allows 200 (its clients use 100). */
  readonly maxConcurrentStreams?: number;
  readonly maxConnections?: number;
  readonly maxHeaderListBytes?: number;
  /** Streams a client may cancel before our answer: burst, then per second. */
  readonly earlyResetBurst?: number;
  readonly earlyResetPerSecond?: number;
  readonly http2?: Partial<Http2Tuning>;
}

export interface ServerStats {
  readonly handshaking: number;
  readonly sessions: number;
  readonly tunnels: number;
  /** Connections and streams refused so far, by code (each also logged, rate-limited). */
  readonly refusals: Record<string, number>;
}

export class HboneServer {
  private readonly net: NetServer;
  private readonly admission: Admission;
  /** Each admitted session with its open streams (to reset them when it is cut). */
  private readonly sessions = new Map<H2Session, Set<H2Stream>>();
  private readonly streamContext: StreamContext;
  private readonly tuning: Http2Tuning;
  private readonly log: Logger;
  private readonly refusals: Refusals;
  private tunnels = 0;

  private constructor(private readonly opts: HboneServerOptions) {
    this.log = opts.logger;
    this.tuning = { ...DEFAULT_HTTP2, ...opts.http2 };
    this.refusals = new Refusals(this.log);
    this.admission = new Admission({
      certificates: opts.certificates,
      selectIdentity: opts.selectIdentity,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      maxHandshakes: opts.maxHandshakes ?? 2_048,
      maxHandshakesPerSource: opts.maxHandshakesPerSource ?? 256,
      refusals: this.refusals,
      admit: (socket, peer) => this.admit(socket, peer),
    });
    // pauseOnConnect: nothing is read until the socket is handed to its TLS acceptor.
    this.net = createNetServer(
      { pauseOnConnect: true, allowHalfOpen: true, noDelay: true },
      (raw) => void this.admission.accept(raw),
    );
    this.net.maxConnections = opts.maxConnections ?? 16_384;
    this.streamContext = {
      onTunnel: opts.onTunnel ?? ((tunnel) => void forwardTunnel(tunnel)),
      maxHeaderListBytes: opts.maxHeaderListBytes ?? 16 * 1024,
      log: this.log,
      refusals: this.refusals,
      onEarlyReset: () => {},
      onAccepted: () => {
        this.tunnels++;
      },
      onAcceptedClosed: () => {
        this.tunnels--;
      },
    };
  }

  /** Binds and listens; rejects with the bind error (EADDRINUSE, EACCES, ...). */
  static async listen(
    opts: HboneServerOptions,
    at: { host: string; port: number },
  ): Promise<HboneServer> {
    const server = new HboneServer(opts);
    await new Promise<void>((resolve, reject) => {
      server.net.once('error', reject);
      server.net.listen({ host: at.host, port: at.port }, () => {
        server.net.off('error', reject);
        resolve();
      });
    });
    server.net.on('error', (err) => server.log.error({ err: err.message }, 'hbone listener error'));
    return server;
  }

  address(): SocketAddr {
    const a = this.net.address();
    if (!a || typeof a === 'string') throw new Error('hbone server is not listening');
    return socketAddr(a.address, a.port);
  }

  stats(): ServerStats {
    return {
      handshaking: this.admission.handshaking,
      sessions: this.sessions.size,
      tunnels: this.tunnels,
      refusals: this.refusals.counts(),
    };
  }

  /** Stops accepting, sends GOAWAY to every session, waits up to graceMs for their tunnels,
   *  then destroys whatever is left. */
  async close(graceMs = 5_000): Promise<void> {
    this.net.close();
    this.admission.abort();
    const all = [...this.sessions.keys()];
    for (const s of all) s.close();
    const closed = Promise.all(
      all.map((s) => (s.destroyed ? undefined : new Promise((r) => s.once('close', r)))),
    );
    const grace = new Promise((r) => setTimeout(r, graceMs).unref());
    await Promise.race([closed, grace]);
    for (const [s, open] of this.sessions) cut(s, open, 'the drain period is over');
    // The resets are flushed as the sessions close (at most a second more).
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1_100).unref())]);
  }

  /** An admitted connection becomes a session. Its socket's end is the session's end (a
   *  peer that finishes TLS and then half-closes does not hold the connection), and it
   *  never stops reading while its writes wait (h2/session.ts). */
  private admit(socket: TLSSocket, peer: PeerInfo): void {
    const session = new H2Session(socket, {
      role: 'server',
      local: {
        ...this.tuning,
        maxConcurrentStreams: this.opts.maxConcurrentStreams ?? 200,
        maxHeaderListBytes: this.opts.maxHeaderListBytes ?? 16 * 1024,
      },
    });
    this.onSession(session, peer);
  }

  private onSession(session: H2Session, peer: PeerInfo): void {
    const open = new Set<H2Stream>();
    this.sessions.set(session, open);
    const budget = new ResetBudget(
      this.opts.earlyResetBurst ?? 200,
      this.opts.earlyResetPerSecond ?? 50,
    );
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      idle = setTimeout(() => session.close(), this.opts.idleTimeoutMs ?? 10 * 60_000);
      idle.unref();
    };
    armIdle();
    const prefaceMs = this.opts.prefaceTimeoutMs ?? 10_000;
    const preface = setTimeout(() => {
      this.refusals.refuse('HBONE_TIMEOUT', `no HTTP/2 preface within ${prefaceMs} ms`, {
        peer: peer.peerIdentity.toString(),
        from: formatSocketAddr(peer.peerAddress),
      });
      session.destroy();
    }, prefaceMs);
    preface.unref();
    session.once('remoteSettings', () => clearTimeout(preface));
    // A client that dies without closing (SIGKILL, a node lost) must not hold its tunnels and
    // their upstream sockets: seen with a killed client agent, whose reset this session never
    // read while its streams were busy (issue 12).
    const stopPinging = keepalive(
      session,
      this.opts.keepaliveIntervalMs ?? 10_000,
      this.opts.keepaliveTimeoutMs ?? 20_000,
      () => cut(session, open, 'no PING answer'),
    );
    const ctx: StreamContext = {
      ...this.streamContext,
      onEarlyReset: () => {
        if (session.destroyed || budget.take()) return;
        this.refusals.refuse(
          'HBONE_RAPID_RESET',
          'too many streams reset before an answer (rapid reset): connection closed',
          { peer: peer.peerIdentity.toString(), from: formatSocketAddr(peer.peerAddress) },
          'hbone: too many streams reset before an answer (rapid reset), closing the connection',
        );
        session.destroy(new Error('rapid reset'), ErrorCode.ENHANCE_YOUR_CALM);
      },
    };
    // One listener per session for its streams' ends (`this` is the stream), not a closure
    // per stream: it would live as long as the tunnel.
    const streamClosed = function (this: H2Stream): void {
      open.delete(this);
      if (open.size === 0 && !session.closed) armIdle();
    };
    session.on('stream', (stream: H2Stream, headers: Record<string, string>) => {
      open.add(stream);
      clearTimeout(idle);
      stream.on('close', streamClosed);
      handleConnect(stream, headers, peer, ctx);
    });
    session.on('error', (err: Error) => logSessionError(this.log, err));
    session.once('close', () => {
      clearTimeout(idle);
      clearTimeout(preface);
      stopPinging();
      this.sessions.delete(session);
    });
  }
}

/** Ends a session with tunnels still open: each cut tunnel is reset with CONNECT_ERROR, the
 *  image of a TCP reset (RFC 9113 §8.5; never NO_ERROR, which ztunnel reads as a complete
 *  transfer), and the session is then closed gracefully, which flushes those frames before
 *  the socket ends; it is destroyed a second later if it has not gone by then. */
function cut(session: H2Session, open: Set<H2Stream>, why: string): void {
  if (session.destroyed) return;
  for (const stream of open) resetTunnel(stream);
  session.close();
  setTimeout(() => {
    if (!session.destroyed) session.destroy(new Error(why), ErrorCode.CONNECT_ERROR);
  }, 1_000).unref();
}
