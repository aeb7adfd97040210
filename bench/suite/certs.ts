// P-256 SPIFFE certificates for the C proxies, made with the CA's own code (ca/pki.ts), the
// same kind mtun's agents get: a root, and a leaf per side with a spiffe:// URI SAN. The
// server leaf also carries a DNS SAN, because nginx always checks the name it dials.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BACKDATE_MS,
  createRoot,
  generateP256,
  intermediatesOf,
  issueLeaf,
  privateKeyPem,
} from '../../ca/pki.js';
import { SpiffeId } from '../../identity/spiffe-id.js';

export const SERVER_NAME = 'server.bench.svc';

export interface CertFiles {
  readonly root: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Cert chain followed by the key, for HAProxy's `crt`. */
  readonly clientCombined: string;
  readonly serverCombined: string;
}

export async function writeCerts(dir: string): Promise<CertFiles> {
  const root = await createRoot({ trustDomain: 'cluster.local' });
  const now = Date.now();
  const leaf = async (id: SpiffeId, dns?: string) => {
    const keys = await generateP256();
    const cert = await issueLeaf(root, {
      id,
      publicKey: keys.publicKey,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + 86_400_000),
      ...(dns ? { extraSans: [{ type: 'dns' as const, value: dns }] } : {}),
    });
    const chain = [cert, ...intermediatesOf(root)].map((c) => c.toString('pem')).join('\n');
    return { chain: `${chain}\n`, key: await privateKeyPem(keys.privateKey) };
  };
  const client = await leaf(SpiffeId.of('cluster.local', 'bench', 'client'));
  const server = await leaf(SpiffeId.of('cluster.local', 'bench', 'server'), SERVER_NAME);
  const files: CertFiles = {
    root: join(dir, 'root.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCombined: join(dir, 'client-combined.pem'),
    serverCombined: join(dir, 'server-combined.pem'),
  };
  await writeFile(files.root, `${root.cert.toString('pem')}\n`);
  await writeFile(files.clientCert, client.chain);
  await writeFile(files.clientKey, client.key, { mode: 0o600 });
  await writeFile(files.serverCert, server.chain);
  await writeFile(files.serverKey, server.key, { mode: 0o600 });
  await writeFile(files.clientCombined, client.chain + client.key, { mode: 0o600 });
  await writeFile(files.serverCombined, server.chain + server.key, { mode: 0o600 });
  return files;
}
