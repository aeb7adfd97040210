// Outbound: one connection from a local pod (captured on 15001 or through SOCKS5) to its
// destination, in one function from the client socket to its record: route() decides
// (pure), then an HBONE tunnel with the source pod's identity, the same-node short cut
// through the inbound decision (local-pod.ts), or plain TCP passthrough. How the client
// is answered is the downstream's (a reset for a captured socket, SOCKS5's reply hook).

import { socketAddr } from '../../hbone/index.js';
import type { PeerAddr } from '../../lib/address.js';
import { dialTcp } from '../../lib/dial.js';
import type { Workload } from '../../mesh/types.js';
import type { AgentContext } from '../context.js';
import { ConnectionRecord, type PathResult } from '../observe/record.js';
import { ConnectionFailure } from '../outcome.js';
import { ztunnelBaggage } from './baggage.js';
import type { ClientSocket } from './downstream.js';
import { decideInbound, type InboundVerdict, verdictFields } from './inbound-decision.js';
import { toLocalPod } from './local-pod.js';
import { type Destination, identityOf, type Route, route } from './route.js';

/** The client: its (canonical) address, and the mesh pod on this node it is, if any. */
export interface OutboundSource extends PeerAddr {
  readonly workload: Workload | undefined;
}

/** Not async, and the mesh view is read once, here: what lives as long as the connection
 *  (the record's path) holds the route, never the view, so a long-lived connection never
 *  pins an old snapshot. */
export function proxyOutbound(
  ctx: AgentContext,
  client: ClientSocket,
  src: OutboundSource,
  dst: Destination,
): Promise<void> {
  const view = ctx.state.current;
  const r = route(
    dst,
    view.snapshot,
    ctx.routeSettings,
    (n) => ctx.spread(`${dst.host}:${dst.port}`, n),
    src.workload?.meta.namespace,
  );
  const srcIdentity = src.workload ? identityOf(src.workload, ctx.config.trustDomain) : undefined;
  // Same node: no tunnel, but exactly the inbound decision the other side would make.
  const local =
    r.kind === 'hbone' && r.local && srcIdentity
      ? decideInbound(view, {
          peerIdentity: srcIdentity,
          peerIp: src.ip,
          targetIp: r.target.ip,
          targetPort: r.target.port,
        })
      : undefined;
  return ConnectionRecord.run(
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
      ...(local ? verdictFields(local) : {}),
    },
    ctx.metrics,
    ctx.accessLog,
    (record) => carry(ctx, record, client, src, r, local),
    client,
  );
}

async function carry(
  ctx: AgentContext,
  record: ConnectionRecord,
  client: ClientSocket,
  src: OutboundSource,
  r: Route,
  local: InboundVerdict | undefined,
): Promise<PathResult> {
  if (r.kind === 'refuse') throw new ConnectionFailure(r.code, r.reason);
  if (r.kind === 'passthrough') {
    const upstream = await dialTcp(
      r.target.ip,
      r.target.port,
      ctx.config.connectTimeoutMs,
      client.signal,
    );
    record.established();
    return client.carry(record, upstream);
  }
  if (!src.workload)
    throw new ConnectionFailure(
      'IDENTITY_ERROR',
      `source ${src.ip} is not a mesh pod on this node, so it has no identity to present`,
    );
  if (local) return toLocalPod(ctx, record, client, local, r.target);
  const tunnel = await ctx.hbone.open({
    sourceIdentity: identityOf(src.workload, ctx.config.trustDomain),
    destination: socketAddr(r.target.ip, r.target.port),
    expectedIdentities: [r.expectedIdentity],
    via: socketAddr(r.dial.ip, r.dial.port),
    metadata: {
      forwardedFor: socketAddr(src.ip, src.port),
      ...(r.service ? { forwardedHost: r.service.hostname } : {}),
      baggage: ztunnelBaggage(src.workload, ctx.config.clusterId),
    },
    signal: client.signal,
  });
  record.fields.dst.identity = tunnel.peerIdentity.toString();
  record.established();
  return client.carryTunnel(record, tunnel.stream);
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
