// Decides and signs one certificate request: proof of possession, key type, exactly one
// SPIFFE URI SAN in our trust domain, node authorization against the mesh model, TTL
// clamped. Pure of transport: the HTTP server authenticates the node and maps errors.
import { createPublicKey } from 'node:crypto';
import { SpiffeId } from '../identity/spiffe-id.js';
import { EC_P256, x509 } from '../identity/x509.js';
import { errorMessage } from '../lib/errors.js';
import type { MeshSnapshot } from '../mesh/snapshot.js';
import { CaError } from './errors.js';
import { type Authority, BACKDATE_MS, intermediatesOf, issueLeaf } from './pki.js';

export interface IssueRequest {
  readonly node: string;
  readonly csrPem: string;
  readonly ttlSeconds: number | undefined;
}

export interface Issued {
  readonly id: SpiffeId;
  readonly leaf: x509.X509Certificate;
  readonly chain: readonly x509.X509Certificate[];
  readonly roots: readonly x509.X509Certificate[];
  readonly serial: string;
  readonly expiresAt: Date;
}

export interface IssuerOptions {
  readonly authority: Authority;
  readonly trustDomain: string;
  readonly maxTtlMs: number;
  /** The current mesh model (node authorization reads the latest snapshot per request). */
  readonly mesh: () => MeshSnapshot;
  readonly now?: () => Date;
}

const CSR_PEM =
  /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\s+[A-Za-z0-9+/=\s]+-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;

export class Issuer {
  readonly #opts: IssuerOptions;

  constructor(opts: IssuerOptions) {
    this.#opts = opts;
  }

  /** Parses and checks a CSR without node authorization: returns the identity it asks for. */
  async inspect(csrPem: string): Promise<{ csr: x509.Pkcs10CertificateRequest; id: SpiffeId }> {
    if (!CSR_PEM.test(csrPem)) {
      throw new CaError(
        'BAD_CSR',
        'csr: expected one PEM block "-----BEGIN CERTIFICATE REQUEST-----"',
      );
    }
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (err) {
      throw new CaError('BAD_CSR', 'csr: not a parsable PKCS#10 certificate request', {
        cause: err,
      });
    }
    const key = createPublicKey({
      key: Buffer.from(csr.publicKey.rawData),
      format: 'der',
      type: 'spki',
    });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      const what =
        key.asymmetricKeyType === 'ec'
          ? `EC ${key.asymmetricKeyDetails?.namedCurve}`
          : key.asymmetricKeyType;
      throw new CaError(
        'UNSUPPORTED_KEY',
        `csr: key type ${what} is not supported; expected ECDSA P-256`,
      );
    }
    let ok = false;
    try {
      ok = await csr.verify();
    } catch (err) {
      throw new CaError('BAD_CSR_SIGNATURE', 'csr: signature cannot be verified', { cause: err });
    }
    if (!ok)
      throw new CaError(
        'BAD_CSR_SIGNATURE',
        'csr: signature does not verify (no proof of possession of the key)',
      );

    // The CSR's extension objects are generic; re-read the SAN from its raw bytes.
    const raw = csr.extensions.filter((e) => e.type === '2.5.29.17');
    const names = raw.flatMap(
      (e) => new x509.SubjectAlternativeNameExtension(e.rawData).names.items,
    );
    if (names.length !== 1 || names[0]!.type !== 'url') {
      const got = names.map((n) => `${n.type}:${n.value}`).join(', ') || 'none';
      throw new CaError('BAD_SAN', `csr: expected exactly one SAN, a SPIFFE URI; got ${got}`);
    }
    let id: SpiffeId;
    try {
      id = SpiffeId.parse(names[0]!.value);
    } catch (err) {
      throw new CaError('BAD_SAN', `csr: ${errorMessage(err)}`, { cause: err });
    }
    if (id.trustDomain !== this.#opts.trustDomain) {
      throw new CaError(
        'FOREIGN_TRUST_DOMAIN',
        `csr: trust domain ${id.trustDomain} is not this CA's (${this.#opts.trustDomain})`,
      );
    }
    return { csr, id };
  }

  async issue(req: IssueRequest): Promise<Issued> {
    const { csr, id } = await this.inspect(req.csrPem);
    // istiod's node authorizer: the caller's node must run a mesh pod with this identity.
    if (!this.#opts.mesh().runsIdentityOnNode(req.node, id.namespace, id.serviceAccount)) {
      throw new CaError(
        'NODE_NOT_AUTHORIZED',
        `node ${req.node} runs no mesh workload with service account ${id.namespace}/${id.serviceAccount}`,
        { identity: id.toString() },
      );
    }
    const { authority } = this.#opts;
    const now = this.#opts.now?.() ?? new Date();
    const requestedMs = req.ttlSeconds === undefined ? this.#opts.maxTtlMs : req.ttlSeconds * 1000;
    const notAfterMs = Math.min(
      now.getTime() + Math.min(requestedMs, this.#opts.maxTtlMs),
      authority.cert.notAfter.getTime(), // never outlive the signer
    );
    const leaf = await issueLeaf(authority, {
      id,
      publicKey: await csr.publicKey.export(EC_P256, ['verify']),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(notAfterMs),
    });
    return {
      id,
      leaf,
      chain: intermediatesOf(authority),
      roots: authority.roots,
      serial: leaf.serialNumber,
      expiresAt: leaf.notAfter,
    };
  }
}
