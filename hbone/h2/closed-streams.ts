// The streams a session closed lately, and whether it reset them itself, oldest first and
// bounded: frames on a stream we reset are ignored (§5.1: the peer may not have seen the
// RST_STREAM yet), DATA or HEADERS on one closed otherwise is STREAM_CLOSED (§6.1, §5.1),
// and HEADERS with an id the peer never used is an unexpected stream id (§5.1.1).

/** How many closed streams are remembered one by one. */
const REMEMBERED = 256;

export class ClosedStreams {
  readonly #lately = new Map<number, boolean>();
  #forgottenUpTo = 0;

  /** Stream `id` closed; `resetByUs` once we sent RST_STREAM for it (then frames on it are
   *  ignored, so a peer that keeps sending gets one answer, not one per frame). Past 256
   *  the oldest are forgotten; ids up to the highest forgotten one then count as reset by
   *  us (late frames ignored rather than the connection failed). */
  remember(id: number, resetByUs: boolean): void {
    if (resetByUs || !this.#lately.has(id)) this.#lately.set(id, resetByUs);
    if (this.#lately.size > REMEMBERED) {
      const oldest = this.#lately.keys().next().value as number;
      this.#lately.delete(oldest);
      if (oldest > this.#forgottenUpTo) this.#forgottenUpTo = oldest;
    }
  }

  /** Whether we reset stream `id` (true), it closed otherwise (false), or we do not know. */
  resetByUs(id: number): boolean | undefined {
    return this.#lately.get(id) ?? (id <= this.#forgottenUpTo ? true : undefined);
  }
}
