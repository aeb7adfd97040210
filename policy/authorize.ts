// The decision for one connection, in the order ztunnel's `assert_rbac` (src/state.rs)
// applies Istio's rules: any matching DENY policy denies; with no ALLOW policy the connection
// is allowed; a matching ALLOW policy allows; otherwise deny. Dry-run policies are evaluated
// alongside and reported, never enforced (ztunnel PRs #1659, #1745). Pure: no I/O, no clock.
import { type MeshObjects, qualifiedName, type Workload } from '../mesh/types.js';
import { type Applicable, CompiledPolicies, compile } from './compiled.js';
import { canonicalIp } from './ip.js';
import { type CompiledPolicy, firstMatchingRule, type MatchInput } from './match.js';
import type { Connection, Decision, DryRunMatch, DryRunReport, MtlsResolution } from './types.js';

export type PolicySource =
  | CompiledPolicies
  | Pick<MeshObjects, 'authorizationPolicies' | 'peerAuthentications'>;

const compiledFrom = (p: PolicySource) => (p instanceof CompiledPolicies ? p : compile(p));

type Outcome = Omit<Decision, 'dryRun'>;

function whyNoAllowMatched(allow: readonly CompiledPolicy[], plaintext: boolean): string {
  const notes = allow.map((p) => {
    if (p.kind === 'HardenedProfile')
      return `${p.key} (the hardened profile: deny unless an ALLOW policy names the caller)`;
    if (p.l7.length === 0)
      return p.rules.length > 0 ? p.key : `${p.key} (no rules: allows nothing)`;
    const fields = [...new Set(p.l7.flatMap((r) => r.fields))].join(', ');
    const which = p.rules.length > 0 ? `rules ${p.l7.map((r) => r.rule).join(', ')}` : 'every rule';
    return `${p.key} (${which} use HTTP attributes ztunnel cannot see: ${fields}; such rules never match at L4)`;
  });
  const n = allow.length;
  let reason = `no ALLOW policy matched; ${n} ALLOW polic${n === 1 ? 'y applies' : 'ies apply'}: ${notes.join(', ')}`;
  if (plaintext)
    reason += '; the connection is plaintext, so it has no principal, namespace or service account';
  return reason;
}

function decide(
  deny: readonly CompiledPolicy[],
  allow: readonly CompiledPolicy[],
  input: MatchInput,
  workload: Workload,
): Outcome {
  // "If there are any DENY policies that match the request, deny the request."
  for (const p of deny) {
    const rule = firstMatchingRule(p, input);
    if (rule < 0) continue;
    if (p.kind === 'HardenedProfile') {
      return {
        verdict: 'deny',
        policy: p.key,
        rule: null,
        policyKind: p.kind,
        reason: `plaintext connection rejected: the hardened profile requires mTLS mesh-wide (port ${input.port})`,
      };
    }
    if (p.kind === 'PeerAuthentication') {
      return {
        verdict: 'deny',
        policy: p.key,
        rule: null,
        policyKind: p.kind,
        reason: `plaintext connection rejected: PeerAuthentication ${p.key} requires mTLS (STRICT) on port ${input.port}`,
      };
    }
    const summary = p.rules.find((r) => r.index === rule)?.summary;
    return {
      verdict: 'deny',
      policy: p.key,
      rule,
      policyKind: p.kind,
      reason: `DENY policy ${p.key} matched rule ${rule}: ${summary}`,
    };
  }
  // "If there are no ALLOW policies for the workload, allow the request."
  if (allow.length === 0) {
    return {
      verdict: 'allow',
      policy: null,
      rule: null,
      policyKind: null,
      reason: `no ALLOW policy applies to ${qualifiedName(workload.meta)} and no DENY policy matched`,
    };
  }
  // "If any of the ALLOW policies match the request, allow the request." Else "Deny the request."
  for (const p of allow) {
    const rule = firstMatchingRule(p, input);
    if (rule < 0) continue;
    const summary = p.rules.find((r) => r.index === rule)?.summary;
    return {
      verdict: 'allow',
      policy: p.key,
      rule,
      policyKind: p.kind,
      reason: `ALLOW policy ${p.key} matched rule ${rule}: ${summary}`,
    };
  }
  return {
    verdict: 'deny',
    policy: null,
    rule: null,
    policyKind: null,
    reason: whyNoAllowMatched(allow, input.principal === undefined),
  };
}

function dryRunReport(app: Applicable, input: MatchInput, workload: Workload): DryRunReport {
  const matched: DryRunMatch[] = [];
  for (const p of app.dryRun) {
    const rule = firstMatchingRule(p, input);
    if (rule >= 0) matched.push({ policy: p.key, action: p.action, rule });
  }
  const dryDeny = app.dryRun.filter((p) => p.action === 'DENY');
  const dryAllow = app.dryRun.filter((p) => p.action === 'ALLOW');
  const wouldBe = decide([...app.deny, ...dryDeny], [...app.allow, ...dryAllow], input, workload);
  return {
    verdict: wouldBe.verdict,
    policy: wouldBe.policy,
    rule: wouldBe.rule,
    reason: `with dry-run policies enforced: ${wouldBe.reason}`,
    matched,
  };
}

function invalid(reason: string): Decision {
  return { verdict: 'deny', policy: null, rule: null, policyKind: null, reason };
}

/** Decides one inbound connection. Fails closed (deny) on an unparsable address. */
export function authorize(conn: Connection, policies: PolicySource): Decision {
  const { source, destination } = conn;
  const sourceIp = canonicalIp(source.ip);
  if (!sourceIp)
    return invalid(
      `invalid connection: source IP ${JSON.stringify(source.ip)} is not an IP address`,
    );
  const destinationIp = canonicalIp(destination.ip);
  if (!destinationIp) {
    return invalid(
      `invalid connection: destination IP ${JSON.stringify(destination.ip)} is not an IP address`,
    );
  }
  const id = source.identity;
  const input: MatchInput = {
    principal: id?.principal(),
    namespace: id?.namespace ?? '',
    serviceAccount: id?.serviceAccount,
    sourceIp,
    destinationIp,
    port: destination.port,
  };
  const app = compiledFrom(policies).applicable(destination.workload);
  const outcome = decide(app.deny, app.allow, input, destination.workload);
  return app.dryRun.length === 0
    ? outcome
    : { ...outcome, dryRun: dryRunReport(app, input, destination.workload) };
}

/** The effective PeerAuthentication mode of a workload port: STRICT means plaintext is
 *  rejected there (the agent's plaintext listener and metrics need this). */
export function peerAuthentication(
  workload: Workload,
  port: number,
  policies: PolicySource,
): MtlsResolution {
  return compiledFrom(policies).applicable(workload).peerAuthn.mtls(port);
}
