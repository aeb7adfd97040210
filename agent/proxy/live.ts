// Open inbound connections with what their decision was based on, so that a policy change
// can re-decide them: one that the new policy denies is closed (ztunnel does the same).
import type { Logger } from '../../lib/logger.js';
import type { Connection } from '../../policy/index.js';
import type { ConnectionRecord } from '../observe/record.js';
import type { MeshView } from '../state.js';
import { stillAllowed } from './inbound-decision.js';

/** An open inbound connection as a policy change sees it; an object the connection keeps
 *  anyway (local-pod.ts), so registering it costs no closure per connection. */
export interface Live {
  readonly connection: Connection;
  readonly record: ConnectionRecord;
  /** The policy now denies it: close it (a reset). */
  close(): void;
}

export class LiveInbound {
  readonly #open = new Set<Live>();

  get size(): number {
    return this.#open.size;
  }

  /** What is open now: the connection and its record's fields (for the config dump). */
  list(): { connection: Connection; record: ConnectionRecord }[] {
    return [...this.#open].map(({ connection, record }) => ({ connection, record }));
  }

  add(live: Live): void {
    this.#open.add(live);
  }

  delete(live: Live): void {
    this.#open.delete(live);
  }

  /** Closes every open connection the new view denies; returns how many. */
  recheck(view: MeshView, logger: Logger): number {
    let closed = 0;
    for (const live of [...this.#open]) {
      const decision = stillAllowed(view, live.connection);
      if (decision?.verdict === 'allow') continue;
      this.#open.delete(live);
      const reason = decision
        ? decision.reason
        : 'the destination is no longer a mesh pod on this node';
      live.record.fields.verdict = 'deny';
      live.record.fields.policy = decision?.policy ?? null;
      live.record.fail('DENY', `closed by a policy change: ${reason}`);
      logger.info(
        {
          src: live.connection.source.ip,
          dst: `${live.connection.destination.ip}:${live.connection.destination.port}`,
          policy: decision?.policy,
          reason,
        },
        'open connection closed: policy now denies it',
      );
      live.close();
      closed++;
    }
    return closed;
  }
}
