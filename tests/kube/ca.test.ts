// The CA on Kubernetes against the local API server: TokenReview authentication (audience,
// service account, pod binding → node, node-name extra), node authorization against the
// cluster's pods as they move, fail-closed refusals when the API cannot answer, and the root
// in a Secret (generated once and reused, a creation race, Istio's cacerts layout).
import { PassThrough } from 'node:stream';
import t, { type Test } from 'tap';
import { TokenReviewAuthenticator } from '../../ca/auth/token-review.js';
import { CaClient, type CaClientError } from '../../ca/client.js';
import { CaError } from '../../ca/errors.js';
import { loadOrCreateRootSecret } from '../../ca/kube-root.js';
import { createIntermediate, createRoot, privateKeyPem } from '../../ca/pki.js';
import { type CaConfig, type RunningCa, startCa } from '../../ca/service.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { createLogger } from '../../lib/logger.js';
import { eventually } from '../helpers/eventually.js';
import { FakeApiServer } from './fake-apiserver.js';
import { agentPod, namespace, pod, secret } from './objects.js';

const AUDIENCE = 'mtun-ca';
const AGENT = 'system:serviceaccount:mtun-system:mtun-agent';

/** Agent pods and the tokens the fake API server's TokenReview knows. */
const AGENTS = {
  'tok-node-a': { pod: 'mtun-agent-aaaaa', uid: 'uid-a', node: 'node-a' },
  'tok-node-b': { pod: 'mtun-agent-bbbbb', uid: 'uid-b', node: 'node-b' },
} as const;

function reviewer(api: FakeApiServer, overrides: Record<string, object> = {}) {
  api.tokenReview = (spec) => {
    const token = spec['token'] as string;
    if (overrides[token]) return { body: { status: overrides[token] } };
    const a = AGENTS[token as keyof typeof AGENTS];
    if (!a) return { body: { status: { authenticated: false, error: 'invalid bearer token' } } };
    const audiences = (spec['audiences'] as string[]).filter((x) => x === AUDIENCE);
    if (audiences.length === 0)
      return { body: { status: { authenticated: false, error: 'token audiences invalid' } } };
    return {
      body: {
        status: {
          authenticated: true,
          audiences,
          user: {
            username: AGENT,
            uid: 'sa-uid',
            groups: ['system:serviceaccounts', 'system:serviceaccounts:mtun-system'],
            extra: {
              'authentication.kubernetes.io/pod-name': [a.pod],
              'authentication.kubernetes.io/pod-uid': [a.uid],
            },
          },
        },
      },
    };
  };
}

async function kubeCluster(t: Test): Promise<FakeApiServer> {
  const api = await FakeApiServer.start(t);
  api.apply('namespaces', namespace('mtun-system'));
  api.apply('namespaces', namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }));
  for (const a of Object.values(AGENTS)) {
    const ip = a.node === 'node-a' ? '198.18.0.1' : '198.18.0.2';
    api.apply('pods', agentPod(a.pod, a.uid, a.node, ip));
  }
  api.apply(
    'pods',
    pod({ ns: 'shop', name: 'web-1', sa: 'web', node: 'node-a', ip: '198.18.10.1' }),
  );
  api.apply(
    'pods',
    pod({ ns: 'shop', name: 'reviews-1', sa: 'reviews', node: 'node-b', ip: '198.18.20.1' }),
  );
  reviewer(api);
  return api;
}

async function startKubeCa(t: Test, api: FakeApiServer, logs: string[] = []): Promise<RunningCa> {
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
  const config: CaConfig = {
    stateDir: '/nonexistent',
    meshPaths: [],
    tokensFile: '/nonexistent',
    host: '127.0.0.1',
    port: 0,
    trustDomain: 'cluster.local',
    cacertsDir: undefined,
    maxTtlMs: 3_600_000,
    meshSource: 'kubernetes',
    auth: { kind: 'tokenreview', audience: AUDIENCE, serviceAccounts: ['mtun-system/mtun-agent'] },
    rootSecret: { namespace: 'mtun-system', name: 'mtun-ca-root' },
  };
  const ca = await startCa(config, createLogger({ level: 'debug', destination: sink }), {
    kube: api.api(),
  });
  t.teardown(() => ca.close());
  return ca;
}

function client(ca: RunningCa, token: string): CaClient {
  return new CaClient({
    url: ca.url,
    caBundlePem: ca.server.trustBundlePem,
    token: async () => token,
  });
}

const id = (ns: string, sa: string) => SpiffeId.of('cluster.local', ns, sa);

async function refusal(p: Promise<unknown>): Promise<{ status: number | undefined; code: string }> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as CaClientError | undefined;
  if (!err) throw new Error('expected a refusal, got a certificate');
  return { status: err.status, code: err.code };
}

t.test('TokenReview: the agent of node-a gets node-a identities only, as pods move', async (t) => {
  const api = await kubeCluster(t);
  const logs: string[] = [];
  const ca = await startKubeCa(t, api, logs);
  const a = client(ca, 'tok-node-a');
  const cert = await a.fetchCertificate(id('shop', 'web'));
  t.equal(cert.id.toString(), 'spiffe://cluster.local/ns/shop/sa/web');
  const review = api.requests.find((r) => r.path === '/apis/authentication.k8s.io/v1/tokenreviews');
  t.same((review!.body as { spec: unknown }).spec, { token: 'tok-node-a', audiences: [AUDIENCE] });
  t.ok(
    api.requests.some((r) => r.path === '/api/v1/namespaces/mtun-system/pods/mtun-agent-aaaaa'),
    'bound pod read for its node',
  );

  t.match(await refusal(a.fetchCertificate(id('shop', 'reviews'))), {
    status: 403,
    code: 'CA_REFUSED_NODE_NOT_AUTHORIZED',
  });
  t.ok((await client(ca, 'tok-node-b').fetchCertificate(id('shop', 'reviews'))).serial);

  // reviews-1 is re-created on node-a: the watch moves node authorization with it.
  api.remove('pods', 'shop', 'reviews-1');
  api.apply(
    'pods',
    pod({ ns: 'shop', name: 'reviews-1', sa: 'reviews', node: 'node-a', ip: '198.18.10.2' }),
  );
  await eventually(
    () => ca.mesh.current().runsIdentityOnNode('node-a', 'shop', 'reviews'),
    'move seen',
  );
  t.ok((await a.fetchCertificate(id('shop', 'reviews'))).serial, 'node-a now gets reviews');
  t.match(await refusal(client(ca, 'tok-node-b').fetchCertificate(id('shop', 'reviews'))), {
    status: 403,
  });
  t.ok(logs.some((l) => l.includes('"auth":"tokenreview"') && l.includes('CA listening')));
  t.ok(
    logs.some((l) => l.includes('"outcome":"issued"') && l.includes('"node":"node-a"')),
    'audit names the node',
  );
});

t.test('TokenReview refusals: wrong token, audience, account, binding, pod replaced', async (t) => {
  const api = await kubeCluster(t);
  const ca = await startKubeCa(t, api);
  const base = { authenticated: true, audiences: [AUDIENCE] };
  const bound = {
    'authentication.kubernetes.io/pod-name': ['mtun-agent-aaaaa'],
    'authentication.kubernetes.io/pod-uid': ['uid-a'],
  };
  reviewer(api, {
    'tok-other-sa': { ...base, user: { username: 'system:serviceaccount:shop:web', extra: bound } },
    'tok-no-audience': {
      authenticated: true,
      audiences: ['https://kubernetes.default.svc'],
      user: { username: AGENT, extra: bound },
    },
    'tok-unbound': { ...base, user: { username: AGENT, extra: {} } },
    'tok-old-pod': {
      ...base,
      user: {
        username: AGENT,
        extra: { ...bound, 'authentication.kubernetes.io/pod-uid': ['uid-of-a-deleted-pod'] },
      },
    },
    'tok-gone-pod': {
      ...base,
      user: {
        username: AGENT,
        extra: {
          'authentication.kubernetes.io/pod-name': ['mtun-agent-zzzzz'],
          'authentication.kubernetes.io/pod-uid': ['uid-z'],
        },
      },
    },
  });
  const cases: [string, RegExp][] = [
    ['tok-unknown', /not authenticated: invalid bearer token/],
    ['tok-other-sa', /system:serviceaccount:shop:web is not a node agent/],
    ['tok-no-audience', /not for audience mtun-ca/],
    ['tok-unbound', /not bound to a pod/],
    ['tok-old-pod', /was replaced/],
    ['tok-gone-pod', /no longer exists/],
  ];
  for (const [token, why] of cases) {
    const err = await client(ca, token)
      .fetchCertificate(id('shop', 'web'))
      .then(
        () => undefined,
        (e: CaClientError) => e,
      );
    t.equal(err?.status, 401, token);
    t.match(err?.message, why, token);
  }
});

t.test('the node-name extra (Kubernetes 1.30+) is used without reading the pod', async (t) => {
  const api = await kubeCluster(t);
  const ca = await startKubeCa(t, api);
  reviewer(api, {
    'tok-modern': {
      authenticated: true,
      audiences: [AUDIENCE],
      user: {
        username: AGENT,
        extra: {
          'authentication.kubernetes.io/pod-name': ['mtun-agent-bbbbb'],
          'authentication.kubernetes.io/pod-uid': ['uid-b'],
          'authentication.kubernetes.io/node-name': ['node-b'],
        },
      },
    },
  });
  t.ok((await client(ca, 'tok-modern').fetchCertificate(id('shop', 'reviews'))).serial);
  t.notOk(
    api.requests.some((r) => r.path.includes('/pods/mtun-agent-bbbbb')),
    'no pod read',
  );
});

t.test('fail closed: TokenReview errors, timeouts and odd answers refuse, retryably', async (t) => {
  const api = await kubeCluster(t);
  const ca = await startKubeCa(t, api);
  api.tokenReview = () => ({ status: 500, body: { kind: 'Status', code: 500 } });
  t.match(await refusal(client(ca, 'tok-node-a').fetchCertificate(id('shop', 'web'))), {
    status: 500,
    code: 'CA_REFUSED_INTERNAL',
  });
  api.tokenReview = () => ({ body: { status: { authenticated: 'yes' } } });
  t.match(await refusal(client(ca, 'tok-node-a').fetchCertificate(id('shop', 'web'))), {
    status: 500,
  });
  api.tokenReview = () => ({ body: { status: { authenticated: true, audiences: [AUDIENCE] } } });
  t.match(
    await refusal(client(ca, 'tok-node-a').fetchCertificate(id('shop', 'web'))),
    { status: 401 },
    'authenticated but no user',
  );

  const slow = new TokenReviewAuthenticator({
    api: api.api(),
    audience: AUDIENCE,
    serviceAccounts: ['mtun-system/mtun-agent'],
    timeoutMs: 100,
  });
  reviewer(api);
  const inner = api.tokenReview;
  api.tokenReview = (spec) => ({ ...inner(spec), delayMs: 500 });
  const err = await slow.authenticate('tok-node-a').catch((e: unknown) => e);
  t.ok(err instanceof CaError && err.code === 'INTERNAL', 'timeout is a refusal');
  t.match((err as Error).message, /no answer in 100 ms; refusing/);
  await api.close();
  const down = await slow.authenticate('tok-node-b').catch((e: unknown) => e);
  t.ok(down instanceof CaError && down.code === 'INTERNAL', 'API down is a refusal');
});

t.test('good reviews are cached and deduplicated; the cache expires', async (t) => {
  const api = await kubeCluster(t);
  let now = 1_000;
  const auth = new TokenReviewAuthenticator({
    api: api.api(),
    audience: AUDIENCE,
    serviceAccounts: ['mtun-system/mtun-agent'],
    cacheTtlMs: 10_000,
    now: () => now,
  });
  const reviews = () => api.requests.filter((r) => r.path.endsWith('/tokenreviews')).length;
  t.same(await Promise.all([1, 2, 3].map(() => auth.authenticate('tok-node-a'))), [
    'node-a',
    'node-a',
    'node-a',
  ]);
  await auth.authenticate('tok-node-a');
  t.equal(reviews(), 1, 'one review for four requests');
  await t.rejects(auth.authenticate('tok-unknown'));
  await t.rejects(auth.authenticate('tok-unknown'));
  t.equal(reviews(), 3, 'refusals are not cached');
  now += 10_001;
  await auth.authenticate('tok-node-a');
  t.equal(reviews(), 4, 'reviewed again after the TTL');
  t.throws(
    () =>
      new TokenReviewAuthenticator({
        api: api.api(),
        audience: AUDIENCE,
        serviceAccounts: ['mtun-agent'],
      }),
    /NAMESPACE\/NAME/,
  );
});

t.test(
  'root Secret: generated once, reused by the next start; a creation race converges',
  async (t) => {
    const api = await kubeCluster(t);
    const first = await startKubeCa(t, api);
    const secret = api.get('secrets', 'mtun-system/mtun-ca-root');
    t.ok(secret, 'Secret created');
    t.same(Object.keys(secret!['data']).sort(), ['root-cert.pem', 'root-key.pem']);
    t.equal(secret!['metadata']['labels']['app.kubernetes.io/managed-by'], 'mtun');
    const second = await startKubeCa(t, api);
    t.equal(second.server.trustBundlePem, first.server.trustBundlePem, 'same root after a restart');

    const ref = { namespace: 'mtun-system', name: 'raced' };
    const [x, y] = await Promise.all([
      loadOrCreateRootSecret(api.api(), ref, 'cluster.local'),
      loadOrCreateRootSecret(api.api(), ref, 'cluster.local'),
    ]);
    t.ok(x.authority.cert.equal(y.authority.cert), 'both replicas sign with the stored root');
    t.ok(!(x.created && y.created), 'only one created it');
    t.equal(
      api.requests.filter(
        (r) =>
          r.method === 'POST' &&
          r.path === '/api/v1/namespaces/mtun-system/secrets' &&
          (r.body as { metadata: { name: string } }).metadata.name === 'raced',
      ).length,
      2,
      'both tried: the loser took the winner',
    );
  },
);

t.test(
  "root Secret in Istio's cacerts layout signs as that intermediate; bad ones stop the CA",
  async (t) => {
    const api = await kubeCluster(t);
    const root = await createRoot({ trustDomain: 'cluster.local' });
    const inter = await createIntermediate(root, { trustDomain: 'cluster.local' });
    const rootSecret = (entries: Record<string, string>) =>
      api.apply('secrets', secret('mtun-system', 'mtun-ca-root', entries));
    rootSecret({
      'ca-cert.pem': inter.cert.toString('pem'),
      'ca-key.pem': await privateKeyPem(inter.key),
      'root-cert.pem': root.cert.toString('pem'),
      'cert-chain.pem': `${inter.cert.toString('pem')}\n${root.cert.toString('pem')}`,
    });
    const ca = await startKubeCa(t, api);
    t.equal(
      ca.server.trustBundlePem.trim(),
      root.cert.toString('pem').trim(),
      'trust bundle is the Istio root',
    );
    const cert = await client(ca, 'tok-node-a').fetchCertificate(id('shop', 'web'));
    t.equal(cert.certChainPem.length, 2, 'leaf and intermediate');

    rootSecret({ 'tls.crt': 'x' });
    await t.rejects(
      startKubeCa(t, api),
      /Secret mtun-system\/mtun-ca-root: holds tls\.crt; expected ca-cert\.pem/,
    );
    rootSecret({
      'root-cert.pem': root.cert.toString('pem'),
      'root-key.pem': await privateKeyPem(inter.key),
    });
    await t.rejects(
      startKubeCa(t, api),
      /Secret mtun-system\/mtun-ca-root: root-key\.pem: the key does not belong/,
    );
  },
);
