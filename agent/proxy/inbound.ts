// Inbound HBONE (15008): mTLS + HTTP/2 CONNECT from other agents. The server presents the
// certificate of the local pod that was dialed (by SNI when a node address was dialed, by
// the captured original destination otherwise), and every CONNECT is decided by the
// inbound decision (PeerAuthentication + AuthorizationPolicy) before the pod is dialed.
import type { Socket } from 'node:net';
import {
  defaultConnector,
  HboneServer,
  type InboundTunnel,
  type SelectIdentity,
  type ServerRoute,
} from '../../hbone/index.js';
import type { HostPort } from '../config.js';
import type { AgentContext } from '../context.js';
import { ConnectionRecord } from '../observe/record.js';
import { decideInbound, refusalCode, verdictFields } from './inbound-decision.js';
import { BindError, redirectedDestination } from './listener.js';
import { identityOf } from './route.js';

export class InboundListener {
  readonly #server: HboneServer;

  private constructor(server: HboneServer) {
    this.#server = server;
  }

  static async create(ctx: AgentContext, at: HostPort): Promise<InboundListener> {
    // The upstream socket of each allowed tunnel, so a policy change can cut it.
    const upstreams = new WeakMap<InboundTunnel, { socket?: Socket; closed?: boolean }>();
    const server = await HboneServer.listen(
      {
        certificates: ctx.certs,
        logger: ctx.logger.child({ listener: 'inbound' }),
        selectIdentity: selectIdentity(ctx),
        connectUpstream: (target, tunnel) => {
          const socket = defaultConnector(target, tunnel);
          const holder = upstreams.get(tunnel);
          if (holder) {
            holder.socket = socket;
            if (holder.closed) socket.destroy();
          }
          return socket;
        },
        upstreamConnectTimeoutMs: ctx.config.connectTimeoutMs,
        handler: (tunnel) => {
          const view = ctx.state.current;
          const peerIp = sourceIp(ctx, tunnel);
          const verdict = decideInbound(view, {
            peerIdentity: tunnel.peerIdentity,
            peerIp,
            targetIp: tunnel.target.ip,
            targetPort: tunnel.target.port,
          });
          const src = view.snapshot.workloadByIp(peerIp);
          const record = new ConnectionRecord(
            {
              direction: 'inbound',
              src: {
                addr: tunnel.metadata.forwardedFor
                  ? `${peerIp}:${tunnel.metadata.forwardedFor.port}`
                  : `${tunnel.peerAddress.ip}:${tunnel.peerAddress.port}`,
                workload: src?.meta.name,
                namespace: src?.meta.namespace,
                identity: tunnel.peerIdentity.toString(),
              },
              dst: {
                addr: `${tunnel.target.ip}:${tunnel.target.port}`,
                workload: verdict.workload?.meta.name,
                namespace: verdict.workload?.meta.namespace,
                identity: tunnel.localIdentity.toString(),
                // The tunnel's own address (ztunnel's dst.addr): with capture the pod IP on
                // the HBONE port, which the client dialed.
                hboneAddr: `${tunnel.target.ip}:${ctx.config.hbonePort}`,
                ...(tunnel.metadata.forwardedHost
                  ? { service: tunnel.metadata.forwardedHost }
                  : {}),
              },
              security: 'mutual_tls',
              ...verdictFields(verdict),
            },
            ctx.metrics,
            ctx.accessLog,
          );
          if (!verdict.allow) {
            record.fail(refusalCode(verdict), verdict.reason);
            record.finish();
            return { allow: false, reason: verdict.reason };
          }
          const holder: { socket?: Socket; closed?: boolean } = {};
          upstreams.set(tunnel, holder);
          const forget = ctx.live.add(verdict.connection, record, () => {
            holder.closed = true;
            holder.socket?.resetAndDestroy();
          });
          const untrack = ctx.drain.track({ destroy: () => holder.socket?.resetAndDestroy() });
          // Live bytes from the pod socket's counters, the ones splice() reports at the end.
          record.watch(() => ({
            sent: holder.socket?.bytesWritten ?? 0,
            received: holder.socket?.bytesRead ?? 0,
          }));
          return {
            allow: true,
            onClose: (outcome) => {
              forget();
              untrack();
              record.bytesSent = outcome.bytesStreamToSocket ?? 0;
              record.bytesReceived = outcome.bytesSocketToStream ?? 0;
              if (outcome.failure) record.fail('CONNECT', outcome.failure.message);
              else if (outcome.error && !record.fields.error)
                record.fail('CONNECTION_RESET', outcome.error.message);
              record.finish();
            },
          };
        },
      },
      at,
    ).catch((err: Error) => {
      throw new BindError('inbound HBONE', at, err);
    });
    return new InboundListener(server);
  }

  address(): HostPort {
    const a = this.#server.address();
    return { host: a.ip, port: a.port };
  }

  stats() {
    return this.#server.stats();
  }

  close(graceMs: number): Promise<void> {
    return this.#server.close(graceMs);
  }
}

/** The source IP policy sees. The TCP peer is the other node's agent (we do not spoof
 *  source addresses), so the pod IP comes from `forwarded: for=`, a header the sending
 *  agent writes: it is believed only when the mesh says that IP belongs to a pod with the
 *  very identity the peer proved with its certificate. */
function sourceIp(ctx: AgentContext, tunnel: InboundTunnel): string {
  const claimed = tunnel.metadata.forwardedFor?.ip;
  if (!claimed) return tunnel.peerAddress.ip;
  const pod = ctx.state.current.snapshot.workloadByIp(claimed);
  return pod && identityOf(pod, ctx.config.trustDomain).equals(tunnel.peerIdentity)
    ? claimed
    : tunnel.peerAddress.ip;
}

function selectIdentity(ctx: AgentContext): SelectIdentity {
  return (req): ServerRoute | undefined => {
    const view = ctx.state.current;
    let ip: string | undefined;
    if (req.kind === 'sni') ip = req.destinationIp;
    else {
      // Captured: iptables redirected podIP:15008 here. Not redirected = dialed directly
      // without SNI: there is no pod to speak for, so the handshake is refused.
      ip = redirectedDestination(ctx.originalDestination, req.socket)?.ip;
    }
    const pod = ip ? view.localWorkload(ip) : undefined;
    if (!pod || !ip) return undefined;
    return { identity: identityOf(pod, ctx.config.trustDomain), destinationIp: ip };
  };
}
