// Refusals, each logged at warn with its reason and peer and counted by code, without
// letting a flood flood the log: per code, a burst of lines and then at most one per
// second, the next line saying how many were left out. Counts are exact.
import type { Logger } from './logger.js';
import { TokenBuckets } from './token-bucket.js';

export class RefusalLog {
  readonly #counts = new Map<string, number>();
  readonly #suppressed = new Map<string, number>();
  readonly #buckets: TokenBuckets;

  constructor(
    private readonly log: Logger,
    private readonly message: string,
    opts: { burst?: number; perSecond?: number } = {},
  ) {
    this.#buckets = new TokenBuckets({
      capacity: opts.burst ?? 10,
      refillPerSecond: opts.perSecond ?? 1,
      maxKeys: 256,
    });
  }

  refuse(
    code: string,
    reason: string,
    fields: Record<string, unknown> = {},
    message = this.message,
  ): void {
    this.#counts.set(code, (this.#counts.get(code) ?? 0) + 1);
    if (!this.#buckets.take(code)) {
      this.#suppressed.set(code, (this.#suppressed.get(code) ?? 0) + 1);
      return;
    }
    const suppressed = this.#suppressed.get(code);
    this.#suppressed.delete(code);
    this.log.warn(
      { ...fields, code, reason, ...(suppressed ? { suppressedSinceLast: suppressed } : {}) },
      message,
    );
  }

  /** Refusals so far, by code. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }
}
