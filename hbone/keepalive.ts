// PING keepalive for one HTTP/2 session, the same at both ends (ztunnel's values: a PING
// every 10 s, dead after 20 s without its answer; src/proxy/h2.rs do_ping_pong): at most one
// PING outstanding, `onDead` when its answer is late. A peer that vanished without closing
// (killed, its node lost) is noticed this way even when its reset was never read.
import type { H2Session } from './h2/session.js';

/** Starts pinging; returns the function that stops it (call it when the session closes). */
export function keepalive(
  session: H2Session,
  intervalMs: number,
  timeoutMs: number,
  onDead: () => void,
): () => void {
  let deadline: NodeJS.Timeout | undefined;
  const timer = setInterval(() => {
    if (deadline || session.destroyed) return;
    deadline = setTimeout(onDead, timeoutMs);
    deadline.unref();
    session.ping(() => {
      clearTimeout(deadline);
      deadline = undefined;
    });
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    clearTimeout(deadline);
  };
}
