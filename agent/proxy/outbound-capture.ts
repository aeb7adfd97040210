// Outbound capture (15001): TCP from a local pod redirected by iptables; the destination is
// the kernel's original destination. A connection that was not redirected (its original
// destination is this listener itself) is a loop and is refused.
import type { Server, Socket } from 'node:net';
import type { HostPort } from '../config.js';
import type { AgentContext } from '../context.js';
import { bindTcp, closeServer } from './listener.js';
import { openOutbound } from './outbound.js';

export class OutboundCaptureListener {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async create(ctx: AgentContext, at: HostPort): Promise<OutboundCaptureListener> {
    return new OutboundCaptureListener(await bindTcp('outbound', at, (s) => void handle(ctx, s)));
  }

  address(): HostPort {
    const a = this.#server.address() as { address: string; port: number };
    return { host: a.address, port: a.port };
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }
}

async function handle(ctx: AgentContext, socket: Socket): Promise<void> {
  socket.on('error', () => {});
  if (ctx.drain.draining) return void socket.destroy();
  socket.pause();
  const orig = ctx.originalDestination?.(socket);
  const ip = socket.remoteAddress ?? '';
  const dst =
    !orig || (orig.ip === socket.localAddress && orig.port === socket.localPort)
      ? { host: socket.localAddress ?? '', port: socket.localPort ?? 0 }
      : { host: orig.ip, port: orig.port };
  const out = await openOutbound(
    ctx,
    { ip, port: socket.remotePort ?? 0, workload: ctx.state.current.localWorkload(ip) },
    dst,
  );
  if (!out.ok) return void socket.resetAndDestroy();
  out.attach(socket);
  socket.resume();
}
