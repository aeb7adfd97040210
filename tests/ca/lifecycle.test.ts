// The CA across restarts, mesh changes and a plugged-in intermediate (Istio's cacerts).
import { chmod, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { loadOrCreateRoot } from '../../ca/material.js';
import { createIntermediate, createRoot, privateKeyPem } from '../../ca/pki.js';
import { run } from '../../testkit/exec.js';
import { meshYaml, startTestCa, TOKEN_A, TOKEN_B } from '../helpers/ca.js';
import { makeCsr } from '../helpers/csr.js';
import { tempDir } from '../helpers/tmp.js';

const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews';

t.test('a root generated once survives a restart', async (t) => {
  const stateDir = join(await tempDir(t), 'state');
  await (await startTestCa(t, { stateDir })).ca.close();
  const files = ['root-cert.pem', 'root-key.pem'];
  for (const f of files)
    t.equal((await stat(join(stateDir, f))).mode & 0o777, 0o600, `${f} is 0600`);
  t.equal((await stat(stateDir)).mode & 0o777, 0o700, 'state dir is 0700');
  const rootBefore = await readFile(join(stateDir, 'root-cert.pem'), 'utf8');

  const tc1 = await startTestCa(t, { stateDir });
  const bundle1 = tc1.ca.server.trustBundlePem;
  await tc1.ca.close();
  const tc2 = await startTestCa(t, { stateDir });
  t.equal(tc2.ca.server.trustBundlePem, bundle1, 'same trust bundle after a restart');
  t.equal(
    await readFile(join(stateDir, 'root-cert.pem'), 'utf8'),
    rootBefore,
    'root file unchanged',
  );
  const res = await tc2.post({ csr: await makeCsr(REVIEWS) });
  t.equal(res.status, 200);
  t.equal(res.json.trustBundle.join('\n').trim(), bundle1.trim(), 'issued against the same root');
});

t.test('state directory problems are reported, not papered over', async (t) => {
  const dir = await tempDir(t);
  await loadOrCreateRoot(dir, 'cluster.local');
  await chmod(join(dir, 'root-key.pem'), 0o644);
  await t.rejects(loadOrCreateRoot(dir, 'cluster.local'), /mode 644 lets others read the root key/);
  await chmod(join(dir, 'root-key.pem'), 0o600);
  await unlink(join(dir, 'root-cert.pem'));
  await t.rejects(
    loadOrCreateRoot(dir, 'cluster.local'),
    /found root-key.pem without root-cert.pem/,
  );
});

t.test('a mesh change (pod moves to node B) changes the answer without a restart', async (t) => {
  const tc = await startTestCa(t);
  const csr = await makeCsr(REVIEWS);
  t.equal((await tc.post({ csr }, { token: TOKEN_A })).status, 200, 'node A may, before');
  t.equal((await tc.post({ csr }, { token: TOKEN_B })).status, 403, 'node B may not, before');
  const version = tc.ca.mesh.current().version;
  const changed = new Promise<void>((resolve) => {
    const off = tc.ca.mesh.subscribe(() => {
      off();
      resolve();
    });
  });
  await writeFile(
    tc.meshFile,
    meshYaml([{ name: 'reviews-1', sa: 'reviews', node: 'node-b', ip: '198.18.1.10' }]),
  );
  await changed;
  t.ok(tc.ca.mesh.current().version > version, 'a new snapshot');
  t.equal((await tc.post({ csr }, { token: TOKEN_B })).status, 200, 'node B may, after');
  t.equal((await tc.post({ csr }, { token: TOKEN_A })).status, 403, 'node A may not, after');

  // A broken edit keeps the last good state.
  const good = tc.ca.mesh.current().version;
  await writeFile(tc.meshFile, 'apiVersion: v1\nkind: Pod\nmetadata: {name: BAD_NAME}\n');
  await new Promise((r) => setTimeout(r, 600));
  t.equal(tc.ca.mesh.current().version, good, 'bad input does not replace the snapshot');
  t.equal(
    (await tc.post({ csr }, { token: TOKEN_B })).status,
    200,
    'still answered from the last good state',
  );
  t.ok(
    tc.logs.some((l) => l.includes('mesh files rejected') && l.includes('metadata.name')),
    'the rejection is logged with the field',
  );
});

t.test('cacerts: signs as a plugged-in intermediate, chain verifies with openssl', async (t) => {
  const dir = await tempDir(t);
  const root = await createRoot({ trustDomain: 'cluster.local' });
  const inter = await createIntermediate(root, { trustDomain: 'cluster.local' });
  const cacerts = join(dir, 'cacerts');
  await mkdir(cacerts);
  await writeFile(join(cacerts, 'ca-cert.pem'), inter.cert.toString('pem'));
  await writeFile(join(cacerts, 'ca-key.pem'), await privateKeyPem(inter.key));
  await writeFile(join(cacerts, 'root-cert.pem'), root.cert.toString('pem'));
  await writeFile(
    join(cacerts, 'cert-chain.pem'),
    `${inter.cert.toString('pem')}\n${root.cert.toString('pem')}`,
  );
  const tc = await startTestCa(t, { cacertsDir: cacerts });
  const res = await tc.post({ csr: await makeCsr(REVIEWS) });
  t.equal(res.status, 200);
  t.equal(res.json.certChain.length, 2, 'leaf + intermediate');
  t.same(res.json.trustBundle, [root.cert.toString('pem')]);
  await writeFile(join(dir, 'leaf.pem'), res.json.certChain[0]!);
  await writeFile(join(dir, 'untrusted.pem'), res.json.certChain[1]!);
  await writeFile(join(dir, 'root.pem'), res.json.trustBundle[0]!);
  const ok = await run('openssl', [
    'verify',
    '-CAfile',
    join(dir, 'root.pem'),
    '-untrusted',
    join(dir, 'untrusted.pem'),
    join(dir, 'leaf.pem'),
  ]);
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  const noIntermediate = await run('openssl', [
    'verify',
    '-CAfile',
    join(dir, 'root.pem'),
    join(dir, 'leaf.pem'),
  ]);
  t.not(noIntermediate.code, 0, 'without the intermediate it does not verify');

  // A key that does not belong to ca-cert.pem is refused at start.
  const other = await createRoot({ trustDomain: 'cluster.local' });
  await writeFile(join(cacerts, 'ca-key.pem'), await privateKeyPem(other.key));
  await t.rejects(
    startTestCa(t, { cacertsDir: cacerts }),
    /ca-key.pem: the key does not belong to the certificate/,
  );
});
