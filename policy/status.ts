// What Istio would say about an AuthorizationPolicy that ztunnel does not (fully) enforce:
// the `ZtunnelAccepted` status condition istiod writes (pilot/pkg/serviceregistry/ambient/
// authorization.go convertAuthorizationPolicy, with its message texts; pilot/pkg/model/
// service.go WorkloadAuthorization.GetConditions), plus the two cases istiod leaves without
// a ztunnel condition: targetRefs (for waypoints) and a DENY policy without rules (which
// istiod's validation refuses but converts to a policy that matches nothing). Pure.
import { type AuthorizationPolicy, qualifiedName } from '../mesh/types.js';
import { compileAuthorizationPolicy } from './compile-authz.js';

export interface PolicyStatus {
  /** `namespace/name`. */
  readonly policy: string;
  /** Istio's condition type. */
  readonly condition: 'ZtunnelAccepted';
  /** `UnsupportedValue` as istiod writes it; `NotForZtunnel` and `NoRules` are mtun's names
   *  for the cases istiod has no ztunnel condition for. */
  readonly reason: 'UnsupportedValue' | 'NotForZtunnel' | 'NoRules';
  readonly message: string;
  /** How much of the policy is enforced at L4. */
  readonly enforced: 'none' | 'partly';
}

// istiod's texts (authorization.go: httpRuleFmt and its boilerplates).
const HTTP_RULE = (found: string, boilerplate: string) =>
  `ztunnel does not support HTTP attributes (found: ${found}). In ambient mode you must use a waypoint proxy to enforce HTTP rules. ${boilerplate}`;
const DENY_NO_EFFECT =
  'After omitting unsupported HTTP attributes, this DENY policy has no enforceable rules at ztunnel and will have no effect. Deploy a waypoint proxy and use a targetRef to enforce this policy.';
const DENY_MIXED =
  'DENY policy with HTTP attributes is enforced without the HTTP rules. This will be more restrictive than requested.';
const ALLOW_RULES =
  'Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.';

/** The condition for one policy, or undefined when ztunnel enforces it as written. */
export function policyStatus(ap: AuthorizationPolicy): PolicyStatus | undefined {
  const policy = qualifiedName(ap.meta);
  const status = (
    reason: PolicyStatus['reason'],
    message: string,
    enforced: PolicyStatus['enforced'],
  ): PolicyStatus => ({ policy, condition: 'ZtunnelAccepted', reason, message, enforced });
  if (ap.targetRefs.length > 0) {
    return status(
      'NotForZtunnel',
      'the policy selects its targets with targetRefs, which only waypoint proxies enforce ("TargetRef is not intended for ztunnel"); it has no effect at L4',
      'none',
    );
  }
  if (ap.action === 'AUDIT' || ap.action === 'CUSTOM')
    return status('UnsupportedValue', `ztunnel does not support the ${ap.action} action`, 'none');
  if (ap.action === 'DENY' && !ap.rules?.length) {
    // istiod's validation message (pkg/config/validation/validation.go).
    return status(
      'NoRules',
      'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request',
      'none',
    );
  }
  const compiled = compileAuthorizationPolicy(ap).compiled;
  if (!compiled || compiled.l7.length === 0) return undefined;
  const found = [...new Set(compiled.l7.flatMap((r) => r.fields))].sort().join(', ');
  if (compiled.action === 'ALLOW')
    return status('UnsupportedValue', HTTP_RULE(found, ALLOW_RULES), 'partly');
  // hasEffectiveRules: a rule can match only if each clause has a non-empty group.
  const effective = compiled.rules.some((r) => r.clauses.every((c) => c.some((g) => !g.empty)));
  return effective
    ? status('UnsupportedValue', HTTP_RULE(found, DENY_MIXED), 'partly')
    : status('UnsupportedValue', HTTP_RULE(found, DENY_NO_EFFECT), 'none');
}

/** Every policy of a mesh that ztunnel would not enforce as written, by key. */
export function policyStatuses(
  policies: readonly AuthorizationPolicy[],
): ReadonlyMap<string, PolicyStatus> {
  const out = new Map<string, PolicyStatus>();
  for (const ap of policies) {
    const s = policyStatus(ap);
    if (s) out.set(s.policy, s);
  }
  return out;
}
