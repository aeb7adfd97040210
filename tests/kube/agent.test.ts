// Agents and the CA with the Kubernetes source against the local API server, in one process
// on loopback (node-a = 127.0.0.1, node-b = 127.0.0.2, pods in a 127.N/16 of their own):
// traffic is tunnelled as with the file source, the agents authenticate to the CA with
// TokenReview-checked tokens, a policy edit arriving as a watch event takes effect, a pod
// moving nodes is followed by both agents and the CA, and a dropped watch loses nothing.
import t, { type Test } from 'tap';
import { Agent } from '../../agent/agent.js';
import type { AgentConfig } from '../../agent/config.js';
import { CaClient } from '../../ca/client.js';
import { type RunningCa, startCa } from '../../ca/service.js';
import { deepFreeze } from '../../lib/freeze.js';
import { createLogger } from '../../lib/logger.js';
import { Socks5Refused, socks5Connect } from '../../lib/socks5-client.js';
import { KubeMeshSource } from '../../mesh/kube/source.js';
import { converse, startApp, stopApps } from '../helpers/apps.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { FakeApiServer } from './fake-apiserver.js';
import {
  agentPod,
  agentTokenReviewed,
  authorizationPolicy,
  namespace,
  node,
  pod,
  service,
} from './objects.js';

const NODES = { 'node-a': '127.0.0.1', 'node-b': '127.0.0.2' } as const;
type NodeName = keyof typeof NODES;

interface KubeWorld {
  readonly api: FakeApiServer;
  readonly ca: RunningCa;
  readonly agents: Map<NodeName, Agent>;
  readonly sources: Map<NodeName, KubeMeshSource>;
  readonly access: Map<NodeName, Record<string, unknown>[]>;
  ip(suffix: string): string;
  socks(n: NodeName): { host: string; port: number };
}

/** The shop's pods (name, account and app label, node, address in the world's 127.N/16), each
 *  with an echo app on port 9080. */
const SHOP_PODS = [
  ['web-1', 'web', 'node-a', '10.1'],
  ['reviews-1', 'reviews', 'node-b', '20.1'],
  ['ratings-1', 'ratings', 'node-b', '20.3'],
] as const;

function shopPod(name: string, app: string, nodeName: NodeName, ip: string) {
  return pod({ ns: 'shop', name, sa: app, node: nodeName, ip, labels: { app } });
}

async function startKubeWorld(t: Test): Promise<KubeWorld> {
  const net = 100 + Math.floor(Math.random() * 150);
  const ip = (suffix: string) => `127.${net}.${suffix}`;
  const api = await FakeApiServer.start(t);
  api.apply('namespaces', namespace('mtun-system'));
  api.apply('namespaces', namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }));
  for (const [n, addr] of Object.entries(NODES)) {
    api.apply('nodes', node(n, addr));
    api.apply('pods', agentPod(`mtun-agent-${n}`, `uid-${n}`, n, addr));
  }
  for (const [name, app, n, suffix] of SHOP_PODS)
    api.apply('pods', shopPod(name, app, n, ip(suffix)));
  api.apply('services', service('shop', 'reviews', ip('30.1'), { app: 'reviews' }));
  // TokenReview: the agent's token for node N is "agent-token-N", bound to its pod.
  api.tokenReview = (spec) => {
    const m = /^agent-token-(node-[ab])$/.exec(String(spec['token']));
    if (!m || !(spec['audiences'] as string[]).includes('mtun-ca'))
      return { body: { status: { authenticated: false, error: 'invalid token' } } };
    return agentTokenReviewed(`mtun-agent-${m[1]}`, `uid-${m[1]}`);
  };
  const apps = await Promise.all([
    ...SHOP_PODS.map(([name, , , suffix]) => startApp(name, ip(suffix), 9080)),
    startApp('reviews-1-moved', ip('10.7'), 9080),
  ]);
  t.teardown(() => stopApps(apps));
  const debug = !!process.env['MTUN_TEST_LOG'];
  const logger = createLogger({ level: debug ? 'debug' : 'silent' });
  const ca = await startCa(
    {
      stateDir: '',
      meshPaths: [],
      tokensFile: '',
      host: '127.0.0.1',
      port: 0,
      trustDomain: 'cluster.local',
      cacertsDir: undefined,
      maxTtlMs: 3_600_000,
      rateLimit: { burst: 1000, perSecond: 100 },
      meshSource: 'kubernetes',
      auth: {
        kind: 'tokenreview',
        audience: 'mtun-ca',
        serviceAccounts: ['mtun-system/mtun-agent'],
      },
      rootSecret: { namespace: 'mtun-system', name: 'mtun-ca-root' },
    },
    logger.child({ module: 'ca' }),
    { kube: api.api() },
  );
  t.teardown(() => ca.close());
  // The agents' trust bundle is the Secret's root-cert.pem, as the DaemonSet mounts it.
  const bundle = api.secretText('mtun-system/mtun-ca-root', 'root-cert.pem');
  const hbonePort = await freePort(Object.values(NODES));
  const agents = new Map<NodeName, Agent>();
  const sources = new Map<NodeName, KubeMeshSource>();
  const access = new Map<NodeName, Record<string, unknown>[]>();
  for (const [n, addr] of Object.entries(NODES) as [NodeName, string][]) {
    const mesh = await KubeMeshSource.open({
      api: api.api(),
      logger: logger.child({ node: n }),
      debounceMs: 5,
      reflector: { backoff: { initialMs: 10, maxMs: 100, jitter: 0 } },
    });
    t.teardown(() => mesh.close());
    sources.set(n, mesh);
    access.set(n, []);
    const config: AgentConfig = deepFreeze({
      node: n,
      logLevel: debug ? 'debug' : 'silent',
      redirect: 'none',
      // Only described: the source itself (over the fake API server) is handed over below.
      mesh: { kind: 'kubernetes', access: { kind: 'kubeconfig', file: '/dev/null' } },
      trustDomain: 'cluster.local',
      clusterDomain: 'cluster.local',
      rootNamespace: 'istio-system',
      ca: { url: ca.url, tokenFile: '', bundleFile: '', certTtlSeconds: undefined },
      listenIp: addr,
      outboundPort: 0,
      inboundPort: hbonePort,
      inboundPlaintextPort: 0,
      hbonePort,
      hboneDial: 'node',
      socks5: { host: addr, port: 0 },
      socks5Workload: undefined,
      socks5AllowNonPodClients: false,
      admin: { host: addr, port: 0 },
      metrics: { host: addr, port: 0 },
      readiness: undefined,
      clusterId: 'Kubernetes',
      workers: 1,
      drainPeriodMs: 200,
      connectTimeoutMs: 5_000,
      refuseBypassedPlaintext: false,
      hardened: false,
    });
    const agent = await Agent.create(config, {
      mesh,
      ca: new CaClient({ url: ca.url, caBundlePem: bundle, token: async () => `agent-token-${n}` }),
      caBundlePem: [bundle],
      logger: logger.child({ node: n }),
      accessLog: { write: (line) => access.get(n)!.push(line) },
    });
    t.teardown(() => agent.close(200));
    agents.set(n, agent);
  }
  await eventually(
    () => [...agents.values()].every((a) => !a.notReadyReason()),
    'agents ready',
    15_000,
  );
  return {
    api,
    ca,
    agents,
    sources,
    access,
    ip,
    socks(n) {
      const a = agents.get(n)!.addresses().socks5!;
      return { host: a.host, port: a.port };
    },
  };
}

t.test('traffic through agents fed by the Kubernetes API, and live changes', async (t) => {
  const w = await startKubeWorld(t);
  /** From web-1, through node-a's SOCKS5 listener. */
  const dial = (host: string, port: number) =>
    socks5Connect(w.socks('node-a'), { host, port }, { localAddress: w.ip('10.1') });

  await t.test('tunnelled with verified identities, certificates via TokenReview', async (t) => {
    const conn = await dial(w.ip('20.1'), 9080);
    t.equal(await converse(conn, ['hello']), 'reviews-1 hello\nreviews-1 bye\n');
    await eventually(
      () => w.access.get('node-b')!.some((l) => l['direction'] === 'inbound'),
      'inbound logged',
    );
    const inbound = w.access.get('node-b')!.find((l) => l['direction'] === 'inbound')!;
    t.equal(inbound['src.identity'], 'spiffe://cluster.local/ns/shop/sa/web');
    t.equal(inbound['dst.workload'], 'reviews-1');
    const viaService = await dial('reviews.shop.svc.cluster.local', 80);
    t.equal(
      await converse(viaService, ['svc']),
      'reviews-1 svc\nreviews-1 bye\n',
      'Service from the API',
    );
    t.ok(
      w.api.requests.filter((r) => r.path.endsWith('/tokenreviews')).length >= 2,
      'agents authenticated by TokenReview',
    );
  });

  await t.test('a policy edit arriving as a watch event is enforced', async (t) => {
    const ok = await dial(w.ip('20.3'), 9080);
    t.equal(await converse(ok, ['x']), 'ratings-1 x\nratings-1 bye\n', 'allowed before');
    w.api.apply(
      'authorizationpolicies',
      authorizationPolicy('shop', 'ratings-from-reviews', {
        selector: { matchLabels: { app: 'ratings' } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/reviews'] } }] }],
      }),
    );
    await eventually(
      () => w.sources.get('node-b')!.current().authorizationPolicies.length === 1,
      'node-b has the policy',
    );
    const err = await dial(w.ip('20.3'), 9080).catch((e: unknown) => e);
    t.type(err, Socks5Refused, 'web → ratings denied now');
    // The watch drops; meanwhile the policy is edited to allow web too. Nothing is lost.
    w.api.dropWatches();
    w.api.apply(
      'authorizationpolicies',
      authorizationPolicy('shop', 'ratings-from-reviews', {
        selector: { matchLabels: { app: 'ratings' } },
        action: 'ALLOW',
        rules: [
          {
            from: [
              {
                source: {
                  principals: ['cluster.local/ns/shop/sa/reviews', 'cluster.local/ns/shop/sa/web'],
                },
              },
            ],
          },
        ],
      }),
    );
    await eventually(
      () =>
        (w.sources.get('node-b')!.current().authorizationPolicies[0]?.rules?.[0]?.from?.[0]?.source
          .principals?.length ?? 0) === 2,
      'edit made while disconnected arrives',
    );
    const again = await dial(w.ip('20.3'), 9080);
    t.equal(await converse(again, ['y']), 'ratings-1 y\nratings-1 bye\n', 'allowed after the edit');
  });

  await t.test('a pod moving nodes: the CA, node-a and node-b all follow', async (t) => {
    w.api.remove('pods', 'shop', 'reviews-1');
    w.api.apply('pods', shopPod('reviews-1', 'reviews', 'node-a', w.ip('10.7')));
    await eventually(
      () =>
        [...w.sources.values()].every(
          (s) => s.current().workload('shop', 'reviews-1')?.node === 'node-a',
        ) && w.ca.mesh.current().runsIdentityOnNode('node-a', 'shop', 'reviews'),
      'everyone sees the move',
    );
    // node-a now needs a certificate for shop/reviews: the CA grants it only after the move.
    await eventually(
      () => !w.agents.get('node-a')!.notReadyReason(),
      'node-a ready with the reviews identity',
      10_000,
    );
    const before = w.access.get('node-a')!.length;
    const conn = await dial('reviews.shop.svc.cluster.local', 80);
    t.equal(
      await converse(conn, ['moved']),
      'reviews-1-moved moved\nreviews-1-moved bye\n',
      'the Service now reaches the moved pod',
    );
    // Same node now: node-a decides and logs it once, no HBONE hop.
    await eventually(
      () =>
        w.access
          .get('node-a')!
          .slice(before)
          .some((l) => l['dst.workload'] === 'reviews-1'),
      'logged on node-a',
    );
    const line = w.access
      .get('node-a')!
      .slice(before)
      .find((l) => l['dst.workload'] === 'reviews-1')!;
    t.equal(line['dst.addr'], `${w.ip('10.7')}:9080`, 'to the new pod IP');
    t.equal(line['verdict'], 'allow');
    t.equal(line['dst.hbone_addr'], undefined, 'no tunnel to node-b any more');
    t.equal(
      w.sources.get('node-a')!.current().workloadByIp(w.ip('20.1')),
      undefined,
      'old IP forgotten',
    );
  });
});
