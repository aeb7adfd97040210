// Joins two TCP sockets like one connection: data both ways with backpressure, FIN passed
// on as FIN (both sockets must be allowHalfOpen), an abort on one side passed on as a
// reset of the other. `done` runs once, after both are closed.
import type { Socket } from 'node:net';
import { forward } from '../../lib/forward.js';

export interface PipeResult {
  /** Bytes from `a` delivered to `b`. */
  readonly aToB: number;
  readonly bToA: number;
  readonly error: Error | undefined;
}

export function joinSockets(a: Socket, b: Socket, done?: (r: PipeResult) => void): void {
  let error: Error | undefined;
  let pending = 2;
  const finish = () => {
    if (--pending === 0) done?.({ aToB: b.bytesWritten, bToA: a.bytesWritten, error });
  };
  const link = (from: Socket, to: Socket) => {
    from.on('error', (err) => {
      error ??= err;
    });
    from.on('close', (hadError) => {
      // A clean end was already forwarded by forward(); an abort becomes a reset.
      if (!to.destroyed && (hadError || !from.readableEnded)) to.resetAndDestroy();
      else if (!to.destroyed && !to.writableEnded) to.end();
      finish();
    });
    forward(from, to);
  };
  link(a, b);
  link(b, a);
}
