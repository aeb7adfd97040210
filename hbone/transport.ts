// The byte stream node:http2 runs on: the TLS socket, seen through a Duplex that accepts
// writes and keeps reading without waiting for the kernel, up to a bound.
//
// Why: a Node HTTP/2 session stops reading its socket while one of its own writes is
// still pending (node_http2.cc MaybeStopReading: no reads while SESSION_STATE_WRITE_IN_PROGRESS).
// With tunnels busy in both directions and windows larger than the kernel's socket buffers,
// both ends end up writing, neither reads, and the connection deadlocks with every tunnel on
// it (seen with 10 tunnels x 1 MiB each way at 4 MiB/16 MiB windows: the PING keepalive
// then kills the connection). Here a write completes as soon as it is handed to the TLS
// socket, and reading never stops, so the session never waits on its peer.
// One side of a connection is enough: if one end always reads, the other's pending write
// completes and it reads again. The client uses this; the server keeps Node's native TLS
// path and its stop-reading backpressure, which protects it from clients that flood control
// frames without reading the answers (and the JS hop costs ~20 % of bulk throughput per
// side where it is used, bench/hbone.ts).
//
// Memory stays bounded because what a peer may send is bounded by flow control: DATA up to
// the windows we granted, plus a few control frames. `limitBytes` caps both buffers anyway:
// past it, ordinary backpressure returns, which is also what protects against a peer that
// floods control frames (PING, SETTINGS) while never reading our answers.
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';

export class EagerTransport extends Duplex {
  private waitingForDrain: (() => void) | undefined;

  constructor(
    private readonly socket: TLSSocket,
    private readonly limitBytes: number,
  ) {
    super({
      allowHalfOpen: false,
      readableHighWaterMark: limitBytes,
      writableHighWaterMark: limitBytes,
    });
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause(); // over the bound: TCP backpressure again
    });
    socket.on('end', () => this.push(null));
    socket.on('drain', () => {
      const cb = this.waitingForDrain;
      this.waitingForDrain = undefined;
      cb?.();
    });
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /** The verified TLS socket underneath (for addresses and certificates). */
  get tls(): TLSSocket {
    return this.socket;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.socket.write(chunk);
    if (this.socket.writableLength < this.limitBytes) cb();
    else this.waitingForDrain = cb;
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.socket.cork();
    for (const { chunk } of chunks) this.socket.write(chunk);
    this.socket.uncork();
    if (this.socket.writableLength < this.limitBytes) cb();
    else this.waitingForDrain = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    cb(err);
  }
}
