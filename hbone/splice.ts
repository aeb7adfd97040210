// Joins a TCP socket and an HBONE stream so that the pair behaves like one TCP connection:
// - data both ways with backpressure (as lib/forward.ts: pipe() without its per-connection cost);
// - half-close both ways: FIN -> END_STREAM and END_STREAM -> FIN (sockets must be
//   allowHalfOpen, or Node would answer a FIN by closing the other direction too);
// - reset both ways: socket error/abrupt close -> RST_STREAM(CONNECT_ERROR), and a stream
//   reset -> TCP RST (RFC 9113 §8.5);
// - a normal close never resets anything: a reset on a clean close loses data in flight and
//   counts against the peer's rapid-reset budget, which kills pooled connections.
// `done` runs once, after both sides are closed, with the byte counts and the first error.
import type { Socket } from 'node:net';
import { endedByReset, resetError } from '../lib/socket-reset.js';
import { ErrorCode } from './h2/frame.js';
import type { H2Stream } from './h2/stream.js';

export interface SpliceResult {
  /** Bytes read from the socket and sent into the tunnel. */
  readonly bytesSocketToStream: number;
  /** Bytes received from the tunnel and written to the socket. */
  readonly bytesStreamToSocket: number;
  /** The first error on either side; undefined for a clean close. */
  readonly error: Error | undefined;
}

// Memory: a node agent holds tens of thousands of idle tunnels, each with one splice. The
// listeners are module-level functions shared by every tunnel (an emitter calls them with
// `this` = itself, which finds its Splice through a symbol), so a tunnel keeps one small
// object here instead of thirteen closures and their three scopes (bench/tunnel-heap.ts
// --closures 1 lists what a tunnel keeps).
const kSplice = Symbol('mtun.splice');

type Joined = { [kSplice]?: Splice };

class Splice {
  error: Error | undefined;
  pending = 2;
  /** A side paused by us until the other drains. */
  socketPaused = false;
  streamPaused = false;

  constructor(
    readonly socket: Socket,
    readonly stream: H2Stream,
    readonly done: SpliceDone | undefined,
  ) {}

  finish(): void {
    if (--this.pending > 0) return;
    const result = {
      bytesSocketToStream: this.socket.bytesRead,
      bytesStreamToSocket: this.socket.bytesWritten,
      error: this.error,
    };
    const done = this.done;
    if (typeof done === 'function') done(result);
    else done?.spliced(result);
  }
}

const spliceOf = (emitter: unknown): Splice => (emitter as Joined)[kSplice]!;

function onError(this: unknown, err: Error): void {
  const sp = spliceOf(this);
  sp.error ??= err;
}

// Data both ways with backpressure (what lib/forward.ts does for two sockets): when the far
// side is gone, data still read is dropped (the close handlers reset or close the pair).
function onSocketData(this: Socket, chunk: Buffer): void {
  const sp = spliceOf(this);
  const to = sp.stream;
  if (to.destroyed || to.writableEnded) return;
  if (!to.write(chunk) && !sp.socketPaused) {
    sp.socketPaused = true;
    this.pause();
  }
}

function onStreamDrain(this: H2Stream): void {
  const sp = spliceOf(this);
  if (!sp.socketPaused) return;
  sp.socketPaused = false;
  sp.socket.resume();
}

function onStreamData(this: H2Stream, chunk: Buffer): void {
  const sp = spliceOf(this);
  const to = sp.socket;
  if (to.destroyed || to.writableEnded) return;
  if (!to.write(chunk) && !sp.streamPaused) {
    sp.streamPaused = true;
    this.pause();
  }
}

function onSocketDrain(this: Socket): void {
  const sp = spliceOf(this);
  if (!sp.streamPaused) return;
  sp.streamPaused = false;
  sp.stream.resume();
}

/** The application's FIN: END_STREAM. Unless libuv read a reset as the end (see
 *  lib/socket-reset.ts): then the socket is destroyed with the reset, and its close
 *  resets the tunnel. */
function onSocketEnd(this: Socket): void {
  if (endedByReset(this)) {
    this.destroy(resetError());
    return;
  }
  const stream = spliceOf(this).stream;
  if (!stream.destroyed && !stream.writableEnded) stream.end();
}

// The stream's readable side ends on the peer's END_STREAM, and also when a reset or the
// connection's end tears the stream down. Only the first is a FIN; the others must reach
// the application as a reset, or a download cut by a dead or draining peer agent
// "completes" (issue 12).
function onStreamEnd(this: H2Stream): void {
  const sp = spliceOf(this);
  const socket = sp.socket;
  if (socket.destroyed) return;
  if (!this.endedByPeer) abortSocket(socket);
  else if (!socket.writableEnded) socket.end();
}

function onSocketClose(this: Socket): void {
  const sp = spliceOf(this);
  const stream = sp.stream;
  // A clean close has already sent our FIN as END_STREAM (the socket's end ended the stream)
  // and received theirs; anything else is an abort to pass on as a reset.
  if (!stream.closed && !stream.destroyed && !(stream.writableEnded && stream.readableEnded)) {
    resetTunnel(stream);
  }
  sp.finish();
}

function onStreamClose(this: H2Stream): void {
  const sp = spliceOf(this);
  const socket = sp.socket;
  if (!socket.destroyed) {
    // After the peer's END_STREAM, RST_STREAM(NO_ERROR) or (CANCEL) ends the tunnel
    // cleanly: how Go's and other servers finish; what the application still sends has
    // nowhere to go and is dropped. Any other code, or a reset or teardown before the
    // peer's END_STREAM, is an abort. (ztunnel's h2.rs reads NO_ERROR and CANCEL as an end
    // even with no END_STREAM before them; we do not: that is how a cut looks.)
    const code = this.rstCode;
    const clean = this.endedByPeer && (code === ErrorCode.NO_ERROR || code === ErrorCode.CANCEL);
    if (!clean) abortSocket(socket);
    else if (socket.readableEnded) {
      if (!socket.writableEnded) socket.end();
    } else {
      // The tunnel is over while the application still sends: like ztunnel (a write into
      // a stream reset with NO_ERROR is a broken pipe), close after our FIN is flushed;
      // the kernel resets the connection if the application sends on. Keeping it open
      // would read and drop its data for as long as it cares to send.
      socket.destroySoon();
    }
  }
  sp.finish();
}

/** Told once both sides are closed: a function, or an object whose `spliced` is called (a
 *  caller that keeps one object per tunnel anyway spares a closure). */
export type SpliceDone = ((result: SpliceResult) => void) | { spliced(result: SpliceResult): void };

export function splice(socket: Socket, stream: H2Stream, done?: SpliceDone): void {
  const sp = new Splice(socket, stream, done);
  (socket as Joined)[kSplice] = sp;
  (stream as Joined)[kSplice] = sp;
  socket.on('error', onError);
  stream.on('error', onError);
  // 'close' is emitted once: plain `on` spares a once-wrapper per tunnel.
  socket.on('close', onSocketClose);
  stream.on('close', onStreamClose);
  socket.on('data', onSocketData);
  stream.on('drain', onStreamDrain);
  socket.on('end', onSocketEnd);
  stream.on('data', onStreamData);
  socket.on('drain', onSocketDrain);
  stream.on('end', onStreamEnd);
  // Like pipe(): start flowing unless the other side is already full (the caller may have
  // paused the socket to hold early data back; attaching is its signal to go).
  if (stream.writableNeedDrain) {
    sp.socketPaused = true;
    socket.pause();
  } else socket.resume();
  if (socket.writableNeedDrain) {
    sp.streamPaused = true;
    stream.pause();
  } else stream.resume();
}

/** TCP RST, when libuv can: it refuses to reset a socket whose FIN is still being sent
 *  (uv_tcp_close_reset returns EINVAL, and Node then never closes the handle: a leak), so
 *  such a socket is closed plainly. */
function abortSocket(socket: Socket): void {
  if (socket.writableEnded && !socket.writableFinished) socket.destroy();
  else socket.resetAndDestroy();
}

/** Resets a tunnel stream with RST_STREAM(CONNECT_ERROR by default: the HTTP/2 image of a
 *  TCP reset), and only that: no END_STREAM goes before it, so the far side never forwards
 *  a clean FIN ahead of the reset. */
export function resetTunnel(stream: H2Stream, code: number = ErrorCode.CONNECT_ERROR): void {
  if (stream.closed || stream.destroyed) return;
  stream.close(code);
}
