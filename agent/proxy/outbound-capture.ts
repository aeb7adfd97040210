// Outbound capture (15001): TCP from a local pod redirected by iptables; the destination is
// the kernel's original destination. A connection that was not redirected (its original
// destination is this listener itself) is a loop and is refused.
import type { Socket } from 'node:net';
import { canonicalHost } from '../../lib/ip.js';
import type { HostPort } from '../config.js';
import type { AgentContext } from '../context.js';
import { ClientSocket } from './downstream.js';
import { redirectedDestination, remoteIp, TcpListener } from './listener.js';
import { proxyOutbound } from './outbound.js';

export const OutboundCaptureListener = {
  create: (ctx: AgentContext, at: HostPort): Promise<TcpListener> =>
    TcpListener.create('outbound', at, ctx.drain, (s) => void handle(ctx, s)),
};

function handle(ctx: AgentContext, socket: Socket): Promise<void> {
  socket.pause();
  // Canonical addresses (lib/ip.ts), or a pod's other spelling would miss its lookups.
  const orig = redirectedDestination(ctx.originalDestination, socket);
  const ip = remoteIp(socket);
  const dst = orig
    ? { host: orig.ip, port: orig.port }
    : { host: canonicalHost(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
  return proxyOutbound(
    ctx,
    new ClientSocket(ctx, socket),
    { ip, port: socket.remotePort ?? 0, workload: ctx.state.current.localWorkload(ip) },
    dst,
  );
}
