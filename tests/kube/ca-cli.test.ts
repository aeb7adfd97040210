// `mtun ca` as a real process on Kubernetes flags: --kubeconfig to the local API server,
// --mesh-source kubernetes, --auth tokenreview, --root-secret; it issues to a node agent's
// token and stops on SIGTERM. Without API access it exits 2 and says what to pass.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { CaClient } from '../../ca/client.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { run } from '../../testkit/exec.js';
import { MTUN_CLI, startMtun, terminate } from '../../testkit/process.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeApiServer } from './fake-apiserver.js';
import { agentPod, agentTokenReviewed, namespace, pod } from './objects.js';

/** `mtun ca` on the Kubernetes API, authenticating agents by TokenReview. */
const KUBE_CA = ['ca', '--mesh-source', 'kubernetes', '--auth', 'tokenreview'];

t.test('mtun ca on the Kubernetes API issues to an agent token and stops cleanly', async (t) => {
  const api = await FakeApiServer.start(t);
  api.apply('namespaces', namespace('shop', { 'istio.io/dataplane-mode': 'ambient' }));
  api.apply('pods', agentPod('mtun-agent-x', 'uid-x', 'node-a', '198.18.0.1'));
  api.apply(
    'pods',
    pod({ ns: 'shop', name: 'web-1', sa: 'web', node: 'node-a', ip: '198.18.10.1' }),
  );
  api.tokenReview = (spec) =>
    spec['token'] === 'agent-token'
      ? agentTokenReviewed('mtun-agent-x', 'uid-x')
      : { body: { status: { authenticated: false } } };
  const dir = await tempDir(t, 'mtun-ca-cli-');
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(kubeconfig, api.kubeconfigYaml());
  const proc = startMtun(t, [
    ...KUBE_CA,
    '--root-secret',
    'mtun-system/mtun-ca-root',
    '--kubeconfig',
    kubeconfig,
    '--listen',
    '127.0.0.1:0',
  ]);
  // The whole line (up to its newline): its JSON says where the CA listens.
  const listening = JSON.parse((await proc.waitFor(/^(.*CA listening.*)\n/m, 20_000))[1]!);
  t.equal(listening.auth, 'tokenreview');
  const bundle = api.secretText('mtun-system/mtun-ca-root', 'root-cert.pem');
  const ca = (token: string) =>
    new CaClient({ url: listening.url, caBundlePem: bundle, token: async () => token });
  const cert = await ca('agent-token').fetchCertificate(
    SpiffeId.of('cluster.local', 'shop', 'web'),
  );
  t.equal(cert.id.toString(), 'spiffe://cluster.local/ns/shop/sa/web');
  const refused = await ca('stolen')
    .fetchCertificate(SpiffeId.of('cluster.local', 'shop', 'web'))
    .catch((e: { status?: number }) => e);
  t.equal((refused as { status?: number }).status, 401);
  t.equal(await terminate(proc.child), 0, 'SIGTERM exits 0');
});

t.test('without API access it exits 2 naming the fix', async (t) => {
  const res = await run('env', [
    '-u',
    'KUBERNETES_SERVICE_HOST',
    '-u',
    'KUBERNETES_SERVICE_PORT',
    process.execPath,
    ...MTUN_CLI,
    ...KUBE_CA,
  ]);
  t.equal(res.code, 2);
  t.match(
    res.stderr,
    /not in a cluster \(KUBERNETES_SERVICE_HOST\/PORT unset\); pass --kubeconfig FILE/,
  );
  const agent = await run(process.execPath, [
    ...MTUN_CLI,
    'agent',
    '--node',
    'n',
    '--ca',
    'https://127.0.0.1:1',
    '--ca-token-file',
    '/x',
    '--ca-bundle',
    '/x',
  ]);
  t.equal(agent.code, 2);
  t.match(
    agent.stderr,
    /required option '--mesh <path\.\.\.>' not specified \(with --mesh-source files/,
  );
  const noFile = await run(process.execPath, [
    ...MTUN_CLI,
    ...KUBE_CA,
    '--kubeconfig',
    '/nonexistent/kubeconfig',
  ]);
  t.equal(noFile.code, 2);
  t.match(noFile.stderr, /--kubeconfig \/nonexistent\/kubeconfig:/);
});
