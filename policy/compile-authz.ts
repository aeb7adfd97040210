// AuthorizationPolicy → the L4 form ztunnel enforces. A transcription of istiod's ambient
// converter (pilot/pkg/serviceregistry/ambient/authorization.go: convertAuthorizationPolicy,
// handleRule, stringToMatch, stringToServiceAccountMatch, stringToIP, stringToPort), since
// that conversion, not the API reference, is what decides ztunnel's verdicts.
import {
  type AuthorizationPolicy,
  type AuthzOperation,
  type AuthzRule,
  type AuthzSource,
  type Labels,
  qualifiedName,
} from '../mesh/types.js';
import { parseCidr } from './ip.js';
import {
  type CompiledPolicy,
  type CompiledRule,
  compileStringMatch,
  type MatchGroup,
  matchGroup,
  type ServiceAccountMatch,
} from './match.js';

/** An AuthorizationPolicy with its scope, and either its compiled form or why it has no
 *  effect at L4 (kept so that `authz check` can say so). */
export interface ScopedPolicy {
  readonly key: string;
  readonly namespace: string;
  /** undefined = no selector (namespace-wide, or mesh-wide in the root namespace). */
  readonly selector: Labels | undefined;
  readonly compiled: CompiledPolicy | undefined;
  readonly ignoredBecause: string | undefined;
}

/** The `when` keys ztunnel evaluates (istiod `l4WhenAttributes`); every other key is L7. */
const L4_WHEN_KEYS = new Set([
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
]);

const L7_OPERATION_FIELDS = [
  'hosts',
  'notHosts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
] as const;
const L7_SOURCE_FIELDS = [
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'requestPrincipals',
  'notRequestPrincipals',
] as const;

const strings = (list: readonly string[] | undefined) => (list ?? []).map(compileStringMatch);

// Unparsable entries are dropped, as istiod's stringToIP/stringToPort do (validation has
// normally rejected them already).
const cidrs = (list: readonly string[] | undefined) =>
  (list ?? []).map(parseCidr).filter((c) => c !== undefined);

const ports = (list: readonly string[] | undefined) =>
  (list ?? []).filter((p) => /^[0-9]+$/.test(p) && Number(p) <= 65535).map(Number);

/** `ns/sa`, or a bare `sa` meaning the policy's own namespace (cut at the first `/`). */
function serviceAccounts(
  list: readonly string[] | undefined,
  policyNs: string,
): ServiceAccountMatch[] {
  return (list ?? []).map((v) => {
    const slash = v.indexOf('/');
    return slash < 0
      ? { namespace: policyNs, serviceAccount: v }
      : { namespace: v.slice(0, slash), serviceAccount: v.slice(slash + 1) };
  });
}

const present = (list: readonly string[] | undefined) => (list?.length ?? 0) > 0;

function operationGroup(op: AuthzOperation): MatchGroup {
  return matchGroup({ destinationPorts: ports(op.ports), notDestinationPorts: ports(op.notPorts) });
}

function sourceGroup(src: AuthzSource, policyNs: string): MatchGroup {
  return matchGroup({
    sourceIps: cidrs(src.ipBlocks),
    notSourceIps: cidrs(src.notIpBlocks),
    namespaces: strings(src.namespaces),
    notNamespaces: strings(src.notNamespaces),
    serviceAccounts: serviceAccounts(src.serviceAccounts, policyNs),
    notServiceAccounts: serviceAccounts(src.notServiceAccounts, policyNs),
    principals: strings(src.principals),
    notPrincipals: strings(src.notPrincipals),
  });
}

function conditionGroup(
  key: string,
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
): MatchGroup {
  switch (key) {
    case 'source.ip':
      return matchGroup({ sourceIps: cidrs(values), notSourceIps: cidrs(notValues) });
    case 'source.namespace':
      return matchGroup({ namespaces: strings(values), notNamespaces: strings(notValues) });
    case 'source.principal':
      return matchGroup({ principals: strings(values), notPrincipals: strings(notValues) });
    case 'destination.ip':
      return matchGroup({ destinationIps: cidrs(values), notDestinationIps: cidrs(notValues) });
    case 'destination.port':
      return matchGroup({ destinationPorts: ports(values), notDestinationPorts: ports(notValues) });
    default:
      return matchGroup({}); // an L7 key: nothing ztunnel can check, an empty (never-matching) group
  }
}

/** istiod `handleRule`: one clause for `to`, one for `from`, one per `when` condition. */
function compileRule(
  action: 'ALLOW' | 'DENY',
  rule: AuthzRule,
  index: number,
  policyNs: string,
): { rule: CompiledRule | undefined; l7: string[] } {
  const l7 = new Set<string>();
  const clauses: MatchGroup[][] = [];
  if (rule.to) {
    for (const { operation } of rule.to) {
      for (const f of L7_OPERATION_FIELDS) if (present(operation[f])) l7.add(f);
    }
    clauses.push(rule.to.map(({ operation }) => operationGroup(operation)));
  }
  if (rule.from) {
    for (const { source } of rule.from) {
      for (const f of L7_SOURCE_FIELDS) if (present(source[f])) l7.add(f);
    }
    clauses.push(rule.from.map(({ source }) => sourceGroup(source, policyNs)));
  }
  for (const c of rule.when ?? []) {
    if (!L4_WHEN_KEYS.has(c.key)) l7.add(c.key);
    clauses.push([conditionGroup(c.key, c.values, c.notValues)]);
  }
  // "L7 policies never match for ALLOW. For DENY, empty matches are still emitted; ztunnel
  // skips them (no-op)." (istiod handleRule). So an ALLOW rule with any HTTP attribute is
  // dropped whole (fail closed); a DENY rule keeps its L4 parts, and a clause left with only
  // empty groups can never match, which makes that DENY rule a no-op. The API reference says
  // instead that an L7-only DENY rule matches all TCP traffic; we follow istiod/ztunnel.
  const fields = [...l7].sort();
  if (action === 'ALLOW' && fields.length > 0) return { rule: undefined, l7: fields };
  return { rule: Object.freeze({ index, clauses, summary: summarizeRule(rule) }), l7: fields };
}

export function compileAuthorizationPolicy(ap: AuthorizationPolicy): ScopedPolicy {
  const key = qualifiedName(ap.meta);
  const scope = { key, namespace: ap.meta.namespace, selector: ap.selector };
  const ignore = (why: string): ScopedPolicy => ({
    ...scope,
    compiled: undefined,
    ignoredBecause: why,
  });
  // "TargetRef is not intended for ztunnel" (istiod convertAuthorizationPolicy).
  if (ap.targetRefs.length > 0)
    return ignore('it uses targetRefs, which only waypoint proxies enforce');
  // "ztunnel does not support the AUDIT/CUSTOM action": istiod never sends them.
  if (ap.action === 'AUDIT' || ap.action === 'CUSTOM') {
    return ignore(`ztunnel does not support the ${ap.action} action`);
  }
  const action = ap.action;
  const rules: CompiledRule[] = [];
  const l7: { rule: number; fields: readonly string[] }[] = [];
  (ap.rules ?? []).forEach((r, i) => {
    const out = compileRule(action, r, i, ap.meta.namespace);
    if (out.rule) rules.push(out.rule);
    if (out.l7.length > 0) l7.push({ rule: i, fields: out.l7 });
  });
  const compiled: CompiledPolicy = Object.freeze({
    key,
    kind: 'AuthorizationPolicy',
    namespace: ap.meta.namespace,
    action,
    dryRun: ap.dryRun,
    rules,
    l7,
  });
  return { ...scope, compiled, ignoredBecause: undefined };
}

// ---- readable rule summaries (for decisions; never parsed back) ----

function fieldList(obj: object): string {
  return Object.entries(obj)
    .filter(([, v]) => Array.isArray(v) && v.length > 0)
    .map(([k, v]) => `${k}=[${(v as string[]).join(',')}]`)
    .join(' ');
}

function summarizeRule(rule: AuthzRule): string {
  const parts: string[] = [];
  if (rule.from) parts.push(`from ${rule.from.map((f) => fieldList(f.source)).join(' | ')}`);
  if (rule.to) parts.push(`to ${rule.to.map((t) => fieldList(t.operation)).join(' | ')}`);
  for (const c of rule.when ?? []) {
    const v = c.values?.length ? ` in [${c.values.join(',')}]` : '';
    const nv = c.notValues?.length ? ` not in [${c.notValues.join(',')}]` : '';
    parts.push(`when ${c.key}${v}${nv}`);
  }
  return parts.length === 0 ? '{} (matches every connection)' : parts.join('; ');
}
