// Byte counters that move while connections are open, at no cost to the data path: every
// open connection can report how many bytes its sockets have moved so far (socket
// bytesRead/bytesWritten, which Node keeps anyway), and this registry publishes what moved
// since the last time at every scrape (the counters' collect()) and every few seconds. At
// close the record publishes the rest, so the sum is exactly the connection's total.
// Bounded: past `max` open connections, new ones are counted at close only.

/** An open connection that can publish its bytes since the last call. */
export interface LiveConnection {
  publishBytes(): void;
}

export class LiveBytes {
  readonly #open = new Set<LiveConnection>();
  readonly #max: number;
  readonly #everyMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(everyMs: number, max = 100_000) {
    // 100,000: ten times the benchmark's 10,000 idle connections; a Set entry each.
    this.#everyMs = everyMs;
    this.#max = max;
  }

  get size(): number {
    return this.#open.size;
  }

  add(c: LiveConnection): void {
    if (this.#open.size >= this.#max) return;
    this.#open.add(c);
    if (!this.#timer && this.#everyMs > 0) {
      this.#timer = setInterval(() => this.publish(), this.#everyMs);
      this.#timer.unref();
    }
  }

  delete(c: LiveConnection): void {
    if (this.#open.delete(c) && this.#open.size === 0) this.#stopTimer();
  }

  publish(): void {
    for (const c of this.#open) c.publishBytes();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  close(): void {
    this.#stopTimer();
    this.#open.clear();
  }
}
