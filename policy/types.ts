// The policy engine's public vocabulary: what a connection looks like to the receiving
// agent, and what a decision says. Plain readonly data, so decisions can be logged,
// compared in tests and printed by `mtun authz check` as they are.
import type { SpiffeId } from '../identity/spiffe-id.js';
import type { Workload } from '../mesh/types.js';

/** The peer as the receiving agent sees it. */
export interface ConnectionSource {
  /** From the verified client certificate; undefined for plaintext (ztunnel's
   *  inbound_passthrough: plaintext has no identity even when its IP is a known pod). */
  readonly identity: SpiffeId | undefined;
  readonly ip: string;
}

/** The original destination: the mesh workload, the pod IP it was addressed to and the
 *  workload (target) port, never a Service port. */
export interface ConnectionDestination {
  readonly workload: Workload;
  readonly ip: string;
  readonly port: number;
}

export interface Connection {
  readonly source: ConnectionSource;
  readonly destination: ConnectionDestination;
}

export type Verdict = 'allow' | 'deny';

/** Which kind of object decided: PeerAuthentication STRICT is enforced as a DENY policy. */
export type PolicyKind = 'AuthorizationPolicy' | 'PeerAuthentication' | 'HardenedProfile';

export interface DryRunMatch {
  readonly policy: string;
  readonly action: 'ALLOW' | 'DENY';
  readonly rule: number;
}

/** Dry-run policies (`istio.io/dry-run: "true"`) are evaluated but never enforced; the agent
 *  logs this. `verdict`/`policy`/`rule`/`reason` say what would happen if they were. */
export interface DryRunReport {
  readonly verdict: Verdict;
  readonly policy: string | null;
  readonly rule: number | null;
  readonly reason: string;
  /** Every dry-run policy that matched the connection, and by which rule. */
  readonly matched: readonly DryRunMatch[];
}

export interface Decision {
  readonly verdict: Verdict;
  /** `namespace/name` of the policy that decided, null when the default decided. */
  readonly policy: string | null;
  /** Index into the deciding policy's `spec.rules`, null when no rule decided. */
  readonly rule: number | null;
  readonly policyKind: PolicyKind | null;
  readonly reason: string;
  /** Present only when dry-run policies apply to the destination. */
  readonly dryRun?: DryRunReport;
}

/** Effective PeerAuthentication for one workload port, as ambient enforces it. DISABLE is
 *  not a mode of its own in ambient (istiod treats it like PERMISSIVE). */
export interface MtlsResolution {
  readonly mode: 'STRICT' | 'PERMISSIVE';
  /** `namespace/name` of the PeerAuthentication in effect; null when none applies
   *  (ambient then accepts plaintext). */
  readonly policy: string | null;
  readonly reason: string;
}

export interface CompileOptions {
  /** Istio's root namespace (meshConfig.rootNamespace); default `istio-system`. */
  readonly rootNamespace?: string;
  /** The hardened profile (policy/hardened.ts): STRICT and deny-by-default mesh-wide. */
  readonly hardened?: boolean;
}

export const DEFAULT_ROOT_NAMESPACE = 'istio-system';
