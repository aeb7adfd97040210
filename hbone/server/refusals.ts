// The HBONE server's refusals (connections and CONNECTs): each logged at warn with its
// reason and peer, rate-limited per (code, peer IP) by lib/refusal-log.ts, and counted by
// code for the agent's metrics and stats().
import type { Logger } from '../../lib/logger.js';
import { RefusalLog } from '../../lib/refusal-log.js';

export class Refusals {
  readonly #log: RefusalLog;
  readonly #counts = new Map<string, number>();

  constructor(logger: Logger) {
    this.#log = new RefusalLog(logger);
  }

  /** `fields.from` is the peer's ip:port; the rate limit is per IP, not per connection. */
  refuse(
    code: string,
    reason: string,
    fields: { readonly from?: string } & Record<string, unknown>,
    message = 'hbone connection refused',
  ): void {
    this.#counts.set(code, (this.#counts.get(code) ?? 0) + 1);
    const ip = fields.from?.replace(/:\d+$/, '') ?? '';
    this.#log.warn(`${code}|${ip}`, { ...fields, code, reason }, message);
  }

  /** Refusals so far, by code. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }
}
