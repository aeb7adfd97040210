// AuthorizationPolicies that ztunnel would not enforce as written (AUDIT, CUSTOM, targetRefs,
// HTTP attributes, DENY without rules) are said once, when loaded: a warning in the log with
// Istio's status message (policy/status.ts), and mtun_authorization_policy_status{policy,
// reason} = 1 while the policy is in force. Said again only when its message changes.
import type { Gauge } from 'prom-client';
import type { Logger } from '../../lib/logger.js';
import type { AuthorizationPolicy } from '../../mesh/types.js';
import { policyStatuses } from '../../policy/index.js';

export class PolicyStatusReporter {
  readonly #gauge: Gauge<'policy' | 'reason'>;
  readonly #logger: Logger;
  #said = new Map<string, string>();

  constructor(gauge: Gauge<'policy' | 'reason'>, logger: Logger) {
    this.#gauge = gauge;
    this.#logger = logger;
  }

  update(policies: readonly AuthorizationPolicy[]): void {
    const now = policyStatuses(policies);
    const said = new Map<string, string>();
    this.#gauge.reset();
    for (const s of now.values()) {
      said.set(s.policy, s.message);
      this.#gauge.set({ policy: s.policy, reason: s.reason }, 1);
      if (this.#said.get(s.policy) === s.message) continue;
      this.#logger.warn(
        {
          policy: s.policy,
          condition: s.condition,
          reason: s.reason,
          enforced: s.enforced,
          status: s.message,
        },
        s.enforced === 'none'
          ? 'AuthorizationPolicy has no effect at L4'
          : 'AuthorizationPolicy is enforced only in part at L4',
      );
    }
    this.#said = said;
  }
}
