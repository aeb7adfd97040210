// mTLS admission on real TLS 1.3 on loopback: secure naming on the client, and every kind
// of client the server must refuse, each with its reason in the server's log.
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { createRoot } from '../../ca/pki.js';
import { StaticCertificateSource } from '../../hbone/certificates.js';
import {
  IdentityMismatchError,
  IdentityUnavailableError,
  TlsFailureError,
} from '../../hbone/errors.js';
import type { IncomingTunnel } from '../../hbone/server/connect.js';
import { forwardTunnel } from '../../hbone/server/forward.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import {
  CLIENT_ID,
  fixture,
  LOOPBACK,
  makePki,
  OTHER_ID,
  SERVER_ID,
  startServer,
  TD,
  waitFor,
} from './helpers.js';

t.setTimeout(30_000);
const pki = await makePki();

const FOREIGN_ID = SpiffeId.of('other.example', 'default', 'client');

function refusals(lines: Array<Record<string, unknown>>) {
  return lines.filter((l) => l['msg'] === 'hbone connection refused');
}

/** A server that counts the tunnels handed over: a refused connection must never reach it. */
function counting() {
  const calls = { n: 0 };
  const onTunnel = (tunnel: IncomingTunnel) => {
    calls.n++;
    void forwardTunnel(tunnel);
  };
  return { calls, onTunnel };
}

t.test('the client refuses a server that presents an unexpected identity', async (t) => {
  const { calls, onTunnel } = counting();
  const { open } = await fixture(t, pki, { server: { onTunnel } });
  const err = await open({ expectedIdentities: [OTHER_ID] }).catch((e: unknown) => e);
  t.type(err, IdentityMismatchError);
  t.match((err as Error).message, /presented spiffe:\/\/cluster.local\/ns\/default\/sa\/server/);
  t.equal(calls.n, 0, 'no CONNECT was sent');
});

t.test('the client refuses a server whose chain does not reach its bundle', async (t) => {
  const stranger = await createRoot({ trustDomain: TD });
  const serverCerts = new StaticCertificateSource(pki.bundle, [
    await pki.issue(SERVER_ID, { by: stranger }),
  ]);
  const { open } = await fixture(t, pki, { server: { certificates: serverCerts } });
  const err = await open().catch((e: unknown) => e);
  t.type(err, TlsFailureError);
  t.match((err as Error).message, /not trusted: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
});

const badClients: Array<{
  name: string;
  id: SpiffeId;
  reason: RegExp;
  make: () => Promise<StaticCertificateSource>;
}> = [
  {
    name: 'a certificate from another root',
    id: CLIENT_ID,
    reason: /not trusted: UNABLE_TO_VERIFY_LEAF_SIGNATURE/,
    make: async () => {
      const stranger = await createRoot({ trustDomain: TD });
      return new StaticCertificateSource(pki.bundle, [
        await pki.issue(CLIENT_ID, { by: stranger }),
      ]);
    },
  },
  {
    name: 'an expired certificate',
    id: CLIENT_ID,
    reason: /not trusted: CERT_HAS_EXPIRED/,
    make: async () => {
      const day = 86_400_000;
      const cert = await pki.issue(CLIENT_ID, {
        notBefore: new Date(Date.now() - 2 * day),
        notAfter: new Date(Date.now() - day),
      });
      return new StaticCertificateSource(pki.bundle, [cert]);
    },
  },
  {
    name: 'a certificate from another trust domain',
    id: FOREIGN_ID,
    reason: /outside our trust domain cluster.local/,
    make: async () => new StaticCertificateSource(pki.bundle, [await pki.issue(FOREIGN_ID)]),
  },
];

for (const bad of badClients) {
  t.test(`the server refuses ${bad.name} and logs why`, async (t) => {
    const { calls, onTunnel } = counting();
    const { server, log, open } = await fixture(t, pki, {
      server: { onTunnel },
      client: { certificates: await bad.make() },
    });
    const err = await open({ sourceIdentity: bad.id }).catch((e: unknown) => e);
    t.type(err, TlsFailureError, 'the client learns the server closed on it');
    t.match((err as Error).message, /refuses a client certificate/);
    await waitFor(() => refusals(log.lines).length > 0, 2000, 'refusal logged');
    const [line] = refusals(log.lines);
    t.match(String(line!['reason']), bad.reason);
    t.equal(line!['level'], 40, 'at warn');
    t.equal(calls.n, 0);
    t.equal(server.stats().sessions, 0);
  });
}

t.test('the server refuses a client with no certificate, no ALPN, or TLS 1.2', async (t) => {
  const { server, via, log } = await startServer(pki);
  t.teardown(() => server.close(0));
  const attempt = async (opts: object) => {
    const before = refusals(log.lines).length;
    const s = tlsConnect({
      host: LOOPBACK,
      port: via.port,
      ca: pki.bundle,
      rejectUnauthorized: false,
      ...opts,
    });
    s.on('error', () => {});
    await new Promise((r) => s.once('close', r));
    await waitFor(() => refusals(log.lines).length > before, 2000, 'refusal logged');
    return String(refusals(log.lines)[before]!['reason']);
  };
  const cert = await pki.certs.forIdentity(CLIENT_ID);
  const withCert = { key: cert.keyPem, cert: cert.certChainPem.join('\n') };
  t.match(await attempt({ ALPNProtocols: ['h2'] }), /client presented no certificate/);
  t.match(await attempt({ ...withCert }), /did not negotiate ALPN h2/);
  t.match(
    await attempt({ ...withCert, ALPNProtocols: ['h2'], maxVersion: 'TLSv1.2' }),
    /TLS handshake failed/,
  );
  t.equal(server.stats().sessions, 0);
});

t.test('a connection that never finishes its handshake is closed after the timeout', async (t) => {
  const { server, via, log } = await startServer(pki, { handshakeTimeoutMs: 200 });
  t.teardown(() => server.close(0));
  const start = performance.now();
  const s = netConnect({ host: LOOPBACK, port: via.port });
  s.on('error', () => {});
  s.resume();
  await once(s, 'close');
  const ms = performance.now() - start;
  t.ok(ms >= 150, `closed after ${ms.toFixed(0)} ms, not before the timeout`);
  await waitFor(() => refusals(log.lines).length > 0, 2000, 'refusal logged');
  await waitFor(() => server.stats().handshaking === 0, 2000, 'handshake forgotten');
  t.equal(refusals(log.lines)[0]!['code'], 'HBONE_TIMEOUT');
  t.equal(refusals(log.lines).length, 1, 'logged once');
  t.equal(server.stats().handshaking, 0);
});

t.test('no certificate for the source identity is a typed error', async (t) => {
  const { client, open } = await fixture(t, pki);
  const unknown = SpiffeId.of(TD, 'default', 'nobody');
  const err = await open({ sourceIdentity: unknown }).catch((e: unknown) => e);
  t.type(err, IdentityUnavailableError);
  t.equal(client.stats().dialed, 0);
});
