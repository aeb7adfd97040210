// The agents fed by the Kubernetes API instead of files, on the namespaced topology: both
// agents and the CA are real processes in their namespaces with --mesh-source kubernetes and
// a kubeconfig for the fake list/watch API server (kube-control.ts says how they reach it),
// which holds the same objects as the file source's mesh.yaml. Traffic is carried as with
// the file source (pod IP through HBONE with the caller's identity, a Service VIP, DENY),
// and changes arriving as watch events while the agents run take effect: a DENY policy
// added then deleted, a new Service, a namespace enrolled in the mesh (capture rules, a
// certificate from the CA, which follows the API too). Root only (CI runs it).
import t from 'tap';
import { CTL_IP } from '../../testkit/topology.js';
import { authorizationPolicy, namespace, service } from '../kube/objects.js';
import {
  accessAfter,
  CLIENT_ID,
  CLOSED,
  type Cluster,
  clusterCannotRun,
  hello,
  podToPodThroughHbone,
  serviceVipThroughHbone,
  startCluster,
  waitUntil,
} from './cluster.js';
import { API_PORT, kubeControlPlane, startMeshApi } from './kube-control.js';
import { podByName } from './pods.js';

const why = clusterCannotRun();
if (why) t.comment(`namespaced Kubernetes-source tests skipped: ${why}`);

const ip = (name: string) => podByName(name).ip;

function logLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{') && l.endsWith('}'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The parts of the (ztunnel-shaped) config dump read here. */
interface ConfigDump {
  workloads: { name: string; namespace: string; protocol: 'HBONE' | 'TCP' }[];
  services: { name: string; namespace: string }[];
  policies: { name: string; namespace: string }[];
  certificates: { identity: string; state: string }[];
  mtun: { ready: string };
}

async function configDump(c: Cluster, node: 'n1' | 'n2'): Promise<ConfigDump> {
  const r = await c.ns.exec(node, 'curl', ['-sS', 'http://127.0.0.1:15000/config_dump']);
  if (r.code !== 0) throw new Error(`config_dump on ${node}: curl exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ConfigDump;
}

/** Waits until every given node's agent model satisfies `cond` (it came by a watch event). */
async function modelHas(
  c: Cluster,
  nodes: readonly ('n1' | 'n2')[],
  cond: (d: ConfigDump) => boolean,
  what: string,
): Promise<void> {
  for (const node of nodes)
    await waitUntil(async () => cond(await configDump(c, node)), `${node}: ${what}`, 30_000);
}

t.test(
  'two-node mesh in namespaces, fed by the Kubernetes API',
  { skip: why ? `skipped: ${why}` : false, timeout: 180_000 },
  async (t) => {
    const api = await startMeshApi(t);
    const c = await startCluster(t, { controlPlane: kubeControlPlane(api) });

    await t.test('the agents and the CA list and watch the API, and use TokenReview', async (t) => {
      for (const [who, proc] of [
        ['ca', c.ca],
        ['n1', c.agents.get('n1')!],
        ['n2', c.agents.get('n2')!],
      ] as const) {
        const loaded = logLines(proc.output()).find((l) => l.msg === 'mesh loaded from Kubernetes');
        t.equal(
          loaded && new URL(String(loaded.api)).host,
          `${CTL_IP}:${API_PORT}`,
          `${who}: mesh loaded from the API through the relay`,
        );
      }
      const listening = logLines(c.ca.output()).find((l) => l.msg === 'CA listening');
      t.equal(listening?.auth, 'tokenreview', 'the CA authenticates nodes by TokenReview');
      const watches = api.requests.filter(
        (r) => r.path === '/api/v1/pods' && r.query.get('watch') !== null,
      );
      t.ok(watches.length >= 3, `pods watched by the CA and both agents (${watches.length})`);
      const reviews = api.requests.filter((r) => r.path.endsWith('/tokenreviews'));
      const reviewed = new Set(
        reviews.map((r) => (r.body as { spec: { token: string } }).spec.token),
      );
      t.ok(reviewed.size >= 2, 'each agent authenticated to the CA by TokenReview');
      const dump = await configDump(c, 'n2');
      t.ok(
        dump.workloads.some(
          (w) => w.namespace === 'strict' && w.name === 'web-2' && w.protocol === 'HBONE',
        ),
        'the model came from the API',
      );
    });

    await t.test(
      'curl pod(node-1) -> pod(node-2) by pod IP: through HBONE, identity verified',
      (t) => podToPodThroughHbone(t, c),
    );

    await t.test('curl by a Service VIP from the API', (t) => serviceVipThroughHbone(t, c));

    await t.test('the DENY policy from the API at start', async (t) => {
      const res = await c.curl('client-1', `http://${ip('web-2')}:9090/hello.txt`);
      t.ok(CLOSED.includes(res.code), `curl: empty reply or reset (exit ${res.code})`);
      t.equal(res.body, '', 'no data');
      const line = (
        await accessAfter(c, 'n2', {
          direction: 'inbound',
          'dst.hbone_addr': `${ip('web-2')}:9090`,
        })
      ).at(-1);
      t.equal(line?.verdict, 'deny');
      t.equal(line?.policy, 'strict/deny-9090');
    });

    await t.test('a DENY policy added, then deleted, as watch events', async (t) => {
      const url = `http://${ip('web-2')}:8080/hello.txt`;
      await hello(t, c, 'client-1', url);
      api.apply(
        'authorizationpolicies',
        authorizationPolicy('strict', 'deny-apps', {
          selector: { matchLabels: { app: 'web' } },
          action: 'DENY',
          rules: [{ from: [{ source: { namespaces: ['apps'] } }] }],
        }),
      );
      const has = (d: ConfigDump) =>
        d.policies.some((p) => `${p.namespace}/${p.name}` === 'strict/deny-apps');
      await modelHas(c, ['n2'], has, 'policy strict/deny-apps arrived');
      const denied = await c.curl('client-1', url);
      t.ok(CLOSED.includes(denied.code), `refused now (curl exit ${denied.code})`);
      t.equal(denied.body, '', 'no data');
      const line = (
        await accessAfter(c, 'n2', {
          direction: 'inbound',
          'dst.hbone_addr': `${ip('web-2')}:8080`,
          verdict: 'deny',
        })
      ).at(-1);
      t.equal(line?.policy, 'strict/deny-apps', 'denied by the policy from the watch');
      t.equal(line?.['src.identity'], CLIENT_ID);

      api.remove('authorizationpolicies', 'strict', 'deny-apps');
      await modelHas(c, ['n2'], (d) => !has(d), 'policy strict/deny-apps deleted');
      await hello(t, c, 'client-1', url);
    });

    await t.test('a Service created while the agents run is reachable by its VIP', async (t) => {
      const vip = '198.19.0.11';
      api.apply('services', service('open', 'open', vip, { app: 'open' }, 80, 8080));
      await modelHas(
        c,
        ['n1'],
        (d) => d.services.some((s) => `${s.namespace}/${s.name}` === 'open/open'),
        'service open/open arrived',
      );
      await hello(t, c, 'client-1', `http://${vip}/hello.txt`);
      const server = await accessAfter(c, 'n2', {
        direction: 'inbound',
        'dst.service': 'open.open.svc.cluster.local',
      });
      t.equal(server.at(-1)?.['src.identity'], CLIENT_ID);
      t.equal(server.at(-1)?.['dst.hbone_addr'], `${ip('open-2')}:8080`);
    });

    await t.test(
      'a namespace enrolled in the mesh: its pod is captured and gets an identity',
      async (t) => {
        const url = `http://${ip('web-2')}:8080/hello.txt`;
        const before = await c.curl('legacy-1', url, 5);
        t.not(before.code, 0, `STRICT refuses the non-mesh pod first (curl exit ${before.code})`);
        api.apply('namespaces', namespace('legacy', { 'istio.io/dataplane-mode': 'ambient' }));
        const legacyId = 'spiffe://cluster.local/ns/legacy/sa/legacy';
        await modelHas(
          c,
          ['n1', 'n2'],
          (d) =>
            d.workloads.some(
              (w) => `${w.namespace}/${w.name}` === 'legacy/legacy-1' && w.protocol === 'HBONE',
            ),
          'legacy-1 in the mesh',
        );
        await modelHas(
          c,
          ['n1'],
          (d) =>
            d.mtun.ready === 'ready' &&
            d.certificates.some((x) => x.identity === legacyId && x.state === 'Available'),
          `a certificate for ${legacyId}`,
        );
        await waitUntil(
          async () => (await c.rules('n1')).includes(`-s ${ip('legacy-1')}/32`),
          'n1 captures legacy-1',
          30_000,
        );
        await hello(t, c, 'legacy-1', url);
        const server = await accessAfter(c, 'n2', {
          direction: 'inbound',
          'dst.hbone_addr': `${ip('web-2')}:8080`,
          'src.identity': legacyId,
        });
        t.equal(server.at(-1)?.verdict, 'allow', 'through HBONE with its new identity');
        t.equal(server.at(-1)?.['src.workload'], 'legacy-1');
      },
    );
  },
);
