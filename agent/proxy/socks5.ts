// SOCKS5 outbound listener (15080, loopback): for hosts without iptables, the local demo
// and tests. The source workload is the mesh pod whose IP the client connects from, or the
// configured --socks5-workload. Handshake bytes are bounded and timed.
import type { Socket } from 'node:net';
import type { Workload } from '../../mesh/types.js';
import type { HostPort } from '../config.js';
import type { AgentContext } from '../context.js';
import { TcpListener } from './listener.js';
import { openOutbound } from './outbound.js';
import { parseGreeting, parseRequest, REPLY, reply } from './socks5-protocol.js';

const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_HANDSHAKE_BYTES = 600;

export const Socks5Listener = {
  create: (ctx: AgentContext, at: HostPort): Promise<TcpListener> =>
    TcpListener.create('socks5', at, ctx.drain, (s) => void handle(ctx, s)),
};

function sourceWorkload(ctx: AgentContext, ip: string): Workload | undefined {
  const view = ctx.state.current;
  const byIp = view.localWorkload(ip);
  if (byIp) return byIp;
  const named = ctx.config.socks5Workload;
  if (!named) return undefined;
  const [ns, name] = named.split('/');
  const w = view.snapshot.workload(ns!, name!);
  return w?.inMesh && w.node === ctx.config.node ? w : undefined;
}

async function handle(ctx: AgentContext, socket: Socket): Promise<void> {
  const timer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
  let buf = Buffer.alloc(0);
  let phase: 'greeting' | 'request' = 'greeting';
  const onData = async (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length > MAX_HANDSHAKE_BYTES) return void socket.destroy();
    const step = phase === 'greeting' ? parseGreeting(buf) : parseRequest(buf);
    if (step.need === 'more') return;
    if (step.need === 'reply') {
      socket.write(step.reply);
      buf = buf.subarray(step.consumed);
      if (step.fail) {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.end();
        return;
      }
      phase = 'request';
      if (buf.length > 0) await onData(Buffer.alloc(0));
      return;
    }
    // CONNECT: stop reading until the upstream side exists; keep any early data.
    clearTimeout(timer);
    socket.off('data', onData);
    socket.pause();
    const early = buf.subarray(step.consumed);
    const out = await openOutbound(
      ctx,
      {
        ip: socket.remoteAddress ?? '',
        port: socket.remotePort ?? 0,
        workload: sourceWorkload(ctx, socket.remoteAddress ?? ''),
      },
      { host: step.target.host, port: step.target.port },
    );
    if (socket.destroyed) {
      if (out.ok) out.abandon();
      return;
    }
    if (!out.ok) {
      socket.end(reply(out.socksReply));
      return;
    }
    socket.write(reply(REPLY.succeeded));
    if (early.length > 0) socket.unshift(early);
    out.attach(socket);
    socket.resume();
  };
  socket.on('data', onData);
}
