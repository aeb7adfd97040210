// Outbound capture (15001): TCP from a local pod redirected by iptables; the destination is
// the kernel's original destination. A connection that was not redirected (its original
// destination is this listener itself) is a loop and is refused.
import type { Socket } from 'node:net';
import { type HostPort, localAddr, peerAddr } from '../../lib/address.js';
import type { AgentContext } from '../context.js';
import { ClientSocket } from './downstream.js';
import { redirectedDestination, TcpListener } from './listener.js';
import { proxyOutbound } from './outbound.js';

export const OutboundCaptureListener = {
  create: (ctx: AgentContext, at: HostPort): Promise<TcpListener> =>
    TcpListener.create('outbound', at, ctx.drain, (s) => void handle(ctx, s)),
};

function handle(ctx: AgentContext, socket: Socket): Promise<void> {
  socket.pause();
  // Canonical addresses (lib/address.ts), or a pod's other spelling would miss its lookups.
  const peer = peerAddr(socket);
  // Not redirected: the listener itself was dialed, which route() refuses as a loop.
  const dst = redirectedDestination(ctx.originalDestination, socket) ?? localAddr(socket);
  if (!peer || !dst) return Promise.resolve(void socket.destroy()); // gone before we looked
  return proxyOutbound(
    ctx,
    new ClientSocket(ctx, socket),
    { ...peer, workload: ctx.state.current.localWorkload(peer.ip) },
    { host: dst.ip, port: dst.port },
  );
}
