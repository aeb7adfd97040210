// Inbound plaintext (15006): TCP to a local mesh pod that did not come through HBONE,
// redirected here by the capture rules. Decided with no identity (STRICT denies it,
// PERMISSIVE lets AuthorizationPolicy decide), then joined to the pod. Plaintext whose
// source is a mesh pod means that pod's node capture was bypassed (observe/bypass.ts): it
// is counted and flagged, and refused with --refuse-bypassed-plaintext.
import type { Socket } from 'node:net';
import { type HostPort, peerAddr } from '../../lib/address.js';
import type { AgentContext } from '../context.js';
import { isCaptureBypass } from '../observe/bypass.js';
import { ConnectionRecord } from '../observe/record.js';
import { ConnectionFailure } from '../outcome.js';
import { ClientSocket } from './downstream.js';
import { decideInbound, verdictFields } from './inbound-decision.js';
import { redirectedDestination, TcpListener } from './listener.js';
import { toLocalPod } from './local-pod.js';

export const InboundPlaintextListener = {
  create: (ctx: AgentContext, at: HostPort): Promise<TcpListener> =>
    TcpListener.create('inbound plaintext', at, ctx.drain, (s) => void handle(ctx, s)),
};

/** Not async, and the view is read once (as inbound.ts: nothing that lives as long as the
 *  connection pins the mesh view). */
function handle(ctx: AgentContext, socket: Socket): Promise<void> {
  socket.pause();
  const peer = peerAddr(socket); // canonical, as the mesh's addresses are
  if (!peer) return Promise.resolve(void socket.destroy()); // gone before we looked
  const peerIp = peer.ip;
  const orig = redirectedDestination(ctx.originalDestination, socket);
  const view = ctx.state.current;
  const src = view.snapshot.workloadByIp(peerIp);
  const verdict = !orig
    ? undefined
    : decideInbound(view, {
        peerIdentity: undefined,
        peerIp,
        targetIp: orig.ip,
        targetPort: orig.port,
      });
  const client = new ClientSocket(ctx, socket);
  return ConnectionRecord.run(
    {
      direction: 'inbound_plaintext',
      src: {
        addr: `${peer.ip}:${peer.port}`,
        workload: src?.meta.name,
        namespace: src?.meta.namespace,
      },
      dst: {
        addr: orig ? `${orig.ip}:${orig.port}` : `${socket.localAddress}:${socket.localPort}`,
        workload: verdict?.workload?.meta.name,
        namespace: verdict?.workload?.meta.namespace,
      },
      security: 'none',
      ...(verdict ? verdictFields(verdict) : {}),
    },
    ctx.metrics,
    ctx.accessLog,
    async (record) => {
      if (!verdict || !orig)
        throw new ConnectionFailure(
          'SELF_CALL',
          'connection was not redirected (no original destination): refusing a loop',
        );
      if (isCaptureBypass(src) && verdict.workload !== undefined) {
        const refuse = verdict.allow && ctx.config.refuseBypassedPlaintext;
        record.fields.captureBypass = true;
        ctx.bypass.observe(
          src,
          peerIp,
          verdict.workload,
          refuse ? 'refused' : verdict.allow ? 'allowed' : 'denied',
        );
        if (refuse) {
          const why = `plaintext from mesh pod ${src.meta.namespace}/${src.meta.name} refused: its node's capture was bypassed (--refuse-bypassed-plaintext)`;
          record.fields.verdict = 'deny';
          record.fields.reason = why;
          throw new ConnectionFailure('DENY', why);
        }
      }
      // A denial closes it without data: the client sees a reset, as with ztunnel.
      return toLocalPod(ctx, record, client, verdict, orig);
    },
    client,
  );
}
