// Reconnect delays: exponential from `initialMs`, doubling to `maxMs`, each with ±`jitter`
// so that every agent of a cluster does not reconnect to the API server in the same instant.

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  /** Fraction, 0.2 = ±20 %. */
  readonly jitter: number;
}

export const WATCH_BACKOFF: BackoffOptions = Object.freeze({
  initialMs: 500,
  maxMs: 30_000,
  jitter: 0.2,
});

/** Delay before retry number `attempt` (1-based); `random` in [0, 1). */
export function backoffMs(attempt: number, opts: BackoffOptions, random: () => number): number {
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  const spread = base * opts.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(opts.maxMs * (1 + opts.jitter), base + spread)));
}
