// Proxy to a local pod: the one path every connection into a mesh pod on this node takes
// once it has been decided (inbound.ts for HBONE, inbound-plaintext.ts, and outbound.ts's
// same-node short cut): refuse what the decision denies, dial the pod, answer the client,
// carry bytes both ways. While it is open the connection is live: a policy change that
// denies it closes it (live.ts), even while the pod is still being dialed.
import type { Socket } from 'node:net';
import type { SocketAddr } from '../../lib/address.js';
import { dialTcp } from '../../lib/dial.js';
import type { Connection } from '../../policy/index.js';
import type { AgentContext } from '../context.js';
import type { ConnectionRecord, PathResult } from '../observe/record.js';
import { ConnectionFailure } from '../outcome.js';
import type { Downstream, Releasable } from './downstream.js';
import type { InboundVerdict } from './inbound-decision.js';
import type { Live } from './live.js';

export function toLocalPod(
  ctx: AgentContext,
  record: ConnectionRecord,
  down: Downstream,
  verdict: InboundVerdict,
  target: SocketAddr,
): Promise<PathResult> {
  if (!verdict.allow) return Promise.reject(new ConnectionFailure(verdict.code, verdict.reason));
  const pod = new PodConnection(ctx, verdict.connection, record);
  ctx.live.add(pod);
  // A chain, not an async function: nothing of this frame is suspended for as long as the
  // connection is open (a suspended async frame per connection is ~0.5 KiB of heap).
  return dialTcp(target.ip, target.port, ctx.config.connectTimeoutMs, down.signal).then(
    (socket) => pod.dialed(socket, down),
    (err: unknown) => pod.failed(err),
  );
}

const deniedWhileConnecting = () =>
  new ConnectionFailure('DENY', 'closed by a policy change while connecting');

/** The connection to the pod while it is live: what a policy change closes, and what the
 *  carrying releases when it ends. One object per connection instead of closures. */
class PodConnection implements Live, Releasable {
  #upstream: Socket | undefined;
  #cut = false;

  constructor(
    readonly ctx: AgentContext,
    readonly connection: Connection,
    readonly record: ConnectionRecord,
  ) {}

  close(): void {
    this.#cut = true;
    this.#upstream?.resetAndDestroy();
  }

  release(): void {
    this.ctx.live.delete(this);
  }

  dialed(socket: Socket, down: Downstream): PathResult {
    this.#upstream = socket;
    if (this.#cut) {
      this.release();
      socket.destroy();
      throw deniedWhileConnecting();
    }
    this.record.established();
    return down.carry(this.record, socket, this);
  }

  /** Denied by a policy change while connecting: the denial, not the dial's failure. */
  failed(err: unknown): never {
    this.release();
    throw this.#cut ? deniedWhileConnecting() : err;
  }
}
