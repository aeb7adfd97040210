// The compiled form of a policy and its matching, a transcription of ztunnel's
// `src/rbac.rs` (`Authorization::matches`, `RbacMatch`, `StringMatch`,
// `ServiceAccountMatch`). Structure: a policy matches if ANY rule matches; a rule matches if
// ALL its clauses match; a clause matches if ANY of its match groups matches; inside a group,
// every field set must match (positive: one value matches; negative: no value matches).
import { type Cidr, cidrContains, type IpAddr } from './ip.js';
import type { PolicyKind } from './types.js';

export type StringMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'suffix'; readonly value: string }
  | { readonly kind: 'presence' };

/** istiod's `stringToMatch`: `*` alone = present (non-empty); a leading `*` = suffix match;
 *  a trailing `*` = prefix match; everything else, including a `*` in the middle, is exact. */
export function compileStringMatch(v: string): StringMatch {
  if (v === '*') return { kind: 'presence' };
  if (v.startsWith('*')) return { kind: 'suffix', value: v.slice(1) };
  if (v.endsWith('*')) return { kind: 'prefix', value: v.slice(0, -1) };
  return { kind: 'exact', value: v };
}

function stringMatches(m: StringMatch, s: string): boolean {
  switch (m.kind) {
    case 'exact':
      return s === m.value;
    case 'prefix':
      return s.startsWith(m.value);
    case 'suffix':
      return s.endsWith(m.value);
    case 'presence':
      return s !== '';
  }
}

export interface ServiceAccountMatch {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** ztunnel's RbacMatch; an empty list means "not set". */
export interface MatchGroup {
  readonly namespaces: readonly StringMatch[];
  readonly notNamespaces: readonly StringMatch[];
  readonly serviceAccounts: readonly ServiceAccountMatch[];
  readonly notServiceAccounts: readonly ServiceAccountMatch[];
  readonly principals: readonly StringMatch[];
  readonly notPrincipals: readonly StringMatch[];
  readonly sourceIps: readonly Cidr[];
  readonly notSourceIps: readonly Cidr[];
  readonly destinationIps: readonly Cidr[];
  readonly notDestinationIps: readonly Cidr[];
  readonly destinationPorts: readonly number[];
  readonly notDestinationPorts: readonly number[];
  /** No field set: ztunnel skips such a group (`mg.is_empty()` → continue), so it never
   *  matches. This is how stripped L7 attributes turn a DENY clause into a no-op. */
  readonly empty: boolean;
}

const EMPTY_GROUP_FIELDS: Omit<MatchGroup, 'empty'> = Object.freeze({
  namespaces: [],
  notNamespaces: [],
  serviceAccounts: [],
  notServiceAccounts: [],
  principals: [],
  notPrincipals: [],
  sourceIps: [],
  notSourceIps: [],
  destinationIps: [],
  notDestinationIps: [],
  destinationPorts: [],
  notDestinationPorts: [],
});

export function matchGroup(fields: Partial<Omit<MatchGroup, 'empty'>>): MatchGroup {
  const g = { ...EMPTY_GROUP_FIELDS, ...fields };
  const empty = Object.values(g).every((list) => (list as readonly unknown[]).length === 0);
  return Object.freeze({ ...g, empty });
}

export interface CompiledRule {
  /** Index in the policy's `spec.rules` (kept across rules dropped for L7 attributes). */
  readonly index: number;
  /** AND of clauses; each clause is an OR of groups; an empty clause matches. */
  readonly clauses: readonly (readonly MatchGroup[])[];
  /** A short description for decisions and `authz check`. */
  readonly summary: string;
}

export interface CompiledPolicy {
  readonly key: string; // namespace/name of the object it came from
  readonly kind: PolicyKind;
  readonly namespace: string;
  readonly action: 'ALLOW' | 'DENY';
  readonly dryRun: boolean;
  readonly rules: readonly CompiledRule[];
  /** Rules left out (ALLOW) or weakened (DENY) because they use attributes ztunnel cannot
   *  see at L4, by rule index, for explanations. */
  readonly l7: readonly { readonly rule: number; readonly fields: readonly string[] }[];
}

/** A connection prepared once for matching against many policies. */
export interface MatchInput {
  /** Identity without `spiffe://`, undefined for plaintext. */
  readonly principal: string | undefined;
  /** Namespace from the identity; '' for plaintext (ztunnel `unwrap_or_default`). */
  readonly namespace: string;
  readonly serviceAccount: string | undefined;
  readonly sourceIp: IpAddr;
  readonly destinationIp: IpAddr;
  readonly port: number;
}

function anyString(list: readonly StringMatch[], s: string): boolean {
  for (const m of list) if (stringMatches(m, s)) return true;
  return false;
}

// ztunnel `matches_principal`: the check strips `spiffe://` and fails without it, so for a
// plaintext peer (empty identity) no principal matcher matches, not even `*`.
function anyPrincipal(list: readonly StringMatch[], p: string | undefined): boolean {
  return p !== undefined && anyString(list, p);
}

// ztunnel ServiceAccountMatch: namespace and service account only, trust domain ignored.
function anyServiceAccount(list: readonly ServiceAccountMatch[], c: MatchInput): boolean {
  if (c.serviceAccount === undefined) return false;
  for (const m of list) {
    if (m.namespace === c.namespace && m.serviceAccount === c.serviceAccount) return true;
  }
  return false;
}

function anyCidr(list: readonly Cidr[], ip: IpAddr): boolean {
  for (const cidr of list) if (cidrContains(cidr, ip)) return true;
  return false;
}

/** ztunnel `matches_internal` for every field: a positive list, when set, must have a hit;
 *  a negative list, when set, must have none. Empty lists are "not set". */
function groupMatches(g: MatchGroup, c: MatchInput): boolean {
  const { destinationIp, sourceIp, port, principal, namespace } = c;
  if (g.destinationIps.length > 0 && !anyCidr(g.destinationIps, destinationIp)) return false;
  if (anyCidr(g.notDestinationIps, destinationIp)) return false;
  if (g.sourceIps.length > 0 && !anyCidr(g.sourceIps, sourceIp)) return false;
  if (anyCidr(g.notSourceIps, sourceIp)) return false;
  if (g.destinationPorts.length > 0 && !g.destinationPorts.includes(port)) return false;
  if (g.notDestinationPorts.includes(port)) return false;
  if (g.serviceAccounts.length > 0 && !anyServiceAccount(g.serviceAccounts, c)) return false;
  if (anyServiceAccount(g.notServiceAccounts, c)) return false;
  if (g.principals.length > 0 && !anyPrincipal(g.principals, principal)) return false;
  if (anyPrincipal(g.notPrincipals, principal)) return false;
  if (g.namespaces.length > 0 && !anyString(g.namespaces, namespace)) return false;
  if (anyString(g.notNamespaces, namespace)) return false;
  return true;
}

function ruleMatches(rule: CompiledRule, c: MatchInput): boolean {
  for (const clause of rule.clauses) {
    if (clause.length === 0) continue; // an empty clause matches (ztunnel: clause.is_empty())
    let hit = false;
    for (const g of clause) {
      if (!g.empty && groupMatches(g, c)) {
        hit = true;
        break;
      }
    }
    if (!hit) return false;
  }
  return true;
}

/** The index (in `spec.rules`) of the first matching rule, or -1. No rules: never matches. */
export function firstMatchingRule(policy: CompiledPolicy, c: MatchInput): number {
  for (const rule of policy.rules) if (ruleMatches(rule, c)) return rule.index;
  return -1;
}
