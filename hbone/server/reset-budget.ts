// A token bucket for streams the client cancels before the server answered them: each
// costs the server a handler call and perhaps an upstream connect, for nothing. Legitimate
// clients cancel rarely (open timeouts, apps that give up); a rapid-reset flood drains
// the bucket at once.
export class ResetBudget {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token; false when the budget is exhausted. */
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
