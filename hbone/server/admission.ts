// From an accepted TCP connection to an admitted mTLS peer, or a logged refusal.
//
// Steps: choose the identity to present (async: the captured destination may need a
// lookup, or an SNI decides), inject the socket into that identity's acceptor, wait for
// the handshake, then judge the client: ALPN h2, a chain OpenSSL verified against the
// bundle, a valid X.509-SVID, and the server's own trust domain (which identity may
// connect is policy's job, not ours).
//
// Invariants:
// - a connection is in `pending` from the moment it is injected until it is admitted,
//   refused or closed, and at most handshakeTimeoutMs pass from accept to a verdict;
// - every refusal is logged exactly once, with the peer address and the reason: the
//   acceptor's tlsClientError when it can be tied to the connection, otherwise the raw
//   socket's close ("closed during the handshake").
// Acceptor events name the TLS socket, not the raw socket we injected; both share the TCP
// 4-tuple, which identifies the connection while it is open.
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { SpiffeId } from '../../identity/spiffe-id.js';
import { spiffeIdOf } from '../../identity/svid.js';
import { errorMessage } from '../../lib/errors.js';
import { formatSocketAddr, type SocketAddr, socketAddr } from '../address.js';
import { type CertificateSource, verifiedPeerIdentity } from '../certificates.js';
import { IdentityMismatchError, TlsFailureError } from '../errors.js';
import { destinationFromSni } from '../sni.js';
import { Acceptors } from './acceptors.js';
import type { PeerInfo } from './connect.js';
import type { Refusals } from './refusals.js';

/** How the server learns which certificate to present. */
export type IdentityRequest =
  | {
      /** Before any SNI: the connection as accepted (the agent reads SO_ORIGINAL_DST from it). */
      readonly kind: 'connection';
      readonly local: SocketAddr;
      readonly remote: SocketAddr;
      readonly socket: Socket;
    }
  | { readonly kind: 'sni'; readonly servername: string; readonly destinationIp: string };

export interface ServerRoute {
  readonly identity: SpiffeId;
  /** The destination IP this connection was dialed for; CONNECTs to other IPs get 400. */
  readonly destinationIp?: string;
}

export type SelectIdentity = (
  req: IdentityRequest,
) => ServerRoute | undefined | Promise<ServerRoute | undefined>;

export interface AdmissionOptions {
  readonly certificates: CertificateSource;
  readonly selectIdentity: SelectIdentity;
  readonly handshakeTimeoutMs: number;
  /** Connections accepted but not yet admitted or refused, in all and per source IP: past
   *  either, a new connection is refused at once (a peer that opens connections and never
   *  finishes them would otherwise hold memory and descriptors for a whole timeout each). */
  readonly maxHandshakes: number;
  readonly maxHandshakesPerSource: number;
  readonly refusals: Refusals;
  readonly admit: (socket: TLSSocket, peer: PeerInfo) => void;
}

interface Pending {
  readonly raw: Socket;
  readonly remote: SocketAddr;
  readonly route: ServerRoute | undefined;
  readonly timer: NodeJS.Timeout;
  readonly release: () => void;
  settled: boolean;
}

function tupleOf(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}

function addrOf(address: string | undefined, port: number | undefined): SocketAddr {
  return socketAddr(address ?? '0.0.0.0', port || 1);
}

export class Admission {
  private readonly pending = new Map<string, Pending>();
  private readonly acceptors: Acceptors;
  private readonly ownIds = new Map<string, SpiffeId>();
  private readonly inFlightBySource = new Map<string, number>();
  private inFlight = 0;

  constructor(private readonly opts: AdmissionOptions) {
    this.acceptors = new Acceptors({
      onSecure: (s) => this.onSecure(s),
      onTlsError: (err, s) => this.onTlsError(err, s),
      sniCallback: (name, cb) => this.onSni(name, cb),
      handshakeTimeoutMs: opts.handshakeTimeoutMs,
    });
  }

  /** Connections accepted and not yet admitted or refused. */
  get handshaking(): number {
    return this.inFlight;
  }

  /** Drops every connection still in its handshake. */
  abort(): void {
    for (const p of this.pending.values()) p.raw.destroy();
  }

  async accept(raw: Socket): Promise<void> {
    const remote = addrOf(raw.remoteAddress, raw.remotePort);
    const release = this.countIn(remote.ip);
    if (!release) {
      this.refuse(
        remote,
        'HBONE_OVERLOADED',
        `too many connections in their handshake (${this.inFlight} in all, at most ${this.opts.maxHandshakesPerSource} per source)`,
      );
      raw.resetAndDestroy();
      return;
    }
    const tuple = tupleOf(raw);
    let entry: Pending | undefined;
    const timer = setTimeout(() => {
      if (entry) entry.settled = true;
      this.refuse(
        remote,
        'HBONE_TIMEOUT',
        `no TLS handshake within ${this.opts.handshakeTimeoutMs} ms`,
      );
      raw.destroy();
    }, this.opts.handshakeTimeoutMs);
    timer.unref();
    raw.once('close', () => {
      clearTimeout(timer);
      release();
      if (!entry || this.pending.get(tuple) !== entry) return;
      this.pending.delete(tuple);
      if (!entry.settled)
        this.refuse(remote, 'HBONE_TLS_FAILURE', 'connection closed during the TLS handshake');
    });
    try {
      const route = await this.opts.selectIdentity({
        kind: 'connection',
        local: addrOf(raw.localAddress, raw.localPort),
        remote,
        socket: raw,
      });
      const bundle = await this.opts.certificates.trustBundle();
      const acceptor = route
        ? this.acceptors.forCertificate(
            await this.opts.certificates.forIdentity(route.identity),
            bundle,
          )
        : this.acceptors.withoutDefault(bundle);
      if (raw.destroyed) return;
      entry = { raw, remote, route, timer, release, settled: false };
      this.pending.set(tuple, entry);
      raw.setKeepAlive(true, 180_000);
      acceptor.emit('connection', raw);
    } catch (err) {
      clearTimeout(timer);
      this.refuse(
        remote,
        'HBONE_IDENTITY_UNAVAILABLE',
        `no certificate to present: ${errorMessage(err)}`,
      );
      raw.destroy();
    }
  }

  private onSni(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void {
    const destinationIp = destinationFromSni(servername);
    if (destinationIp === undefined) {
      cb(new Error(`SNI ${JSON.stringify(servername)} does not name an HBONE destination`));
      return;
    }
    const choose = async () => {
      const route = await this.opts.selectIdentity({ kind: 'sni', servername, destinationIp });
      if (!route) throw new Error(`no workload identity for SNI destination ${destinationIp}`);
      const [cert, bundle] = await Promise.all([
        this.opts.certificates.forIdentity(route.identity),
        this.opts.certificates.trustBundle(),
      ]);
      return this.acceptors.sniContext(cert, bundle);
    };
    choose().then(
      (ctx) => cb(null, ctx),
      (err: Error) => cb(err),
    );
  }

  /** Takes the connection out of `pending`; undefined if it is not (or no longer) there. */
  private settle(socket: TLSSocket): Pending | undefined {
    const tuple = tupleOf(socket);
    const entry = this.pending.get(tuple);
    if (!entry || entry.settled) return undefined;
    entry.settled = true;
    clearTimeout(entry.timer);
    entry.release();
    this.pending.delete(tuple);
    return entry;
  }

  /** Counts a new connection in; undefined (and nothing counted) when over a limit. The
   *  returned release is idempotent. */
  private countIn(ip: string): (() => void) | undefined {
    const fromSource = this.inFlightBySource.get(ip) ?? 0;
    if (this.inFlight >= this.opts.maxHandshakes || fromSource >= this.opts.maxHandshakesPerSource)
      return undefined;
    this.inFlight++;
    this.inFlightBySource.set(ip, fromSource + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      const left = (this.inFlightBySource.get(ip) ?? 1) - 1;
      if (left === 0) this.inFlightBySource.delete(ip);
      else this.inFlightBySource.set(ip, left);
    };
  }

  private onTlsError(err: Error, socket: TLSSocket): void {
    const entry = this.settle(socket);
    socket.destroy();
    // Unresolvable: the socket is already closed, and its raw socket's close logs it.
    if (entry)
      this.refuse(entry.remote, 'HBONE_TLS_FAILURE', `TLS handshake failed: ${err.message}`);
  }

  private onSecure(socket: TLSSocket): void {
    const entry = this.settle(socket);
    if (!entry) {
      socket.destroy();
      return;
    }
    let peer: PeerInfo;
    try {
      if (socket.alpnProtocol !== 'h2') {
        throw new TlsFailureError(
          `client did not negotiate ALPN h2 (got ${String(socket.alpnProtocol)})`,
        );
      }
      const peerIdentity = verifiedPeerIdentity(socket, 'client');
      const localIdentity = this.ownIdentity(socket);
      if (peerIdentity.trustDomain !== localIdentity.trustDomain) {
        throw new IdentityMismatchError(
          `client identity ${peerIdentity} is outside our trust domain ${localIdentity.trustDomain}`,
        );
      }
      const sniIp = socket.servername ? destinationFromSni(socket.servername) : undefined;
      peer = {
        peerIdentity,
        peerAddress: entry.remote,
        localIdentity,
        dialedIp: sniIp ?? entry.route?.destinationIp,
      };
    } catch (err) {
      this.refuse(
        entry.remote,
        (err as { code?: string }).code ?? 'HBONE_TLS_FAILURE',
        errorMessage(err),
      );
      socket.destroy();
      return;
    }
    this.opts.admit(socket, peer);
  }

  /** The identity of the certificate we presented (an SNI may have switched it). */
  private ownIdentity(socket: TLSSocket): SpiffeId {
    const own = socket.getX509Certificate();
    if (!own) throw new TlsFailureError('no server certificate was presented');
    let id = this.ownIds.get(own.fingerprint256);
    if (!id) {
      id = spiffeIdOf(own.raw);
      if (this.ownIds.size >= 1024) this.ownIds.clear(); // rotated-away certificates
      this.ownIds.set(own.fingerprint256, id);
    }
    return id;
  }

  private refuse(remote: SocketAddr, code: string, reason: string): void {
    this.opts.refusals.refuse(code, reason, { from: formatSocketAddr(remote) });
  }
}
