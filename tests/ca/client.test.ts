// The agent's CA client against the real CA, and against a lying CA (a test double at the
// HTTP seam) to prove that it checks what it is given.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { CaClient, CaClientError } from '../../ca/client.js';
import {
  createRoot,
  generateP256,
  issueKeyAndLeaf,
  issueLeaf,
  privateKeyPem,
} from '../../ca/pki.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { EC_P256, x509 } from '../../identity/x509.js';
import { startTestCa, TOKEN_A, TOKEN_B } from '../helpers/ca.js';

const REVIEWS = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/reviews');

t.test('fetches a certificate for a local identity from the real CA', async (t) => {
  const tc = await startTestCa(t);
  const client = new CaClient({
    url: tc.ca.url,
    caBundlePem: tc.ca.server.trustBundlePem,
    token: async () => TOKEN_A,
  });
  const got = await client.fetchCertificate(REVIEWS, 3600);
  t.ok(got.id.equals(REVIEWS));
  const leaf = new X509Certificate(got.certChainPem[0]!);
  t.ok(leaf.checkPrivateKey(createPrivateKey(got.keyPem)), 'the returned key belongs to the leaf');
  t.ok(Math.abs(got.expiresAt.getTime() - (Date.now() + 3600_000)) < 5_000, 'asked ttl honoured');
  t.ok(got.notBefore.getTime() < Date.now() - 60_000, 'valid from a few minutes in the past');
  t.equal(got.trustBundlePem.length, 1);

  const refused = await new CaClient({
    url: tc.ca.url,
    caBundlePem: tc.ca.server.trustBundlePem,
    token: async () => TOKEN_B,
  })
    .fetchCertificate(REVIEWS)
    .catch((e: unknown) => e);
  t.type(refused, CaClientError);
  t.equal((refused as CaClientError).status, 403);
  t.equal((refused as CaClientError).code, 'CA_REFUSED_NODE_NOT_AUTHORIZED');
  t.equal(
    (refused as CaClientError).retryable,
    false,
    'a refusal is not retried as if the CA were down',
  );
});

t.test('a CA that is down is a retryable error', async (t) => {
  const tc = await startTestCa(t);
  const url = tc.ca.url;
  const bundle = tc.ca.server.trustBundlePem;
  await tc.ca.close();
  const err = await new CaClient({
    url,
    caBundlePem: bundle,
    token: async () => TOKEN_A,
    timeoutMs: 2000,
  })
    .fetchCertificate(REVIEWS)
    .catch((e: unknown) => e);
  t.type(err, CaClientError);
  t.equal((err as CaClientError).code, 'CA_UNAVAILABLE');
  t.equal((err as CaClientError).retryable, true);
});

type Root = Awaited<ReturnType<typeof createRoot>>;

/** A CA double that answers every request with `answer(csrPem, root)`. */
async function lyingCa(t: Test, answer: (csrPem: string, root: Root) => Promise<unknown>) {
  const root = await createRoot({ trustDomain: 'cluster.local' });
  const keys = await generateP256();
  const cert = await issueLeaf(root, {
    id: SpiffeId.parse('spiffe://cluster.local/ns/mtun-system/sa/mtun-ca'),
    publicKey: keys.publicKey,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    extraSans: [{ type: 'ip', value: '127.0.0.1' }],
  });
  const server = createServer(
    { key: await privateKeyPem(keys.privateKey), cert: cert.toString('pem') },
    (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', async () => {
        const json = await answer(JSON.parse(body).csr, root);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  return new CaClient({
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caBundlePem: root.cert.toString('pem'),
    token: async () => 'x',
  });
}

/** Signs the CSR's own public key (so only the property under test is wrong). */
async function signCsrKey(csrPem: string, by: Root, id: SpiffeId) {
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const leaf = await issueLeaf(by, {
    id,
    publicKey: await csr.publicKey.export(EC_P256, ['verify']),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
  });
  return leaf.toString('pem');
}

t.test('the client refuses answers it cannot trust', async (t) => {
  const other = await createRoot({ trustDomain: 'cluster.local' });
  const RATINGS = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/ratings');
  const cases: {
    name: string;
    answer: (csr: string, root: Root) => Promise<unknown>;
    why: RegExp;
  }[] = [
    {
      name: 'the control: an honest answer is accepted',
      answer: async (csr, root) => ({
        certChain: [await signCsrKey(csr, root, REVIEWS)],
        trustBundle: [root.cert.toString('pem')],
      }),
      why: /^$/,
    },
    {
      name: 'a certificate for another identity',
      answer: async (csr, root) => ({
        certChain: [await signCsrKey(csr, root, RATINGS)],
        trustBundle: [root.cert.toString('pem')],
      }),
      why: /names spiffe:\/\/cluster.local\/ns\/default\/sa\/ratings, not the requested/,
    },
    {
      name: 'a certificate for a key that is not ours',
      answer: async (_csr, root) => ({
        certChain: [(await issueKeyAndLeaf(root, REVIEWS)).certPem],
        trustBundle: [root.cert.toString('pem')],
      }),
      why: /does not hold the key we generated/,
    },
    {
      name: 'a chain that does not reach the returned bundle',
      answer: async (csr, root) => ({
        certChain: [await signCsrKey(csr, other, REVIEWS)],
        trustBundle: [root.cert.toString('pem')],
      }),
      why: /does not chain to the returned trust bundle/,
    },
    { name: 'no chain at all', answer: async () => ({ trustBundle: [] }), why: /lacks certChain/ },
  ];
  for (const c of cases) {
    const client = await lyingCa(t, c.answer);
    const res = await client.fetchCertificate(REVIEWS).catch((e: unknown) => e);
    if (c.why.source === '^$') {
      t.notOk(res instanceof Error, `${c.name}: ${(res as Error).message ?? ''}`);
      continue;
    }
    t.type(res, CaClientError, c.name);
    t.match((res as Error).message, c.why, c.name);
  }
});
