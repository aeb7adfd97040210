// End-to-end tunnels over real TLS on loopback: data, half-close both ways, reset
// propagation both ways, status codes, metadata headers, SNI, and no leaks afterwards.
import { once } from 'node:events';
import { constants as h2 } from 'node:http2';
import { connect as netConnect } from 'node:net';
import t from 'tap';
import { socketAddr } from '../../hbone/address.js';
import { OpenAbortedError, TunnelDeniedError, UpstreamFailedError } from '../../hbone/errors.js';
import type { TunnelMetadata } from '../../hbone/headers.js';
import type { IncomingTunnel } from '../../hbone/server/connect.js';
import { forwardTunnel } from '../../hbone/server/forward.js';
import { sniForDestination } from '../../hbone/sni.js';
import { splice } from '../../hbone/splice.js';
import {
  CLIENT_ID,
  closedPort,
  closeServer,
  deferred,
  fixture,
  LOOPBACK,
  makePki,
  rawSession,
  readAll,
  SERVER_ID,
  startBackend,
  waitFor,
} from './helpers.js';

t.setTimeout(30_000);
const pki = await makePki();

t.test('a tunnel carries bytes both ways and closes cleanly', async (t) => {
  const { backend, server, client, open } = await fixture(t, pki);
  const tunnel = await open();
  t.ok(tunnel.peerIdentity.equals(SERVER_ID));
  tunnel.stream.end('hello through hbone');
  t.equal((await readAll(tunnel.stream)).toString(), 'hello through hbone');
  await waitFor(() => server.stats().tunnels === 0 && backend.sockets.size === 0, 2000, 'no leaks');
  await waitFor(() => client.stats().streams === 0, 2000, 'client slot released');
  t.equal(client.stats().connections, 1, 'the connection stays pooled');
});

t.test('half-close: client FIN first, backend answers after it', async (t) => {
  const { backend, server, open } = await fixture(t, pki, {
    backend: (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c) => chunks.push(c));
      s.on('end', () => s.end(`got ${Buffer.concat(chunks).length} bytes`));
    },
  });
  const tunnel = await open();
  tunnel.stream.end(Buffer.alloc(1000, 1));
  t.equal(
    (await readAll(tunnel.stream)).toString(),
    'got 1000 bytes',
    'reply written after our FIN arrives',
  );
  await waitFor(() => server.stats().tunnels === 0 && backend.sockets.size === 0, 2000, 'no leaks');
});

t.test('half-close: backend FIN first, client keeps writing', async (t) => {
  let received = '';
  const backendDone = deferred<void>();
  const { backend, server, open } = await fixture(t, pki, {
    backend: (s) => {
      s.end('banner'); // FIN right away, but keep reading
      s.on('data', (c) => {
        received += c;
      });
      s.on('end', () => backendDone.resolve());
    },
  });
  const tunnel = await open();
  t.equal((await readAll(tunnel.stream)).toString(), 'banner', 'end seen while still writable');
  t.ok(tunnel.stream.writable, 'our direction is still open');
  tunnel.stream.write('after ');
  tunnel.stream.end('their FIN');
  await backendDone.promise;
  t.equal(received, 'after their FIN');
  await waitFor(() => server.stats().tunnels === 0 && backend.sockets.size === 0, 2000, 'no leaks');
});

t.test('reset from the backend reaches the client as a stream reset', async (t) => {
  const { server, client, open } = await fixture(t, pki, {
    backend: (s) => s.once('data', () => s.resetAndDestroy()),
  });
  const tunnel = await open();
  const errored = once(tunnel.stream, 'error');
  const closed = new Promise((r) => tunnel.stream.once('close', r));
  tunnel.stream.write('trigger');
  tunnel.stream.resume();
  const [err] = (await errored) as [NodeJS.ErrnoException];
  t.equal(err.code, 'ERR_HTTP2_STREAM_ERROR');
  await closed;
  t.equal(tunnel.stream.rstCode, h2.NGHTTP2_CONNECT_ERROR, 'RST_STREAM(CONNECT_ERROR)');
  await waitFor(
    () => server.stats().tunnels === 0 && client.stats().streams === 0,
    2000,
    'no leaks',
  );
});

t.test('reset from the client reaches the backend as a TCP reset', async (t) => {
  const backendErr = deferred<string>();
  const { backend, server, client, open } = await fixture(t, pki, {
    backend: (s) => {
      s.on('error', (e: NodeJS.ErrnoException) => backendErr.resolve(e.code ?? e.message));
      s.on('close', () => backendErr.resolve('closed without error'));
      s.resume();
    },
  });
  // The client side as the agent uses it: an app socket spliced to the tunnel, which resets.
  const app = await startBackend();
  t.teardown(() => closeServer(app.server));
  const tunnel = await open();
  const appSide = netConnect({ host: LOOPBACK, port: app.addr.port, allowHalfOpen: true });
  await once(appSide, 'connect');
  const spliced = new Promise((r) => splice(appSide, tunnel.stream, r));
  appSide.write('some data');
  await waitFor(() => backend.sockets.size === 1, 2000, 'backend connected');
  appSide.resetAndDestroy();
  t.equal(await backendErr.promise, 'ECONNRESET');
  await spliced;
  t.equal(tunnel.stream.rstCode, h2.NGHTTP2_CONNECT_ERROR);
  await waitFor(
    () => server.stats().tunnels === 0 && client.stats().streams === 0,
    2000,
    'no leaks',
  );
});

t.test('upstream refused: the client gets a typed 503 within 100 ms', async (t) => {
  const down = await closedPort();
  const { client, open } = await fixture(t, pki);
  // Warm the pool so that only the refused path is timed.
  const warm = await open();
  warm.stream.end();
  await readAll(warm.stream);
  const start = performance.now();
  const err = await open({ destination: down }).catch((e: unknown) => e);
  const ms = performance.now() - start;
  t.type(err, UpstreamFailedError);
  t.ok(ms < 100, `refused in ${ms.toFixed(1)} ms`);
  t.equal(client.stats().dialed, 1, 'no new connection was needed');
});

t.test('deny -> 401, bad authority -> 400, non-CONNECT -> 405', async (t) => {
  const { server, via, open } = await fixture(t, pki, {
    server: {
      onTunnel: (tun) =>
        tun.target.port === 9
          ? tun.refuse(new TunnelDeniedError('policy says no'))
          : void forwardTunnel(tun),
      selectIdentity: () => ({ identity: SERVER_ID, destinationIp: LOOPBACK }),
    },
  });
  const denied = await open({ destination: socketAddr(LOOPBACK, 9) }).catch((e: unknown) => e);
  t.type(denied, TunnelDeniedError);
  // Raw HTTP/2 on the same mTLS to send what our client never would.
  const session = await rawSession(pki, via.port);
  t.teardown(() => session.destroy());
  const status = async (headers: Record<string, string>) => {
    const req = session.request(headers, { endStream: false });
    const [h] = (await once(req, 'response')) as [Record<string, unknown>];
    req.end();
    req.resume();
    return h[':status'];
  };
  t.equal(
    await status({ ':method': 'GET', ':path': '/', ':scheme': 'https', ':authority': 'x' }),
    405,
  );
  t.equal(
    await status({ ':method': 'CONNECT', ':authority': 'example.com:80' }),
    400,
    'a name, not an IP',
  );
  t.equal(await status({ ':method': 'CONNECT', ':authority': `${LOOPBACK}:0` }), 400, 'port 0');
  // Not the captured destination IP (ztunnel answers 400); nothing is sent to 127.0.0.2.
  t.equal(
    await status({ ':method': 'CONNECT', ':authority': '127.0.0.2:80' }),
    400,
    'not the dialed IP',
  );
  await waitFor(() => server.stats().tunnels === 0, 2000, 'no tunnels');
});

t.test('metadata headers reach the handler; SNI selects the certificate', async (t) => {
  const seen: IncomingTunnel[] = [];
  const metadata: TunnelMetadata[] = [];
  const sniSeen: string[] = [];
  const f = await fixture(t, pki, {
    server: {
      // Agent-address mode: nothing is known before the SNI.
      selectIdentity: (req) => {
        if (req.kind === 'connection') return undefined;
        sniSeen.push(req.destinationIp);
        return { identity: SERVER_ID };
      },
      onTunnel: (tun) => {
        seen.push(tun);
        metadata.push(tun.metadata); // read before answering: an answered tunnel lets it go
        // 198.18.0.10 is only a label in :authority and SNI; the bytes go to the loopback backend.
        void forwardTunnel(tun, { upstream: f.backend.addr });
      },
    },
  });
  const destination = socketAddr('198.18.0.10', 8080);
  const tunnel = await f.open({
    destination,
    metadata: {
      forwardedFor: socketAddr('10.1.2.3', 4567),
      forwardedHost: 'reviews.default.svc.cluster.local',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      baggage: { 'k8s.namespace.name': 'default', 'service.name': 'reviews v1' },
    },
  });
  tunnel.stream.end('x');
  await readAll(tunnel.stream);
  t.same(sniSeen, ['198.18.0.10'], `SNI ${sniForDestination('198.18.0.10')} decoded`);
  const tun = seen[0]!;
  t.ok(tun.peerIdentity.equals(CLIENT_ID));
  t.ok(tun.localIdentity.equals(SERVER_ID));
  t.same(tun.target, destination);
  t.equal(tun.peerAddress.ip, LOOPBACK);
  t.same(tun.metadata, {}, 'answered: the request metadata is let go');
  t.same(metadata[0], {
    forwardedFor: socketAddr('10.1.2.3', 4567),
    forwardedHost: 'reviews.default.svc.cluster.local',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    baggage: { 'k8s.namespace.name': 'default', 'service.name': 'reviews v1' },
  });
});

t.test('no SNI is sent when the captured destination is dialed', async (t) => {
  const kinds: string[] = [];
  const { open } = await fixture(t, pki, {
    server: {
      selectIdentity: (req) => {
        kinds.push(req.kind);
        return { identity: SERVER_ID };
      },
    },
  });
  const tunnel = await open();
  tunnel.stream.end();
  await readAll(tunnel.stream);
  t.same(kinds, ['connection'], 'the SNI callback never ran');
});

t.test('open() can be aborted while connecting and while waiting for the answer', async (t) => {
  const answer = deferred<void>();
  const { backend, server, client, open } = await fixture(t, pki, {
    server: {
      onTunnel: async (tun) => {
        await answer.promise;
        void forwardTunnel(tun);
      },
    },
    client: { connectTimeoutMs: 300 },
  });
  t.teardown(() => answer.resolve());
  // A listener that accepts and never speaks TLS: the dial hangs until aborted.
  const silent = await startBackend((s) => {
    s.resume(); // swallow the ClientHello, answer nothing, close when the client does
    s.on('end', () => s.end());
  });
  t.teardown(() => closeServer(silent.server));
  const connecting = new AbortController();
  setTimeout(() => connecting.abort(), 50);
  const err1 = await open({ via: silent.addr, signal: connecting.signal }).catch((e: unknown) => e);
  t.type(err1, OpenAbortedError, 'aborted during the handshake');

  const waiting = new AbortController();
  setTimeout(() => waiting.abort(), 50);
  const err2 = await open({ signal: waiting.signal }).catch((e: unknown) => e);
  t.type(err2, OpenAbortedError, 'aborted while the server decides');
  answer.resolve();
  await waitFor(
    () =>
      client.stats().streams === 0 && server.stats().tunnels === 0 && backend.sockets.size === 0,
    2000,
    'nothing left behind',
  );
});
