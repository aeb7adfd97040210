// Outbound: one connection from a local pod (captured on 15001 or through SOCKS5) to its
// destination. Decides with route() (pure), then does: an HBONE tunnel with the source
// pod's identity, the same-node short cut through the inbound decision, or plain TCP
// passthrough. Records the connection exactly once.
import { connect as netConnect, type Socket } from 'node:net';
import {
  ConnectFailedError,
  IdentityMismatchError,
  IdentityUnavailableError,
  resetTunnel,
  responseFlagOf,
  socketAddr,
  splice,
  TimeoutError,
  TlsFailureError,
  TunnelDeniedError,
  UpstreamFailedError,
} from '../../hbone/index.js';
import { errorMessage } from '../../lib/errors.js';
import type { Workload } from '../../mesh/types.js';
import type { AgentContext } from '../context.js';
import { ConnectionRecord } from '../observe/record.js';
import { ztunnelBaggage } from './baggage.js';
import { decideInbound, refusalCode, verdictFields } from './inbound-decision.js';
import { joinSockets } from './pipe.js';
import { type Destination, identityOf, type Route, route } from './route.js';
import { REPLY } from './socks5-protocol.js';

export interface OutboundSource {
  readonly ip: string;
  readonly port: number;
  /** The mesh pod on this node that opened the connection, if any. */
  readonly workload: Workload | undefined;
}

export type Outbound =
  | {
      readonly ok: true;
      attach(client: Socket): void;
      /** The client went away before it could be attached: close the upstream side and
       *  record the connection (an open tunnel must never be left behind). */
      abandon(): void;
    }
  | {
      readonly ok: false;
      readonly code: string;
      readonly reason: string;
      readonly socksReply: number;
    };

/** Establishes the upstream side; the caller replies (SOCKS5) and then attaches the client. */
export async function openOutbound(
  ctx: AgentContext,
  src: OutboundSource,
  dst: Destination,
): Promise<Outbound> {
  const view = ctx.state.current;
  const r = route(
    dst,
    view.snapshot,
    ctx.routeSettings,
    (n) => ctx.spread(`${dst.host}:${dst.port}`, n),
    src.workload?.meta.namespace,
  );
  const trustDomain = ctx.config.trustDomain;
  const srcIdentity = src.workload ? identityOf(src.workload, trustDomain) : undefined;
  const record = new ConnectionRecord(
    {
      direction: 'outbound',
      src: {
        addr: `${src.ip}:${src.port}`,
        workload: src.workload?.meta.name,
        namespace: src.workload?.meta.namespace,
        identity: srcIdentity?.toString(),
      },
      dst: destinationFields(r, dst),
      security: r.kind === 'hbone' ? 'mutual_tls' : 'none',
    },
    ctx.metrics,
    ctx.accessLog,
  );
  const failed = (code: string, reason: string, socksReply: number): Outbound => {
    record.fail(code, reason);
    record.finish();
    return { ok: false, code, reason, socksReply };
  };

  if (r.kind === 'refuse')
    return failed(
      r.code,
      r.reason,
      r.code === 'SELF_CALL' ? REPLY.notAllowed : REPLY.hostUnreachable,
    );
  if (r.kind === 'passthrough') {
    try {
      const upstream = await dialTcp(r.target.ip, r.target.port, ctx.config.connectTimeoutMs);
      return attachSockets(ctx, record, upstream);
    } catch (err) {
      return failed('CONNECT', errorMessage(err), REPLY.connectionRefused);
    }
  }
  if (!srcIdentity) {
    return failed(
      'IDENTITY_ERROR',
      `source ${src.ip} is not a mesh pod on this node, so it has no identity to present`,
      REPLY.notAllowed,
    );
  }
  if (r.local) {
    // Same node: no tunnel, but exactly the inbound decision the other side would make.
    const verdict = decideInbound(view, {
      peerIdentity: srcIdentity,
      peerIp: src.ip,
      targetIp: r.target.ip,
      targetPort: r.target.port,
    });
    Object.assign(record.fields, verdictFields(verdict));
    if (!verdict.allow) return failed(refusalCode(verdict), verdict.reason, REPLY.notAllowed);
    try {
      const upstream = await dialTcp(r.target.ip, r.target.port, ctx.config.connectTimeoutMs);
      const forget = ctx.live.add(verdict.connection, record, () => upstream.resetAndDestroy());
      return attachSockets(ctx, record, upstream, forget);
    } catch (err) {
      return failed('CONNECT', errorMessage(err), REPLY.connectionRefused);
    }
  }
  try {
    const tunnel = await ctx.hbone.open({
      sourceIdentity: srcIdentity,
      destination: socketAddr(r.target.ip, r.target.port),
      expectedIdentities: [r.expectedIdentity],
      via: socketAddr(r.dial.ip, r.dial.port),
      metadata: {
        forwardedFor: socketAddr(src.ip, src.port),
        ...(r.service ? { forwardedHost: r.service.hostname } : {}),
        baggage: ztunnelBaggage(src.workload!, ctx.config.clusterId),
      },
    });
    record.fields.dst.identity = tunnel.peerIdentity.toString();
    record.established();
    return {
      ok: true,
      attach(client: Socket) {
        const untrack = ctx.drain.track({ destroy: () => client.resetAndDestroy() });
        // Live bytes from the same counters splice() reports at the end, less what the
        // SOCKS5 handshake moved (early data unshifted back is the application's).
        const base = handshakeBytes(client);
        record.watch(() => ({
          sent: client.bytesRead - base.read,
          received: client.bytesWritten - base.written,
        }));
        splice(client, tunnel.stream, (res) => {
          untrack();
          record.bytesSent = res.bytesSocketToStream - base.read;
          record.bytesReceived = res.bytesStreamToSocket - base.written;
          if (res.error) record.fail('CONNECTION_RESET', res.error.message);
          record.finish();
        });
      },
      abandon() {
        resetTunnel(tunnel.stream);
        record.fail('CONNECTION_RESET', 'the client closed before the tunnel was attached');
        record.finish();
      },
    };
  } catch (err) {
    const flag = responseFlagOf(err);
    return failed(flag, errorMessage(err), socksReplyFor(err));
  }
}

function socksReplyFor(err: unknown): number {
  if (err instanceof TunnelDeniedError) return REPLY.notAllowed;
  if (err instanceof UpstreamFailedError) return REPLY.connectionRefused;
  if (err instanceof TimeoutError) return REPLY.hostUnreachable;
  if (err instanceof ConnectFailedError) return REPLY.hostUnreachable;
  if (
    err instanceof TlsFailureError ||
    err instanceof IdentityMismatchError ||
    err instanceof IdentityUnavailableError
  )
    return REPLY.notAllowed;
  return REPLY.generalFailure;
}

function attachSockets(
  ctx: AgentContext,
  record: ConnectionRecord,
  upstream: Socket,
  forget?: () => void,
): Outbound {
  record.established();
  return {
    ok: true,
    attach: (client) => joinRecorded(ctx, record, client, upstream, forget),
    abandon() {
      upstream.resetAndDestroy();
      forget?.();
      record.fail('CONNECTION_RESET', 'the client closed before the connection was attached');
      record.finish();
    },
  };
}

/** Joins a client to its plain TCP upstream, tracked for draining, and finishes the record
 *  with the byte counts when both are closed (outbound passthrough, same-node short cut,
 *  inbound plaintext). `forget` takes the connection out of the live policy re-checks. */
export function joinRecorded(
  ctx: AgentContext,
  record: ConnectionRecord,
  client: Socket,
  upstream: Socket,
  forget?: () => void,
): void {
  const untrack = ctx.drain.track({ destroy: () => client.resetAndDestroy() });
  // Live bytes from the same counters joinSockets() reports at the end (less a SOCKS5 reply).
  const base = handshakeBytes(client);
  record.watch(() => ({
    sent: upstream.bytesWritten,
    received: client.bytesWritten - base.written,
  }));
  joinSockets(client, upstream, (res) => {
    untrack();
    forget?.();
    record.bytesSent = res.aToB;
    record.bytesReceived = res.bToA - base.written;
    if (res.error && !record.fields.error) record.fail('CONNECTION_RESET', res.error.message);
    record.finish();
  });
}

/** What a client socket moved before it was attached (a SOCKS5 handshake): not the
 *  application's bytes. Data read but still buffered (early data) is the application's. */
function handshakeBytes(client: Socket): { read: number; written: number } {
  return { read: client.bytesRead - client.readableLength, written: client.bytesWritten };
}

export function dialTcp(ip: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: ip, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(
      () => s.destroy(new Error(`connect to ${ip}:${port} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function destinationFields(r: Route, dst: Destination) {
  const asked = `${dst.host}:${dst.port}`;
  if (r.kind === 'refuse') return { addr: asked };
  const w = r.destination;
  return {
    addr: `${r.target.ip}:${r.target.port}`,
    ...(r.kind === 'hbone' && !r.local ? { hboneAddr: `${r.dial.ip}:${r.dial.port}` } : {}),
    ...(r.service ? { service: r.service.hostname } : {}),
    ...(w ? { workload: w.meta.name, namespace: w.meta.namespace } : {}),
    ...(r.kind === 'hbone' ? { identity: r.expectedIdentity.toString() } : {}),
  };
}
