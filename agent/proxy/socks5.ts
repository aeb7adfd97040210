// SOCKS5 outbound listener (15080, loopback): for hosts without iptables, the local demo
// and tests. It relays for this node's pods only: the client is the pod whose IP it
// connects from (its identity if it is in the mesh), or, where configured, the pod named by
// --socks5-workload; any other local process is refused (issue 12, item 5: it got an open
// plain-TCP relay to any non-mesh address, the CA or another agent's admin port included),
// unless --socks5-allow-non-pod-clients. Handshake bytes are bounded and timed.
import type { Socket } from 'node:net';
import { type HostPort, peerAddr } from '../../lib/address.js';
import { RefusalLog } from '../../lib/refusal-log.js';
import type { Workload } from '../../mesh/types.js';
import type { AgentConfig } from '../config.js';
import type { AgentContext } from '../context.js';
import { ConnectionRecord } from '../observe/record.js';
import { ConnectionFailure, socksReplyOf } from '../outcome.js';
import type { MeshView } from '../state.js';
import { ClientSocket } from './downstream.js';
import { TcpListener } from './listener.js';
import { proxyOutbound } from './outbound.js';
import { parseGreeting, parseRequest, REPLY, reply } from './socks5-protocol.js';

const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_HANDSHAKE_BYTES = 600;

export const Socks5Listener = {
  create: (ctx: AgentContext, at: HostPort): Promise<TcpListener> => {
    // Per client address: 5 warnings at once, then 5 a minute (each is an access-log line).
    const refusals = new RefusalLog(ctx.logger.child({ listener: 'socks5' }), {
      burst: 5,
      perMinute: 5,
    });
    return TcpListener.create('socks5', at, ctx.drain, (s) => void handle(ctx, s, refusals));
  },
};

/** Who a SOCKS5 client is, from its (canonical) source IP: decided before anything is
 *  relayed. `workload` is the mesh pod whose identity it gets, if any. */
export type Socks5Source =
  | { readonly allowed: true; readonly workload: Workload | undefined }
  | { readonly allowed: false; readonly reason: string };

export function socks5Source(
  ip: string,
  view: MeshView,
  config: Pick<AgentConfig, 'node' | 'socks5Workload' | 'socks5AllowNonPodClients'>,
): Socks5Source {
  const pod = view.snapshot.workloadByIp(ip);
  if (pod && pod.node === config.node)
    return { allowed: true, workload: pod.inMesh ? pod : undefined };
  const named = config.socks5Workload;
  if (named) {
    const [ns, name] = named.split('/');
    const w = view.snapshot.workload(ns!, name!);
    if (w?.inMesh && w.node === config.node) return { allowed: true, workload: w };
    if (!config.socks5AllowNonPodClients)
      return {
        allowed: false,
        reason: `source ${ip} is no pod of node ${config.node}, and --socks5-workload ${named} is not a mesh pod on it`,
      };
  }
  if (config.socks5AllowNonPodClients) return { allowed: true, workload: undefined };
  return {
    allowed: false,
    reason: `source ${ip} is no pod of node ${config.node}: SOCKS5 relays only for this node's pods (--socks5-workload or --socks5-allow-non-pod-clients to allow others)`,
  };
}

async function handle(ctx: AgentContext, socket: Socket, refusals: RefusalLog): Promise<void> {
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
    const peer = peerAddr(socket);
    if (!peer) return void socket.destroy(); // gone while we read its request
    const { ip, port } = peer;
    // SOCKS5 is only the answer: a reply for the outcome, and early data given back to the
    // application once the connection is carried.
    const client = new ClientSocket(ctx, socket, {
      refused: (failure) => socket.end(reply(socksReplyOf(failure))),
      succeeded: () => {
        socket.write(reply(REPLY.succeeded));
        if (early.length > 0) socket.unshift(early);
      },
    });
    const source = socks5Source(ip, ctx.state.current, ctx.config);
    if (!source.allowed)
      return refuse(ctx, refusals, client, { ip, port }, step.target, source.reason);
    // Not awaited: this handshake's scope (its buffer, the greeting) must not live as long as
    // the connection does.
    void proxyOutbound(
      ctx,
      client,
      { ...peer, workload: source.workload },
      { host: step.target.host, port: step.target.port },
    );
  };
  socket.on('data', onData);
}

/** A refused client: one access-log line and metrics update, and a rate-limited warning. */
function refuse(
  ctx: AgentContext,
  refusals: RefusalLog,
  client: ClientSocket,
  src: { ip: string; port: number },
  dst: HostPort,
  reason: string,
): Promise<void> {
  const recorded = ConnectionRecord.run(
    {
      direction: 'outbound',
      src: { addr: `${src.ip}:${src.port}` },
      dst: { addr: `${dst.host}:${dst.port}` },
      security: 'none',
    },
    ctx.metrics,
    ctx.accessLog,
    () => Promise.reject(new ConnectionFailure('UNKNOWN_SOURCE', reason)),
    client,
  );
  refusals.warn(
    src.ip,
    {
      code: 'UNKNOWN_SOURCE',
      src: `${src.ip}:${src.port}`,
      dst: `${dst.host}:${dst.port}`,
      reason,
    },
    'SOCKS5 client refused',
  );
  return recorded;
}
