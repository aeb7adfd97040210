// Token buckets (refill continuously, burst up to capacity): one bucket, and per-key
// buckets whose number of keys is bounded: the least recently used bucket is dropped when
// full, which only ever forgives.

/** One bucket; starts full. Times are in ms (performance.now() unless given). */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    readonly capacity: number,
    readonly refillPerSecond: number,
    now = performance.now(),
  ) {
    this.#tokens = capacity;
    this.#at = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now = performance.now()): boolean {
    this.#tokens = Math.min(
      this.capacity,
      this.#tokens + ((now - this.#at) / 1000) * this.refillPerSecond,
    );
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export interface TokenBucketOptions {
  readonly capacity: number;
  readonly refillPerSecond: number;
  readonly maxKeys?: number;
  readonly now?: () => number; // ms
}

export class TokenBuckets {
  readonly #opts: Required<TokenBucketOptions>;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(opts: TokenBucketOptions) {
    this.#opts = { maxKeys: 10_000, now: () => performance.now(), ...opts };
  }

  /** Takes one token for `key`; false when the key is over its rate. */
  take(key: string): boolean {
    const now = this.#opts.now();
    const b =
      this.#buckets.get(key) ??
      new TokenBucket(this.#opts.capacity, this.#opts.refillPerSecond, now);
    this.#buckets.delete(key); // re-insert: Map order is our LRU order
    const ok = b.take(now);
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.#opts.maxKeys) {
      this.#buckets.delete(this.#buckets.keys().next().value as string);
    }
    return ok;
  }
}
