// PeerAuthentication as ambient enforces it: not as a TLS setting (HBONE is always mTLS) but
// as DENY policies "no peer identity" attached to the workload. A transcription of istiod's
// pilot/pkg/serviceregistry/ambient/authorization.go (convertedSelectorPeerAuthentications,
// convertPeerAuthentication), policies.go (the static STRICT policy, PeerAuthByNamespace) and
// workloads.go (fetchPeerAuthentications), quirks included, because those functions decide
// what ztunnel enforces. The API reference differs in places; each one is noted below.
import { labelsMatch } from '../mesh/snapshot.js';
import {
  type MtlsMode,
  type PeerAuthentication,
  qualifiedName,
  type Workload,
} from '../mesh/types.js';
import {
  type CompiledPolicy,
  type CompiledRule,
  firstMatchingRule,
  type MatchGroup,
  matchGroup,
} from './match.js';
import type { MtlsResolution } from './types.js';

interface Entry {
  readonly pa: PeerAuthentication;
  readonly key: string;
  readonly created: number;
}

// istiod keeps the oldest (`CreationTimestamp.Before`, strict): among equal timestamps the
// first one seen stays. We order by (timestamp, namespace/name) so that "first seen" is
// deterministic. A missing timestamp (hand-written files) is Go's zero time: the oldest.
function byAge(a: Entry, b: Entry): number {
  return a.created - b.created || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

const hasLabels = (pa: PeerAuthentication) =>
  pa.selector !== undefined && Object.keys(pa.selector).length > 0;
const PRESENCE = [{ kind: 'presence' as const }];
/** The whole of the static STRICT policy: deny when the peer has no identity. */
const NO_IDENTITY: MatchGroup = matchGroup({ notPrincipals: PRESENCE });

export interface PeerAuthnResolution {
  /** The DENY policies enforcing it: istiod's static STRICT policy and/or the converted
   *  port-level workload policy (0, 1 or 2 of them). */
  readonly denies: readonly CompiledPolicy[];
  mtls(port: number): MtlsResolution;
}

function denyPolicy(entry: Entry, groups: readonly (readonly MatchGroup[])[][]): CompiledPolicy {
  const rules: CompiledRule[] = groups.map((clauses, index) => ({
    index,
    clauses,
    summary: 'plaintext (no peer identity)',
  }));
  return Object.freeze({
    key: entry.key,
    kind: 'PeerAuthentication',
    namespace: entry.pa.meta.namespace,
    action: 'DENY',
    dryRun: false,
    rules,
    l7: [],
  });
}

const isStrict = (e: Entry | undefined) => e?.pa.mode === 'STRICT';
const isUnset = (e: Entry | undefined) => e === undefined || e.pa.mode === 'UNSET';
const notStrictish = (m: MtlsMode) => m === 'PERMISSIVE' || m === 'DISABLE';

/** istiod convertPeerAuthentication: the workload policy with port-level overrides as a DENY
 *  policy, merged with the parent's strictness; undefined when istiod sends nothing. */
function convertWorkloadPolicy(
  w: Entry,
  ns: Entry | undefined,
  root: Entry | undefined,
): CompiledPolicy | undefined {
  const mode = w.pa.mode;
  if (w.pa.portLevelMtls.size === 0) return undefined;
  const rules: MatchGroup[][] = []; // clauses of one group, AND-ed
  const groups: MatchGroup[][][] = []; // OR-ed
  if (mode === 'STRICT') rules.push([NO_IDENTITY]);
  let foundNonStrictPort = false;
  for (const [port, portMode] of [...w.pa.portLevelMtls].sort((a, b) => a[0] - b[0])) {
    if (portMode === 'STRICT') {
      // Go precedence makes this `STRICT || (UNSET && nsSTRICT) || ((ns nil|UNSET) && rootSTRICT)`:
      // the last case does not look at the workload's own mode, so a PERMISSIVE workload
      // under a STRICT mesh (namespace unset) loses its STRICT port. istiod does this; so do we.
      if (
        mode === 'STRICT' ||
        (mode === 'UNSET' && isStrict(ns)) ||
        (isUnset(ns) && isStrict(root))
      ) {
        continue;
      }
      groups.push([[matchGroup({ notPrincipals: PRESENCE, destinationPorts: [port] })]]);
    } else if (notStrictish(portMode)) {
      if (notStrictish(mode)) continue;
      if (
        mode === 'UNSET' &&
        ((ns && !isStrict(ns)) || (!ns && root && !isStrict(root)) || (!ns && !root))
      ) {
        continue;
      }
      foundNonStrictPort = true;
      // "if the incoming connection does not match this port, deny"
      rules.push([matchGroup({ notDestinationPorts: [port] })]);
    }
  }
  if (mode === 'STRICT' && !foundNonStrictPort) return undefined;
  if (rules.length === 0 && groups.length === 0) return undefined;
  const mergeStrict =
    (isStrict(root) && (ns === undefined || isUnset(ns) || isStrict(ns))) || isStrict(ns);
  if (mergeStrict && foundNonStrictPort) rules.push([NO_IDENTITY]);
  if (rules.length > 0) groups.push(rules);
  return denyPolicy(w, groups);
}

export class PeerAuthnIndex {
  readonly #root: string;
  /** Root-namespace policies without selector (mesh level), oldest first. */
  readonly #rootNil: readonly Entry[];
  /** Per namespace, every policy there, oldest first. */
  readonly #byNamespace = new Map<string, Entry[]>();

  constructor(pas: readonly PeerAuthentication[], rootNamespace: string) {
    this.#root = rootNamespace;
    const entries = pas
      .map((pa) => ({
        pa,
        key: qualifiedName(pa.meta),
        created: pa.meta.creationTimestamp
          ? Date.parse(pa.meta.creationTimestamp) || -Infinity
          : -Infinity,
      }))
      .sort(byAge);
    for (const e of entries) {
      const list = this.#byNamespace.get(e.pa.meta.namespace) ?? [];
      list.push(e);
      this.#byNamespace.set(e.pa.meta.namespace, list);
    }
    this.#rootNil = (this.#byNamespace.get(rootNamespace) ?? []).filter(
      (e) => e.pa.selector === undefined,
    );
  }

  resolve(workload: Workload): PeerAuthnResolution {
    const ns = workload.meta.namespace;
    const root = this.#root;
    const inNs = this.#byNamespace.get(ns) ?? [];
    // workloads.go fetchPeerAuthentications: root policies without selector, plus policies in
    // the workload's namespace without selector or whose matchLabels ⊆ the pod's labels.
    const fetched = inNs.filter(
      (e) => e.pa.selector === undefined || labelsMatch(e.pa.selector, workload.meta.labels),
    );
    const configs = ns === root ? fetched : [...this.#rootNil, ...fetched].sort(byAge);
    let meshCfg: Entry | undefined;
    let namespaceCfg: Entry | undefined;
    let workloadCfg: Entry | undefined;
    for (const e of configs) {
      if (!hasLabels(e.pa)) {
        if (e.pa.meta.namespace === root) meshCfg ??= e;
        else namespaceCfg ??= e;
      } else if (e.pa.meta.namespace !== root) {
        // A root-namespace policy with a selector is ignored ([PA] note; istiod agrees).
        workloadCfg ??= e;
      }
    }
    // convertedSelectorPeerAuthentications: mesh, then namespace, then workload (UNSET inherits).
    let strictFrom: Entry | undefined = isStrict(meshCfg) ? meshCfg : undefined;
    if (namespaceCfg && namespaceCfg.pa.mode !== 'UNSET')
      strictFrom = isStrict(namespaceCfg) ? namespaceCfg : undefined;
    let converted: CompiledPolicy | undefined;
    if (workloadCfg) {
      const w = workloadCfg;
      const mode = w.pa.mode;
      // DISABLE is documented as unsupported in ambient, but istiod treats it as PERMISSIVE
      // (it overrides a STRICT parent); we follow istiod.
      if (mode === 'STRICT') strictFrom = w;
      if (notStrictish(mode)) strictFrom = undefined;
      const portModes = [...w.pa.portLevelMtls.values()];
      let refer = false;
      if (mode === 'STRICT') {
        refer = portModes.some(notStrictish);
        if (refer) strictFrom = undefined; // the converted policy carries the STRICT part
      } else if (notStrictish(mode)) {
        refer = portModes.includes('STRICT');
      } else if (strictFrom) {
        // Only PERMISSIVE counts here, not DISABLE: with a STRICT parent, an UNSET workload and
        // a port set to DISABLE, istiod keeps the whole workload STRICT (contrary to [PA]'s
        // own UNSET+DISABLE example).
        refer = portModes.includes('PERMISSIVE');
        if (refer) strictFrom = undefined;
      } else {
        refer = portModes.includes('STRICT');
      }
      if (refer) {
        const nsNil = inNs.find((e) => e.pa.selector === undefined);
        converted = convertWorkloadPolicy(w, nsNil, this.#rootNil[0]);
      }
    }
    const denies = [
      ...(strictFrom ? [denyPolicy(strictFrom, [[[NO_IDENTITY]]])] : []),
      ...(converted ? [converted] : []),
    ];
    const inEffect = workloadCfg ?? namespaceCfg ?? meshCfg;
    return {
      denies,
      mtls: (port: number): MtlsResolution => {
        const plaintext = {
          principal: undefined,
          namespace: '',
          serviceAccount: undefined,
          sourceIp: { v6: false, value: 0n },
          destinationIp: { v6: false, value: 0n },
          port,
        };
        const by = denies.find((d) => firstMatchingRule(d, plaintext) >= 0);
        if (by) {
          return {
            mode: 'STRICT',
            policy: by.key,
            reason: `PeerAuthentication ${by.key} requires mTLS on port ${port}`,
          };
        }
        if (!inEffect) {
          return {
            mode: 'PERMISSIVE',
            policy: null,
            reason: 'no PeerAuthentication applies; ambient accepts plaintext',
          };
        }
        return {
          mode: 'PERMISSIVE',
          policy: inEffect.key,
          reason: `PeerAuthentication ${inEffect.key} (${describe(meshCfg, namespaceCfg, workloadCfg)}) accepts plaintext on port ${port}`,
        };
      },
    };
  }
}

function describe(mesh: Entry | undefined, ns: Entry | undefined, w: Entry | undefined): string {
  const parts: string[] = [];
  if (mesh) parts.push(`mesh ${mesh.key} ${mesh.pa.mode}`);
  if (ns) parts.push(`namespace ${ns.key} ${ns.pa.mode}`);
  if (w) {
    const ports = [...w.pa.portLevelMtls].map(([p, m]) => `${p}:${m}`).join(',');
    parts.push(`workload ${w.key} ${w.pa.mode}${ports ? ` ports ${ports}` : ''}`);
  }
  return parts.join(', ');
}
