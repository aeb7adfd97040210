// Server limits against a misbehaving but authenticated client (raw node:http2 over our
// mTLS): rapid-reset floods, oversized headers, concurrent stream caps, idle sessions.
import { constants as h2 } from 'node:http2';
import t from 'tap';
import { TunnelDeniedError } from '../../hbone/errors.js';
import { forwardTunnel } from '../../hbone/server/forward.js';
import {
  deferred,
  fixture,
  LOOPBACK,
  makePki,
  rawSession,
  readAll,
  startServer,
  waitFor,
} from './helpers.js';

t.setTimeout(60_000);
const pki = await makePki();

t.test('a rapid-reset flood closes the flooding connection and bounds upstream work', async (t) => {
  let handled = 0;
  const { backend, server, via, log, open } = await fixture(t, pki, {
    server: {
      onTunnel: (tunnel) => {
        handled++;
        void forwardTunnel(tunnel);
      },
    },
  });
  let accepted = 0;
  backend.server.on('connection', () => accepted++);
  const session = await rawSession(pki, via.port);
  t.teardown(() => session.destroy());
  const FLOOD = 5000;
  for (let i = 0; i < FLOOD && !session.closed && !session.destroyed; i++) {
    const req = session.request({
      ':method': 'CONNECT',
      ':authority': `${LOOPBACK}:${backend.addr.port}`,
    });
    req.on('error', () => {});
    req.close(h2.NGHTTP2_CANCEL);
    if (i % 100 === 99) await new Promise((r) => setImmediate(r)); // let frames flow
  }
  // The flooding client itself may not notice at once (it is busy writing); the server does.
  await waitFor(() => server.stats().sessions === 0, 3000, 'flooding session closed');
  t.ok(handled < FLOOD / 4, `handler ran ${handled} times for ${FLOOD} attempted streams`);
  t.ok(accepted < FLOOD / 4, `${accepted} upstream connections for ${FLOOD} attempted streams`);
  t.equal(
    log.lines.filter((l) => String(l['msg']).includes('rapid reset')).length,
    1,
    'logged once',
  );
  await waitFor(() => backend.sockets.size === 0, 3000, 'upstreams cleaned up');

  // A well-behaved client is served as before.
  const tunnel = await open();
  tunnel.stream.end('still fine');
  t.equal((await readAll(tunnel.stream)).toString(), 'still fine');
});

t.test('oversized headers are refused before the handler runs', async (t) => {
  let handled = 0;
  const { server, via } = await startServer(pki, {
    maxHeaderListBytes: 4096,
    onTunnel: (tunnel) => {
      handled++;
      void forwardTunnel(tunnel);
    },
  });
  t.teardown(() => server.close(0));
  // Sent before the server's SETTINGS may arrive: a Node client that already knows the
  // advertised limit refuses the stream itself (ENHANCE_YOUR_CALM); one that does not yet
  // know it gets the server's 400. Either way the handler never sees it.
  const session = await rawSession(pki, via.port, { awaitSettings: false });
  t.teardown(() => session.destroy());
  const req = session.request({
    ':method': 'CONNECT',
    ':authority': `${LOOPBACK}:9`,
    baggage: 'x'.repeat(8192),
  });
  req.on('error', () => {});
  const outcome = await new Promise<string>((r) => {
    req.once('response', (h) => r(`status ${h[':status']}`));
    req.once('close', () => r(`reset ${req.rstCode}`));
  });
  t.match(outcome, /^(status 400|reset 11)$/, outcome);
  t.equal(handled, 0);
});

t.test('the server caps concurrent streams per connection', async (t) => {
  const release = deferred<void>();
  let inFlight = 0;
  let peak = 0;
  const { server, via } = await startServer(pki, {
    maxConcurrentStreams: 5,
    onTunnel: async (tunnel) => {
      peak = Math.max(peak, ++inFlight);
      await release.promise;
      inFlight--;
      tunnel.refuse(new TunnelDeniedError('test'));
    },
  });
  t.teardown(() => server.close(0));
  const session = await rawSession(pki, via.port);
  t.teardown(() => session.destroy());
  t.equal(session.remoteSettings.maxConcurrentStreams, 5);
  const statuses = Array.from({ length: 8 }, () => {
    const req = session.request({ ':method': 'CONNECT', ':authority': `${LOOPBACK}:9` });
    req.on('error', () => {});
    return new Promise<unknown>((r) => {
      req.once('response', (h) => r(h[':status']));
      req.once('close', () => r(`closed ${req.rstCode}`));
      req.resume();
    });
  });
  await waitFor(() => inFlight === 5, 2000, '5 streams in the handler');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(peak, 5, 'never more than the advertised maximum');
  release.resolve();
  t.same(
    await Promise.all(statuses),
    Array(8).fill(401),
    'the queued streams are served afterwards',
  );
});

t.test('a session with no streams is closed after the idle timeout', async (t) => {
  const { server, via } = await startServer(pki, { idleTimeoutMs: 200 });
  t.teardown(() => server.close(0));
  const session = await rawSession(pki, via.port);
  t.teardown(() => session.destroy());
  const goaway = new Promise<number>((r) => session.once('goaway', (code) => r(code)));
  t.equal(server.stats().sessions, 1);
  t.equal(await goaway, h2.NGHTTP2_NO_ERROR, 'graceful GOAWAY');
  await waitFor(() => server.stats().sessions === 0, 2000, 'session closed');
});
