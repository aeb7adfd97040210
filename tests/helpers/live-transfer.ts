// A long transfer in steps, for the live byte counters: a sink pod that counts what it gets
// and sends what it is told, and a driver that, after every step of an upload and then of a
// download, checks each reporter's counters against the bytes moved so far while the
// connection is open, then closes it and checks the totals.
import { createServer, type Socket } from 'node:net';
import type { Test } from 'tap';
import { eventually } from './eventually.js';

export interface Sink {
  readonly port: number;
  /** Bytes received so far. */
  got(): number;
  /** The accepted connection (one at a time). */
  socket(): Socket | undefined;
}

export async function startSink(t: Test, ip: string): Promise<Sink> {
  let got = 0;
  let socket: Socket | undefined;
  const server = createServer({ allowHalfOpen: true }, (s) => {
    socket = s;
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, ip, r));
  t.teardown(() => new Promise((r) => server.close(r)));
  const port = (server.address() as { port: number }).port;
  return { port, got: () => got, socket: () => socket };
}

/** One connection's counters as one reporter's agent shows them. */
export interface Counters {
  readonly received: number;
  readonly sent: number;
  readonly closed: number;
}

/** Uploads `steps` chunks, then downloads as many, checking `counters()` (by reporter)
 *  after each; then closes and checks the totals. */
export async function stepwiseTransfer(
  t: Test,
  o: {
    client: Socket;
    sink: Sink;
    counters: () => Promise<Record<string, Counters>>;
    steps: number;
    chunkBytes: number;
    waitMs: number;
  },
): Promise<void> {
  const { client, sink, steps } = o;
  const size = o.chunkBytes;
  const chunk = Buffer.alloc(size, 0x75);
  let back = 0;
  client.on('data', (d: Buffer) => (back += d.length));
  for (let step = 1; step <= steps; step++) {
    client.write(chunk);
    await eventually(() => sink.got() === step * size, `the pod got step ${step}`, o.waitMs);
    for (const [reporter, v] of Object.entries(await o.counters())) {
      t.equal(v.received, step * size, `${reporter}: received = what the client sent so far`);
      t.equal(v.sent, 0, `${reporter}: sent = nothing went back yet`);
      t.equal(v.closed, 0, `${reporter}: still open`);
    }
  }
  for (let step = 1; step <= steps; step++) {
    sink.socket()!.write(chunk);
    await eventually(() => back === step * size, `the client got step ${step}`, o.waitMs);
    for (const [reporter, v] of Object.entries(await o.counters())) {
      t.equal(v.sent, step * size, `${reporter}: sent = what went back to the client so far`);
      t.equal(v.received, steps * size, `${reporter}: received unchanged`);
      t.equal(v.closed, 0, `${reporter}: still open`);
    }
  }
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  client.end();
  await closed;
  await eventually(
    async () => Object.values(await o.counters()).every((v) => v.closed === 1),
    'every agent counted the close',
    o.waitMs,
  );
  for (const [reporter, v] of Object.entries(await o.counters())) {
    t.equal(v.received, steps * size, `${reporter}: final received = bytes the client sent`);
    t.equal(v.sent, steps * size, `${reporter}: final sent = bytes sent back`);
  }
}
