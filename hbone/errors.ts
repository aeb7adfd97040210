// Every way an HBONE tunnel can fail, one class per failure with a stable `code`, and the
// ONE table that maps codes to the HTTP status the server answers with and to Istio's
// `response_flags`. The server picks a status from the table, the client turns a status
// back into the same class, so both ends agree without repeating the mapping anywhere.
import { MtunError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { ErrorCode, H2Error } from './h2/frame.js';

type Options = { cause?: unknown };

/** The server's policy handler refused the tunnel (401). */
export class TunnelDeniedError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_DENIED', message, options);
  }
}

/** The server could not connect to the target (503). */
export class UpstreamFailedError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_UPSTREAM_FAILED', message, options);
  }
}

/** Malformed CONNECT: bad `:authority`, target not the dialed address (400). */
export class BadRequestError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_BAD_REQUEST', message, options);
  }
}

/** Anything but CONNECT (405). */
export class MethodNotAllowedError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_METHOD_NOT_ALLOWED', message, options);
  }
}

/** The server's handler threw: a bug on the server, not the client's fault (500). */
export class ServerInternalError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_INTERNAL', message, options);
  }
}

/** The server answered a status the protocol does not define. */
export class UnexpectedStatusError extends MtunError {
  readonly status: number;
  constructor(status: number, options?: Options) {
    super('HBONE_UNEXPECTED_STATUS', `server answered :status ${status}`, options);
    this.status = status;
  }
}

/** TLS failed: handshake error, untrusted or expired peer chain, no ALPN h2, or the peer
 *  closed the connection right after the handshake (how TLS 1.3 servers refuse a client
 *  certificate). */
export class TlsFailureError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_TLS_FAILURE', message, options);
  }
}

/** The peer's certificate chains to the bundle but names an identity we did not expect
 *  (secure naming), or is not a valid X.509-SVID. */
export class IdentityMismatchError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_IDENTITY_MISMATCH', message, options);
  }
}

/** No certificate is available for the identity we must present. */
export class IdentityUnavailableError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_IDENTITY_UNAVAILABLE', message, options);
  }
}

/** TCP connect failed, or the HTTP/2 connection or stream died before the answer. */
export class ConnectFailedError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_CONNECT_FAILED', message, options);
  }
}

export class TimeoutError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_TIMEOUT', message, options);
  }
}

/** The caller aborted open() through its AbortSignal. */
export class OpenAbortedError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_ABORTED', message, options);
  }
}

/** open() on a client that was closed. */
export class ClientClosedError extends MtunError {
  constructor(message: string, options?: Options) {
    super('HBONE_CLIENT_CLOSED', message, options);
  }
}

type ErrorClass = new (message: string, options?: Options) => MtunError;

interface Row {
  /** The class the client raises for the status (only rows with a status need one). */
  readonly error?: ErrorClass;
  /** What the server answers for it; undefined for failures that never reach a status. */
  readonly status?: number;
  /** Istio `response_flags` label value (DESIGN.md §8). */
  readonly responseFlag: string;
}

/** THE mapping. Keyed by code so a log line or metric label can be looked up too. */
export const HBONE_ERRORS: Readonly<Record<string, Row>> = Object.freeze({
  HBONE_DENIED: { error: TunnelDeniedError, status: 401, responseFlag: 'DENY' },
  HBONE_UPSTREAM_FAILED: { error: UpstreamFailedError, status: 503, responseFlag: 'CONNECT' },
  HBONE_BAD_REQUEST: { error: BadRequestError, status: 400, responseFlag: 'CONNECT' },
  HBONE_METHOD_NOT_ALLOWED: { error: MethodNotAllowedError, status: 405, responseFlag: 'CONNECT' },
  HBONE_INTERNAL: { error: ServerInternalError, status: 500, responseFlag: 'CONNECT' },
  HBONE_UNEXPECTED_STATUS: { responseFlag: 'CONNECT' },
  HBONE_TLS_FAILURE: { error: TlsFailureError, responseFlag: 'TLS_FAILURE' },
  HBONE_IDENTITY_MISMATCH: { error: IdentityMismatchError, responseFlag: 'TLS_FAILURE' },
  HBONE_IDENTITY_UNAVAILABLE: { error: IdentityUnavailableError, responseFlag: 'IDENTITY_ERROR' },
  HBONE_CONNECT_FAILED: { error: ConnectFailedError, responseFlag: 'CONNECT' },
  HBONE_TIMEOUT: { error: TimeoutError, responseFlag: 'CONNECT' },
  HBONE_ABORTED: { error: OpenAbortedError, responseFlag: 'CONNECT' },
  HBONE_CLIENT_CLOSED: { error: ClientClosedError, responseFlag: 'CONNECT' },
});

function rowOf(err: unknown): Row | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? HBONE_ERRORS[code] : undefined;
}

/** The status the server answers for a failure (500 for anything not in the table). */
export function statusOf(err: unknown): number {
  return rowOf(err)?.status ?? 500;
}

export function responseFlagOf(err: unknown): string {
  return rowOf(err)?.responseFlag ?? 'CONNECT';
}

const BY_STATUS = new Map<number, ErrorClass>(
  Object.values(HBONE_ERRORS)
    .filter((r) => r.status !== undefined && r.error !== undefined)
    .map((r) => [r.status!, r.error!]),
);

/** The client's view of a non-200 answer. */
export function errorForStatus(status: number, target: string): MtunError {
  const cls = BY_STATUS.get(status);
  return cls
    ? new cls(`CONNECT ${target}: server answered ${status}`)
    : new UnexpectedStatusError(status);
}

/** A peer's protocol violation is the peer's business (debug); a bug of ours is not. */
export function logSessionError(log: Logger, err: Error): void {
  if (err instanceof H2Error && err.h2code === ErrorCode.INTERNAL_ERROR)
    log.error({ err: err.message, cause: String(err.cause) }, 'hbone session failed on a bug');
  else log.debug({ err: err.message }, 'hbone session error');
}
