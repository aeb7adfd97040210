// Every way the CA refuses a request: one class per failure with a stable code, and the
// one table that maps codes to HTTP statuses.
import { MtunError } from '../lib/errors.js';

export type CaErrorCode =
  | 'UNAUTHENTICATED'
  | 'BAD_REQUEST'
  | 'BAD_CSR'
  | 'BAD_CSR_SIGNATURE'
  | 'UNSUPPORTED_KEY'
  | 'BAD_SAN'
  | 'FOREIGN_TRUST_DOMAIN'
  | 'NODE_NOT_AUTHORIZED'
  | 'BODY_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  /** The client went away before its request was complete: nobody gets an answer. */
  | 'ABORTED'
  | 'INTERNAL';

export class CaError extends MtunError {
  declare readonly code: CaErrorCode;
  /** The identity the request asked for, when it got far enough to tell (for the audit). */
  readonly identity: string | undefined;
  constructor(
    code: CaErrorCode,
    message: string,
    options?: { cause?: unknown; identity?: string },
  ) {
    super(code, message, options);
    this.identity = options?.identity;
  }
}

export const CA_ERROR_STATUS: Readonly<Record<CaErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  BAD_REQUEST: 400,
  BAD_CSR: 400,
  BAD_CSR_SIGNATURE: 400,
  UNSUPPORTED_KEY: 400,
  BAD_SAN: 400,
  FOREIGN_TRUST_DOMAIN: 400,
  NODE_NOT_AUTHORIZED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  BODY_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  ABORTED: 499, // nginx's "client closed request"; never sent (there is no one to send it to)
  INTERNAL: 500,
};

/** The CA's JSON error body: `{"error": {"code", "message"}}`. */
export function errorBody(err: CaError): string {
  return JSON.stringify({ error: { code: err.code, message: err.message } });
}
