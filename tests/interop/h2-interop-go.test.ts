// Interop with Go's HTTP/2 (issue 16): h2-go, a CONNECT client on
// http2.Transport and a server on http2.Server (golang.org/x/net/http2 from Debian, built
// offline), runs the cases of h2-suite.ts. A Go handler ends its response only by
// returning, and returning with the request still open adds RST_STREAM(NO_ERROR), so the
// suite checks that ending instead of "their FIN first"; that half-close order is checked
// against hbone-peer's inbound server (x/net's Framer and HPACK, ztunnel's conventions),
// forwarding to a TCP backend that sends first and FINs while our side keeps sending.
import t from 'tap';
import { CLIENT_ID, LOOPBACK, makePki, SERVER_ID } from '../hbone/helpers.js';
import { tempDir } from '../helpers/tmp.js';
import { buildGoPeer } from './go-peer.js';
import { exchange, exchangeBackend, MiB, openThrough, ourClient, within } from './h2-harness.js';
import { buildH2Go, h2GoCannotRun, peerFiles, processStack, spawnTracked } from './h2-peers.js';
import { interopSuite } from './h2-suite.js';

t.setTimeout(120_000);
const pki = await makePki([CLIENT_ID, SERVER_ID]);

await interopSuite(
  t,
  pki,
  processStack({
    name: 'Go x/net/http2',
    cannotRun: h2GoCannotRun,
    build: buildH2Go,
    serverEndsWithReset: true,
  }),
);

const why = h2GoCannotRun();
t.test(
  'our client -> hbone-peer (Go Framer) server: their FIN first, our data after',
  { skip: why ?? false, timeout: 30_000 },
  async (t) => {
    const bin = await within(120_000, buildGoPeer(), 'building hbone-peer');
    const files = await peerFiles(pki, SERVER_ID, await tempDir(t, 'mtun-h2-hbone-peer-'));
    const peer = spawnTracked(
      t,
      bin,
      ['-inbound', `${LOOPBACK}:0`, '-cert', files.cert, '-key', files.key, '-roots', files.roots],
      'hbone-peer',
    );
    const [, port] = await peer.waitFor(/"inbound":"127\.0\.0\.1:(\d+)"/, 10_000);
    // The backend (hbone-peer dials it) sends 2 MiB and its FIN at once; our 3 MiB go
    // only after their END_STREAM.
    const backend = await exchangeBackend(t, { send: 2 * MiB, afterEof: false });
    const client = ourClient(t, pki);
    const tunnel = await openThrough(client, Number(port), LOOPBACK, backend.port);
    const ours = await exchange(tunnel.stream, 3 * MiB, true);
    const [theirs] = await backend.exchanges(1);
    t.equal(ours.received, 2 * MiB);
    t.equal(ours.receivedSha256, theirs?.sentSha256, 'their 2 MiB intact (SHA-256)');
    t.equal(theirs?.received, 3 * MiB, 'our 3 MiB reached the backend after its FIN');
    t.equal(theirs?.receivedSha256, ours.sentSha256, 'intact (SHA-256)');
    await peer.waitFor(/"msg":"tunnel"[^\n]*"status":200/, 5_000);
    t.pass('hbone-peer logged the tunnel');
  },
);
