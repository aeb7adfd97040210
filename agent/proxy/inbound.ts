// Inbound HBONE (15008): mTLS + HTTP/2 CONNECT from other agents. The server presents the
// certificate of the local pod that was dialed (by SNI when a node address was dialed, by
// the captured original destination otherwise) and hands over each CONNECT; `serveTunnel`
// then reads as ztunnel's serve_connect (src/proxy/inbound.rs): decide (PeerAuthentication
// + AuthorizationPolicy) → dial the pod → answer 200 → splice → record, the record reported
// once when the path is over (ConnectionRecord.run).
import {
  HboneServer,
  type IncomingTunnel,
  type SelectIdentity,
  type ServerRoute,
} from '../../hbone/index.js';
import type { HostPort } from '../../lib/address.js';
import type { AgentContext } from '../context.js';
import { ConnectionRecord } from '../observe/record.js';
import { TunnelDownstream } from './downstream.js';
import { decideInbound, verdictFields } from './inbound-decision.js';
import { BindError, redirectedDestination } from './listener.js';
import { toLocalPod } from './local-pod.js';
import { identityOf } from './route.js';

export class InboundListener {
  readonly #server: HboneServer;

  private constructor(server: HboneServer) {
    this.#server = server;
  }

  static async create(ctx: AgentContext, at: HostPort): Promise<InboundListener> {
    const server = await HboneServer.listen(
      {
        certificates: ctx.certs,
        logger: ctx.logger.child({ listener: 'inbound' }),
        selectIdentity: selectIdentity(ctx),
        // Not returned: the path answers every tunnel itself, and records every failure.
        onTunnel: (tunnel) => void serveTunnel(ctx, tunnel),
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

/** One tunnel, from its CONNECT to its record. Not async, and the view is read once: what
 *  lives as long as the tunnel (the record's path) holds neither this frame nor the mesh
 *  view it was decided on, so a long-lived connection never pins an old snapshot. */
export function serveTunnel(ctx: AgentContext, tunnel: IncomingTunnel): Promise<void> {
  const view = ctx.state.current;
  const peerIp = sourceIp(ctx, tunnel);
  const target = tunnel.target;
  const verdict = decideInbound(view, {
    peerIdentity: tunnel.peerIdentity,
    peerIp,
    targetIp: target.ip,
    targetPort: target.port,
  });
  const src = view.snapshot.workloadByIp(peerIp);
  const down = new TunnelDownstream(ctx, tunnel);
  return ConnectionRecord.run(
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
        addr: `${target.ip}:${target.port}`,
        workload: verdict.workload?.meta.name,
        namespace: verdict.workload?.meta.namespace,
        identity: tunnel.localIdentity.toString(),
        // The tunnel's own address (ztunnel's dst.addr): with capture the pod IP on the
        // HBONE port, which the client dialed.
        hboneAddr: `${target.ip}:${ctx.config.hbonePort}`,
        ...(tunnel.metadata.forwardedHost ? { service: tunnel.metadata.forwardedHost } : {}),
      },
      security: 'mutual_tls',
      ...verdictFields(verdict),
    },
    ctx.metrics,
    ctx.accessLog,
    (record) => toLocalPod(ctx, record, down, verdict, target),
    down,
  );
}

/** The source IP policy sees. The TCP peer is the other node's agent (we do not spoof
 *  source addresses), so the pod IP comes from `forwarded: for=`, a header the sending
 *  agent writes: it is believed only when the mesh says that IP belongs to a pod with the
 *  very identity the peer proved with its certificate. */
function sourceIp(ctx: AgentContext, tunnel: IncomingTunnel): string {
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
