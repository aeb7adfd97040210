// Client side TLS: one secure context per (certificate, trust bundle) pair, built once and
// reused by every connection until rotation hands us new objects; and the dial itself,
// which resolves only for a socket whose peer is verified (chain, X.509-SVID, secure naming).
import { connect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { SpiffeId } from '../../identity/spiffe-id.js';
import { errorMessage } from '../../lib/errors.js';
import { formatSocketAddr, type SocketAddr } from '../address.js';
import {
  PerMaterial,
  tlsMaterial,
  verifiedPeerIdentity,
  type WorkloadCertificate,
} from '../certificates.js';
import {
  ConnectFailedError,
  IdentityMismatchError,
  IdentityUnavailableError,
  TimeoutError,
  TlsFailureError,
} from '../errors.js';
import { ALPN_H2, TLS_OPTIONS } from '../settings.js';

export class ClientContexts {
  private readonly contexts = new PerMaterial<SecureContext>();

  get(cert: WorkloadCertificate, bundle: readonly string[]): SecureContext {
    return this.contexts.get(cert, bundle, () => {
      try {
        return createSecureContext({ ...TLS_OPTIONS, ...tlsMaterial(cert, bundle) });
      } catch (err) {
        throw new IdentityUnavailableError(
          `certificate of ${cert.identity} is unusable: ${errorMessage(err)}`,
          { cause: err },
        );
      }
    });
  }
}

export interface DialRequest {
  readonly via: SocketAddr;
  /** Undefined: no SNI (the captured destination address is dialed). */
  readonly servername: string | undefined;
  readonly context: SecureContext;
  readonly expectedIdentities: readonly SpiffeId[];
  readonly timeoutMs: number;
  /** Aborting destroys the socket at once (the pool is closing). */
  readonly signal: AbortSignal;
}

export interface DialedSocket {
  readonly socket: TLSSocket;
  readonly peerIdentity: SpiffeId;
}

/** TCP + TLS 1.3 handshake + verification; rejects with a typed error, never leaks the socket. */
export function dialTls(req: DialRequest): Promise<DialedSocket> {
  const where = formatSocketAddr(req.via);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: req.via.ip,
      port: req.via.port,
      secureContext: req.context,
      ALPNProtocols: ALPN_H2,
      ...(req.servername === undefined ? {} : { servername: req.servername }),
      // We judge the chain and the SPIFFE ID ourselves (below) to get a typed reason;
      // Node's DNS-name check does not apply to SPIFFE certificates at all.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 180_000); // ztunnel's TCP keepalive idle time
    let tcpConnected = false;
    const fail = (err: Error) => {
      clearTimeout(timer);
      req.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    };
    const onAbort = () => fail(req.signal.reason as Error);
    req.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () =>
        fail(
          new TimeoutError(
            `connecting to ${where}: no verified TLS session after ${req.timeoutMs} ms`,
          ),
        ),
      req.timeoutMs,
    );
    timer.unref();
    socket.once('connect', () => {
      tcpConnected = true;
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      fail(
        tcpConnected
          ? new TlsFailureError(`TLS handshake with ${where} failed: ${err.message}`, {
              cause: err,
            })
          : new ConnectFailedError(`TCP connect to ${where} failed: ${err.code ?? err.message}`, {
              cause: err,
            }),
      );
    });
    socket.once('secureConnect', () => {
      try {
        if (socket.alpnProtocol !== 'h2') {
          throw new TlsFailureError(
            `${where} did not negotiate ALPN h2 (got ${String(socket.alpnProtocol)})`,
          );
        }
        const peerIdentity = verifiedPeerIdentity(socket, 'server');
        if (!req.expectedIdentities.some((id) => id.equals(peerIdentity))) {
          throw new IdentityMismatchError(
            `${where} presented ${peerIdentity}, expected one of ${req.expectedIdentities.join(', ')}`,
          );
        }
        clearTimeout(timer);
        req.signal.removeEventListener('abort', onAbort);
        // The 'error' listener above stays: after this, a late error only destroys the
        // socket (the HTTP/2 session on top of it sees the close) and the settled promise
        // ignores the rejection.
        resolve({ socket, peerIdentity });
      } catch (err) {
        fail(err as Error);
      }
    });
  });
}
