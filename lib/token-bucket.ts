// Per-key token buckets (refill continuously, burst up to capacity). The number of keys is
// bounded: the least recently used bucket is dropped when full, which only ever forgives.
export interface TokenBucketOptions {
  readonly capacity: number;
  readonly refillPerSecond: number;
  readonly maxKeys?: number;
  readonly now?: () => number; // ms
}

export class TokenBuckets {
  readonly #opts: Required<TokenBucketOptions>;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(opts: TokenBucketOptions) {
    this.#opts = { maxKeys: 10_000, now: () => performance.now(), ...opts };
  }

  /** Takes one token for `key`; false when the key is over its rate. */
  take(key: string): boolean {
    const now = this.#opts.now();
    const b = this.#buckets.get(key) ?? { tokens: this.#opts.capacity, at: now };
    this.#buckets.delete(key); // re-insert: Map order is our LRU order
    b.tokens = Math.min(
      this.#opts.capacity,
      b.tokens + ((now - b.at) / 1000) * this.#opts.refillPerSecond,
    );
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.#opts.maxKeys) {
      this.#buckets.delete(this.#buckets.keys().next().value as string);
    }
    return ok;
  }
}
