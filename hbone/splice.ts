// Joins a TCP socket and an HBONE stream so that the pair behaves like one TCP connection:
// - data both ways with backpressure (lib/forward.ts: pipe() without its per-connection cost);
// - half-close both ways: FIN -> END_STREAM and END_STREAM -> FIN (sockets must be
//   allowHalfOpen, or Node would answer a FIN by closing the other direction too);
// - reset both ways: socket error/abrupt close -> RST_STREAM(CONNECT_ERROR), and a stream
//   reset -> TCP RST (RFC 9113 §8.5);
// - a normal close never resets anything: a reset on a clean close loses data in flight and
//   counts against the peer's rapid-reset budget, which kills pooled connections.
// `done` runs once, after both sides are closed, with the byte counts and the first error.
import type { Http2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { forward } from '../lib/forward.js';
import { CONNECT_ERROR } from './settings.js';

export interface SpliceResult {
  /** Bytes read from the socket and sent into the tunnel. */
  readonly bytesSocketToStream: number;
  /** Bytes received from the tunnel and written to the socket. */
  readonly bytesStreamToSocket: number;
  /** The first error on either side; undefined for a clean close. */
  readonly error: Error | undefined;
}

export function splice(
  socket: Socket,
  stream: Http2Stream,
  done?: (result: SpliceResult) => void,
): void {
  let error: Error | undefined;
  let pending = 2;
  const finish = () => {
    if (--pending > 0) return;
    done?.({
      bytesSocketToStream: socket.bytesRead,
      bytesStreamToSocket: socket.bytesWritten,
      error,
    });
  };

  socket.on('error', (err) => {
    error ??= err;
  });
  stream.on('error', (err) => {
    error ??= err;
  });

  // 'close' is emitted once: plain `on` spares a once-wrapper per tunnel.
  socket.on('close', () => {
    // A clean close has already sent our FIN as END_STREAM (forward() ends the stream when the
    // socket ends) and received theirs; anything else is an abort to pass on as a reset.
    if (!stream.closed && !stream.destroyed && !(stream.writableEnded && stream.readableEnded)) {
      resetTunnel(stream);
    }
    finish();
  });
  stream.on('close', () => {
    if (!socket.destroyed) {
      // A reset, or a close without one before the far side sent everything: an abort.
      if (stream.rstCode !== 0 || !socket.readableEnded) abortSocket(socket);
      else if (!socket.writableEnded) socket.end();
    }
    finish();
  });

  forward(socket, stream);
  forward(stream, socket);
}

/** TCP RST, when libuv can: it refuses to reset a socket whose FIN is still being sent
 *  (uv_tcp_close_reset returns EINVAL, and Node then never closes the handle: a leak), so
 *  such a socket is closed plainly. */
function abortSocket(socket: Socket): void {
  if (socket.writableEnded && !socket.writableFinished) socket.destroy();
  else socket.resetAndDestroy();
}

/**
 * Resets a tunnel stream with RST_STREAM(CONNECT_ERROR by default: the HTTP/2 image of a TCP
 * reset).
 * Http2Stream.close() first ends the writable side, which sends an empty DATA frame with
 * END_STREAM ahead of the RST_STREAM: the far side then forwards a clean FIN before it
 * learns of the reset, and a reader sees a normal end of data. Making this stream's final
 * write step a no-op leaves only the RST_STREAM on the wire.
 */
export function resetTunnel(stream: Http2Stream, code: number = CONNECT_ERROR): void {
  if (stream.closed || stream.destroyed) return;
  (stream as unknown as { _final: (cb: () => void) => void })._final = (cb) => cb();
  stream.close(code);
}
