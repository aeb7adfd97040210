// The one draining primitive every listener shares: track what is open, and on shutdown
// let it finish for a grace period, then close what is left.
export interface Closable {
  /** Ask for a graceful end (e.g. GOAWAY); optional. */
  drain?(): void;
  /** Close now. */
  destroy(): void;
}

export class Drain {
  readonly #open = new Set<Closable>();
  #draining = false;
  #idle: (() => void) | undefined;

  get draining(): boolean {
    return this.#draining;
  }

  get size(): number {
    return this.#open.size;
  }

  /** Registers something open; returns the function that marks it closed. */
  track(c: Closable): () => void {
    this.add(c);
    return () => this.delete(c);
  }

  /** Registers something open (without a closure to keep: `delete` it when closed). */
  add(c: Closable): void {
    this.#open.add(c);
    if (this.#draining) c.drain?.();
  }

  delete(c: Closable): void {
    this.#open.delete(c);
    if (this.#open.size === 0) this.#idle?.();
  }

  /** Asks everything to finish; after `graceMs` destroys the rest. Resolves when all is
   *  closed. Returns how many had to be destroyed. */
  async drain(graceMs: number): Promise<number> {
    this.#draining = true;
    for (const c of this.#open) c.drain?.();
    if (this.#open.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.#idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const left = [...this.#open];
    for (const c of left) c.destroy();
    this.#open.clear();
    return left.length;
  }
}
