// `mtun check SRC DST[:PORT]` decided: a pure function from the mesh model, the compiled
// policies and (when reachable) the two agents' config dumps to a report. Decide here,
// print and fetch in cli/check.ts. The link passes only when it is mTLS and allowed:
// both ends in the mesh, the source's traffic captured (its node's agent serves it, and the
// destination's agent has seen no bypassed plaintext from it), the policy allows, and the
// connections both agents recorded on this edge, if any, were mTLS.
import { SpiffeId } from '../identity/spiffe-id.js';
import { qualifiedName, type Workload } from '../mesh/types.js';
import { hardenedNames } from '../policy/hardened.js';
import {
  authorize,
  type CompiledPolicies,
  type Decision,
  peerAuthentication,
} from '../policy/index.js';
import type { ConfigDump, DumpRecent } from './admin-client.js';

export interface CheckTarget {
  readonly source: Workload;
  readonly destination: Workload;
  /** The pod IP and (target) port the connection reaches. */
  readonly ip: string;
  readonly port: number;
  /** When DST named a service: `namespace/name` and its port. */
  readonly service?: { readonly name: string; readonly port: number; readonly vip?: string };
}

export interface AgentView {
  readonly node: string;
  readonly dump: ConfigDump | undefined;
  /** Why the dump could not be read (undefined when read, or not asked for). */
  readonly error: string | undefined;
}

export interface Finding {
  readonly ok: boolean;
  readonly what: string;
  readonly text: string;
}

export interface CheckReport {
  readonly verdict: 'mtls-allowed' | 'not-mtls' | 'denied';
  readonly summary: string;
  readonly findings: readonly Finding[];
  readonly decision: Decision;
  readonly evidence: readonly (DumpRecent & { readonly reporter: string })[];
  readonly bypass: { readonly count: number; readonly lastSeen?: string } | undefined;
}

const ipOf = (addr: string | undefined) => addr?.replace(/^\[?([^\]]*?)\]?:\d+$/, '$1');

export function checkLink(
  target: CheckTarget,
  policies: CompiledPolicies,
  trustDomain: string,
  agents: { readonly source: AgentView; readonly destination: AgentView },
): CheckReport {
  const { source: src, destination: dst } = target;
  const f: Finding[] = [];
  const srcId = SpiffeId.of(trustDomain, src.meta.namespace, src.serviceAccount);
  const dstId = SpiffeId.of(trustDomain, dst.meta.namespace, dst.serviceAccount);
  const srcName = qualifiedName(src.meta);
  const dstName = qualifiedName(dst.meta);

  // 1. Capture of the source.
  const sd = agents.source.dump;
  const served = sd?.mtun?.localWorkloads.includes(srcName);
  f.push({
    what: 'capture',
    ok: src.inMesh && served !== false,
    text: !src.inMesh
      ? `${srcName} is not in the mesh (istio.io/dataplane-mode): its traffic leaves in plaintext`
      : sd
        ? served
          ? `${srcName} is in the mesh; the agent of ${agents.source.node} serves it (live)`
          : `${srcName} is in the mesh but the agent of ${agents.source.node} does not list it as local`
        : `${srcName} is in the mesh (on ${src.node ?? 'no node'}); its agent was not asked${agents.source.error ? ` (${agents.source.error})` : ''}`,
  });
  if (!dst.inMesh)
    f.push({
      what: 'destination',
      ok: false,
      text: `${dstName} is not in the mesh: the source's agent sends plain TCP to it`,
    });

  // 2. mTLS mode at the destination.
  const mtls = peerAuthentication(dst, target.port, policies);
  f.push({
    what: 'mTLS mode',
    ok: true,
    text: `${mtls.mode} on ${dstName} port ${target.port}, ${
      !mtls.policy
        ? 'no PeerAuthentication applies'
        : mtls.policy.endsWith(`/${hardenedNames.strict}`)
          ? `set by the hardened profile (${mtls.policy})`
          : `set by PeerAuthentication ${mtls.policy}`
    }`,
  });

  // 3. Identities: expected, and the certificates the agents hold.
  const held = (view: AgentView, id: SpiffeId): Finding => {
    const c = view.dump?.certificates.find((x) => x.identity === id.toString());
    const expires = c?.certChain[0]?.expirationTime;
    return {
      what: 'identity',
      ok: view.dump === undefined || c?.state === 'Available',
      text: view.dump
        ? c
          ? `${id} on ${view.node}: ${c.state}${expires ? `, expires ${expires}` : ''}`
          : `${id}: the agent of ${view.node} holds no certificate for it`
        : `${id} expected (agent of ${view.node} not asked)`,
    };
  };
  f.push(held(agents.source, srcId));
  f.push(held(agents.destination, dstId));

  // 4. Authorization as the destination agent decides a tunnel from the source.
  const decision = authorize(
    {
      source: { identity: src.inMesh ? srcId : undefined, ip: src.ips[0] ?? '0.0.0.0' },
      destination: { workload: dst, ip: target.ip, port: target.port },
    },
    policies,
  );
  f.push({
    what: 'authorization',
    ok: decision.verdict === 'allow',
    text: `${decision.verdict}${decision.policy ? ` by ${decision.policyKind} ${decision.policy}${decision.rule !== null ? ` rule ${decision.rule}` : ''}` : ''}: ${decision.reason}`,
  });

  // 5. Bypass seen at the destination.
  const dd = agents.destination.dump;
  const pair = dd?.mtun?.captureBypass.pairs.find(
    (p) => p.source === srcName && p.destination === dstName,
  );
  f.push({
    what: 'bypass',
    ok: !pair,
    text: !dd
      ? 'unknown (the destination agent was not read)'
      : pair
        ? `CAPTURE BYPASSED: ${pair.count} plaintext connection(s) from ${srcName} (${pair.sourceIp}) reached ${dstName}, last ${pair.lastSeen} (${pair.lastOutcome}); the source node's capture did not see them`
        : `none seen by the agent of ${agents.destination.node}`,
  });

  // 6. Evidence: this edge's recent connections as each agent recorded them.
  const srcIps = new Set(src.ips);
  const onEdge = (c: DumpRecent) => {
    const from = ipOf(c.src);
    const to = c.dst;
    const toTarget =
      to === `${target.ip}:${target.port}` ||
      (target.service?.vip !== undefined && to === `${target.service.vip}:${target.service.port}`);
    return from !== undefined && srcIps.has(from) && toTarget;
  };
  const evidence = [
    ...(sd?.mtun?.recentConnections ?? [])
      .filter((c) => c.direction === 'outbound' && onEdge(c))
      .map((c) => ({ ...c, reporter: agents.source.node })),
    ...(dd?.mtun?.recentConnections ?? [])
      .filter((c) => c.direction === 'inbound' && onEdge(c))
      .map((c) => ({ ...c, reporter: agents.destination.node })),
  ].sort((a, b) => (a.at < b.at ? -1 : 1));
  const plaintext = evidence.filter((c) => c.security !== 'mutual_tls');
  f.push({
    what: 'evidence',
    ok: plaintext.length === 0,
    text:
      evidence.length === 0
        ? 'no recent connection on this edge recorded by the agents read'
        : `${evidence.length} recent connection(s): ${evidence.length - plaintext.length} mTLS, ${plaintext.length} plaintext`,
  });

  const denied = decision.verdict === 'deny';
  const mtlsOk = f.filter((x) => x.what !== 'authorization').every((x) => x.ok);
  const verdict = !mtlsOk ? 'not-mtls' : denied ? 'denied' : 'mtls-allowed';
  const summary =
    verdict === 'mtls-allowed'
      ? `OK: ${srcName} -> ${dstName}:${target.port} is mTLS (${srcId} -> ${dstId}) and allowed`
      : verdict === 'denied'
        ? `DENIED: ${srcName} -> ${dstName}:${target.port} would be mTLS but policy denies it`
        : `NOT mTLS: ${srcName} -> ${dstName}:${target.port}: ${f
            .filter((x) => !x.ok && x.what !== 'authorization')
            .map((x) => x.what)
            .join(', ')}`;
  return {
    verdict,
    summary,
    findings: f,
    decision,
    evidence,
    bypass: pair ? { count: pair.count, lastSeen: pair.lastSeen } : undefined,
  };
}
