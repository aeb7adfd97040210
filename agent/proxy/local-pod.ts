// Proxy to a local pod: the one path every connection into a mesh pod on this node takes
// once it has been decided (inbound.ts for HBONE, inbound-plaintext.ts, and outbound.ts's
// same-node short cut): refuse what the decision denies, dial the pod, answer the client,
// carry bytes both ways. While it is open the connection is live: a policy change that
// denies it closes it (live.ts), even while the pod is still being dialed.
import type { Socket } from 'node:net';
import type { SocketAddr } from '../../lib/address.js';
import { dialTcp } from '../../lib/dial.js';
import type { AgentContext } from '../context.js';
import type { ConnectionRecord, Transfer } from '../observe/record.js';
import { ConnectionFailure } from '../outcome.js';
import type { Downstream } from './downstream.js';
import type { InboundVerdict } from './inbound-decision.js';

export function toLocalPod(
  ctx: AgentContext,
  record: ConnectionRecord,
  down: Downstream,
  verdict: InboundVerdict,
  target: SocketAddr,
): Promise<Transfer> {
  if (!verdict.allow) return Promise.reject(new ConnectionFailure(verdict.code, verdict.reason));
  let upstream: Socket | undefined;
  let cut = false;
  const forget = ctx.live.add(verdict.connection, record, () => {
    cut = true;
    upstream?.resetAndDestroy();
  });
  // A chain, not an async function: nothing of this frame is suspended for as long as the
  // connection is open (a suspended async frame per connection is ~0.5 KiB of heap).
  return dialTcp(target.ip, target.port, ctx.config.connectTimeoutMs, down.signal).then(
    (socket) => {
      upstream = socket;
      if (cut) {
        forget();
        socket.destroy();
        throw new ConnectionFailure('DENY', 'closed by a policy change while connecting');
      }
      record.established();
      return down.carry(record, socket, forget);
    },
    (err: unknown) => {
      forget();
      // Denied by a policy change while connecting: the denial, not the dial's failure.
      throw cut ? new ConnectionFailure('DENY', 'closed by a policy change while connecting') : err;
    },
  );
}
