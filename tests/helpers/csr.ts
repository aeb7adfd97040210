// CSRs for tests, built in-process with @peculiar/x509 (the openssl path has its own test).
import { EC_P256, ECDSA_SHA256, subtle, x509 } from '../../identity/x509.js';

type San = { type: 'url' | 'dns' | 'ip' | 'email'; value: string };

export async function makeCsr(
  sans: San[] | string,
  opts: { algorithm?: 'p256' | 'p384' | 'rsa2048' } = {},
): Promise<string> {
  const list = typeof sans === 'string' ? [{ type: 'url' as const, value: sans }] : sans;
  const alg = opts.algorithm ?? 'p256';
  const keyAlg =
    alg === 'p256'
      ? EC_P256
      : alg === 'p384'
        ? { name: 'ECDSA', namedCurve: 'P-384' }
        : {
            name: 'RSASSA-PKCS1-v1_5',
            modulusLength: 2048,
            publicExponent: new Uint8Array([1, 0, 1]),
            hash: 'SHA-256',
          };
  const signing =
    alg === 'rsa2048'
      ? { name: 'RSASSA-PKCS1-v1_5' }
      : alg === 'p384'
        ? { name: 'ECDSA', hash: 'SHA-384' }
        : ECDSA_SHA256;
  const keys = (await subtle.generateKey(keyAlg as never, true, ['sign', 'verify'])) as never;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: signing as never,
    extensions: list.length ? [new x509.SubjectAlternativeNameExtension(list, true)] : [],
  });
  return csr.toString('pem');
}

/** The same CSR with one bit of its signature flipped: parses, but proves nothing. */
export function tamperSignature(pem: string): string {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(b64, 'base64');
  der[der.length - 3]! ^= 0x01;
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`;
}
