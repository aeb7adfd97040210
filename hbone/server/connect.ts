// One CONNECT stream on the server: validate, ask the handler, connect upstream, answer,
// splice. The answer is 200 only after the upstream connect succeeded (ztunnel), so the
// client's open() fails fast and typed (503) when the target is down. Every allowed tunnel
// reports its outcome exactly once through the decision's onClose, whatever path it ends on.
import { constants as h2, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { SpiffeId } from '../../identity/spiffe-id.js';
import { errorMessage } from '../../lib/errors.js';
import { ignoreError } from '../../lib/ignore.js';
import type { Logger } from '../../lib/logger.js';
import { formatSocketAddr, parseSocketAddr, type SocketAddr } from '../address.js';
import {
  BadRequestError,
  MethodNotAllowedError,
  ServerInternalError,
  statusOf,
  TunnelDeniedError,
  UpstreamFailedError,
} from '../errors.js';
import { parseMetadata, type TunnelMetadata } from '../headers.js';
import { type SpliceResult, splice } from '../splice.js';
import type { Refusals } from './refusals.js';

export interface InboundTunnel {
  readonly peerIdentity: SpiffeId;
  readonly peerAddress: SocketAddr;
  /** The identity whose certificate this server presented. */
  readonly localIdentity: SpiffeId;
  /** The `:authority` of the CONNECT. */
  readonly target: SocketAddr;
  readonly metadata: TunnelMetadata;
}

export interface TunnelOutcome extends Partial<SpliceResult> {
  /** Set when the tunnel never carried data: upstream failed, or the client gave up first. */
  readonly failure?: Error;
}

export type InboundDecision =
  | {
      readonly allow: true;
      /** Where to connect instead of `target` (same-node short cuts, tests). */
      readonly upstream?: SocketAddr;
      readonly onClose?: (outcome: TunnelOutcome) => void;
    }
  | { readonly allow: false; readonly reason: string };

export type ConnectHandler = (tunnel: InboundTunnel) => InboundDecision | Promise<InboundDecision>;

/** The I/O seam for upstream sockets (the agent may need marks or a source address). */
export type UpstreamConnector = (target: SocketAddr, tunnel: InboundTunnel) => Socket;

export const defaultConnector: UpstreamConnector = (target) =>
  netConnect({ host: target.ip, port: target.port, allowHalfOpen: true, noDelay: true });

/** What the session knows about its peer once the TLS handshake was accepted. */
export interface PeerInfo {
  readonly peerIdentity: SpiffeId;
  readonly peerAddress: SocketAddr;
  readonly localIdentity: SpiffeId;
  /** The IP the client dialed (SNI or captured destination); `:authority` must match it. */
  readonly dialedIp: string | undefined;
}

export interface StreamContext {
  readonly handler: ConnectHandler;
  readonly connectUpstream: UpstreamConnector;
  readonly upstreamConnectTimeoutMs: number;
  /** Node advertises SETTINGS_MAX_HEADER_LIST_SIZE but does not enforce it on what it
   *  receives, so the server checks it here (RFC 9113 §6.5.2 size: name + value + 32). */
  readonly maxHeaderListBytes: number;
  readonly log: Logger;
  /** Protocol refusals (400, 405, 500) are logged here at warn, rate-limited; a deny (401)
   *  or a failed upstream (503) is the handler's to record, and stays at debug here. */
  readonly refusals: Refusals;
  /** The client reset the stream before we answered: rapid-reset accounting. */
  readonly onEarlyReset: () => void;
  readonly onTunnel: (delta: 1 | -1) => void;
}

function refuse(stream: ServerHttp2Stream, err: Error, ctx: StreamContext, fields: object): void {
  const status = statusOf(err);
  const code = (err as { code?: string }).code ?? 'HBONE_INTERNAL';
  if (status === 401 || status === 503)
    ctx.log.debug({ ...fields, status, code, reason: err.message }, 'hbone CONNECT refused');
  else ctx.refusals.refuse(code, err.message, { ...fields, status }, 'hbone CONNECT refused');
  if (!stream.destroyed && !stream.headersSent)
    stream.respond({ [h2.HTTP2_HEADER_STATUS]: status }, { endStream: true });
}

function gone(stream: ServerHttp2Stream): boolean {
  return stream.destroyed || stream.closed;
}

export async function handleConnect(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  peer: PeerInfo,
  ctx: StreamContext,
): Promise<void> {
  stream.on('error', ignoreError); // outcomes are reported below; a late reset is not a crash
  const early = () => ctx.onEarlyReset();
  stream.once('close', early);
  const fields = { peer: peer.peerIdentity.toString(), from: formatSocketAddr(peer.peerAddress) };
  // Our refusal ends the stream: its close is then not the client's early reset.
  const refuseWith = (err: Error, target?: string) => {
    stream.off('close', early);
    refuse(stream, err, ctx, target === undefined ? fields : { ...fields, target });
  };

  const method = headers[h2.HTTP2_HEADER_METHOD];
  if (method !== 'CONNECT') {
    return refuseWith(new MethodNotAllowedError(`method ${method} is not CONNECT`));
  }
  const headerBytes = headerListSize(headers);
  if (headerBytes > ctx.maxHeaderListBytes) {
    return refuseWith(
      new BadRequestError(`header list of ${headerBytes} bytes exceeds ${ctx.maxHeaderListBytes}`),
    );
  }
  const authority = String(headers[h2.HTTP2_HEADER_AUTHORITY] ?? '');
  const target = parseSocketAddr(authority);
  const bad = !target
    ? `:authority ${JSON.stringify(authority)} is not ip:port`
    : peer.dialedIp !== undefined && target.ip !== peer.dialedIp
      ? `:authority ${authority} is not the dialed address ${peer.dialedIp}`
      : undefined;
  if (bad || !target) {
    return refuseWith(new BadRequestError(bad ?? 'bad :authority'));
  }

  const tunnel: InboundTunnel = {
    peerIdentity: peer.peerIdentity,
    peerAddress: peer.peerAddress,
    localIdentity: peer.localIdentity,
    target,
    metadata: parseMetadata(headers),
  };
  let decision: InboundDecision;
  try {
    decision = await ctx.handler(tunnel);
  } catch (err) {
    ctx.log.error({ ...fields, err: errorMessage(err) }, 'hbone handler threw');
    return refuseWith(new ServerInternalError('handler failed', { cause: err }));
  }
  if (!decision.allow) {
    return refuseWith(new TunnelDeniedError(decision.reason), authority);
  }
  const report = once(decision.onClose);
  if (gone(stream))
    return report({ failure: new Error('client reset the stream before the answer') });

  const upstreamAddr = decision.upstream ?? target;
  const upstream = ctx.connectUpstream(upstreamAddr, tunnel);
  const timer = setTimeout(
    () => upstream.destroy(new Error(`connect timed out after ${ctx.upstreamConnectTimeoutMs} ms`)),
    ctx.upstreamConnectTimeoutMs,
  );
  timer.unref();
  const abandon = () => upstream.destroy(); // client gave up while we were connecting
  stream.once('close', abandon);
  upstream.once('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    stream.off('close', abandon);
    const failure = new UpstreamFailedError(
      `connect to ${formatSocketAddr(upstreamAddr)} failed: ${err.code ?? err.message}`,
      { cause: err },
    );
    refuseWith(failure, authority);
    report({ failure });
  });
  upstream.once('connect', () => {
    clearTimeout(timer);
    stream.off('close', abandon);
    stream.off('close', early);
    upstream.removeAllListeners('error');
    if (gone(stream)) {
      upstream.destroy();
      return report({ failure: new Error('client reset the stream before the answer') });
    }
    stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200 });
    carry(upstream, stream, ctx, report);
  });
}

/** The open tunnel. A function of its own so that what lives as long as the tunnel holds
 *  only these (not handleConnect's scope: headers, fields, timers). */
function carry(
  upstream: Socket,
  stream: ServerHttp2Stream,
  ctx: StreamContext,
  report: (outcome: TunnelOutcome) => void,
): void {
  ctx.onTunnel(1);
  splice(upstream, stream, (result) => {
    ctx.onTunnel(-1);
    report(result);
  });
}

function headerListSize(headers: IncomingHttpHeaders): number {
  let size = 0;
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value ?? ''])
      size += name.length + String(v).length + 32;
  }
  return size;
}

function once<T>(fn: ((arg: T) => void) | undefined): (arg: T) => void {
  let called = false;
  return (arg) => {
    if (called) return;
    called = true;
    fn?.(arg);
  };
}
