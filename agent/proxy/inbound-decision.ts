// The inbound decision shared by every path into a local pod (HBONE 15008, plaintext 15006,
// same-node short cut): the destination must be a mesh pod on this node, then
// PeerAuthentication and AuthorizationPolicy decide. Pure.
import type { SpiffeId } from '../../identity/spiffe-id.js';
import type { Workload } from '../../mesh/types.js';
import { authorize, type Connection, type Decision } from '../../policy/index.js';
import type { MeshView } from '../state.js';

export interface InboundRequest {
  /** Verified peer identity; undefined for plaintext. */
  readonly peerIdentity: SpiffeId | undefined;
  readonly peerIp: string;
  readonly targetIp: string;
  readonly targetPort: number;
}

export type InboundVerdict =
  | {
      readonly allow: true;
      readonly workload: Workload;
      readonly decision: Decision;
      readonly connection: Connection;
    }
  | {
      readonly allow: false;
      readonly code: 'DENY';
      readonly workload: Workload;
      readonly decision: Decision;
      readonly reason: string;
    }
  | {
      readonly allow: false;
      readonly code: 'NOT_LOCAL';
      readonly workload: undefined;
      readonly decision: undefined;
      readonly reason: string;
    };

export function decideInbound(view: MeshView, req: InboundRequest): InboundVerdict {
  const workload = view.localWorkload(req.targetIp);
  if (!workload) {
    return {
      allow: false,
      code: 'NOT_LOCAL',
      workload: undefined,
      decision: undefined,
      reason: `${req.targetIp} is not a mesh pod on this node`,
    };
  }
  const connection: Connection = {
    source: { identity: req.peerIdentity, ip: req.peerIp },
    destination: { workload, ip: req.targetIp, port: req.targetPort },
  };
  const decision = authorize(connection, view.policies);
  if (decision.verdict === 'allow') return { allow: true, workload, decision, connection };
  return { allow: false, code: 'DENY', workload, decision, reason: decision.reason };
}

/** What a verdict puts into the connection record (access log, metrics). */
export function verdictFields(v: InboundVerdict): {
  verdict: 'allow' | 'deny';
  policy: string | null;
  reason: string;
} {
  return v.allow
    ? { verdict: 'allow', policy: v.decision.policy, reason: v.decision.reason }
    : { verdict: 'deny', policy: v.decision?.policy ?? null, reason: v.reason };
}

/** Re-evaluates an open connection against a new view (policy changed). */
export function stillAllowed(view: MeshView, connection: Connection): Decision | undefined {
  const workload = view.localWorkload(connection.destination.ip);
  if (!workload) return undefined;
  return authorize(
    { ...connection, destination: { ...connection.destination, workload } },
    view.policies,
  );
}
