// forward(): one direction of a proxied connection, on real sockets: everything arrives in
// order under backpressure (a slow reader), the end becomes a half-close of the other side
// while the reverse direction keeps working, and a destroyed destination does not stall
// or throw on the source.
import { createHash } from 'node:crypto';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { forward } from '../../lib/forward.js';
import { endedByReset } from '../../lib/socket-reset.js';

/** A connected pair of loopback sockets (allowHalfOpen both ways). */
async function socketPair(t: Test): Promise<[Socket, Socket]> {
  const server: Server = createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const port = (server.address() as { port: number }).port;
  const client = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const other = await accepted;
  t.teardown(() => {
    client.destroy();
    other.destroy();
  });
  return [client, other];
}

t.test(
  'everything arrives, in order, through a slow reader; end becomes a half-close',
  async (t) => {
    // app -> a ==forward==> b -> sink; the sink reads slowly, so forward() must pause and resume.
    const [app, a] = await socketPair(t);
    const [b, sink] = await socketPair(t);
    forward(a, b);
    const payload = Buffer.alloc(8 << 20);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
    const want = createHash('sha256').update(payload).digest('hex');
    let paused = 0;
    const origPause = a.pause.bind(a);
    a.pause = () => {
      paused++;
      return origPause();
    };
    const got = createHash('sha256');
    let bytes = 0;
    const ended = new Promise<void>((resolve) => {
      sink.on('data', (chunk: Buffer) => {
        got.update(chunk);
        bytes += chunk.length;
        sink.pause();
        setTimeout(() => sink.resume(), 1); // slow reader
      });
      sink.on('end', resolve);
    });
    app.end(payload);
    await ended;
    t.equal(bytes, payload.length, 'every byte');
    t.equal(got.digest('hex'), want, 'in order');
    t.ok(paused > 0, `backpressure paused the source (${paused} times)`);
    // The half-close: the sink's side can still answer, all the way back to the app.
    const back = new Promise<string>((r) => app.once('data', (d: Buffer) => r(String(d))));
    forward(b, a);
    sink.end('reply');
    t.equal(await back, 'reply', 'the other direction still works after the end');
  },
);

t.test(
  'a destroyed destination: the source keeps flowing to its end, nothing thrown',
  async (t) => {
    const [app, a] = await socketPair(t);
    const [b] = await socketPair(t);
    forward(a, b);
    b.destroy();
    const ended = new Promise<void>((r) => a.once('end', r));
    app.end(Buffer.alloc(1 << 20, 1));
    await ended;
    t.ok(a.readableEnded, 'the source was read to its end (not paused for ever)');
  },
);

t.test(
  'a reset behind data not read yet is passed on as a reset, not as an end (Node 20 reads it as one)',
  async (t) => {
    // The request sits unread in `a` (paused before forward(), as a proxy holds a client
    // while it connects upstream) when the app resets: libuv then reads it and reports an
    // end of stream (lib/socket-reset.ts). forward() must not end `b` cleanly.
    const [app, a] = await socketPair(t);
    const [b, sink] = await socketPair(t);
    a.pause();
    a.on('error', () => {});
    app.on('error', () => {});
    sink.on('error', () => {});
    await new Promise<void>((r) => app.write(Buffer.alloc(200_000, 1), () => r()));
    app.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 100));
    const how = new Promise<string>((resolve) => {
      sink.on('end', () => resolve(endedByReset(sink) ? 'reset' : 'fin'));
      sink.on('error', () => resolve('reset'));
    });
    sink.resume();
    // The caller's part (agent/proxy/pipe.ts): a source closed with an error resets `b`.
    a.on('close', (hadError) => (hadError ? b.resetAndDestroy() : b.end()));
    forward(a, b);
    t.equal(await how, 'reset');
  },
);
