// `mtun check` and `mtun config --node` with the mesh read from the Kubernetes API
// (--mesh-source kubernetes --kubeconfig), as real processes: the verdict from the model
// when no agent is asked (exit 0 / 1), bad input exit 2, and --node resolving a node's
// agent through its Node object's InternalIP.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { run } from '../../testkit/exec.js';
import { MTUN_CLI } from '../../testkit/process.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeApiServer } from './fake-apiserver.js';
import { authorizationPolicy, namespace, node, pod } from './objects.js';

t.test('mtun check and mtun config --node on the Kubernetes API', async (t) => {
  const api = await FakeApiServer.start(t);
  api.apply('namespaces', namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }));
  api.apply('nodes', node('node-a', '127.0.0.1'));
  api.apply(
    'pods',
    pod({ ns: 'shop', name: 'web-1', sa: 'web', node: 'node-a', ip: '198.18.10.1' }),
  );
  api.apply('pods', pod({ ns: 'shop', name: 'db-1', sa: 'db', node: 'node-a', ip: '198.18.10.2' }));
  api.apply(
    'authorizationpolicies',
    authorizationPolicy('shop', 'deny-5432', {
      action: 'DENY',
      rules: [{ to: [{ operation: { ports: ['5432'] } }] }],
    }),
  );
  const dir = await tempDir(t, 'mtun-check-kube-');
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(kubeconfig, api.kubeconfigYaml());
  const kube = ['--mesh-source', 'kubernetes', '--kubeconfig', kubeconfig];
  const mtun = (args: string[]) =>
    run(process.execPath, [...MTUN_CLI, ...args], { timeoutMs: 60_000 });

  const ok = await mtun(['check', 'shop/web-1', 'shop/db-1:8080', ...kube]);
  t.equal(ok.code, 0, `allowed and mTLS by the model: ${ok.stderr}`);
  t.match(ok.stdout, /^OK: shop\/web-1 -> shop\/db-1:8080 is mTLS/m);
  t.match(ok.stdout, /agent was not asked/);
  const denied = await mtun(['check', 'shop/web-1', '198.18.10.2:5432', ...kube, '-o', 'json']);
  t.equal(denied.code, 1);
  t.match(JSON.parse(denied.stdout), {
    verdict: 'denied',
    decision: { policy: 'shop/deny-5432', rule: 0 },
  });
  const bad = await mtun(['check', 'shop/web-1', 'shop/nobody:80', ...kube]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /DST shop\/nobody: no such pod/);
  const none = await mtun(['check', 'shop/web-1', 'shop/db-1:80']);
  t.equal(none.code, 2);
  t.match(none.stderr, /needs --mesh/);

  // A stand-in for node-a's agent admin endpoint, found through the Node object.
  const admin = createServer((req, res) => {
    res.writeHead(req.url === '/config_dump' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        workloads: [
          {
            uid: 'Kubernetes//Pod/shop/web-1',
            name: 'web-1',
            namespace: 'shop',
            workloadIps: ['198.18.10.1'],
            node: 'node-a',
            protocol: 'HBONE',
            status: 'Healthy',
          },
        ],
        services: [],
        policies: [],
        certificates: [],
      }),
    );
  });
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  t.teardown(() => admin.close());
  const port = (admin.address() as { port: number }).port;
  const w = await mtun([
    'config',
    'workloads',
    '--node',
    'node-a',
    '--admin-port',
    String(port),
    ...kube,
  ]);
  t.equal(w.code, 0, w.stderr);
  t.match(w.stdout, /^shop\s+web-1\s+198\.18\.10\.1\s+node-a\s+None\s+HBONE$/m);
  const gone = await mtun(['config', 'workloads', '--node', 'node-z', ...kube]);
  t.equal(gone.code, 2);
  t.match(gone.stderr, /the mesh has no Node node-z/);
});
