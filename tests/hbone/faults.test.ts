// Faults on a pooled HBONE connection, each a reproducer of a failure seen from outside
// (issues 12 and 19): a server's GOAWAY with an error code while streams are in every
// state, a pool of applications that end with TCP resets, and peers that finish TLS but
// never speak HTTP/2 or half-close. What must hold: no crash, no tunnel killed that the
// server promised to finish, nothing left open, and every loss seen as a reset.
import { once } from 'node:events';
import {
  createSecureServer,
  constants as h2,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import t, { type Test } from 'tap';
import { type SocketAddr, socketAddr } from '../../hbone/address.js';
import type { HboneClient } from '../../hbone/client/client.js';
import type { H2Stream } from '../../hbone/h2/stream.js';
import { resetTunnel, splice } from '../../hbone/splice.js';
import { endedByReset } from '../../lib/socket-reset.js';
import {
  CLIENT_ID,
  closeServer,
  deferred,
  fixture,
  LOOPBACK,
  makeClient,
  makePki,
  openTunnel,
  type Pki,
  rawSession,
  SERVER_ID,
  startServer,
  waitFor,
} from './helpers.js';

const pki = await makePki();

/** An "outbound agent" in miniature: each TCP connection to it becomes a tunnel spliced to
 *  it, as agent/proxy/outbound.ts does. */
async function miniAgent(
  t: Test,
  client: HboneClient,
  via: SocketAddr,
  destination: SocketAddr,
  hold?: Promise<void>,
): Promise<number> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, async (socket) => {
    socket.pause();
    socket.on('error', () => {});
    await hold; // a slow tunnel set-up, when the test says so
    openTunnel(client, via, destination).then(
      (tunnel) => {
        splice(socket, tunnel.stream);
        socket.resume();
      },
      () => socket.resetAndDestroy(),
    );
  });
  server.listen(0, LOOPBACK);
  await once(server, 'listening');
  t.teardown(() => closeServer(server));
  return (server.address() as { port: number }).port;
}

type AppSocket = Socket & { readonly ended: Promise<'reset' | 'fin' | 'closed'> };

/** Connects an application socket, watching from the start how it ends. */
async function app(port: number): Promise<AppSocket> {
  const s = connect({ host: LOOPBACK, port, allowHalfOpen: true });
  s.setNoDelay(true);
  const a = Object.assign(s, { ended: ending(s) });
  await once(s, 'connect');
  return a;
}

async function echoOnce(s: Socket, text: string): Promise<void> {
  s.write(text);
  let got = '';
  try {
    while (got.length < text.length) got += String((await once(s, 'data'))[0]);
  } catch (err) {
    throw new Error(`echo of ${JSON.stringify(text)} failed: ${(err as Error).message}`);
  }
  if (got !== text) throw new Error(`echo mismatch: ${got}`);
}

/** How a socket ended: 'reset' (an error such as ECONNRESET), 'fin' (a clean end of data) or
 *  'closed' (closed with neither). */
function ending(s: Socket): Promise<'reset' | 'fin' | 'closed'> {
  return new Promise((resolve) => {
    let how: 'reset' | 'fin' | undefined;
    s.on('error', () => {
      how ??= 'reset';
    });
    s.on('end', () => {
      // The kernel's word, not libuv's: a reset behind unread data reads as an end in Node
      // 20 (lib/socket-reset.ts).
      how ??= endedByReset(s) ? 'reset' : 'fin';
      s.end();
    });
    s.on('close', () => resolve(how ?? 'closed'));
  });
}

/** A plain node:http2 server (not ours: it does what ours never would) with our PKI and
 *  mutual TLS 1.3, each stream given to `onStream`; its sessions are destroyed at teardown. */
async function plainServer(
  t: Test,
  p: Pki,
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void,
) {
  const cert = await p.certs.forIdentity(SERVER_ID);
  const sessions = new Set<ServerHttp2Session>();
  const server = createSecureServer({
    key: cert.keyPem,
    cert: cert.certChainPem.join('\n'),
    ca: p.bundle,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    ALPNProtocols: ['h2'],
  });
  server.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => {});
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    onStream(stream, headers);
  });
  server.listen(0, LOOPBACK);
  await once(server, 'listening');
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  );
  return { via: socketAddr(LOOPBACK, (server.address() as { port: number }).port), sessions };
}

/** A plain node:http2 server with our PKI that answers some CONNECTs (echo), leaves others
 *  unanswered, and lets the test send GOAWAY. Not our server: it does what ours never would. */
async function goawayServer(t: Test, p: Pki) {
  let streams = 0;
  let patterned = 0;
  let answered = 0;
  const { via, sessions } = await plainServer(t, p, (stream, headers) => {
    streams++;
    // CONNECTs to port 9 are answered two in three, the third left waiting; others always.
    const pattern = String(headers[':authority']).endsWith(':9');
    if (pattern && ++patterned % 3 === 0) return;
    answered++;
    stream.respond({ ':status': 200 });
    stream.on('data', (d: Buffer) => stream.write(d));
    stream.on('end', () => stream.end());
  });
  return {
    via,
    counts: () => ({ streams, answered }),
    goaway(code: number) {
      for (const s of sessions) s.goaway(code, 2 ** 31 - 1);
    },
    destroyAll() {
      for (const s of sessions) s.destroy();
    },
  };
}

t.test(
  'issue 19: GOAWAY(INTERNAL_ERROR) with streams in every state never crashes the client, and answered tunnels keep running',
  async (t) => {
    const rounds = 8;
    const perRound = 30;
    for (let round = 0; round < rounds; round++) {
      const srv = await goawayServer(t, pki);
      const client = makeClient(pki, { responseTimeoutMs: 1_000 });
      const agentPort = await miniAgent(t, client, srv.via, socketAddr('127.0.0.9', 10));
      // Answered and spliced to an application, answered and held unattached (the agent's
      // SOCKS5 path holds one while it writes its reply), half-closed, being reset, pending.
      const opens = Array.from({ length: perRound }, () =>
        openTunnel(client, srv.via, socketAddr('127.0.0.9', 9)).then(
          (tunnel) => tunnel.stream,
          (err: Error) => err,
        ),
      );
      const apps = await Promise.all(Array.from({ length: 6 }, () => app(agentPort)));
      for (const a of apps) await echoOnce(a, 'before');
      await waitFor(() => srv.counts().streams >= perRound + apps.length, 5_000, 'streams arrive');
      const settled = await Promise.race([
        Promise.all(opens.filter((_, i) => (i + 1) % 3 !== 0)),
        new Promise<never>((_, r) => setTimeout(() => r(new Error('answers missing')), 5_000)),
      ]);
      const held = settled.filter((s): s is H2Stream => !(s instanceof Error));
      held[0]?.end();
      if (held[1]) resetTunnel(held[1]);
      srv.goaway(h2.NGHTTP2_INTERNAL_ERROR);
      // The streams the GOAWAY covers still carry data.
      for (const a of apps) await echoOnce(a, `after ${round}`);
      // The pending ones fail with a typed error, never hang or crash.
      const pending = await Promise.all(opens.filter((_, i) => (i + 1) % 3 === 0));
      for (const p of pending) t.ok(p instanceof Error, 'an unanswered open is refused');
      // Then the server goes away: applications see resets, held streams die quietly.
      srv.destroyAll();
      t.same(
        new Set(await Promise.all(apps.map((a) => a.ended))),
        new Set(['reset']),
        'apps see a reset',
      );
      client.close();
    }
    t.pass(`${rounds} rounds, the process is alive`);
  },
);

t.test(
  'issue 12: 1,500 applications that end with a TCP reset do not kill a long-lived tunnel or leak upstream sockets',
  async (t) => {
    const f = await fixture(t, pki);
    const port = await miniAgent(t, f.client, f.via, f.backend.addr);
    const long = await app(port);
    await echoOnce(long, 'hello');
    const total = 1_500;
    const batch = 50;
    let done = 0;
    for (let i = 0; i < total; i += batch) {
      await Promise.all(
        Array.from({ length: batch }, async () => {
          const s = await app(port);
          await echoOnce(s, 'x');
          const closed = once(s, 'close');
          s.resetAndDestroy();
          await closed;
          done++;
        }),
      );
    }
    t.equal(done, total, 'every short connection echoed');
    await echoOnce(long, 'still here');
    t.pass('the long-lived tunnel survived the reset storm');
    await waitFor(() => f.backend.sockets.size === 1, 10_000, 'upstream sockets released');
    t.equal(f.backend.sockets.size, 1, 'only the long-lived upstream socket is open');
    await waitFor(() => f.server.stats().tunnels === 1, 10_000, 'server tunnels released');
    t.equal(f.server.stats().tunnels, 1, 'the server holds one tunnel');
    long.end();
    t.equal(await long.ended, 'fin', 'the long-lived tunnel ends cleanly');
  },
);

t.test(
  "an application's reset behind data the agent has not read yet reaches the upstream as a reset",
  async (t) => {
    // Node 20's libuv reads a reset that arrives behind unread data as a clean end
    // (lib/socket-reset.ts). Here the application sends a request and resets while the agent
    // still sets up its tunnel (its socket paused, the request unread). Before the fix the
    // agent then read the request, took the reset for the application's FIN and sent
    // END_STREAM: the upstream got the whole request and a clean end, as if the client had
    // not given up on it.
    let ended!: Promise<'reset' | 'fin' | 'closed'>;
    let got = 0;
    const f = await fixture(t, pki, {
      backend: (s) => {
        ended = ending(s);
        s.on('data', (d: Buffer) => (got += d.length));
      },
    });
    const hold = deferred<void>();
    const port = await miniAgent(t, f.client, f.via, f.backend.addr, hold.promise);
    const a = await app(port);
    a.on('error', () => {});
    const request = Buffer.alloc(200_000, 5);
    await new Promise<void>((r) => a.write(request, () => r()));
    await waitFor(() => a.writableLength === 0, 5_000, 'the request is with the kernel');
    a.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 100));
    hold.resolve();
    await waitFor(() => ended !== undefined, 5_000, 'the upstream connected');
    t.equal(await ended, 'reset', `the upstream sees a reset (after ${got} bytes)`);
  },
);

t.test('a dead server reaches every application as a reset, never as a clean end', async (t) => {
  // The server streams data for ever; its sessions are destroyed without a GOAWAY or a
  // RST_STREAM, as when its process is killed (the full-process version is in
  // tests/agent/faults.test.ts).
  const f = await fixture(t, pki, {
    backend: (s) => {
      const chunk = Buffer.alloc(16 * 1024, 7);
      const pump = () => {
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
    },
  });
  const port = await miniAgent(t, f.client, f.via, f.backend.addr);
  const apps = await Promise.all(Array.from({ length: 40 }, () => app(port)));
  let received = 0;
  for (const a of apps) a.on('data', (d: Buffer) => (received += d.length));
  await waitFor(() => received > 4 * 1024 * 1024, 10_000, 'downloads under way');
  await f.server.close(0);
  const seen = await Promise.all(apps.map((a) => a.ended));
  t.same(
    seen.filter((e) => e !== 'reset'),
    [],
    'all 40 downloads ended with a reset',
  );
});

/** A plain node:http2 server with our PKI whose CONNECTs answer 200, send `bytes`, wait a
 *  little and then finish as `how` says: END_STREAM and RST_STREAM(NO_ERROR) (how Go's
 *  server ends), or RST_STREAM(NO_ERROR) with no END_STREAM (what Node's session.destroy()
 *  sends for each open stream). Not our server: it does what ours never does. */
/** RST_STREAM(code) alone from a node:http2 stream: its close() would first end the writable
 *  side (an empty DATA with END_STREAM); a no-op final step leaves only the reset. */
function rstOnly(stream: ServerHttp2Stream, code: number): void {
  (stream as unknown as { _final: (cb: () => void) => void })._final = (cb) => cb();
  stream.close(code);
}

async function finishingServer(t: Test, bytes: number, how: 'end+rst' | 'rst') {
  const { via } = await plainServer(t, pki, (stream) => {
    stream.respond({ ':status': 200 });
    stream.write(Buffer.alloc(bytes, 3), () => {
      setTimeout(() => {
        if (how === 'end+rst') stream.end(() => stream.close(h2.NGHTTP2_NO_ERROR));
        else rstOnly(stream, h2.NGHTTP2_NO_ERROR);
      }, 200);
    });
  });
  return via;
}

t.test(
  'a RST_STREAM(NO_ERROR) with no END_STREAM before it is a cut (a reset), one after END_STREAM a clean end',
  async (t) => {
    for (const how of ['end+rst', 'rst'] as const) {
      const via = await finishingServer(t, 300_000, how);
      const client = makeClient(pki);
      t.teardown(() => client.close());
      const port = await miniAgent(t, client, via, socketAddr('127.0.0.9', 10));
      const a = await app(port);
      let got = 0;
      a.on('data', (d: Buffer) => (got += d.length));
      const ended = await a.ended;
      t.equal(got, 300_000, `${how}: every byte sent arrived`);
      t.equal(ended, how === 'rst' ? 'reset' : 'fin', `${how}: the application sees ${ended}`);
    }
  },
);

t.test(
  'the drain period over, our server resets open tunnels with CONNECT_ERROR, not NO_ERROR',
  async (t) => {
    // A plain node:http2 client (not ours: it reads the frames as they come) with five
    // tunnels open when the server's drain period ends.
    const f = await fixture(t, pki, { backend: (s) => s.write('hello') });
    const session = await rawSession(pki, f.via.port);
    t.teardown(() => session.destroy());
    const streams = Array.from({ length: 5 }, () => {
      const st = session.request({
        ':method': 'CONNECT',
        ':authority': `${f.backend.addr.ip}:${f.backend.addr.port}`,
      });
      st.on('error', () => {});
      st.resume();
      return st;
    });
    await waitFor(() => f.backend.sockets.size === 5, 5_000, 'upstreams open');
    const closed = streams.map((st) => new Promise((r) => st.once('close', r)));
    await f.server.close(100);
    await Promise.all(closed);
    t.same(
      streams.map((st) => st.rstCode),
      Array(5).fill(h2.NGHTTP2_CONNECT_ERROR),
      'every tunnel was reset with CONNECT_ERROR',
    );
  },
);

t.test('a peer that finishes TLS but never sends the HTTP/2 preface is closed', async (t) => {
  const { server } = await startServer(pki, { prefaceTimeoutMs: 300 });
  t.teardown(() => server.close(0));
  const cert = await pki.certs.forIdentity(CLIENT_ID);
  const silent = () =>
    new Promise<Promise<unknown>>((resolve, reject) => {
      const s = tlsConnect({
        host: LOOPBACK,
        port: server.address().port,
        key: cert.keyPem,
        cert: cert.certChainPem.join('\n'),
        ca: pki.bundle,
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
      });
      s.on('error', () => {});
      s.resume(); // reading, so that the server's close is seen
      const closed = once(s, 'close');
      s.once('secureConnect', () => resolve(closed));
      s.once('error', reject);
    });
  const quiet = await Promise.all(Array.from({ length: 20 }, silent));
  const closedAll = Promise.all(quiet);
  await Promise.race([
    closedAll,
    new Promise((_, r) => setTimeout(() => r(new Error('silent peers kept open')), 5_000)),
  ]);
  t.pass('20 silent peers closed by the preface deadline');
  t.ok((server.stats().refusals['HBONE_TIMEOUT'] ?? 0) >= 20, 'counted as timeouts');

  // A peer that half-closes after TLS: its connection must not linger in CLOSE-WAIT.
  const { server: s2 } = await startServer(pki, { prefaceTimeoutMs: 60_000 });
  t.teardown(() => s2.close(0));
  const halfClosers = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const s = await new Promise<Socket>((resolve) => {
        const c = tlsConnect({
          host: LOOPBACK,
          port: s2.address().port,
          key: cert.keyPem,
          cert: cert.certChainPem.join('\n'),
          ca: pki.bundle,
          ALPNProtocols: ['h2'],
          rejectUnauthorized: false,
        });
        c.on('error', () => {});
        c.resume();
        c.once('secureConnect', () => resolve(c));
      });
      return s;
    }),
  );
  await waitFor(() => s2.stats().sessions === 20, 5_000, 'sessions admitted');
  for (const s of halfClosers) s.end();
  await waitFor(() => s2.stats().sessions === 0, 5_000, 'half-closed sessions released');
  t.equal(s2.stats().sessions, 0, 'no session left after the peers half-closed');
  for (const s of halfClosers) s.destroy();
});

t.test('connections still in their handshake are capped per source', async (t) => {
  const { server } = await startServer(pki, {
    maxHandshakesPerSource: 10,
    handshakeTimeoutMs: 30_000,
  });
  t.teardown(() => server.close(0));
  const sockets: Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  const closedEarly: boolean[] = [];
  for (let i = 0; i < 30; i++) {
    const s = connect({ host: LOOPBACK, port: server.address().port });
    s.on('error', () => {});
    const idx = closedEarly.push(false) - 1;
    s.once('close', () => {
      closedEarly[idx] = true;
    });
    sockets.push(s);
    // A refused one may be reset before 'connect' is seen.
    await new Promise((r) => {
      s.once('connect', r);
      s.once('close', r);
    });
  }
  await waitFor(() => closedEarly.filter(Boolean).length >= 20, 5_000, 'excess refused');
  t.equal(closedEarly.filter(Boolean).length, 20, 'the 20 past the cap are refused at once');
  t.equal(server.stats().handshaking, 10, 'ten wait for their handshake');
  t.equal(server.stats().refusals['HBONE_OVERLOADED'], 20, 'counted as overloaded');
});
