// Where the CA's signing authority comes from: generated once into a state directory
// (0700 directory, 0600 files, reused on every later start) or plugged in from Istio's
// `cacerts` layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem).
import { createPrivateKey, createPublicKey, X509Certificate as NodeX509 } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { x509 } from '../identity/x509.js';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { type Authority, createRoot, importPrivateKeyPem, privateKeyPem } from './pki.js';

const ROOT_CERT = 'root-cert.pem';
const ROOT_KEY = 'root-key.pem';
/** The files of a generated root (a state directory). */
export const ROOT_FILES = [ROOT_CERT, ROOT_KEY] as const;
/** The files of Istio's plug-in CA layout (`cacerts`). */
export const CACERTS_FILES = [
  'ca-cert.pem',
  'ca-key.pem',
  'root-cert.pem',
  'cert-chain.pem',
] as const;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes via a temporary file and rename, so a crash never leaves half a key behind. */
async function writePrivate(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

function pemBlocks(text: string, file: string): x509.X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${file}: expected one or more PEM certificates`);
  return blocks.map((b, i) => {
    try {
      return new x509.X509Certificate(b);
    } catch (err) {
      throw new ConfigError(`${file}: certificate ${i}: not a parsable X.509 certificate`, {
        cause: err,
      });
    }
  });
}

/** Loads the state directory's root, or generates one on first start. */
export async function loadOrCreateRoot(
  stateDir: string,
  trustDomain: string,
): Promise<{ authority: Authority; created: boolean }> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const certFile = join(stateDir, ROOT_CERT);
  const keyFile = join(stateDir, ROOT_KEY);
  const [hasCert, hasKey] = await Promise.all([exists(certFile), exists(keyFile)]);
  if (hasCert !== hasKey) {
    throw new ConfigError(
      `state directory ${stateDir}: found ${hasCert ? ROOT_CERT : ROOT_KEY} without ${hasCert ? ROOT_KEY : ROOT_CERT}; refusing to guess (restore the pair or empty the directory)`,
    );
  }
  if (!hasCert) {
    const authority = await createRoot({ trustDomain });
    await writePrivate(keyFile, await privateKeyPem(authority.key));
    await writePrivate(certFile, authority.cert.toString('pem'));
    return { authority, created: true };
  }
  const mode = (await stat(keyFile)).mode & 0o777;
  if (mode & 0o077) {
    throw new ConfigError(
      `${keyFile}: mode ${mode.toString(8)} lets others read the root key; expected 0600`,
    );
  }
  const authority = await rootFromPem(
    { file: certFile, text: await readFile(certFile, 'utf8') },
    { file: keyFile, text: await readFile(keyFile, 'utf8') },
  );
  return { authority, created: false };
}

/** A PEM file's text, and the name that errors about it give. */
export interface PemFile {
  readonly file: string;
  readonly text: string;
}

/** A root from its certificate and private key. */
export async function rootFromPem(certPem: PemFile, keyPem: PemFile): Promise<Authority> {
  const [cert] = pemBlocks(certPem.text, certPem.file);
  const key = await importKey(keyPem.text, keyPem.file);
  assertKeyMatches(cert!, keyPem.text, keyPem.file);
  return { cert: cert!, key, chain: [], roots: [cert!] };
}

/** Istio's plug-in CA layout: sign with ca-cert/ca-key as an intermediate of root-cert. */
export async function loadCacerts(dir: string): Promise<Authority> {
  const read = async (name: string) => {
    const file = join(dir, name);
    try {
      return { file, text: await readFile(file, 'utf8') };
    } catch (err) {
      throw new ConfigError(
        `cacerts ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : errorMessage(err)} (expected ${CACERTS_FILES.join(', ')})`,
      );
    }
  };
  const [caCert, caKey, rootCert, chain] = await Promise.all(CACERTS_FILES.map(read));
  return cacertsFromPem({ caCert: caCert!, caKey: caKey!, rootCert: rootCert!, chain: chain! });
}

/** Istio's plug-in layout from the texts of its four files. */
export async function cacertsFromPem(pem: {
  readonly caCert: PemFile;
  readonly caKey: PemFile;
  readonly rootCert: PemFile;
  readonly chain: PemFile;
}): Promise<Authority> {
  const { caCert, caKey, rootCert, chain } = pem;
  const [cert] = pemBlocks(caCert.text, caCert.file);
  const roots = pemBlocks(rootCert.text, rootCert.file);
  // cert-chain.pem runs from ca-cert up to (and usually including) the root.
  const chainCerts = pemBlocks(chain.text, chain.file).filter((c) => !c.equal(cert!));
  const key = await importKey(caKey.text, caKey.file);
  assertKeyMatches(cert!, caKey.text, caKey.file);
  const bc = cert!.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca)
    throw new ConfigError(
      `${caCert.file}: not a CA certificate (basicConstraints CA:TRUE required)`,
    );
  const path = [cert!, ...chainCerts];
  for (let i = 0; i + 1 < path.length; i++) {
    if (!verifies(path[i]!, path[i + 1]!)) {
      throw new ConfigError(
        `${chain.file}: certificate ${i} is not signed by certificate ${i + 1}`,
      );
    }
  }
  const top = path[path.length - 1]!;
  if (!roots.some((r) => r.equal(top) || verifies(top, r))) {
    throw new ConfigError(`${rootCert.file}: the chain of ca-cert.pem does not end at this root`);
  }
  return { cert: cert!, key, chain: chainCerts, roots };
}

function verifies(child: x509.X509Certificate, parent: x509.X509Certificate): boolean {
  const c = new NodeX509(Buffer.from(child.rawData));
  const p = new NodeX509(Buffer.from(parent.rawData));
  return c.checkIssued(p) && c.verify(p.publicKey);
}

async function importKey(pem: string, file: string) {
  try {
    return await importPrivateKeyPem(pem);
  } catch (err) {
    throw new ConfigError(`${file}: ${errorMessage(err)}`, { cause: err });
  }
}

function assertKeyMatches(cert: x509.X509Certificate, keyPem: string, file: string): void {
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  const fromCert = Buffer.from(cert.publicKey.rawData);
  if (!fromKey.equals(fromCert))
    throw new ConfigError(`${file}: the key does not belong to the certificate`);
}
