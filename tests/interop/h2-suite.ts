// The HTTP/2 CONNECT interop cases (issue 16), the same for every independent stack: our
// client -> their server and their client -> our server, over
// mutual TLS 1.3 with ALPN h2 on 127.0.0.1, checked by the SHA-256 of every direction:
//   - 3 tunnels on one connection, MiBs both ways at once;
//   - half-close in each order: one side's FIN (END_STREAM) first, the other side's data
//     only after it arrived;
//   - refusals: a denied port (401) and an :authority that is not the dialed IP (400), on
//     a connection that still carries a tunnel;
//   - a connection closed right after its tunnels ended, by their server (our paused reader
//     must still get everything) and by their client (what their kernel drops must reach
//     our upstream as a reset, never as a clean end: see CLOSE_AT_ONCE_LOSES_DATA).
// Their client waits after its last stream until our server closes the connection (a
// graceful end: GOAWAY, then close), except where closing at once is the point.
import { createHash, randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import { BadRequestError, TunnelDeniedError } from '../../hbone/errors.js';
import { CLIENT_ID, LOOPBACK, type Pki, SERVER_ID, waitFor } from '../hbone/helpers.js';
import { tempDir } from '../helpers/tmp.js';
import {
  type ClientSpec,
  checkTls,
  DENY_PORT,
  exchange,
  MiB,
  matchExchange,
  OTHER_IP,
  type OurServer,
  openThrough,
  ourClient,
  ourServer,
  type PeerFiles,
  type Stack,
  sha256,
  within,
} from './h2-harness.js';
import { peerFiles } from './h2-peers.js';

/** Their client closes its connection as soon as its last stream ended, with our frames
 *  (WINDOW_UPDATE) unread: its kernel then resets the connection and drops what it had not
 *  sent yet (seen at our server: ECONNRESET with 1.7–2.6 of 3 MiB received per tunnel). The
 *  loss is theirs; what is ours is how it shows: we report those tunnels as
 *  resets (asserted below), never as FINs after partial data (silent truncation). */
const CLOSE_AT_ONCE_LOSES_DATA =
  "their client's close drops its unsent data (a TCP reset): not every tunnel can arrive whole";

/** An upper bound: their client waits this long for us to close, which we do at once. */
const LINGER_MS = 10_000;

interface Ctx {
  readonly pki: Pki;
  readonly stack: Stack;
  readonly clientFiles: PeerFiles;
  readonly serverFiles: PeerFiles;
}

/** Every case against `stack`. */
export async function interopSuite(t: Test, pki: Pki, stack: Stack): Promise<void> {
  const why = stack.cannotRun();
  if (why) {
    t.comment(`${stack.name} interop skipped: ${why}`);
    t.pass(`skipped: ${why}`, { skip: why });
    return;
  }
  await within(120_000, stack.prepare(), `building the ${stack.name} peer`);
  const dir = await tempDir(t, 'mtun-h2-interop-');
  const clientFiles = await peerFiles(pki, CLIENT_ID, dir);
  const serverFiles = await peerFiles(pki, SERVER_ID, dir);
  const ctx = { pki, stack, clientFiles, serverFiles };
  const opts = { timeout: 30_000 };
  t.test(`our client -> ${stack.name} server`, opts, (t) => ourClientCases(t, ctx));
  t.test(`${stack.name} client -> our server`, opts, (t) => theirClientCases(t, ctx));
}

async function ourClientCases(t: Test, { pki, stack, serverFiles }: Ctx) {
  const theirServer = (t: Test, spec: Parameters<Stack['server']>[2]) =>
    stack.server(t, serverFiles, spec);

  t.test('3 tunnels on one connection, MiBs both ways at once', async (t) => {
    const theirs = await theirServer(t, { send: 3 * MiB, afterEof: false });
    const client = ourClient(t, pki);
    const ours = await Promise.all(
      [0, 1, 2].map(async () => {
        const tunnel = await openThrough(client, theirs.port);
        t.ok(tunnel.peerIdentity.equals(SERVER_ID), 'their SPIFFE ID verified');
        return exchange(tunnel.stream, 2 * MiB, false);
      }),
    );
    const reports = await theirs.streams(3);
    for (const x of ours) matchExchange(t, x, reports);
    t.same(
      ours.map((x) => x.received),
      [3 * MiB, 3 * MiB, 3 * MiB],
    );
    t.equal(client.stats().dialed, 1, 'one connection carried all three');
    checkTls(t, theirs.tls(), CLIENT_ID.toString());
    await waitFor(() => client.stats().streams === 0, 5_000, 'client streams released');
  });

  t.test('half-close: our FIN first, their data only after it', async (t) => {
    const theirs = await theirServer(t, { send: 3 * MiB, afterEof: true });
    const tunnel = await openThrough(ourClient(t, pki), theirs.port);
    const ours = await exchange(tunnel.stream, 1 * MiB, false);
    t.equal(ours.received, 3 * MiB, 'their 3 MiB arrived after our END_STREAM');
    matchExchange(t, ours, await theirs.streams(1));
  });

  if (!stack.serverEndsWithReset) {
    t.test('half-close: their FIN first, our data only after it', async (t) => {
      const theirs = await theirServer(t, { send: 2 * MiB, afterEof: false });
      const tunnel = await openThrough(ourClient(t, pki), theirs.port);
      const ours = await exchange(tunnel.stream, 3 * MiB, true);
      t.equal(ours.received, 2 * MiB);
      matchExchange(t, ours, await theirs.streams(1));
    });
  } else {
    t.test(
      'their server ends first with END_STREAM + RST_STREAM(NO_ERROR): a clean end',
      async (t) => {
        const theirs = await theirServer(t, { send: 2 * MiB, afterEof: false, endEarly: true });
        const client = ourClient(t, pki);
        const tunnel = await openThrough(client, theirs.port);
        const rx = createHash('sha256');
        let received = 0;
        tunnel.stream.on('data', (c: Buffer) => {
          rx.update(c);
          received += c.length;
        });
        const errors: string[] = [];
        tunnel.stream.on('error', (e: Error) => errors.push(e.message));
        const ended = new Promise((r) => tunnel.stream.once('end', r));
        const closed = new Promise((r) => tunnel.stream.once('close', r));
        await within(10_000, ended, 'their END_STREAM');
        await within(5_000, closed, 'the stream closed');
        const [r] = await theirs.streams(1);
        t.equal(received, 2 * MiB);
        t.equal(rx.digest('hex'), r?.sentSha256, 'their data intact up to their END_STREAM');
        t.same(errors, [], 'no stream error');
        await waitFor(() => client.stats().streams === 0, 5_000, 'client stream released');
        // (Nothing to send: whatever we send races their reset.)
        const again = await exchange((await openThrough(client, theirs.port)).stream, 0, false);
        t.equal(again.received, 2 * MiB, 'the connection still carries tunnels');
      },
    );
  }

  if (stack.serverCanCloseAfter) {
    t.test(
      'their server closes the connection right after the tunnel: a paused reader gets it all',
      async (t) => {
        const theirs = await theirServer(t, { send: 3 * MiB, afterEof: true, closeAfter: true });
        const tunnel = await openThrough(ourClient(t, pki), theirs.port);
        // A reader paused by backpressure (splice() while the app's socket is full): their
        // 3 MiB fit in our stream window and wait in our buffers while they end the stream
        // and close the connection.
        const rx = createHash('sha256');
        let received = 0;
        tunnel.stream.on('data', (c: Buffer) => {
          rx.update(c);
          received += c.length;
        });
        tunnel.stream.pause();
        const end = new Promise<string>((resolve) => {
          tunnel.stream.once('end', () => resolve('end'));
          tunnel.stream.once('error', (e: Error) => resolve(`error: ${e.message}`));
          tunnel.stream.once('close', () => resolve('close without end'));
        });
        const data = randomBytes(MiB);
        tunnel.stream.end(data);
        await theirs.closed(1);
        await new Promise((r) => setTimeout(r, 100)); // for their FIN to reach us
        tunnel.stream.resume();
        const [r] = await theirs.streams(1);
        t.equal(r?.receivedSha256, sha256(data), 'they received our 1 MiB');
        const how = await within(5_000, end, 'their END_STREAM');
        t.equal(how, 'end', 'their END_STREAM reads as the end');
        t.equal(received, 3 * MiB, 'all of their 3 MiB');
        t.equal(rx.digest('hex'), r?.sentSha256, 'intact (SHA-256)');
      },
    );
  }

  t.test('refusals: 401 and 400 are typed errors; the connection still works', async (t) => {
    const theirs = await theirServer(t, { send: 64 << 10, afterEof: false, denyPort: DENY_PORT });
    const client = ourClient(t, pki);
    const refused = (dest: string, dport: number) =>
      openThrough(client, theirs.port, dest, dport).then(
        () => new Error('opened'),
        (e: unknown) => e,
      );
    const denied = await refused(LOOPBACK, DENY_PORT);
    t.type(denied, TunnelDeniedError, `401 -> ${String(denied)}`);
    const bad = await refused(OTHER_IP, theirs.port);
    t.type(bad, BadRequestError, `not the dialed IP: 400 -> ${String(bad)}`);
    const tunnel = await openThrough(client, theirs.port);
    const ours = await exchange(tunnel.stream, 64 << 10, false);
    const reports = await theirs.streams(3);
    matchExchange(t, ours, reports);
    t.same(reports.map((r) => r.status).sort(), [200, 400, 401], 'their statuses');
    await waitFor(() => client.stats().streams === 0, 5_000, 'client streams released');
  });
}

async function theirClientCases(t: Test, { pki, stack, clientFiles }: Ctx) {
  const expect = SERVER_ID.toString();
  /** Runs their client against `ours` until the backend saw `n` exchanges end, then
   *  closes our server (GOAWAY, close), which ends their client's wait. */
  const theirClient = async (
    t: Test,
    ours: OurServer,
    n: number,
    spec: Omit<ClientSpec, 'port' | 'expect' | 'lingerMs'>,
  ) => {
    const running = stack.client(t, clientFiles, {
      ...spec,
      port: ours.port,
      expect,
      lingerMs: LINGER_MS,
    });
    running.catch(() => {}); // awaited below; a failure before that is the test's
    await Promise.race([ours.settled(n), running]);
    await ours.server.close(2_000);
    const run = await running;
    t.equal(run.exitCode, 0, `their client ended cleanly\n${run.output.slice(-2000)}`);
    t.same(ours.errorsLogged(), [], 'our server logged no error');
    return { run, exchanges: await ours.exchanges(n) };
  };

  t.test('3 tunnels on one connection, MiBs both ways at once', async (t) => {
    const ours = await ourServer(t, pki, { send: 3 * MiB, afterEof: false });
    const authority = `${LOOPBACK}:${ours.backendPort}`;
    const { run, exchanges } = await theirClient(t, ours, 3, {
      authorities: [authority, authority, authority],
      send: 2 * MiB,
      afterEof: false,
    });
    for (const x of exchanges) matchExchange(t, x, run.streams);
    t.same(
      exchanges.map((x) => x.received),
      [2 * MiB, 2 * MiB, 2 * MiB],
    );
    checkTls(t, run.tls, expect);
    await ours.noLeaks();
  });

  t.test('half-close: their FIN first, our data only after it', async (t) => {
    const ours = await ourServer(t, pki, { send: 3 * MiB, afterEof: true });
    const { run, exchanges } = await theirClient(t, ours, 1, {
      authorities: [`${LOOPBACK}:${ours.backendPort}`],
      send: 1 * MiB,
      afterEof: false,
    });
    const [x] = exchanges;
    t.equal(x?.sent, 3 * MiB, 'our 3 MiB went after their END_STREAM');
    if (x) matchExchange(t, x, run.streams);
    await ours.noLeaks();
  });

  t.test('half-close: our FIN first, their data only after it', async (t) => {
    const ours = await ourServer(t, pki, { send: 2 * MiB, afterEof: false });
    const { run, exchanges } = await theirClient(t, ours, 1, {
      authorities: [`${LOOPBACK}:${ours.backendPort}`],
      send: 3 * MiB,
      afterEof: true,
    });
    const [x] = exchanges;
    t.equal(x?.received, 3 * MiB, 'their 3 MiB arrived after our FIN');
    if (x) matchExchange(t, x, run.streams);
    await ours.noLeaks();
  });

  t.test(
    'a client that closes its connection as soon as its tunnels ended loses nothing',
    async (t) => {
      const ours = await ourServer(t, pki, { send: 2 * MiB, afterEof: false });
      const authority = `${LOOPBACK}:${ours.backendPort}`;
      const run = await stack.client(t, clientFiles, {
        port: ours.port,
        authorities: [authority, authority, authority],
        expect,
        send: 3 * MiB,
        afterEof: true,
        lingerMs: 0, // nghttp's and Go's way: GOAWAY and close once the last stream ended
      });
      t.equal(run.exitCode, 0, `their client ended cleanly\n${run.output.slice(-2000)}`);
      // Bounded at 5 s: with the bug, an upstream may also stay open (no FIN, no reset) for
      // as long as our server takes to notice that the client is gone.
      const { done, failed } = await ours.settled(3, 5_000).catch(() => ours.settled(0));
      const whole = done.filter(
        (x) =>
          x.received === 3 * MiB &&
          run.streams.some((s) => s.sentSha256 === x.receivedSha256 && s.status === 200),
      );
      const open = 3 - done.length - failed.length;
      // (A todo assertion prints no diff: the message carries what happened.)
      const got = `${whole.length}/3 whole; FIN after ${done.map((x) => x.received).join(', ') || '-'} bytes; reset: ${failed.length}; open after 5 s: ${open}`;
      t.same(
        { whole: whole.length, failed, open },
        { whole: 3, failed: [], open: 0 },
        `every tunnel reached the upstream whole, then its FIN (${got})`,
        { todo: CLOSE_AT_ONCE_LOSES_DATA },
      );
      // What is lost must never look like a complete transfer: each tunnel is either whole
      // and then FINs, or cut and then resets its upstream. Asked of our splice's own record,
      // not of the backend: the backend (Node 20, libuv 1.46) reads our RST as a clean 'end'
      // when the RST arrives behind bytes it has not read yet. uv__read() reads them short,
      // then uv__stream_io() takes POLLHUP after a partial read for EOF and never reads the
      // ECONNRESET (libuv 1.46 src/unix/stream.c, "Short-circuit iff POLLHUP"; libuv issue
      // 2319; reworked in 1.52.0, libuv PR 4997). That is the "FIN after 114,688 of 3 MiB,
      // reset: 0" a loaded CI run saw: our side had reset that upstream.
      await waitFor(() => ours.forwarded.length >= 3, 5_000, '3 splice results').catch(() => {});
      const spliced = ours.forwarded.flatMap((r) => ('failure' in r ? [] : [r]));
      const resets = spliced.filter((r) => r.error !== undefined);
      t.same(
        spliced.filter((r) => r.error === undefined && r.bytesStreamToSocket !== 3 * MiB),
        [],
        `no upstream closed cleanly after partial data: a cut is a reset (${got})`,
      );
      t.ok(
        done.length - whole.length + failed.length <= resets.length,
        `every upstream that did not get it whole is one we reset (${got}; our resets: ${resets.length})`,
      );
    },
  );

  t.test('refusals: 401 and 400 on the connection that carries a tunnel', async (t) => {
    const ours = await ourServer(t, pki, { send: 64 << 10, afterEof: false });
    const good = `${LOOPBACK}:${ours.backendPort}`;
    const denied = `${LOOPBACK}:${DENY_PORT}`;
    const bad = `${OTHER_IP}:${ours.backendPort}`;
    const { run, exchanges } = await theirClient(t, ours, 1, {
      authorities: [denied, bad, good],
      send: 64 << 10,
      afterEof: false,
    });
    const status = (a: string) => run.streams.find((s) => s.authority === a)?.status;
    t.equal(status(denied), 401, 'denied port: 401');
    t.equal(status(bad), 400, 'not the dialed IP: 400');
    t.equal(status(good), 200);
    for (const x of exchanges) matchExchange(t, x, run.streams);
    t.equal(ours.server.stats().refusals['HBONE_BAD_REQUEST'], 1, 'the 400 is counted');
    await ours.noLeaks();
  });
}
