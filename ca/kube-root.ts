// The CA's signing authority from a Kubernetes Secret, so that every CA replica and restart
// signs with the same root. Found with Istio's plug-in layout (ca-cert.pem, ca-key.pem,
// root-cert.pem, cert-chain.pem): signs as that intermediate. Found with ours (root-cert.pem,
// root-key.pem): that root. Absent: a root is generated and created as the Secret; if another
// replica created it first (409), that one is used. Any other answer stops the CA.
// Loading runs material.ts's checks on the Secret's texts; nothing of it is written to disk.
import { ConfigError, errorMessage } from '../lib/errors.js';
import type { KubeApi } from '../mesh/kube/http.js';
import { statusError } from '../mesh/kube/http.js';
import {
  CACERTS_FILES,
  cacertsFromPem,
  type PemFile,
  ROOT_FILES,
  rootFromPem,
} from './material.js';
import { type Authority, createRoot, privateKeyPem } from './pki.js';

export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
}

export type RootLayout = 'cacerts' | 'root';

export function parseSecretRef(text: string, flag: string): SecretRef {
  const m = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?)\/([a-z0-9]([a-z0-9.-]*[a-z0-9])?)$/.exec(text);
  if (!m) throw new ConfigError(`${flag}: expected NAMESPACE/NAME, got ${JSON.stringify(text)}`);
  return { namespace: m[1]!, name: m[3]! };
}

export async function loadOrCreateRootSecret(
  api: KubeApi,
  ref: SecretRef,
  trustDomain: string,
): Promise<{ authority: Authority; created: boolean; layout: RootLayout }> {
  const base = `/api/v1/namespaces/${ref.namespace}/secrets`;
  const found = await api.json('GET', `${base}/${ref.name}`);
  if (found.status === 200) return { ...(await fromSecret(found.body, ref)), created: false };
  if (found.status !== 404) throw statusError('GET', `${base}/${ref.name}`, found);

  const authority = await createRoot({ trustDomain });
  const data = {
    'root-cert.pem': b64(authority.cert.toString('pem')),
    'root-key.pem': b64(await privateKeyPem(authority.key)),
  };
  const made = await api.json('POST', base, {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: ref.name,
      namespace: ref.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'mtun', 'app.kubernetes.io/component': 'ca' },
    },
    data,
  });
  if (made.status === 201 || made.status === 200)
    return { authority, created: true, layout: 'root' };
  if (made.status !== 409) throw statusError('POST', base, made);
  // Another replica won the race: use its root, not ours.
  const again = await api.json('GET', `${base}/${ref.name}`);
  if (again.status !== 200) throw statusError('GET', `${base}/${ref.name}`, again);
  return { ...(await fromSecret(again.body, ref)), created: false };
}

async function fromSecret(
  body: unknown,
  ref: SecretRef,
): Promise<{ authority: Authority; layout: RootLayout }> {
  const where = `Secret ${ref.namespace}/${ref.name}`;
  const raw = (body as { data?: unknown } | undefined)?.data;
  const data = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const layout: RootLayout | undefined = CACERTS_FILES.every((k) => typeof data[k] === 'string')
    ? 'cacerts'
    : ROOT_FILES.every((k) => typeof data[k] === 'string')
      ? 'root'
      : undefined;
  if (!layout) {
    throw new ConfigError(
      `${where}: holds ${Object.keys(data).sort().join(', ') || 'no data'}; expected ${CACERTS_FILES.join(', ')} (Istio's cacerts) or ${ROOT_FILES.join(', ')}`,
    );
  }
  // Named by their keys in the Secret, so that errors name the Secret's entries.
  const pem = (k: string): PemFile => ({
    file: k,
    text: Buffer.from(data[k] as string, 'base64').toString('utf8'),
  });
  try {
    const authority =
      layout === 'cacerts'
        ? await cacertsFromPem({
            caCert: pem('ca-cert.pem'),
            caKey: pem('ca-key.pem'),
            rootCert: pem('root-cert.pem'),
            chain: pem('cert-chain.pem'),
          })
        : await rootFromPem(pem('root-cert.pem'), pem('root-key.pem'));
    return { authority, layout };
  } catch (err) {
    throw new ConfigError(`${where}: ${errorMessage(err)}`, { cause: err });
  }
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
