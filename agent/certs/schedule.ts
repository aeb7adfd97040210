// When to renew a certificate and how long to wait after a failed fetch. Pure functions
// (linkerd2-proxy's `refresh_in` idea), so that the timing rules are tested by tables.

/** Renew at half of the lifetime, moved by up to ±`jitter` of the lifetime so that the
 *  certificates of a node (and of all nodes started together) do not renew in lockstep.
 *  The lifetime counts from when the certificate was received, not from its notBefore:
 *  the CA backdates notBefore for clock skew, and counting from there would renew a short
 *  certificate at once, forever. `random` is in [0, 1). Returns a delay from `nowMs`. */
export function refreshDelayMs(
  receivedAtMs: number,
  expiresAtMs: number,
  nowMs: number,
  random: number,
  jitter = 0.05,
): number {
  const lifetime = Math.max(0, expiresAtMs - receivedAtMs);
  const at = receivedAtMs + lifetime * (0.5 + jitter * (2 * random - 1));
  return Math.max(0, Math.round(at - nowMs));
}

const BACKOFF_INITIAL_MS = 1_000;
export const BACKOFF_MAX_MS = 150_000;

/** ztunnel's retry rule: about 1 s, doubling per failed attempt, ±20 %, capped at 150 s.
 *  `attempt` counts failures so far (1 for the first retry). */
export function backoffDelayMs(attempt: number, random: number): number {
  const base = Math.min(BACKOFF_INITIAL_MS * 2 ** Math.max(0, attempt - 1), BACKOFF_MAX_MS);
  return Math.round(Math.min(base * (0.8 + 0.4 * random), BACKOFF_MAX_MS * 1.2));
}

/** The shortest wait between two tries while the certificate is still valid. */
export const RETRY_MIN_MS = 1_000;
/** The longest wait between two tries once there is no valid certificate (expired, or none
 *  yet): every few seconds, so that a returning CA is noticed within seconds. */
export const RETRY_WITHOUT_CERT_MS = 3_000;

/** The wait after a failed fetch. Backoff alone overran the certificate's life (issue 12,
 *  item 6: a failure 1.3 s before expiry scheduled the next try 68 s later; the CA came back
 *  2 s after and the identity stayed expired for 67-73 s). So the backoff is bounded by the
 *  time left: while the certificate is valid, by half of what is left (never under
 *  RETRY_MIN_MS), so tries get closer as expiry nears and one lands before it; with no valid
 *  certificate, by RETRY_WITHOUT_CERT_MS (±20 %). Far from expiry it is ztunnel's backoff.
 *  `expiresAtMs` is undefined when there has never been a certificate. */
export function retryDelayMs(
  attempt: number,
  random: number,
  expiresAtMs: number | undefined,
  nowMs: number,
): number {
  const backoff = backoffDelayMs(attempt, random);
  const left = expiresAtMs === undefined ? 0 : expiresAtMs - nowMs;
  const bound =
    left > 0
      ? Math.max(RETRY_MIN_MS, Math.round(left / 2))
      : Math.round(RETRY_WITHOUT_CERT_MS * (0.8 + 0.4 * random));
  return Math.min(backoff, bound);
}
