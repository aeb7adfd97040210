// Policies in the config dump, in ztunnel's shape (src/rbac.rs `Authorization`: name,
// namespace, scope Global|Namespace|WorkloadSelector, action Allow|Deny, rules as
// rules → clauses → match groups, dryRun; `RbacMatch` fields omitted when empty;
// `StringMatch` as serde's externally tagged enum: {"Exact": "x"}, {"Presence": []}).
// Our compiled form is already ztunnel's structure (policy/match.ts), so this only spells
// it. Policies with no L4 effect (AUDIT, CUSTOM, targetRefs) have no ztunnel form: they are
// listed apart, with the reason, under mtun's own key.
import type { AuthorizationPolicy } from '../../mesh/types.js';
import { compileAuthorizationPolicy } from '../../policy/compile-authz.js';
import { type HardenedPolicies, hardenedNames } from '../../policy/hardened.js';
import type { Cidr } from '../../policy/ip.js';
import type { CompiledPolicy, MatchGroup, StringMatch } from '../../policy/match.js';

export type ZtStringMatch =
  | { Exact: string }
  | { Prefix: string }
  | { Suffix: string }
  | { Presence: [] };

export interface ZtPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly scope: 'Global' | 'Namespace' | 'WorkloadSelector';
  readonly action: 'Allow' | 'Deny';
  readonly rules: Record<string, unknown>[][][];
  readonly dryRun: boolean;
}

export interface IgnoredPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly reason: string;
}

function stringMatch(m: StringMatch): ZtStringMatch {
  switch (m.kind) {
    case 'exact':
      return { Exact: m.value };
    case 'prefix':
      return { Prefix: m.value };
    case 'suffix':
      return { Suffix: m.value };
    case 'presence':
      return { Presence: [] };
  }
}

/** `ip/bits` (ipnet's Display, as serde writes ztunnel's IpNet). */
export function formatCidr(c: Cidr): string {
  const value = c.prefix << c.shift;
  if (!c.v6) {
    const b = [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 0xffn));
    return `${b.join('.')}/${c.bits}`;
  }
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
  return `${groups.join(':')}/${c.bits}`;
}

function rbacMatch(g: MatchGroup): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const put = (k: string, list: readonly unknown[]) => {
    if (list.length > 0) out[k] = list;
  };
  put('namespaces', g.namespaces.map(stringMatch));
  put('notNamespaces', g.notNamespaces.map(stringMatch));
  put('serviceAccounts', g.serviceAccounts);
  put('notServiceAccounts', g.notServiceAccounts);
  put('principals', g.principals.map(stringMatch));
  put('notPrincipals', g.notPrincipals.map(stringMatch));
  put('sourceIps', g.sourceIps.map(formatCidr));
  put('notSourceIps', g.notSourceIps.map(formatCidr));
  put('destinationIps', g.destinationIps.map(formatCidr));
  put('notDestinationIps', g.notDestinationIps.map(formatCidr));
  put('destinationPorts', g.destinationPorts);
  put('notDestinationPorts', g.notDestinationPorts);
  return out;
}

/** ztunnel's form of a compiled policy. */
function ztPolicy(c: CompiledPolicy, name: string, scope: ZtPolicy['scope']): ZtPolicy {
  return {
    name,
    namespace: c.namespace,
    scope,
    action: c.action === 'ALLOW' ? 'Allow' : 'Deny',
    rules: c.rules.map((r) => r.clauses.map((clause) => clause.map(rbacMatch))),
    dryRun: c.dryRun,
  };
}

/** The policies of the mesh; with the hardened profile, its two Global ones first. */
export function dumpPolicies(
  policies: readonly AuthorizationPolicy[],
  rootNamespace: string,
  hardened?: HardenedPolicies,
): { policies: ZtPolicy[]; ignored: IgnoredPolicy[] } {
  const out: ZtPolicy[] = hardened
    ? [
        ztPolicy(hardened.strict, hardenedNames.strict, 'Global'),
        ztPolicy(hardened.allowNothing, hardenedNames.allowNothing, 'Global'),
      ]
    : [];
  const ignored: IgnoredPolicy[] = [];
  for (const ap of policies) {
    const scoped = compileAuthorizationPolicy(ap);
    const { name, namespace } = ap.meta;
    if (!scoped.compiled) {
      ignored.push({ name, namespace, reason: scoped.ignoredBecause ?? 'no L4 effect' });
      continue;
    }
    // istiod: no selector in the root namespace = Global, elsewhere Namespace.
    const scope =
      scoped.selector !== undefined
        ? 'WorkloadSelector'
        : namespace === rootNamespace
          ? 'Global'
          : 'Namespace';
    out.push(ztPolicy(scoped.compiled, name, scope));
  }
  return { policies: out, ignored };
}
