// Proxy to a local pod: the one path every connection into a mesh pod on this node takes
// once it has been decided (inbound.ts for HBONE, inbound-plaintext.ts, and outbound.ts's
// same-node short cut): refuse what the decision denies, dial the pod, answer the client,
// carry bytes both ways. While it is open the connection is live: a policy change that
// denies it closes it (live.ts), even while the pod is still being dialed.
import type { Socket } from 'node:net';
import { dialTcp } from '../../lib/dial.js';
import type { AgentContext } from '../context.js';
import type { ConnectionRecord, Transfer } from '../observe/record.js';
import { ConnectionFailure } from '../outcome.js';
import type { Downstream } from './downstream.js';
import type { InboundVerdict } from './inbound-decision.js';

export async function toLocalPod(
  ctx: AgentContext,
  record: ConnectionRecord,
  down: Downstream,
  verdict: InboundVerdict,
  target: { readonly ip: string; readonly port: number },
): Promise<Transfer> {
  if (!verdict.allow) throw new ConnectionFailure(verdict.code, verdict.reason);
  let upstream: Socket | undefined;
  let cut = false;
  const forget = ctx.live.add(verdict.connection, record, () => {
    cut = true;
    upstream?.resetAndDestroy();
  });
  try {
    upstream = await dialTcp(target.ip, target.port, ctx.config.connectTimeoutMs, down.signal);
    if (cut) {
      upstream.destroy();
      throw new ConnectionFailure('DENY', 'closed by a policy change while connecting');
    }
    record.established();
    return await down.carry(record, upstream);
  } finally {
    forget();
  }
}
