// X.509-SVID helpers: read the single SPIFFE URI SAN from DER and check a leaf against the
// SPIFFE X509-SVID rules (spiffe/standards X509-SVID.md §4). Used by the CA on what it
// issues, by the CA client on what it receives and by HBONE on every peer certificate.
import { errorMessage, MtunError } from '../lib/errors.js';
import { SpiffeId } from './spiffe-id.js';
import { x509 } from './x509.js';

export class SvidError extends MtunError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SVID_INVALID', message, options);
  }
}

const OID_SAN = '2.5.29.17';
const OID_KEY_USAGE = '2.5.29.15';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_EKU = '2.5.29.37';
const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export type CertInput = x509.X509Certificate | ArrayBuffer | Uint8Array | string;

function toCertificate(input: CertInput): x509.X509Certificate {
  if (input instanceof x509.X509Certificate) return input;
  try {
    if (typeof input === 'string') return new x509.X509Certificate(input);
    // Copy into a fresh ArrayBuffer: Node Buffers are views into a shared pool.
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    return new x509.X509Certificate(Uint8Array.from(bytes).buffer);
  } catch (err) {
    throw new SvidError('not a parsable X.509 certificate', { cause: err });
  }
}

/** All URI SANs of a certificate, read from DER (never from Node's display string, which
 *  quotes and joins values). */
export function uriSans(input: CertInput): string[] {
  const cert = toCertificate(input);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!san) return [];
  return san.names.items.filter((n) => n.type === 'url').map((n) => n.value);
}

/** The one SPIFFE ID of a certificate: exactly one URI SAN, a workload SPIFFE ID. */
export function spiffeIdOf(input: CertInput): SpiffeId {
  const uris = uriSans(input);
  if (uris.length !== 1) {
    throw new SvidError(`expected exactly one URI SAN, found ${uris.length}`);
  }
  try {
    return SpiffeId.parse(uris[0]!);
  } catch (err) {
    throw new SvidError(`URI SAN is not a workload SPIFFE ID: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/** Checks a leaf X.509-SVID and returns its SPIFFE ID, or throws SvidError with the rule
 *  that was broken. Chain and validity period are checked by TLS / the caller. */
export function checkLeafSvid(input: CertInput): SpiffeId {
  const cert = toCertificate(input);
  const id = spiffeIdOf(cert);
  const san = cert.extensions.find((e) => e.type === OID_SAN)!;
  const otherSans = cert
    .getExtension(x509.SubjectAlternativeNameExtension)!
    .names.items.filter((n) => n.type !== 'url');
  if (otherSans.length > 0) {
    throw new SvidError(`unexpected non-URI SANs: ${otherSans.map((n) => n.type).join(', ')}`);
  }
  if (cert.subject === '' && !san.critical) {
    throw new SvidError(
      'subject is empty, so the SAN extension must be critical (RFC 5280 4.1.2.6)',
    );
  }

  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (bc?.ca) throw new SvidError('leaf SVID must have CA:false');
  if (!bc) {
    // The spec requires cA=false to be set; an absent extension is not the same thing.
    if (!cert.extensions.some((e) => e.type === OID_BASIC_CONSTRAINTS)) {
      throw new SvidError('leaf SVID must carry basicConstraints with CA:false');
    }
  }

  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (!ku || !cert.extensions.find((e) => e.type === OID_KEY_USAGE)?.critical) {
    throw new SvidError('leaf SVID must carry a critical keyUsage extension');
  }
  if (!(ku.usages & x509.KeyUsageFlags.digitalSignature)) {
    throw new SvidError('keyUsage must include digitalSignature');
  }
  if (ku.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) {
    throw new SvidError('leaf keyUsage must not include keyCertSign or cRLSign');
  }

  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku || cert.extensions.some((e) => e.type === OID_EKU)) {
    const usages = (eku?.usages ?? []).map(String);
    if (!usages.includes(EKU_SERVER_AUTH) || !usages.includes(EKU_CLIENT_AUTH)) {
      throw new SvidError('extendedKeyUsage, when present, must include serverAuth and clientAuth');
    }
  }
  return id;
}
