// Server-side TLS: which certificate to present, and the verdict on the client's.
//
// The certificate depends on the connection (the captured destination, or the SNI), which
// is known only after accept and may need an async lookup, so a single tls.Server cannot
// serve. Instead there is one non-listening tls.Server ("acceptor") per (certificate,
// bundle) pair, built once and reused until rotation hands us new objects, and the
// listener injects each raw socket into the right one. Acceptors run with
// requestCert:true, rejectUnauthorized:false: Node then records OpenSSL's verdict in
// `authorized`/`authorizationError` instead of silently dropping a bad client, and the
// server logs the reason. An SNI, when present, switches the presented certificate during
// the handshake (Node keeps the acceptor's trust store, so the bundle stays the same).
import {
  createSecureContext,
  createServer,
  type SecureContext,
  type Server,
  type TLSSocket,
} from 'node:tls';
import { PerMaterial, tlsMaterial, type WorkloadCertificate } from '../certificates.js';
import { ALPN_H2, TLS_OPTIONS } from '../settings.js';

export type SniCallback = (
  servername: string,
  cb: (err: Error | null, ctx?: SecureContext) => void,
) => void;

export interface AcceptorEvents {
  readonly onSecure: (socket: TLSSocket) => void;
  readonly onTlsError: (err: Error, socket: TLSSocket) => void;
  readonly sniCallback: SniCallback;
  readonly handshakeTimeoutMs: number;
}

export class Acceptors {
  private readonly byCert = new PerMaterial<Server>();
  private readonly sniOnly = new WeakMap<readonly string[], Server>();
  private readonly contexts = new PerMaterial<SecureContext>();

  constructor(private readonly events: AcceptorEvents) {}

  /** The acceptor presenting `cert` by default (an SNI may still switch it). */
  forCertificate(cert: WorkloadCertificate, bundle: readonly string[]): Server {
    return this.byCert.get(cert, bundle, () => this.create(tlsMaterial(cert, bundle)));
  }

  /** An acceptor with no default certificate: the handshake succeeds only if the client
   *  sends an SNI that selects one. */
  withoutDefault(bundle: readonly string[]): Server {
    let server = this.sniOnly.get(bundle);
    if (!server) {
      server = this.create({ ca: [...bundle] });
      this.sniOnly.set(bundle, server);
    }
    return server;
  }

  /** The context an SNI switches to. */
  sniContext(cert: WorkloadCertificate, bundle: readonly string[]): SecureContext {
    return this.contexts.get(cert, bundle, () =>
      createSecureContext({ ...TLS_OPTIONS, ...tlsMaterial(cert, bundle) }),
    );
  }

  private create(material: { key?: string; cert?: string; ca: string[] }): Server {
    const server = createServer({
      ...TLS_OPTIONS,
      ...material,
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ALPN_H2,
      handshakeTimeout: this.events.handshakeTimeoutMs,
      SNICallback: this.events.sniCallback,
    });
    server.on('secureConnection', this.events.onSecure);
    server.on('tlsClientError', this.events.onTlsError);
    return server;
  }
}
