// One direction of a proxied connection: `from`'s data written to `to` with backpressure,
// and `from`'s end passed on as `to.end()` (a half-close). What `Readable.pipe()` does for
// us, with what it costs taken out: pipe() keeps nine closures, three `once` wrappers and
// a context per direction alive for the whole life of the connection, about 2.5 KiB per
// tunnel per agent across both directions (heap snapshots with 3,000 idle tunnels), and a
// node agent holds tens of thousands of idle tunnels. Here: three small listeners.
//
// Differences from pipe(), on purpose: when `to` is gone (destroyed or ended), data still
// read from `from` is dropped instead of pausing `from` for ever: the caller resets or
// closes the pair from its 'close' handlers, and a paused source would hold its buffers.
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { endedByReset, resetError } from './socket-reset.js';

export function forward(from: Readable, to: Writable): void {
  let waiting = false; // paused by us until `to` drains
  from.on('data', (chunk: Buffer) => {
    if (to.destroyed || to.writableEnded) return;
    if (!to.write(chunk) && !waiting) {
      waiting = true;
      from.pause();
    }
  });
  to.on('drain', () => {
    if (!waiting) return;
    waiting = false;
    from.resume();
  });
  from.on('end', () => {
    // A socket's reset that libuv read as an end (socket-reset.ts) is no FIN to pass on:
    // destroyed with the reset, the caller's 'close' handling resets `to`.
    if (from instanceof Socket && endedByReset(from)) {
      from.destroy(resetError());
      return;
    }
    if (!to.destroyed && !to.writableEnded) to.end();
  });
  // Like pipe(): start flowing unless `to` is already full (the caller may have paused
  // `from` to hold early data back; attaching is its signal that `to` is ready).
  if (to.writableNeedDrain) {
    waiting = true;
    from.pause();
  } else from.resume();
}
