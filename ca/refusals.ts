// How the CA reports what it refuses: every refusal counted by code
// (mtun_ca_requests_refused_total{code}) and logged once at warn with its reason and peer,
// rate-limited per peer and code so that a flood cannot flood the log (the next line that
// gets through says how many were suppressed). A client that went away is not refused: it
// is counted (ABORTED) and logged at debug, without a stack (issue 12, item 8: an aborted
// request logged an error-level stack trace and counted as INTERNAL).
//
// Refusals below HTTP (malformed requests, timeouts, failed TLS handshakes) never reach the
// request handler; `clientError` and `tlsClientError` report them here too.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../lib/logger.js';
import { RefusalLog } from '../lib/refusal-log.js';
import type { CaErrorCode } from './errors.js';
import type { CaMetrics } from './metrics.js';

/** Refusals of a connection rather than of a request: answered by Node's HTTP/TLS layer. */
export type ConnectionRefusal =
  | 'BAD_HTTP'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'TLS_HANDSHAKE';
export type RefusalCode = CaErrorCode | ConnectionRefusal;

/** Error codes of a client that went away (not a refusal, nothing to tell it); llhttp says
 *  HPE_INVALID_EOF_STATE when the connection ends inside a request. */
const GONE = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'HPE_INVALID_EOF_STATE',
]);

export class CaRefusals {
  readonly #metrics: CaMetrics;
  readonly #logger: Logger;
  /** Per peer and code: 10 lines at once, then 10 a minute. */
  readonly #warnings: RefusalLog;
  /** Connections whose client is known to have left: Node reports one departure up to three
   *  times (the request's 'error', then `clientError` for the EOF and the reset). */
  readonly #gone = new WeakSet<object>();

  constructor(metrics: CaMetrics, logger: Logger) {
    this.#metrics = metrics;
    this.#logger = logger;
    this.#warnings = new RefusalLog(logger, { burst: 10, perMinute: 10 });
  }

  /** Counts and logs one refusal. `fields` carries the audit facts (remote, node, identity);
   *  `socket` lets a departure (ABORTED) of one connection count once. */
  record(
    code: RefusalCode,
    fields: Record<string, unknown>,
    reason: string,
    msg: string,
    socket?: object,
  ): void {
    if (code === 'ABORTED' && socket) {
      if (this.#gone.has(socket)) return;
      this.#gone.add(socket);
    }
    this.#metrics.refused.inc({ code });
    const line = { ...fields, outcome: code === 'ABORTED' ? 'aborted' : 'refused', code, reason };
    if (code === 'ABORTED') return void this.#logger.debug(line, msg);
    this.#warnings.warn(`${String(fields['remote'])}|${code}`, line, msg);
  }

  /** The HTTP server's `clientError`: a request Node could not parse or that timed out.
   *  Answers as Node's default handler does (400, 431 or 408, then close). */
  onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const remote = (socket as { remoteAddress?: string }).remoteAddress;
    const code: RefusalCode = GONE.has(err.code ?? '')
      ? 'ABORTED'
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? 'HEADERS_TOO_LARGE'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'REQUEST_TIMEOUT'
          : 'BAD_HTTP';
    this.record(code, { audit: 'ca', remote }, httpReason(err), 'CA request refused', socket);
    const status = { HEADERS_TOO_LARGE: 431, REQUEST_TIMEOUT: 408 }[code as string] ?? 400;
    const sent = (socket as { bytesWritten?: number }).bytesWritten ?? 0;
    if (code !== 'ABORTED' && socket.writable && sent === 0)
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
  }

  /** The TLS server's `tlsClientError`: a handshake that failed (scanners, wrong protocol,
   *  a client that left). Counted; a client that left is only logged at debug. */
  onTlsClientError(err: NodeJS.ErrnoException, socket: { remoteAddress?: string }): void {
    const gone = GONE.has(err.code ?? '') || /socket hang up/.test(err.message);
    this.record(
      gone ? 'ABORTED' : 'TLS_HANDSHAKE',
      { audit: 'ca', remote: socket.remoteAddress },
      `TLS handshake: ${err.code ? `${err.code}: ` : ''}${err.message.split('\n')[0]}`,
      'CA TLS handshake failed',
      socket,
    );
  }
}

function httpReason(err: NodeJS.ErrnoException): string {
  const why =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request not complete in time' : err.message;
  return `HTTP: ${err.code ? `${err.code}: ` : ''}${why}`;
}
