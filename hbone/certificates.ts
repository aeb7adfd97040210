// How hbone gets key material (a small interface, never a CA client) and how it judges a
// peer's certificate. Invariant: an identity is only ever taken from the leaf's single
// SPIFFE URI SAN read from DER, and only after OpenSSL verified the chain against the
// trust bundle; DNS names and Node's display strings are never looked at.
import type { TLSSocket } from 'node:tls';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { checkLeafSvid } from '../identity/svid.js';
import { errorMessage } from '../lib/errors.js';
import { IdentityMismatchError, TlsFailureError } from './errors.js';

/** A workload's X.509-SVID and key, ready for node:tls. */
export interface WorkloadCertificate {
  readonly identity: SpiffeId;
  readonly keyPem: string;
  /** Leaf first, then intermediates up to (not including) the root. */
  readonly certChainPem: readonly string[];
}

/**
 * Where certificates come from (the agent's certificate manager, or a test's in-memory
 * PKI). Contract that makes caching and rotation cheap: return the SAME object until the
 * material changes; a different object means "rotated", and hbone then builds a new secure
 * context for new connections (existing connections keep theirs and are drained).
 */
export interface CertificateSource {
  /** Throws if no certificate is available (yet) for `id`. */
  forIdentity(id: SpiffeId): Promise<WorkloadCertificate>;
  /** PEM roots that peers must chain to. */
  trustBundle(): Promise<readonly string[]>;
}

/** An in-memory source: tests, benchmarks and tools that hold their PEMs themselves. */
export class StaticCertificateSource implements CertificateSource {
  private readonly certs = new Map<string, WorkloadCertificate>();
  private bundle: readonly string[];

  constructor(bundle: readonly string[], certs: readonly WorkloadCertificate[] = []) {
    this.bundle = Object.freeze([...bundle]);
    for (const c of certs) this.put(c);
  }

  /** Adds or rotates a certificate. */
  put(cert: WorkloadCertificate): void {
    this.certs.set(cert.identity.toString(), Object.freeze({ ...cert }));
  }

  setTrustBundle(bundle: readonly string[]): void {
    this.bundle = Object.freeze([...bundle]);
  }

  async forIdentity(id: SpiffeId): Promise<WorkloadCertificate> {
    const cert = this.certs.get(id.toString());
    if (!cert) throw new Error(`no certificate for ${id}`);
    return cert;
  }

  async trustBundle(): Promise<readonly string[]> {
    return this.bundle;
  }
}

/** The peer's SPIFFE ID once its chain verified and its leaf is a valid X.509-SVID;
 *  otherwise a TlsFailureError (no certificate, untrusted chain) or IdentityMismatchError. */
export function verifiedPeerIdentity(socket: TLSSocket, side: 'client' | 'server'): SpiffeId {
  const peer = socket.getPeerX509Certificate();
  if (!peer) {
    throw new TlsFailureError(`the ${side} presented no certificate`);
  }
  if (!socket.authorized) {
    // authorizationError is OpenSSL's verdict on the chain (e.g. CERT_HAS_EXPIRED,
    // UNABLE_TO_VERIFY_LEAF_SIGNATURE) against the trust bundle in our secure context.
    throw new TlsFailureError(
      `the ${side}'s certificate chain is not trusted: ${String(socket.authorizationError)}`,
    );
  }
  try {
    return checkLeafSvid(peer.raw);
  } catch (err) {
    throw new IdentityMismatchError(
      `the ${side}'s certificate is not a valid X.509-SVID: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/** The node:tls options that present `cert` and trust `bundle` (TLS_OPTIONS not included). */
export function tlsMaterial(
  cert: WorkloadCertificate,
  bundle: readonly string[],
): { key: string; cert: string; ca: string[] } {
  return { key: cert.keyPem, cert: cert.certChainPem.join('\n'), ca: [...bundle] };
}

/** Per (certificate, bundle) memo for things built from key material (secure contexts, TLS
 *  acceptors): built once, reused until rotation hands out new objects, and dropped with
 *  them (WeakMaps), so nothing is rebuilt per connection and nothing stale is kept. */
export class PerMaterial<V> {
  private readonly byCert = new WeakMap<WorkloadCertificate, WeakMap<readonly string[], V>>();

  get(cert: WorkloadCertificate, bundle: readonly string[], build: () => V): V {
    let byBundle = this.byCert.get(cert);
    if (!byBundle) {
      byBundle = new WeakMap();
      this.byCert.set(cert, byBundle);
    }
    let value = byBundle.get(bundle);
    if (value === undefined) {
      value = build();
      byBundle.set(bundle, value);
    }
    return value;
  }
}
