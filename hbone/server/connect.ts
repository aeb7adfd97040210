// One CONNECT stream on the server: checked against the protocol (method, header size,
// `:authority` an ip:port and the address the client dialed), then handed over as an
// IncomingTunnel, like ztunnel's h2 server hands its inbound the request (src/proxy/h2/
// server.rs → inbound.rs serve_connect). The server never decides and never dials: whoever
// takes the tunnel refuses it with a typed error or accepts it, which answers 200 and gives
// the byte stream. The answer is sent only then, so a caller that dials first answers 200
// only once its upstream is connected (ztunnel), and the client's open() fails fast and
// typed (503) when the target is down.
import type { SpiffeId } from '../../identity/spiffe-id.js';
import { errorMessage } from '../../lib/errors.js';
import { ignoreError } from '../../lib/ignore.js';
import type { Logger } from '../../lib/logger.js';
import { formatSocketAddr, parseSocketAddr, type SocketAddr } from '../address.js';
import {
  BadRequestError,
  ConnectFailedError,
  MethodNotAllowedError,
  ServerInternalError,
  statusOf,
  type TunnelDeniedError,
  type UpstreamFailedError,
} from '../errors.js';
import type { HeaderMap } from '../h2/fields.js';
import type { H2Stream } from '../h2/stream.js';
import { parseMetadata, type TunnelMetadata } from '../headers.js';
import type { Refusals } from './refusals.js';

/** What a tunnel may be refused with: each has its status in hbone/errors.ts. */
export type TunnelRefusal = TunnelDeniedError | UpstreamFailedError | ServerInternalError;

/** A CONNECT that passed the protocol checks, waiting for its answer. */
export interface IncomingTunnel {
  readonly peerIdentity: SpiffeId;
  readonly peerAddress: SocketAddr;
  /** The identity whose certificate this server presented. */
  readonly localIdentity: SpiffeId;
  /** The `:authority` of the CONNECT. */
  readonly target: SocketAddr;
  /** The request's metadata headers; read them before answering: an answered tunnel lets
   *  them go (an open tunnel keeps only what it needs). */
  readonly metadata: TunnelMetadata;
  /** Aborted when the client cancels the stream (or its connection dies) before the answer:
   *  whatever is being prepared for it (an upstream dial) should stop. */
  readonly signal: AbortSignal;
  /** Answers with the refusal's status and ends the stream. A no-op once answered or gone. */
  refuse(err: TunnelRefusal): void;
  /** Answers 200 and returns the tunnel's byte stream (hbone/splice.ts joins it to a
   *  socket). Throws ConnectFailedError when the client is already gone, and when called
   *  a second time. */
  accept(): H2Stream;
}

/** Receives each tunnel. A throw or rejection before the answer is answered 500. */
export type TunnelSink = (tunnel: IncomingTunnel) => void | Promise<void>;

/** What the session knows about its peer once the TLS handshake was accepted. */
export interface PeerInfo {
  readonly peerIdentity: SpiffeId;
  readonly peerAddress: SocketAddr;
  readonly localIdentity: SpiffeId;
  /** The IP the client dialed (SNI or captured destination); `:authority` must match it. */
  readonly dialedIp: string | undefined;
}

export interface StreamContext {
  readonly onTunnel: TunnelSink;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, as RFC 9113 §6.5.2 counts it (name + value + 32): the
   *  engine's decoder only bounds a header block at 4 x this (h2/session.ts), the exact
   *  limit is a 400 here. */
  readonly maxHeaderListBytes: number;
  readonly log: Logger;
  /** Protocol refusals (400, 405, 500) are logged here at warn, rate-limited; a deny (401)
   *  or a failed upstream (503) is the taker's to record, and stays at debug here. */
  readonly refusals: Refusals;
  /** The client reset the stream before we answered: rapid-reset accounting. */
  readonly onEarlyReset: () => void;
  /** An accepted tunnel opened. */
  readonly onAccepted: () => void;
  /** An accepted tunnel closed: a 'close' listener of its stream, shared by all of them. */
  readonly onAcceptedClosed: () => void;
}

export function handleConnect(
  stream: H2Stream,
  headers: HeaderMap,
  peer: PeerInfo,
  ctx: StreamContext,
): void {
  stream.on('error', ignoreError); // outcomes are the taker's; a late reset is not a crash
  // Log fields, built only for a refusal (not for every tunnel).
  const fields = () => ({
    peer: peer.peerIdentity.toString(),
    from: formatSocketAddr(peer.peerAddress),
  });

  const method = headers[':method'];
  if (method !== 'CONNECT') {
    return void answerRefusal(
      stream,
      new MethodNotAllowedError(`method ${method} is not CONNECT`),
      ctx,
      fields,
    );
  }
  const headerBytes = headerListSize(headers);
  if (headerBytes > ctx.maxHeaderListBytes) {
    return void answerRefusal(
      stream,
      new BadRequestError(`header list of ${headerBytes} bytes exceeds ${ctx.maxHeaderListBytes}`),
      ctx,
      fields,
    );
  }
  const authority = headers[':authority'] ?? '';
  const target = parseSocketAddr(authority);
  const bad = !target
    ? `:authority ${JSON.stringify(authority)} is not ip:port`
    : peer.dialedIp !== undefined && target.ip !== peer.dialedIp
      ? `:authority ${authority} is not the dialed address ${peer.dialedIp}`
      : undefined;
  if (bad || !target) {
    return void answerRefusal(stream, new BadRequestError(bad ?? 'bad :authority'), ctx, fields);
  }
  const tunnel = new Incoming(stream, peer, target, parseMetadata(headers), ctx);
  let handed: void | Promise<void>;
  try {
    handed = ctx.onTunnel(tunnel);
  } catch (err) {
    return void tunnel.failed(err);
  }
  if (handed) handed.catch((err: unknown) => tunnel.failed(err));
}

/** The signal of a tunnel that was answered: nothing is waiting on it any more. */
const ANSWERED = new AbortController().signal;
const ANSWERED_METADATA: TunnelMetadata = Object.freeze({});

class Incoming implements IncomingTunnel {
  readonly peerIdentity: SpiffeId;
  readonly peerAddress: SocketAddr;
  readonly localIdentity: SpiffeId;
  /** Dropped once answered: an open tunnel keeps no controller and no request metadata. */
  #abort: AbortController | undefined = new AbortController();
  #metadata: TunnelMetadata;
  #answered = false;

  constructor(
    readonly stream: H2Stream,
    peer: PeerInfo,
    readonly target: SocketAddr,
    metadata: TunnelMetadata,
    readonly ctx: StreamContext,
  ) {
    this.#metadata = metadata;
    this.peerIdentity = peer.peerIdentity;
    this.peerAddress = peer.peerAddress;
    this.localIdentity = peer.localIdentity;
    stream.on('close', this.#early!); // 'close' is emitted once: no once-wrapper
  }

  get signal(): AbortSignal {
    return this.#abort?.signal ?? ANSWERED;
  }

  get metadata(): TunnelMetadata {
    return this.#metadata;
  }

  // The stream closed before our answer: the client cancelled (or its connection died).
  // Dropped once answered: an open tunnel keeps no listener of ours.
  #early: (() => void) | undefined = () => {
    this.#abort?.abort();
    this.ctx.onEarlyReset();
  };

  #answer(): boolean {
    if (this.#answered) return false;
    this.#answered = true;
    if (this.#early) this.stream.off('close', this.#early);
    this.#early = undefined;
    this.#abort = undefined;
    this.#metadata = ANSWERED_METADATA;
    return !this.stream.destroyed && !this.stream.closed;
  }

  refuse(err: TunnelRefusal): void {
    if (!this.#answer()) return;
    answerRefusal(this.stream, err, this.ctx, () => ({
      peer: this.peerIdentity.toString(),
      from: formatSocketAddr(this.peerAddress),
      target: formatSocketAddr(this.target),
    }));
  }

  accept(): H2Stream {
    const first = !this.#answered;
    if (!this.#answer())
      throw new ConnectFailedError(
        first ? 'the client reset the stream before the answer' : 'the tunnel was already answered',
      );
    const stream = this.stream;
    stream.respond({ ':status': 200 });
    this.ctx.onAccepted();
    stream.on('close', this.ctx.onAcceptedClosed);
    return stream;
  }

  /** The taker threw before answering: a bug on this server, answered 500 and logged. */
  failed(err: unknown): void {
    if (this.#answered) {
      this.ctx.log.error({ err: errorMessage(err) }, 'hbone tunnel taker threw after answering');
      return;
    }
    this.ctx.log.error(
      { peer: this.peerIdentity.toString(), err: errorMessage(err) },
      'hbone tunnel taker threw',
    );
    this.refuse(new ServerInternalError('tunnel handling failed', { cause: err }));
  }
}

function answerRefusal(
  stream: H2Stream,
  err: Error,
  ctx: StreamContext,
  fields: () => object,
): void {
  const status = statusOf(err);
  const code = (err as { code?: string }).code ?? 'HBONE_INTERNAL';
  if (status === 401 || status === 503)
    ctx.log.debug({ ...fields(), status, code, reason: err.message }, 'hbone CONNECT refused');
  else ctx.refusals.refuse(code, err.message, { ...fields(), status }, 'hbone CONNECT refused');
  if (!stream.destroyed && !stream.headersSent)
    stream.respond({ ':status': status }, { endStream: true });
}

function headerListSize(headers: HeaderMap): number {
  let size = 0;
  for (const [name, value] of Object.entries(headers)) size += name.length + value.length + 32;
  return size;
}
