// The Kubernetes source against a local API server that speaks list/watch: initial paginated
// list, membership, a pod moving nodes, a policy edit as a watch event, dropped connections
// resumed without loss, 410 Gone re-lists (as an ERROR event and as an HTTP status), backoff
// after failures, bookmarks, events split across chunks, and a bad object in the stream.
import t, { type Test } from 'tap';
import { createLogger } from '../../lib/logger.js';
import { KubeError } from '../../mesh/kube/errors.js';
import { KubeMeshSource } from '../../mesh/kube/source.js';
import { eventually } from '../helpers/eventually.js';
import { FakeApiServer } from './fake-apiserver.js';
import { authorizationPolicy, namespace, node, pod, service } from './objects.js';

const quiet = createLogger({ level: 'silent' });
const FAST = { initialMs: 10, maxMs: 50, jitter: 0 };

async function cluster(t: Test): Promise<FakeApiServer> {
  const api = await FakeApiServer.start(t);
  api.apply('namespaces', namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }));
  api.apply('namespaces', namespace('legacy'));
  api.apply('nodes', node('node-a', '198.18.0.1'));
  api.apply('nodes', node('node-b', '198.18.0.2'));
  api.apply(
    'pods',
    pod({
      ns: 'shop',
      name: 'web-1',
      sa: 'web',
      node: 'node-a',
      ip: '198.18.10.1',
      labels: { app: 'web' },
    }),
  );
  api.apply(
    'pods',
    pod({
      ns: 'shop',
      name: 'reviews-1',
      sa: 'reviews',
      node: 'node-b',
      ip: '198.18.20.1',
      labels: { app: 'reviews' },
    }),
  );
  api.apply(
    'pods',
    pod({ ns: 'legacy', name: 'old-1', sa: 'old', node: 'node-a', ip: '198.18.10.9' }),
  );
  api.apply(
    'pods',
    pod({
      ns: 'legacy',
      name: 'opted-in',
      sa: 'oi',
      node: 'node-b',
      ip: '198.18.20.9',
      labels: { 'istio.io/dataplane-mode': 'ambient' },
    }),
  );
  // Neither is a workload: host network shares the node's IP; a finished pod keeps its IP.
  api.apply(
    'pods',
    pod({
      ns: 'shop',
      name: 'agent-x',
      sa: 'x',
      node: 'node-a',
      ip: '198.18.0.1',
      hostNetwork: true,
    }),
  );
  api.apply(
    'pods',
    pod({
      ns: 'shop',
      name: 'job-1',
      sa: 'job',
      node: 'node-a',
      ip: '198.18.10.1',
      phase: 'Succeeded',
    }),
  );
  api.apply('services', service('shop', 'reviews', '198.19.0.10', { app: 'reviews' }));
  return api;
}

async function open(
  t: Test,
  api: FakeApiServer,
  extra: Partial<Parameters<typeof KubeMeshSource.open>[0]> = {},
) {
  const source = await KubeMeshSource.open({
    api: api.api(),
    logger: quiet,
    debounceMs: 5,
    reflector: { pageSize: 2, backoff: FAST, watchTimeoutSeconds: 60 },
    ...extra,
  });
  t.teardown(() => source.close());
  return source;
}

/** Creates shop/<name> (web's account, on node-a) and waits until the source has it. */
async function podArrives(
  api: FakeApiServer,
  source: KubeMeshSource,
  name: string,
  ip: string,
  what: string,
) {
  api.apply('pods', pod({ ns: 'shop', name, sa: 'web', node: 'node-a', ip }));
  await eventually(() => !!source.current().workload('shop', name), what);
}

t.test('lists every resource in pages and builds the same model as the file source', async (t) => {
  const api = await cluster(t);
  const source = await open(t, api);
  const s = source.current();
  t.same(source.rejected, [], 'nothing rejected');
  t.same(s.workloads.map((w) => `${w.meta.namespace}/${w.meta.name}`).sort(), [
    'legacy/old-1',
    'legacy/opted-in',
    'shop/reviews-1',
    'shop/web-1',
  ]);
  t.equal(s.workload('shop', 'web-1')?.inMesh, true, 'namespace label');
  t.equal(s.workload('legacy', 'old-1')?.inMesh, false, 'no label');
  t.equal(s.workload('legacy', 'opted-in')?.inMesh, true, 'pod label');
  t.equal(
    s.workloadByIp('198.18.10.1')?.meta.name,
    'web-1',
    'the finished pod with the same IP is left out',
  );
  t.equal(s.workload('shop', 'web-1')?.namedPorts.get('http'), 9080);
  t.equal(s.node('node-b')?.addresses[0]?.address, '198.18.0.2');
  t.same(
    s.endpointsOf(s.serviceByHostname('reviews.shop.svc.cluster.local')!).map((w) => w.meta.name),
    ['reviews-1'],
  );
  t.match(s.workload('shop', 'web-1')?.meta.origin.source, /^kubernetes:pods\/shop\/web-1$/);
  const lists = api.requests.filter((r) => r.path === '/api/v1/pods' && !r.query.has('watch'));
  t.ok(lists.length >= 3, `pods listed in pages of 2 (${lists.length} requests)`);
  t.ok(
    lists.slice(1).every((r) => r.query.has('continue')),
    'later pages use continue',
  );
  t.ok(
    api.requests.every((r) => r.auth === `Bearer ${api.token}`),
    'every request carries the bearer token',
  );
  await eventually(() => api.openWatches === 6, 'six watches open');
  const watch = api.requests.find(
    (r) => r.path === '/api/v1/pods' && r.query.get('watch') === '1',
  )!;
  t.equal(watch.query.get('allowWatchBookmarks'), 'true');
  t.ok(Number(watch.query.get('resourceVersion')) > 0, 'watch starts at the list version');
});

t.test('a pod moving nodes and a policy edit arrive as watch events', async (t) => {
  const api = await cluster(t);
  const source = await open(t, api);
  const versions: number[] = [];
  source.subscribe((s) => versions.push(s.version));
  t.ok(source.current().runsIdentityOnNode('node-b', 'shop', 'reviews'));

  // A StatefulSet-style move: deleted on node-b, created again with the same name on node-a.
  api.remove('pods', 'shop', 'reviews-1');
  api.apply(
    'pods',
    pod({
      ns: 'shop',
      name: 'reviews-1',
      sa: 'reviews',
      node: 'node-a',
      ip: '198.18.10.7',
      labels: { app: 'reviews' },
    }),
  );
  await eventually(
    () => source.current().workload('shop', 'reviews-1')?.node === 'node-a',
    'pod on node-a',
  );
  const s = source.current();
  t.notOk(s.runsIdentityOnNode('node-b', 'shop', 'reviews'), 'node-b no longer runs reviews');
  t.ok(s.runsIdentityOnNode('node-a', 'shop', 'reviews'));
  t.equal(s.workloadByIp('198.18.20.1'), undefined, 'old IP gone');

  api.apply(
    'authorizationpolicies',
    authorizationPolicy('shop', 'reviews-policy', {
      selector: { matchLabels: { app: 'reviews' } },
      action: 'ALLOW',
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }],
    }),
  );
  await eventually(() => source.current().authorizationPolicies.length === 1, 'policy applied');
  api.apply(
    'authorizationpolicies',
    authorizationPolicy('shop', 'reviews-policy', {
      selector: { matchLabels: { app: 'reviews' } },
      action: 'DENY',
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }],
    }),
  );
  await eventually(
    () => source.current().authorizationPolicies[0]?.action === 'DENY',
    'policy edited',
  );
  api.remove('authorizationpolicies', 'shop', 'reviews-policy');
  await eventually(() => source.current().authorizationPolicies.length === 0, 'policy deleted');
  t.ok(
    versions.length >= 3 && versions.every((v, i) => i === 0 || v > versions[i - 1]!),
    `versions rise: ${versions}`,
  );
  t.equal(source.reflectors.find((r) => r.resource.name === 'pods')!.stats.lists, 1, 'no re-list');
});

t.test('namespace label change re-evaluates membership of its pods', async (t) => {
  const api = await cluster(t);
  const source = await open(t, api);
  api.apply('namespaces', namespace('legacy', { 'istio.io/dataplane-mode': 'ambient' }));
  await eventually(
    () => source.current().workload('legacy', 'old-1')?.inMesh === true,
    'legacy joins',
  );
  api.apply(
    'pods',
    pod({
      ns: 'legacy',
      name: 'old-1',
      sa: 'old',
      node: 'node-a',
      ip: '198.18.10.9',
      labels: { 'istio.io/dataplane-mode': 'none' },
    }),
  );
  await eventually(
    () => source.current().workload('legacy', 'old-1')?.inMesh === false,
    'pod opts out',
  );
  t.pass('membership follows labels');
});

t.test(
  'a dropped watch resumes from the last version: changes made meanwhile are not lost',
  async (t) => {
    const api = await cluster(t);
    api.splitEvents = true; // every event line spans two chunks
    const source = await open(t, api);
    await eventually(() => api.openWatches === 6, 'watches open');
    const pods = source.reflectors.find((r) => r.resource.name === 'pods')!;
    for (let round = 0; round < 3; round++) {
      api.dropWatches();
      api.apply(
        'pods',
        pod({
          ns: 'shop',
          name: `new-${round}`,
          sa: 'web',
          node: 'node-a',
          ip: `198.18.11.${round + 1}`,
        }),
      );
      if (round === 1) api.remove('pods', 'shop', 'web-1');
    }
    await eventually(
      () =>
        ['new-0', 'new-1', 'new-2'].every((n) => source.current().workload('shop', n)) &&
        !source.current().workload('shop', 'web-1'),
      'all changes made while disconnected arrive',
    );
    t.equal(pods.stats.lists, 1, 'resumed by watch, never re-listed');
    const rvs = api.requests
      .filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') === '1')
      .map((r) => Number(r.query.get('resourceVersion')));
    t.ok(
      rvs.length >= 2 && rvs.every((v, i) => i === 0 || v >= rvs[i - 1]!),
      `each re-watch resumes from a later version: ${rvs}`,
    );
    await eventually(() => api.watchesOf('pods') === 1, 'watching again');
    await podArrives(api, source, 'after', '198.18.11.99', 'live again');
  },
);

for (const goneAs of ['event', 'http'] as const) {
  t.test(
    `410 Gone (${goneAs === 'event' ? 'ERROR event' : 'HTTP status'}) re-lists, and deletions in the gap are seen`,
    async (t) => {
      const api = await cluster(t);
      api.goneAs = goneAs;
      const source = await open(t, api);
      await eventually(() => api.openWatches === 6, 'watches open');
      api.dropWatches();
      api.remove('pods', 'shop', 'web-1');
      api.apply(
        'pods',
        pod({ ns: 'shop', name: 'web-2', sa: 'web', node: 'node-b', ip: '198.18.20.2' }),
      );
      api.compact(); // the events above are no longer in history
      await eventually(
        () =>
          !source.current().workload('shop', 'web-1') &&
          !!source.current().workload('shop', 'web-2'),
        'state after the gap',
      );
      const pods = source.reflectors.find((r) => r.resource.name === 'pods')!;
      t.ok(pods.stats.gone >= 1, `gone ${pods.stats.gone}`);
      t.equal(pods.stats.lists, 2, 'listed again once');
    },
  );
}

t.test('an ERROR 410 on an open watch re-lists', async (t) => {
  const api = await cluster(t);
  const source = await open(t, api);
  await eventually(() => api.openWatches === 6, 'watches open');
  api.compact();
  api.expireWatches();
  await eventually(
    () => source.reflectors.every((r) => r.stats.lists === 2),
    'every resource re-listed',
  );
  await podArrives(api, source, 'later', '198.18.10.50', 'watching after the re-list');
});

t.test(
  'failing watches back off and recover; bookmarks move the version without a snapshot',
  async (t) => {
    const api = await cluster(t);
    const source = await open(t, api);
    await eventually(() => api.openWatches === 6, 'watches open');
    api.failNext = { list: 0, watch: 4, status: 500 };
    api.dropWatches();
    await eventually(() => api.openWatches === 6, 'watches back after failures', 10_000);
    const failures = source.reflectors.reduce((n, r) => n + r.stats.failures, 0);
    t.ok(failures >= 4, `failures counted: ${failures}`);
    const v = source.current().version;
    const pods = source.reflectors.find((r) => r.resource.name === 'pods')!;
    api.apply('services', service('shop', 'other', '198.19.0.11', { app: 'x' })); // moves the global version
    await eventually(() => source.current().services.length === 2, 'service seen');
    const before = pods.resourceVersion;
    api.bookmark();
    await eventually(
      () => pods.resourceVersion === String(api.resourceVersion),
      'bookmark applied',
    );
    t.not(before, pods.resourceVersion);
    await new Promise((r) => setTimeout(r, 30));
    t.equal(source.current().version, v + 1, 'only the service made a snapshot');
  },
);

t.test('server-side watch timeouts re-watch without a re-list', async (t) => {
  const api = await cluster(t);
  const source = await open(t, api, {
    reflector: { pageSize: 50, backoff: FAST, watchTimeoutSeconds: 1 },
  });
  await new Promise((r) => setTimeout(r, 2_300));
  const pods = source.reflectors.find((r) => r.resource.name === 'pods')!;
  t.ok(pods.stats.watches >= 3, `watches: ${pods.stats.watches}`);
  t.equal(pods.stats.lists, 1);
  await podArrives(api, source, 'late', '198.18.10.77', 'still watching');
});

t.test('a bad object is rejected alone; a broken edit keeps the last good version', async (t) => {
  const api = await cluster(t);
  const source = await open(t, api);
  const deny = {
    selector: { matchLabels: { app: 'reviews' } },
    action: 'DENY',
    rules: [{ from: [{ source: { namespaces: ['legacy'] } }] }],
  };
  api.apply('authorizationpolicies', authorizationPolicy('shop', 'deny-legacy', deny));
  await eventually(() => source.current().authorizationPolicies.length === 1, 'deny in force');
  // A typo'd edit (unknown field): istiod would refuse it; the old DENY must stay in force.
  api.apply(
    'authorizationpolicies',
    authorizationPolicy('shop', 'deny-legacy', { ...deny, actionn: 'ALLOW' }),
  );
  await podArrives(api, source, 'meanwhile', '198.18.10.60', 'other changes still apply');
  t.equal(source.current().authorizationPolicies[0]?.action, 'DENY', 'last good DENY kept');
  t.match(source.rejected, [
    { id: 'kubernetes:authorizationpolicies/shop/deny-legacy', kept: 'last-good' },
  ]);
  // A new object that never converted is left out.
  api.apply('authorizationpolicies', authorizationPolicy('shop', 'broken', { action: 'MAYBE' }));
  await eventually(() => source.rejected.length === 2, 'second rejection');
  t.equal(source.current().authorizationPolicies.length, 1);
  api.apply(
    'authorizationpolicies',
    authorizationPolicy('shop', 'deny-legacy', { ...deny, action: 'ALLOW', rules: [{}] }),
  );
  await eventually(
    () => source.current().authorizationPolicies[0]?.action === 'ALLOW',
    'fixed edit applies',
  );
  t.match(source.rejected, [{ id: 'kubernetes:authorizationpolicies/shop/broken', kept: 'none' }]);
});

t.test('open fails closed when the API refuses us', async (t) => {
  const api = await cluster(t);
  const { KubeApi } = await import('../../mesh/kube/http.js');
  const err = await KubeMeshSource.open({
    api: new KubeApi(api.kubeConfig('wrong-token')),
    logger: quiet,
    syncTimeoutMs: 300,
    reflector: { backoff: FAST },
  }).catch((e: unknown) => e);
  t.ok(err instanceof KubeError);
  t.equal((err as KubeError).code, 'KUBE_NOT_SYNCED');
  t.match((err as Error).message, /pods: GET \/api\/v1\/pods\?limit=500: 401/);
});
