// The plain HBONE gateway: connect each tunnel to its target (or a fixed upstream), answer
// 200 once connected or 503 when the connect fails, and splice. For the library's users
// that decide nothing (its tests, the benchmark pairs); the agent has its own path with
// policy and a record per connection (agent/proxy/local-pod.ts).
import { DialError, dialTcp } from '../../lib/dial.js';
import type { SocketAddr } from '../address.js';
import { ServerInternalError, UpstreamFailedError } from '../errors.js';
import { type SpliceResult, splice } from '../splice.js';
import type { IncomingTunnel } from './connect.js';

export interface ForwardOptions {
  /** Where to connect instead of the tunnel's target. */
  readonly upstream?: SocketAddr;
  readonly connectTimeoutMs?: number;
}

/** How a forwarded tunnel ended: spliced until both sides closed, or `failure` when it
 *  never carried data (refused with 503, or the client left first). Never rejects. */
export type ForwardResult = SpliceResult | { readonly failure: Error };

export async function forwardTunnel(
  tunnel: IncomingTunnel,
  opts: ForwardOptions = {},
): Promise<ForwardResult> {
  const to = opts.upstream ?? tunnel.target;
  let upstream: import('node:net').Socket;
  try {
    upstream = await dialTcp(to.ip, to.port, opts.connectTimeoutMs ?? 10_000, tunnel.signal);
  } catch (err) {
    // The client left while we were connecting: nothing to answer. Otherwise 503, or 500
    // for what is no connect failure (a bug).
    if (err instanceof DialError && err.code === 'DIAL_ABORTED') return { failure: err };
    const failure =
      err instanceof DialError
        ? new UpstreamFailedError(err.message, { cause: err })
        : new ServerInternalError(`forwarding failed: ${(err as Error).message}`, { cause: err });
    tunnel.refuse(failure);
    return { failure };
  }
  let stream: ReturnType<IncomingTunnel['accept']>;
  try {
    stream = tunnel.accept();
  } catch (err) {
    upstream.destroy();
    return { failure: err as Error };
  }
  return new Promise((resolve) => splice(upstream, stream, resolve));
}
