// Whether a TCP socket's end of stream was in fact a reset. Node 20's libuv (1.46) reads a
// reset that arrives behind data not yet read as a clean end: it reads the data short,
// takes the POLLHUP that came with the reset for EOF and never reads the ECONNRESET
// (src/unix/stream.c, "Short-circuit iff POLLHUP"; libuv issue 2319, reworked in 1.52). A
// proxy that forwarded that end as a FIN would turn an application's abort, or a dead
// peer, into a complete-looking stream: a silent truncation (issue 12's class). The kernel
// still holds the reset as the socket's pending error, read here at 'end' through the
// native addon (native/socket_error.c): one getsockopt per connection.
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import { loadNativeAddon, socketFd } from './native-addon.js';

type SocketError = (fd: number) => number;

let probe: SocketError | undefined;
let missing: string | undefined;

function load(): SocketError | undefined {
  if (probe || missing) return probe;
  const loaded = loadNativeAddon();
  if ('reason' in loaded) missing = loaded.reason;
  else if (typeof loaded.addon.socketError !== 'function')
    missing = `the native addon ${loaded.addonPath} predates socketError(): run \`npm run build:native\``;
  else probe = loaded.addon.socketError;
  return probe;
}

/** Whether resets behind unread data can be told from a FIN here; if not, why (for the
 *  agent's start-up log: such resets are then forwarded as FINs, as before). */
export function resetDetection(): { readonly available: boolean; readonly reason?: string } {
  return load() ? { available: true } : { available: false, reason: missing ?? 'unknown' };
}

/** At 'end': true when the kernel says the connection was reset (ECONNRESET) or died
 *  (ETIMEDOUT) rather than closed with a FIN. Nothing else counts: EPIPE is a reset that
 *  came after the peer's FIN (the data before it was complete, so that end stands), and
 *  Linux's SO_ERROR also hands back a soft error (an ICMP unreachable the connection
 *  survived) when no hard one is pending. */
export function endedByReset(socket: Socket): boolean {
  const socketError = load();
  const fd = socketError && socketFd(socket);
  if (!socketError || fd === undefined) return false;
  const err = socketError(fd);
  return err === constants.errno.ECONNRESET || err === constants.errno.ETIMEDOUT;
}

/** The error a reset read as an end is reported with (as Node reports a reset it reads). */
export function resetError(): Error {
  return Object.assign(new Error('read ECONNRESET (reported as an end of stream)'), {
    code: 'ECONNRESET',
    errno: -constants.errno.ECONNRESET,
    syscall: 'read',
  });
}
