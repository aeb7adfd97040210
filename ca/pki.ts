// Certificate building blocks of the CA: a self-signed root, an intermediate, and X.509-SVID
// leaves per the SPIFFE spec (DESIGN.md §5). Pure crypto on WebCrypto keys; no files, no
// network. Used by the CA service and by tests that need a PKI.
import { createPrivateKey, KeyObject, randomBytes } from 'node:crypto';
import type { SpiffeId } from '../identity/spiffe-id.js';
import {
  type CryptoKey,
  type CryptoKeyPair,
  EC_P256,
  ECDSA_SHA256,
  subtle,
  x509,
} from '../identity/x509.js';

export type KeyPair = CryptoKeyPair;

/** A signing authority: its certificate, private key, and the chain above it (excluding
 *  itself, up to and including the root). */
export interface Authority {
  readonly cert: x509.X509Certificate;
  readonly key: CryptoKey;
  readonly chain: readonly x509.X509Certificate[];
  /** Roots that relying parties trust (the trust bundle). */
  readonly roots: readonly x509.X509Certificate[];
}

/** Clock skew tolerated between nodes: leaves are valid from this far in the past. */
export const BACKDATE_MS = 5 * 60_000;

export async function generateP256(): Promise<KeyPair> {
  return (await subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as KeyPair;
}

/** 16 random bytes with the top bit clear: a positive INTEGER of ≤ 20 octets (RFC 5280). */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  if (b[0] === 0) b[0] = 1; // keep the full length so DER does not shorten it
  return b.toString('hex');
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const ko = createPrivateKey(pem);
  if (ko.asymmetricKeyType !== 'ec' || ko.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`expected an ECDSA P-256 private key, got ${ko.asymmetricKeyType}`);
  }
  const der = ko.export({ type: 'pkcs8', format: 'der' });
  return subtle.importKey('pkcs8', der, EC_P256, true, ['sign']);
}

export interface RootOptions {
  readonly trustDomain: string;
  readonly lifetimeMs?: number; // default 10 years
  readonly now?: Date;
}

export async function createRoot(opts: RootOptions): Promise<Authority> {
  const keys = await generateP256();
  const now = opts.now ?? new Date();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=mtun, CN=mtun root ${opts.trustDomain}`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + (opts.lifetimeMs ?? 10 * 365 * 86_400_000)),
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: `spiffe://${opts.trustDomain}` },
      ]),
    ],
  });
  return { cert, key: keys.privateKey, chain: [], roots: [cert] };
}

export async function createIntermediate(parent: Authority, opts: RootOptions): Promise<Authority> {
  const keys = await generateP256();
  const now = opts.now ?? new Date();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `O=mtun, CN=mtun intermediate ${opts.trustDomain}`,
    issuer: parent.cert.subject,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + (opts.lifetimeMs ?? 365 * 86_400_000)),
    publicKey: keys.publicKey,
    signingKey: parent.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(parent.cert),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: `spiffe://${opts.trustDomain}` },
      ]),
    ],
  });
  return { cert, key: keys.privateKey, chain: [parent.cert, ...parent.chain], roots: parent.roots };
}

export interface LeafOptions {
  readonly id: SpiffeId;
  readonly publicKey: CryptoKey;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** For TLS servers that are not workloads (the CA itself): extra DNS/IP SANs. */
  readonly extraSans?: readonly { type: 'dns' | 'ip'; value: string }[];
}

/** An X.509-SVID: empty subject, one critical URI SAN, CA:false, critical keyUsage
 *  digitalSignature, EKU serverAuth+clientAuth, random serial. */
export async function issueLeaf(ca: Authority, opts: LeafOptions): Promise<x509.X509Certificate> {
  const sans = [{ type: 'url' as const, value: opts.id.toString() }, ...(opts.extraSans ?? [])];
  // The subject stays empty (SPIFFE), so the SAN extension must be critical.
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: '',
    issuer: ca.cert.subject,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: opts.publicKey,
    signingKey: ca.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectAlternativeNameExtension(sans, true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
}

/** Convenience for tests and tools: a fresh key and its leaf, as PEM ready for node:tls. */
export async function issueKeyAndLeaf(
  ca: Authority,
  id: SpiffeId,
  opts: { notBefore?: Date; notAfter?: Date; now?: Date } = {},
): Promise<{ keyPem: string; certPem: string; chainPem: string[] }> {
  const keys = await generateP256();
  const now = opts.now ?? new Date();
  const leaf = await issueLeaf(ca, {
    id,
    publicKey: keys.publicKey,
    notBefore: opts.notBefore ?? new Date(now.getTime() - BACKDATE_MS),
    notAfter: opts.notAfter ?? new Date(now.getTime() + 86_400_000),
  });
  return {
    keyPem: await privateKeyPem(keys.privateKey),
    certPem: leaf.toString('pem'),
    chainPem: intermediatesOf(ca).map((c) => c.toString('pem')),
  };
}

/** What a leaf's holder sends after its leaf: the issuing CA and anything above it that is
 *  not itself a trusted root. */
export function intermediatesOf(ca: Authority): x509.X509Certificate[] {
  return [ca.cert, ...ca.chain].filter((c) => !ca.roots.some((r) => r.equal(c)));
}
