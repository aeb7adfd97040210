// Interop with nghttp2 (issue 16): nghttp2-peer, a CONNECT client
// and server on libnghttp2 + OpenSSL, runs the cases of h2-suite.ts; Debian's own tools,
// which cannot carry a tunnel, check the edges: nghttp's GET and POST are answered 405;
// h2load's 200 GETs on 4 connections are all answered 405 and leave the server serving
// (through a TLS relay that adds our client certificate: h2load cannot present one; without
// one, it is refused at TLS); nghttpd, a file server, answers our CONNECT 405 when it
// answers early, and otherwise not at all: a TimeoutError within responseTimeoutMs.
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Test } from 'tap';
import t from 'tap';
import { socketAddr } from '../../hbone/address.js';
import { HboneClient } from '../../hbone/client/client.js';
import { MethodNotAllowedError, TimeoutError } from '../../hbone/errors.js';
import { freePort } from '../../lib/free-ports.js';
import { run } from '../../testkit/exec.js';
import {
  CLIENT_ID,
  captureLogger,
  clientTlsOptions,
  closeServer,
  LOOPBACK,
  makePki,
  SERVER_ID,
  waitFor,
} from '../hbone/helpers.js';
import { tempDir } from '../helpers/tmp.js';
import {
  exchange,
  MiB,
  type OurServer,
  openThrough,
  ourClient,
  ourServer,
  type PeerFiles,
  within,
} from './h2-harness.js';
import {
  buildNghttp2Peer,
  nghttp2PeerCannotRun,
  nghttp2ToolsCannotRun,
  peerFiles,
  processStack,
  spawnTracked,
} from './h2-peers.js';
import { interopSuite } from './h2-suite.js';

t.setTimeout(120_000);
const pki = await makePki([CLIENT_ID, SERVER_ID]);

await interopSuite(
  t,
  pki,
  processStack({
    name: 'nghttp2',
    cannotRun: nghttp2PeerCannotRun,
    build: buildNghttp2Peer,
    serverCanCloseAfter: true,
  }),
);

/** Our server still carries a tunnel (1 MiB each way) after whatever a tool did to it. */
async function stillServes(t: Test, ours: OurServer): Promise<void> {
  const client = ourClient(t, pki);
  const tunnel = await openThrough(client, ours.port, LOOPBACK, ours.backendPort);
  const x = await exchange(tunnel.stream, MiB, false);
  t.equal(x.received, MiB, 'the server still carries a tunnel');
  t.same(ours.errorsLogged(), [], 'and logged no error');
}

/** A plain TCP listener whose connections are carried to `port` over our mutual TLS with
 *  CLIENT_ID's certificate and ALPN h2, bytes untouched: h2load's HTTP/2 reaches our
 *  server as if h2load had presented the certificate itself. */
async function mtlsRelay(t: Test, port: number): Promise<number> {
  const options = await clientTlsOptions(pki);
  const sockets = new Set<Socket>();
  const relay = createServer((plain) => {
    const tls = tlsConnect({
      host: LOOPBACK,
      port,
      ...options,
      checkServerIdentity: () => undefined, // our server's SPIFFE ID is not a DNS name
    });
    for (const s of [plain, tls]) {
      sockets.add(s);
      s.on('error', () => {
        plain.destroy();
        tls.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    plain.pipe(tls).pipe(plain);
  });
  relay.listen(0, LOOPBACK);
  await once(relay, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return closeServer(relay);
  });
  return (relay.address() as { port: number }).port;
}

const toolsWhy = nghttp2ToolsCannotRun();
if (toolsWhy) t.comment(`nghttp2 tools skipped: ${toolsWhy}`);

t.test("Debian's nghttp2 tools", { skip: toolsWhy ?? false }, async (t) => {
  const dir = await tempDir(t, 'mtun-nghttp2-tools-');
  const client: PeerFiles = await peerFiles(pki, CLIENT_ID, dir);
  const server: PeerFiles = await peerFiles(pki, SERVER_ID, dir);

  t.test('nghttp: a GET and a 1 MiB POST are answered 405', async (t) => {
    const ours = await ourServer(t, pki, { send: MiB, afterEof: false });
    const body = join(dir, 'post.bin');
    await writeFile(body, Buffer.alloc(MiB, 7));
    const url = `https://${LOOPBACK}:${ours.port}/`;
    const tls = [`--cert=${client.cert}`, `--key=${client.key}`, '-t', '10'];
    for (const extra of [[], ['-d', body]]) {
      const r = await run('nghttp', ['-v', ...tls, ...extra, url], { timeoutMs: 15_000 });
      const what = extra.length ? 'POST' : 'GET';
      t.equal(r.code, 0, `nghttp ${what} ran: ${r.stderr.slice(-500)}`);
      t.match(r.stdout, /recv \(stream_id=\d+\) :status: 405/, `${what}: 405`);
      t.notMatch(
        r.stdout,
        /GOAWAY[^\n]*\n[^\n]*error_code=(?!NO_ERROR)/,
        'no GOAWAY with an error',
      );
    }
    t.equal(ours.server.stats().refusals['HBONE_METHOD_NOT_ALLOWED'], 2);
    await stillServes(t, ours);
  });

  t.test('h2load: 200 GETs on 4 connections, 405 each; the server carries on', async (t) => {
    const ours = await ourServer(t, pki, { send: MiB, afterEof: false });
    const relay = await mtlsRelay(t, ours.port);
    const r = await run(
      'h2load',
      ['-n', '200', '-c', '4', '-m', '10', '-T', '10', `http://${LOOPBACK}:${relay}/`],
      { timeoutMs: 30_000 },
    );
    t.equal(r.code, 0, `h2load ran: ${r.stderr.slice(-500)}`);
    t.match(r.stdout, /Application protocol: h2c/, 'HTTP/2 through the relay');
    t.match(r.stdout, /requests: 200 total, 200 started, 200 done/, r.stdout);
    t.match(r.stdout, /status codes: 0 2xx, 0 3xx, 200 4xx, 0 5xx/);
    t.equal(ours.server.stats().refusals['HBONE_METHOD_NOT_ALLOWED'], 200, 'each one 405');
    await waitFor(() => ours.server.stats().sessions === 0, 5_000, 'h2load sessions closed');
    await stillServes(t, ours);
  });

  t.test('h2load without a client certificate: refused at TLS', async (t) => {
    const ours = await ourServer(t, pki, { send: MiB, afterEof: false });
    const url = `https://${LOOPBACK}:${ours.port}/`;
    const r = await run('h2load', ['-n', '20', '-c', '2', '-T', '10', url], {
      timeoutMs: 30_000,
    });
    t.match(r.stdout, /requests: 20 total, \d+ started, 0 done, 0 succeeded/, r.stdout);
    t.match(r.stdout, /status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx/);
    t.ok((ours.server.stats().refusals['HBONE_TLS_FAILURE'] ?? 0) >= 2, 'refused at TLS');
    await waitFor(() => ours.server.stats().sessions === 0, 5_000, 'nothing admitted');
    await stillServes(t, ours);
  });

  t.test('nghttpd: our CONNECT is answered 405 or not at all: typed errors', async (t) => {
    const htdocs = join(dir, 'htdocs');
    await mkdir(htdocs, { recursive: true });
    for (const early of [true, false]) {
      const port = await freePort();
      const args = ['-a', LOOPBACK, '-d', htdocs, String(port), server.key, server.cert];
      const nghttpd = spawnTracked(
        t,
        'nghttpd',
        early ? ['--early-response', ...args] : args,
        'nghttpd',
      );
      await listening(port, nghttpd.output);
      const c = new HboneClient({
        certificates: pki.certs,
        logger: captureLogger().logger,
        responseTimeoutMs: 1_000,
      });
      t.teardown(() => c.close());
      const start = Date.now();
      const err = await within(
        10_000,
        c
          .open({
            sourceIdentity: CLIENT_ID,
            destination: socketAddr(LOOPBACK, port),
            expectedIdentities: [SERVER_ID],
            via: socketAddr(LOOPBACK, port),
          })
          .then(
            () => new Error('opened'),
            (e: unknown) => e,
          ),
        'open() against nghttpd',
      );
      if (early) t.type(err, MethodNotAllowedError, `early: 405 -> ${String(err)}`);
      else t.type(err, TimeoutError, `never answered -> ${String(err)}`);
      t.ok(Date.now() - start < 4_000, `settled in ${Date.now() - start} ms`);
      await waitFor(() => c.stats().streams === 0, 5_000, 'the stream was given up');
    }
  });
});

/** Resolves once something accepts TCP connections on LOOPBACK:port; fails after 5 s. */
async function listening(port: number, output: () => string): Promise<void> {
  for (const end = Date.now() + 5_000; ; ) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect({ host: LOOPBACK, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}: ${output().slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
