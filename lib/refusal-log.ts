// Warnings for refusals (of a client, a request, a connection), rate-limited per key (a peer
// and a reason): each kind of refusal from each peer is logged at warn, but a flood of them
// cannot flood the log. The first line that gets through after a quiet spell says how many
// were `suppressed`. Counting every refusal is the caller's business (metrics).
import type { Logger } from './logger.js';
import { TokenBuckets } from './token-bucket.js';

export interface RefusalLogOptions {
  /** Lines per key at once (default 10). */
  readonly burst?: number;
  /** Lines per key per minute after the burst (default 10). */
  readonly perMinute?: number;
  /** Keys remembered (least recently used dropped; default 10,000). */
  readonly maxKeys?: number;
  /** Clock in ms (tests). */
  readonly now?: () => number;
}

export class RefusalLog {
  readonly #logger: Logger;
  readonly #buckets: TokenBuckets;
  readonly #suppressed = new Map<string, number>();
  readonly #maxKeys: number;

  constructor(logger: Logger, opts: RefusalLogOptions = {}) {
    this.#logger = logger;
    this.#maxKeys = opts.maxKeys ?? 10_000;
    this.#buckets = new TokenBuckets({
      capacity: opts.burst ?? 10,
      refillPerSecond: (opts.perMinute ?? 10) / 60,
      maxKeys: this.#maxKeys,
      ...(opts.now ? { now: opts.now } : {}),
    });
  }

  /** Logs `fields` at warn unless `key` is over its rate (then counts it as suppressed). */
  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    if (!this.#buckets.take(key)) {
      if (this.#suppressed.size >= this.#maxKeys) this.#suppressed.clear();
      this.#suppressed.set(key, (this.#suppressed.get(key) ?? 0) + 1);
      return;
    }
    const suppressed = this.#suppressed.get(key);
    this.#suppressed.delete(key);
    this.#logger.warn(suppressed ? { ...fields, suppressed } : fields, msg);
  }
}
