// The one TCP connect with a deadline and a way out: the agent's upstream dials (a pod, a
// passthrough target) and the HBONE library's forwarding helper use it. The socket comes
// back half-open capable (FIN is passed on as FIN by the joins) and with Nagle off (a proxy
// must not add delay to small writes).
import { connect, type Socket } from 'node:net';

export class DialError extends Error {
  readonly code: 'DIAL_TIMEOUT' | 'DIAL_ABORTED' | 'DIAL_FAILED';
  constructor(code: DialError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'DialError';
  }
}

/** Connects to ip:port; rejects with a DialError after `timeoutMs`, when `signal` aborts
 *  (the client went away while we were connecting: the half-made socket is destroyed, never
 *  left behind), or with the connect error (ECONNREFUSED, ...) as its cause. */
export function dialTcp(
  ip: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Socket> {
  const where = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  if (signal?.aborted)
    return Promise.reject(new DialError('DIAL_ABORTED', `connect to ${where} abandoned`));
  return new Promise((resolve, reject) => {
    const s = connect({ host: ip, port, allowHalfOpen: true, noDelay: true });
    const fail = (err: DialError) => {
      settle();
      s.destroy();
      reject(err);
    };
    const onAbort = () =>
      fail(new DialError('DIAL_ABORTED', `connect to ${where} abandoned: the client went away`));
    const timer = setTimeout(
      () =>
        fail(new DialError('DIAL_TIMEOUT', `connect to ${where} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onError = (err: NodeJS.ErrnoException) =>
      fail(
        new DialError('DIAL_FAILED', `connect to ${where} failed: ${err.code ?? err.message}`, {
          cause: err,
        }),
      );
    const settle = () => {
      clearTimeout(timer);
      s.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    s.once('error', onError);
    s.once('connect', () => {
      settle();
      resolve(s);
    });
  });
}
