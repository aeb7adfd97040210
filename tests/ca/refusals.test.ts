// Every way the CA must refuse, each by a real HTTPS request to a running CA.
import t from 'tap';
import { MAX_BODY_BYTES } from '../../ca/server.js';
import { startTestCa, TOKEN_B } from '../helpers/ca.js';
import { makeCsr, tamperSignature } from '../helpers/csr.js';

const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews';

t.test('CA refusals', async (t) => {
  const tc = await startTestCa(t);
  const good = await makeCsr(REVIEWS);

  const cases: {
    name: string;
    body?: unknown;
    raw?: string;
    token?: string | null;
    status: number;
    code: string;
  }[] = [
    {
      name: 'missing token',
      body: { csr: good },
      token: null,
      status: 401,
      code: 'UNAUTHENTICATED',
    },
    {
      name: 'unknown token',
      body: { csr: good },
      token: 'not-a-known-token-at-all',
      status: 401,
      code: 'UNAUTHENTICATED',
    },
    { name: 'body is not JSON', raw: 'csr=abc', status: 400, code: 'BAD_REQUEST' },
    { name: 'unknown body field', body: { csr: good, extra: 1 }, status: 400, code: 'BAD_REQUEST' },
    { name: 'negative ttl', body: { csr: good, ttlSeconds: -5 }, status: 400, code: 'BAD_REQUEST' },
    {
      name: 'malformed PEM',
      body: {
        csr: '-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----',
      },
      status: 400,
      code: 'BAD_CSR',
    },
    {
      name: 'a certificate instead of a CSR',
      body: { csr: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' },
      status: 400,
      code: 'BAD_CSR',
    },
    {
      name: 'garbage DER in a CSR block',
      body: {
        csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      },
      status: 400,
      code: 'BAD_CSR',
    },
    {
      name: 'bad CSR signature (no proof of possession)',
      body: { csr: tamperSignature(good) },
      status: 400,
      code: 'BAD_CSR_SIGNATURE',
    },
    {
      name: 'P-384 key',
      body: { csr: await makeCsr(REVIEWS, { algorithm: 'p384' }) },
      status: 400,
      code: 'UNSUPPORTED_KEY',
    },
    {
      name: 'RSA key',
      body: { csr: await makeCsr(REVIEWS, { algorithm: 'rsa2048' }) },
      status: 400,
      code: 'UNSUPPORTED_KEY',
    },
    { name: 'no SAN', body: { csr: await makeCsr([]) }, status: 400, code: 'BAD_SAN' },
    {
      name: 'two URI SANs',
      body: {
        csr: await makeCsr([
          { type: 'url', value: REVIEWS },
          { type: 'url', value: 'spiffe://cluster.local/ns/default/sa/other' },
        ]),
      },
      status: 400,
      code: 'BAD_SAN',
    },
    {
      name: 'URI plus DNS SAN',
      body: {
        csr: await makeCsr([
          { type: 'url', value: REVIEWS },
          { type: 'dns', value: 'reviews.default' },
        ]),
      },
      status: 400,
      code: 'BAD_SAN',
    },
    {
      name: 'DNS SAN only',
      body: { csr: await makeCsr([{ type: 'dns', value: 'reviews.default' }]) },
      status: 400,
      code: 'BAD_SAN',
    },
    {
      name: 'non-SPIFFE URI',
      body: { csr: await makeCsr('https://reviews.default/') },
      status: 400,
      code: 'BAD_SAN',
    },
    {
      name: 'SPIFFE ID that is not a workload',
      body: { csr: await makeCsr('spiffe://cluster.local/reviews') },
      status: 400,
      code: 'BAD_SAN',
    },
    {
      name: 'foreign trust domain',
      body: { csr: await makeCsr('spiffe://other.domain/ns/default/sa/reviews') },
      status: 400,
      code: 'FOREIGN_TRUST_DOMAIN',
    },
    {
      name: 'identity not on the calling node (node B asks for node A workload)',
      body: { csr: good },
      token: TOKEN_B,
      status: 403,
      code: 'NODE_NOT_AUTHORIZED',
    },
    {
      name: 'identity that runs nowhere',
      body: { csr: await makeCsr('spiffe://cluster.local/ns/default/sa/nobody') },
      status: 403,
      code: 'NODE_NOT_AUTHORIZED',
    },
    {
      name: 'identity in a namespace with no such pod',
      body: { csr: await makeCsr('spiffe://cluster.local/ns/other/sa/reviews') },
      status: 403,
      code: 'NODE_NOT_AUTHORIZED',
    },
    {
      name: 'oversized body',
      raw: JSON.stringify({ csr: 'x'.repeat(MAX_BODY_BYTES + 10) }),
      status: 413,
      code: 'BODY_TOO_LARGE',
    },
  ];
  for (const c of cases) {
    const opts = {
      ...(c.raw ? { raw: c.raw } : {}),
      ...(c.token !== undefined ? { token: c.token } : {}),
    };
    const res = await tc.post(c.body, opts);
    t.equal(res.status, c.status, `${c.name}: status`);
    t.equal(res.json?.error?.code, c.code, `${c.name}: code`);
    t.type(res.json?.error?.message, 'string', `${c.name}: message`);
    t.notOk(res.json?.certChain, `${c.name}: no certificate`);
  }

  const chunked = await tc.post(undefined, {
    raw: JSON.stringify({ csr: 'y'.repeat(MAX_BODY_BYTES * 2) }),
    chunked: true,
  });
  t.equal(chunked.status, 413, 'oversized chunked body without content-length: 413');
  t.equal(chunked.json?.error?.code, 'BODY_TOO_LARGE');

  // The control: the same good CSR with node A's token is issued.
  const ok = await tc.post({ csr: good });
  t.equal(ok.status, 200, 'the good request is issued');

  // Audit: one line per refusal and issuance, never a token.
  const audit = tc.logs.filter((l) => l.includes('"audit":"ca"'));
  t.equal(audit.length, cases.length + 2, 'one audit line per request');
  t.notOk(
    tc.logs.some((l) => l.includes('node-a-token') || l.includes('node-b-token')),
    'no token is logged',
  );
  t.notOk(
    tc.logs.some((l) => l.includes('PRIVATE KEY')),
    'no key is logged',
  );
  const denied = audit
    .map((l) => JSON.parse(l))
    .find((l) => l.code === 'NODE_NOT_AUTHORIZED' && l.node === 'node-b');
  t.equal(denied?.identity, REVIEWS, 'refusal audit names the identity asked for');
});

t.test('one node flooding gets 429 while another node is served', async (t) => {
  const tc = await startTestCa(t, { rateLimit: { burst: 5, perSecond: 0.001 } });
  const csr = await makeCsr('spiffe://cluster.local/ns/default/sa/nobody');
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await tc.post({ csr }, { token: TOKEN_B })).status);
  t.same(statuses, [403, 403, 403, 403, 403, 429, 429, 429], 'burst of 5, then 429');
  const fromA = await tc.post({ csr: await makeCsr(REVIEWS) });
  t.equal(fromA.status, 200, 'node A is unaffected');
});

t.test('TTL is clamped to --max-ttl', async (t) => {
  const tc = await startTestCa(t, { maxTtlMs: 3_600_000 });
  const before = Date.now();
  const res = await tc.post({ csr: await makeCsr(REVIEWS), ttlSeconds: 7 * 86_400 });
  t.equal(res.status, 200);
  const expires = Date.parse(res.json.expiresAt);
  t.ok(
    expires <= before + 3_600_000 + 2_000 && expires >= before + 3_600_000 - 2_000,
    'expires in about 1 h',
  );
  const short = await tc.post({ csr: await makeCsr(REVIEWS), ttlSeconds: 600 });
  t.ok(
    Math.abs(Date.parse(short.json.expiresAt) - (Date.now() + 600_000)) < 3_000,
    'a shorter ttl is honoured',
  );
});
