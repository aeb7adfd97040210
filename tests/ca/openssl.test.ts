// The independent check: a CSR made by `openssl req`, posted with `curl`, comes back as a
// chain that `openssl verify` accepts, with the extensions an X.509-SVID must carry.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { run } from '../../testkit/exec.js';
import { startTestCa, TOKEN_A } from '../helpers/ca.js';

t.test('openssl CSR + curl → chain accepted by openssl verify', async (t) => {
  const tc = await startTestCa(t);
  const d = tc.dir;
  const req = await run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(d, 'key.pem'),
    '-subj',
    '/',
    '-addext',
    'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/reviews',
    '-out',
    join(d, 'csr.pem'),
  ]);
  t.equal(req.code, 0, `openssl req: ${req.stderr}`);
  await writeFile(join(d, 'ca.pem'), tc.ca.server.trustBundlePem);
  await writeFile(
    join(d, 'body.json'),
    JSON.stringify({ csr: await readFile(join(d, 'csr.pem'), 'utf8') }),
  );

  const bundle = await run('curl', [
    '-sS',
    '--fail',
    '--cacert',
    join(d, 'ca.pem'),
    `${tc.ca.url}/v1/trust-bundle`,
  ]);
  t.equal(bundle.code, 0, `curl trust-bundle: ${bundle.stderr}`);
  await writeFile(join(d, 'bundle.pem'), bundle.stdout);

  const res = await run('curl', [
    '-sS',
    '--fail-with-body',
    '--tlsv1.3',
    '--cacert',
    join(d, 'ca.pem'),
    '-H',
    `Authorization: Bearer ${TOKEN_A}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    `@${join(d, 'body.json')}`,
    `${tc.ca.url}/v1/certificates`,
  ]);
  t.equal(res.code, 0, `curl: ${res.stderr} ${res.stdout}`);
  const answer = JSON.parse(res.stdout);
  t.equal(answer.certChain.length, 1);
  t.ok(Date.parse(answer.expiresAt) > Date.now() + 23 * 3600_000, 'default lifetime is about 24 h');
  await writeFile(join(d, 'leaf.pem'), answer.certChain[0]);

  const verify = await run('openssl', [
    'verify',
    '-CAfile',
    join(d, 'bundle.pem'),
    join(d, 'leaf.pem'),
  ]);
  t.equal(verify.code, 0, `openssl verify: ${verify.stdout}${verify.stderr}`);
  t.match(verify.stdout, /leaf\.pem: OK/);

  const text = (await run('openssl', ['x509', '-in', join(d, 'leaf.pem'), '-noout', '-text']))
    .stdout;
  t.match(
    text,
    /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews\s/,
  );
  t.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  t.match(text, /X509v3 Key Usage: critical\s+Digital Signature\s/);
  t.match(
    text,
    /X509v3 Extended Key Usage:.*\s+TLS Web Server Authentication, TLS Web Client Authentication/,
  );
  t.match(text, /Public-Key: \(256 bit\)[\s\S]*NIST CURVE: P-256/);

  // The key openssl made is the key in the certificate (the CA signed our public key).
  const fromKey = await run('openssl', ['pkey', '-in', join(d, 'key.pem'), '-pubout']);
  const fromCert = await run('openssl', ['x509', '-in', join(d, 'leaf.pem'), '-noout', '-pubkey']);
  t.equal(fromCert.stdout, fromKey.stdout);

  // A different root does not verify it (the check can fail).
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(d, 'other.key'),
    '-subj',
    '/CN=other',
    '-out',
    join(d, 'other.pem'),
    '-days',
    '1',
  ]);
  const wrong = await run('openssl', [
    'verify',
    '-CAfile',
    join(d, 'other.pem'),
    join(d, 'leaf.pem'),
  ]);
  t.not(wrong.code, 0, 'another root does not verify the leaf');
});
