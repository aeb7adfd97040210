// Requests the CA does not finish answering, and refusals under a flood (issue 12, item 8):
// a client that disconnects mid-request is a quiet, counted event (no error-level stack, not
// INTERNAL); refusals are logged at warn with reason and peer, rate-limited, and counted
// by reason, for every way the CA refuses (not only certificate requests).
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { startTestCa, type TestCa, TOKEN_A } from '../helpers/ca.js';
import { eventually } from '../helpers/eventually.js';

type Line = Record<string, unknown>;
const parsed = (tc: TestCa): Line[] => tc.logs.map((l) => JSON.parse(l) as Line);

/** Opens TLS to the CA, sends `text`, then disconnects (after `lingerMs`). */
function sendAndDrop(tc: TestCa, text: string, lingerMs = 50): Promise<void> {
  const { port } = tc.ca.server.address();
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: tc.ca.server.trustBundlePem }, () => {
      s.write(text, () => setTimeout(() => s.destroy(), lingerMs));
    });
    s.on('error', reject);
    s.on('close', () => resolve());
  });
}

async function refusedCount(tc: TestCa, code: string): Promise<number> {
  const metric = await tc.ca.metrics.refused.get();
  return metric.values.find((v) => v.labels['code'] === code)?.value ?? 0;
}

t.test('a client that disconnects mid-request: quiet, counted as ABORTED', async (t) => {
  const tc = await startTestCa(t);
  const head = [
    'POST /v1/certificates HTTP/1.1',
    'host: 127.0.0.1',
    `authorization: Bearer ${TOKEN_A}`,
    'content-type: application/json',
    'content-length: 1000',
    '',
    '{"csr": "-----BEGIN',
  ].join('\r\n');
  // Some leave while the server reads the body, some before it has even authenticated the
  // node (no linger): each is one ABORTED, and no request is left hanging.
  for (let i = 0; i < 3; i++) await sendAndDrop(tc, head);
  await Promise.all([...Array(20)].map(() => sendAndDrop(tc, head, 0)));
  await eventually(
    async () => (await refusedCount(tc, 'ABORTED')) === 23,
    'every abort counted, once',
  );
  t.equal(await refusedCount(tc, 'BAD_HTTP'), 0, 'a client that left is not a bad request');
  t.equal(await refusedCount(tc, 'INTERNAL'), 0, 'not INTERNAL');
  const lines = parsed(tc);
  t.same(
    lines.filter((l) => l['level'] === 'error'),
    [],
    'nothing logged at error',
  );
  t.notOk(
    tc.logs.some((l) => l.includes('"stack"')),
    'no stack trace anywhere',
  );
  const aborted = lines.filter((l) => l['code'] === 'ABORTED');
  t.ok(aborted.length >= 1, 'the abort is in the log');
  t.ok(
    aborted.every((l) => l['level'] === 'debug' && l['remote'] !== undefined),
    'at debug, with the peer',
  );
  // The CA still serves.
  t.equal((await tc.post({ csr: 'x' })).status, 400);
});

t.test(
  'refusals under a flood: warn with reason and peer, rate-limited, all counted',
  async (t) => {
    const tc = await startTestCa(t, { rateLimit: { burst: 1000, perSecond: 1000 } });
    const n = 60;
    for (let i = 0; i < n; i++)
      await tc.post({ csr: 'not a csr' }, { token: 'wrong-token-xxxxxxxx' });
    t.equal(await refusedCount(tc, 'UNAUTHENTICATED'), n, 'every refusal counted');
    const warned = parsed(tc).filter(
      (l) => l['level'] === 'warn' && l['code'] === 'UNAUTHENTICATED',
    );
    t.ok(warned.length >= 1 && warned.length <= 12, `logged ${warned.length} of ${n} times`);
    t.ok(warned.every((l) => typeof l['reason'] === 'string' && typeof l['remote'] === 'string'));

    // Refusals outside /v1/certificates: wrong method, unknown path, malformed HTTP.
    const { port } = tc.ca.server.address();
    const get = await fetchStatus(tc, port, 'GET', '/v1/certificates');
    t.equal(get, 405);
    t.equal(await fetchStatus(tc, port, 'GET', '/nope'), 404);
    await sendAndDrop(tc, 'NOT HTTP AT ALL\r\n\r\n');
    await eventually(async () => (await refusedCount(tc, 'BAD_HTTP')) === 1, 'BAD_HTTP counted');
    t.equal(await refusedCount(tc, 'METHOD_NOT_ALLOWED'), 1);
    t.equal(await refusedCount(tc, 'NOT_FOUND'), 1);
    const others = parsed(tc).filter(
      (l) =>
        l['level'] === 'warn' &&
        ['METHOD_NOT_ALLOWED', 'NOT_FOUND', 'BAD_HTTP'].includes(String(l['code'])),
    );
    t.equal(others.length, 3, 'each logged once at warn');
    // Not TLS at all (a scanner): a refused handshake, counted and logged once.
    await new Promise<void>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => s.write('GET / HTTP/1.1\r\n\r\n'));
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    await eventually(
      async () => (await refusedCount(tc, 'TLS_HANDSHAKE')) === 1,
      'TLS_HANDSHAKE counted',
    );
    t.equal(
      parsed(tc).filter((l) => l['level'] === 'warn' && l['code'] === 'TLS_HANDSHAKE').length,
      1,
    );
    t.ok(others.every((l) => typeof l['remote'] === 'string' && typeof l['reason'] === 'string'));
  },
);

function fetchStatus(tc: TestCa, port: number, method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: tc.ca.server.trustBundlePem }, () => {
      s.write(`${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
    });
    let text = '';
    s.on('data', (d) => (text += d));
    s.on('error', reject);
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}
