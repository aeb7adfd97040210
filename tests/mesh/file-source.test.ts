// The watched mesh files under an unlucky operator (issue 12, item 7): a policy file rewritten
// in place (truncated, then written) reads empty for a moment. That moment must never lift
// the DENY and STRICT it held; a truncated (unparsable) file neither. Emptying a file on
// purpose is done by removing it or by a `# mtun: empty` line, and then applies.
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t, { type Test } from 'tap';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { createLogger } from '../../lib/logger.js';
import { EMPTY_MARKER, FileMeshSource } from '../../mesh/file-source.js';
import type { MeshSnapshot } from '../../mesh/snapshot.js';
import { authorize } from '../../policy/index.js';
import { tempDir } from '../helpers/tmp.js';

const BASE = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-1, namespace: shop, labels: {app: ratings}}
spec: {serviceAccountName: ratings, nodeName: node-b}
status: {podIP: 198.18.2.3}
`;

const POLICY = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-web, namespace: shop}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: STRICT}}
`;

const WEB = SpiffeId.parse('spiffe://cluster.local/ns/shop/sa/web');

/** The two verdicts the policy file decides: web over mTLS (DENY) and plaintext (STRICT). */
function verdicts(s: MeshSnapshot): { web: string; plaintext: string } {
  const workload = s.workload('shop', 'ratings-1')!;
  const to = { workload, ip: '198.18.2.3', port: 9080 };
  return {
    web: authorize({ source: { identity: WEB, ip: '198.18.1.1' }, destination: to }, s).verdict,
    plaintext: authorize({ source: { identity: undefined, ip: '198.18.1.1' }, destination: to }, s)
      .verdict,
  };
}

async function setup(t: Test) {
  const dir = await tempDir(t, 'mtun-mesh-');
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(join(dir, 'base.yaml'), BASE);
  await writeFile(policyFile, POLICY);
  const lines: Record<string, unknown>[] = [];
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
  });
  // No watcher: each reload is asked for, so the empty moment is read for certain.
  const source = await FileMeshSource.open({
    paths: [dir],
    logger: createLogger({ level: 'debug', destination: sink }),
    watch: false,
  });
  t.teardown(() => source.close());
  const published: MeshSnapshot[] = [];
  source.subscribe((s) => published.push(s));
  const warnings = (msg: RegExp) =>
    lines.filter((l) => l['level'] === 'warn' && msg.test(String(l['msg'])));
  return { dir, policyFile, source, published, warnings };
}

t.test('a policy file rewritten in place never lifts its DENY or STRICT', async (t) => {
  const { policyFile, source, published, warnings } = await setup(t);
  t.same(verdicts(source.current()), { web: 'deny', plaintext: 'deny' }, 'at start');
  for (let i = 0; i < 5; i++) {
    // What `echo ... > policy.yaml` does: truncate, then write into the same inode.
    const fh = await open(policyFile, 'w');
    await source.reload();
    await source.reload(); // the watcher fires more than once while it is empty
    t.same(verdicts(source.current()), { web: 'deny', plaintext: 'deny' }, `empty moment ${i}`);
    await fh.writeFile(POLICY);
    await fh.close();
    await source.reload();
    t.same(verdicts(source.current()), { web: 'deny', plaintext: 'deny' }, `rewritten ${i}`);
  }
  t.same(
    published.map(verdicts).filter((v) => v.web !== 'deny' || v.plaintext !== 'deny'),
    [],
    'no published snapshot ever allowed what the file denies',
  );
  const emptied = warnings(/mesh file emptied/);
  t.equal(emptied.length, 5, 'one warning per empty moment, however many reloads saw it');
  t.match(JSON.stringify(emptied[0]), /policy\.yaml/, 'the warning names the file');
  t.match(JSON.stringify(emptied[0]), /mtun: empty/, 'and says how to empty it on purpose');
  t.equal(source.lastError, undefined, 'all is well once the file is back');
});

t.test('a truncated (unparsable) file keeps the last good state, reported once', async (t) => {
  const { policyFile, source, warnings } = await setup(t);
  const cut = POLICY.slice(0, POLICY.indexOf('principals: [') + 16); // inside a flow sequence
  await writeFile(policyFile, cut);
  await source.reload();
  await source.reload();
  t.same(verdicts(source.current()), { web: 'deny', plaintext: 'deny' });
  const rejected = warnings(/mesh files rejected/);
  t.equal(rejected.length, 1, 'reported once');
  t.match(JSON.stringify(rejected[0]), /policy\.yaml/, 'naming the file');
  t.match(source.lastError?.message, /policy\.yaml.*YAML syntax/);
});

t.test('emptying a file on purpose applies: the marker line, or removing it', async (t) => {
  const { policyFile, source } = await setup(t);
  await writeFile(policyFile, `${EMPTY_MARKER}\n`);
  t.equal(await source.reload(), true, 'a new snapshot');
  t.same(verdicts(source.current()), { web: 'allow', plaintext: 'allow' }, 'policies gone');
  await writeFile(policyFile, POLICY);
  await source.reload();
  t.same(verdicts(source.current()), { web: 'deny', plaintext: 'deny' }, 'back');
  await rm(policyFile);
  t.equal(await source.reload(), true);
  t.same(verdicts(source.current()), { web: 'allow', plaintext: 'allow' }, 'removed: gone');
});

t.test('an emptied file is held on its own: other files still apply', async (t) => {
  const { dir, policyFile, source } = await setup(t);
  await writeFile(policyFile, '');
  await writeFile(
    join(dir, 'more.yaml'),
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n',
  );
  t.equal(await source.reload(), true, 'the new file applies');
  t.ok(source.current().namespaces.some((n) => n.meta.name === 'other'));
  t.same(verdicts(source.current()), { web: 'deny', plaintext: 'deny' }, 'the policies stay');
  t.match(source.lastError?.message, /policy\.yaml: held objects and is now empty/);
});
