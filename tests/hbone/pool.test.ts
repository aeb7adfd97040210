// The client pool on real TLS on loopback: growth past 100 streams, idle release, shared
// handshakes, GOAWAY, certificate rotation and PING keepalive.
import { once } from 'node:events';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import t from 'tap';
import { createRoot } from '../../ca/pki.js';
import { socketAddr } from '../../hbone/address.js';
import { StaticCertificateSource } from '../../hbone/certificates.js';
import type { Tunnel } from '../../hbone/client/client.js';
import {
  CLIENT_ID,
  closeServer,
  fixture,
  LOOPBACK,
  makeClient,
  makePki,
  openTunnel,
  readAll,
  SERVER_ID,
  startBackend,
  startServer,
  TD,
  waitFor,
} from './helpers.js';

t.setTimeout(60_000);
const pki = await makePki();
const backend = await startBackend();
t.teardown(() => closeServer(backend.server));

t.test('the pool grows past 100 streams and shrinks after idle', async (t) => {
  const { server, client, open } = await fixture(t, pki, { client: { idleTimeoutMs: 300 } });
  const tunnels = await Promise.all(Array.from({ length: 150 }, () => open()));
  t.same(
    { ...client.stats(), byState: undefined },
    { connections: 2, streams: 150, dialed: 2, byState: undefined },
    '150 streams on 2 connections, 2 handshakes',
  );
  t.equal(server.stats().sessions, 2);
  await Promise.all(
    tunnels.map(async (tun, i) => {
      tun.stream.end(`#${i}`);
      t.equal((await readAll(tun.stream)).toString(), `#${i}`);
    }),
  );
  await waitFor(() => client.stats().streams === 0, 2000, 'streams released');
  t.equal(client.stats().connections, 2, 'still pooled right after use');
  await waitFor(() => client.stats().connections === 0, 3000, 'idle connections released');
  await waitFor(() => server.stats().sessions === 0, 2000, 'server sessions closed');
});

t.test('concurrent opens to one key share one handshake', async (t) => {
  const { client, open } = await fixture(t, pki);
  const tunnels = await Promise.all(Array.from({ length: 50 }, () => open()));
  t.equal(client.stats().dialed, 1);
  for (const tun of tunnels) tun.stream.end();
  await Promise.all(tunnels.map((tun) => readAll(tun.stream)));
});

t.test('GOAWAY: open tunnels finish, new ones go to a new connection', async (t) => {
  const first = await startServer(pki);
  const client = makeClient(pki);
  t.teardown(() => client.close());
  const open = () => openTunnel(client, first.via, backend.addr);
  const old = await open();
  const closing = first.server.close(10_000); // GOAWAY now, destroy only after 10 s
  await waitFor(
    () => client.stats().byState.draining === 1,
    2000,
    'connection draining after GOAWAY',
  );
  // The replacement listens on the same port, as a restarted agent would.
  const second = await startServer(pki, {}, first.via.port);
  t.teardown(() => second.server.close(0));
  const fresh = await open();
  t.equal(client.stats().dialed, 2, 'a new connection for the new stream');
  t.equal(second.server.stats().sessions, 1);
  old.stream.end('old still works');
  fresh.stream.end('new works');
  t.equal((await readAll(old.stream)).toString(), 'old still works');
  t.equal((await readAll(fresh.stream)).toString(), 'new works');
  await closing; // resolved as soon as the last tunnel ended
  t.equal(first.server.stats().sessions, 0);
});

t.test('a rotated certificate is used by new connections; the old one drains', async (t) => {
  // The server's bundle moves to a new root at the same time, so only a connection that
  // presents the rotated certificate can be admitted: the proof that rotation took effect.
  const serverCerts = new StaticCertificateSource(pki.bundle, [
    await pki.certs.forIdentity(SERVER_ID),
  ]);
  const clientCerts = new StaticCertificateSource(pki.bundle, [
    await pki.certs.forIdentity(CLIENT_ID),
  ]);
  const { client, open } = await fixture(t, pki, {
    server: { certificates: serverCerts },
    client: { certificates: clientCerts },
  });
  const before = await open();
  const newRoot = await createRoot({ trustDomain: TD });
  clientCerts.put(await pki.issue(CLIENT_ID, { by: newRoot }));
  clientCerts.setTrustBundle([...pki.bundle, newRoot.cert.toString('pem')]);
  serverCerts.setTrustBundle([newRoot.cert.toString('pem')]);
  const after = await open();
  t.equal(client.stats().dialed, 2, 'rotation forced a new handshake, which the server admitted');
  t.same(client.stats().byState, { connecting: 0, ready: 1, draining: 1, closed: 0 });
  before.stream.end('a');
  after.stream.end('b');
  t.equal((await readAll(before.stream)).toString(), 'a', 'the old connection finished its stream');
  t.equal((await readAll(after.stream)).toString(), 'b');
  await waitFor(() => client.stats().connections === 1, 2000, 'the drained connection closed');
});

t.test('an unanswered PING closes the connection and its tunnels', async (t) => {
  const { server, via } = await startServer(pki);
  // A TCP relay we can freeze, standing in for a peer that vanished without a FIN.
  const frozen: Socket[] = [];
  const relay = createServer((inbound) => {
    const outbound = netConnect({ host: LOOPBACK, port: via.port });
    frozen.push(inbound, outbound);
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('error', () => {});
    outbound.on('error', () => {});
  });
  relay.listen(0, LOOPBACK);
  await once(relay, 'listening');
  const relayAddr = socketAddr(LOOPBACK, (relay.address() as { port: number }).port);
  const client = makeClient(pki, { keepaliveIntervalMs: 50, keepaliveTimeoutMs: 200 });
  t.teardown(async () => {
    client.close();
    for (const s of frozen) s.destroy();
    await closeServer(relay);
    await server.close(0);
  });
  const tunnel: Tunnel = await openTunnel(client, relayAddr, backend.addr);
  tunnel.stream.on('error', () => {});
  await new Promise((r) => setTimeout(r, 200)); // a few PINGs are answered
  t.equal(client.stats().connections, 1, 'healthy while PINGs are answered');
  for (const s of frozen) s.pause();
  const start = performance.now();
  await new Promise((r) => tunnel.stream.once('close', r));
  const ms = performance.now() - start;
  // Bounded by the test's timeout rather than asserted: timing on a shared machine varies.
  t.comment(`tunnel closed ${ms.toFixed(0)} ms after the peer went silent`);
  await waitFor(() => client.stats().connections === 0, 1000, 'connection evicted');
});
