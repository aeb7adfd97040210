// How a proxied connection can fail, and THE table that maps each failure to what every
// observer sees: the access log's `error_code`, Istio's `response_flags` (the metric label,
// ztunnel's flags: src/proxy/metrics.rs), the HBONE status the inbound side answers with,
// and the SOCKS5 reply. hbone/errors.ts does the same for the tunnel protocol; this table
// extends it to the agent. A failure is thrown as a ConnectionFailure from anywhere in a
// connection's path and recorded once, where the connection's record is closed.
import {
  ClientClosedError,
  ConnectFailedError,
  errorForStatus,
  IdentityMismatchError,
  IdentityUnavailableError,
  OpenAbortedError,
  TimeoutError,
  TlsFailureError,
  TunnelDeniedError,
  type TunnelRefusal,
  UpstreamFailedError,
} from '../hbone/index.js';
import { DialError } from '../lib/dial.js';
import { MtunError } from '../lib/errors.js';
import { REPLY } from './proxy/socks5-protocol.js';

interface Row {
  /** Istio's `response_flags`: ztunnel's failure flags; any other failure is CONNECT, as
   *  ztunnel's extract_failure_reason defaults. */
  readonly responseFlag: 'DENY' | 'CONNECT' | 'TLS_FAILURE' | 'IDENTITY_ERROR';
  /** What inbound HBONE answers (401 deny, 503 upstream down, 500 anything else). */
  readonly status: 401 | 503 | 500;
  readonly socksReply: number;
}

export const FAILURES = Object.freeze({
  /** A policy (AuthorizationPolicy, PeerAuthentication STRICT) denied it. */
  DENY: { responseFlag: 'DENY', status: 401, socksReply: REPLY.notAllowed },
  /** The destination is not a mesh pod on this node (inbound), so no policy can allow it. */
  NOT_LOCAL: { responseFlag: 'CONNECT', status: 401, socksReply: REPLY.notAllowed },
  /** The upstream refused or did not answer the TCP connect, or the peer agent's did (503). */
  CONNECT: { responseFlag: 'CONNECT', status: 503, socksReply: REPLY.connectionRefused },
  /** The peer agent could not be reached or did not answer in time. */
  UNREACHABLE: { responseFlag: 'CONNECT', status: 503, socksReply: REPLY.hostUnreachable },
  /** Either side reset, or the client went away before the answer. */
  CONNECTION_RESET: { responseFlag: 'CONNECT', status: 500, socksReply: REPLY.generalFailure },
  /** A connection to the agent itself (not redirected): a loop. */
  SELF_CALL: { responseFlag: 'CONNECT', status: 500, socksReply: REPLY.notAllowed },
  UNKNOWN_HOST: { responseFlag: 'CONNECT', status: 500, socksReply: REPLY.hostUnreachable },
  NO_SERVICE_PORT: { responseFlag: 'CONNECT', status: 500, socksReply: REPLY.hostUnreachable },
  NO_HEALTHY_UPSTREAM: { responseFlag: 'CONNECT', status: 500, socksReply: REPLY.hostUnreachable },
  /** A SOCKS5 client that is no pod of this node. */
  UNKNOWN_SOURCE: { responseFlag: 'CONNECT', status: 500, socksReply: REPLY.notAllowed },
  /** The source has no identity to present (no mesh pod), or ours is unavailable. */
  IDENTITY_ERROR: { responseFlag: 'IDENTITY_ERROR', status: 500, socksReply: REPLY.notAllowed },
  /** The peer agent's TLS failed or it is not who the mesh says it must be. */
  TLS_FAILURE: { responseFlag: 'TLS_FAILURE', status: 500, socksReply: REPLY.notAllowed },
  /** A bug or an answer the protocol does not define. */
  INTERNAL: { responseFlag: 'CONNECT', status: 500, socksReply: REPLY.generalFailure },
} satisfies Record<string, Row>) as Readonly<Record<FailureCode, Row>>;

export type FailureCode =
  | 'DENY'
  | 'NOT_LOCAL'
  | 'CONNECT'
  | 'UNREACHABLE'
  | 'CONNECTION_RESET'
  | 'SELF_CALL'
  | 'UNKNOWN_HOST'
  | 'NO_SERVICE_PORT'
  | 'NO_HEALTHY_UPSTREAM'
  | 'UNKNOWN_SOURCE'
  | 'IDENTITY_ERROR'
  | 'TLS_FAILURE'
  | 'INTERNAL';

/** A connection ends in this failure: thrown in its path, recorded where its record closes. */
export class ConnectionFailure extends MtunError {
  declare readonly code: FailureCode;
  constructor(code: FailureCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** `response_flags` for a record's error code ('-' when it did not fail). */
export function responseFlagOf(code: string | undefined): string {
  if (code === undefined) return '-';
  return (FAILURES as Record<string, Row | undefined>)[code]?.responseFlag ?? 'CONNECT';
}

export function socksReplyOf(f: ConnectionFailure): number {
  return FAILURES[f.code].socksReply;
}

/** What inbound HBONE answers for a failure before the tunnel was accepted. */
export function tunnelRefusalOf(f: ConnectionFailure, target: string): TunnelRefusal {
  return errorForStatus(FAILURES[f.code].status, target) as TunnelRefusal;
}

/** Any error from a connection's path as its failure: ours as they are, the dial's and the
 *  HBONE client's by class; anything else is a bug (INTERNAL). */
export function failureOf(err: unknown): ConnectionFailure {
  if (err instanceof ConnectionFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  const as = (code: FailureCode) => new ConnectionFailure(code, message, { cause: err });
  if (err instanceof DialError)
    return as(err.code === 'DIAL_ABORTED' ? 'CONNECTION_RESET' : 'CONNECT');
  if (err instanceof TunnelDeniedError) return as('DENY');
  if (err instanceof UpstreamFailedError) return as('CONNECT');
  if (err instanceof ConnectFailedError || err instanceof TimeoutError) return as('UNREACHABLE');
  if (err instanceof TlsFailureError || err instanceof IdentityMismatchError)
    return as('TLS_FAILURE');
  if (err instanceof IdentityUnavailableError) return as('IDENTITY_ERROR');
  if (err instanceof OpenAbortedError) return as('CONNECTION_RESET');
  if (err instanceof ClientClosedError) return as('CONNECTION_RESET'); // the agent is stopping
  return as('INTERNAL');
}
