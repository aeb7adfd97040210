// Policies compiled once per mesh snapshot and indexed so that deciding a connection only
// looks at policies that can apply to its destination: the destination's namespace and the
// root namespace, and among selector policies only those keyed by one of the workload's own
// labels. The set that applies to a workload is computed once and memoized (istiod likewise
// attaches selector policies to each workload ahead of time), so the per-connection cost does
// not grow with policies in other namespaces or selecting other workloads.

import { labelsMatch } from '../mesh/snapshot.js';
import type { MeshObjects, Workload } from '../mesh/types.js';
import { compileAuthorizationPolicy, type ScopedPolicy } from './compile-authz.js';
import { type HardenedPolicies, hardenedPolicies } from './hardened.js';
import type { CompiledPolicy } from './match.js';
import { PeerAuthnIndex, type PeerAuthnResolution } from './peer-authn.js';
import { type CompileOptions, DEFAULT_ROOT_NAMESPACE } from './types.js';

/** Everything that applies to one destination workload, in evaluation order. */
export interface Applicable {
  /** Enforced DENY policies: namespace-wide, mesh-wide, selector ones, then those converted
   *  from PeerAuthentication; the order ztunnel's assert_rbac chains them in. */
  readonly deny: readonly CompiledPolicy[];
  readonly allow: readonly CompiledPolicy[];
  /** Evaluated for reporting only, never enforced (ztunnel: allow_dry_run / deny_dry_run). */
  readonly dryRun: readonly CompiledPolicy[];
  /** In scope but without any L4 effect (AUDIT, CUSTOM, targetRefs), with the reason. */
  readonly ignored: readonly ScopedPolicy[];
  readonly peerAuthn: PeerAuthnResolution;
}

const labelKey = (k: string, v: string) => `${k}\u0000${v}`;

class NamespaceBucket {
  /** No selector: namespace-wide, or mesh-wide in the root namespace. */
  readonly wide: ScopedPolicy[] = [];
  /** `selector: {}`: selects every workload, but is a selector policy to istiod. */
  readonly anyLabels: ScopedPolicy[] = [];
  /** Selector policies, each filed under the first of its labels (sorted). */
  readonly byLabel = new Map<string, ScopedPolicy[]>();

  add(p: ScopedPolicy): void {
    if (p.selector === undefined) {
      this.wide.push(p);
      return;
    }
    const first = Object.keys(p.selector).sort()[0];
    if (first === undefined) {
      this.anyLabels.push(p);
      return;
    }
    const k = labelKey(first, p.selector[first]!);
    const list = this.byLabel.get(k) ?? [];
    list.push(p);
    this.byLabel.set(k, list);
  }

  selecting(workload: Workload): ScopedPolicy[] {
    const out = [...this.anyLabels];
    for (const [k, v] of Object.entries(workload.meta.labels)) {
      for (const p of this.byLabel.get(labelKey(k, v)) ?? []) {
        if (labelsMatch(p.selector!, workload.meta.labels)) out.push(p);
      }
    }
    return out;
  }
}

const byKey = (a: ScopedPolicy, b: ScopedPolicy) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export class CompiledPolicies {
  readonly rootNamespace: string;
  /** Set with the hardened profile: the two policies it adds to every workload. */
  readonly hardened: HardenedPolicies | undefined;
  /** How many AuthorizationPolicies were compiled (for logs and benchmarks). */
  readonly size: number;
  readonly #buckets = new Map<string, NamespaceBucket>();
  readonly #peerAuthn: PeerAuthnIndex;
  readonly #memo = new WeakMap<Workload, Applicable>();

  constructor(
    objects: Pick<MeshObjects, 'authorizationPolicies' | 'peerAuthentications'>,
    opts: CompileOptions = {},
  ) {
    this.rootNamespace = opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
    this.hardened = opts.hardened ? hardenedPolicies(this.rootNamespace) : undefined;
    this.size = objects.authorizationPolicies.length;
    const compiled = objects.authorizationPolicies
      .map((ap) => compileAuthorizationPolicy(ap))
      .sort(byKey);
    for (const p of compiled) {
      const bucket = this.#buckets.get(p.namespace) ?? new NamespaceBucket();
      this.#buckets.set(p.namespace, bucket);
      bucket.add(p);
    }
    this.#peerAuthn = new PeerAuthnIndex(objects.peerAuthentications, this.rootNamespace);
  }

  /** The policies that apply to `workload`; computed on first use, then memoized. */
  applicable(workload: Workload): Applicable {
    const hit = this.#memo.get(workload);
    if (hit) return hit;
    const ns = this.#buckets.get(workload.meta.namespace);
    const root =
      workload.meta.namespace === this.rootNamespace
        ? undefined
        : this.#buckets.get(this.rootNamespace);
    const scoped = [
      ...(ns?.wide ?? []),
      ...(root?.wide ?? []),
      ...[...(ns?.selecting(workload) ?? []), ...(root?.selecting(workload) ?? [])].sort(byKey),
    ];
    const deny: CompiledPolicy[] = [];
    const allow: CompiledPolicy[] = [];
    const dryRun: CompiledPolicy[] = [];
    const ignored: ScopedPolicy[] = [];
    for (const p of scoped) {
      const c = p.compiled;
      if (!c) ignored.push(p);
      else if (c.dryRun) dryRun.push(c);
      else (c.action === 'DENY' ? deny : allow).push(c);
    }
    let peerAuthn = this.#peerAuthn.resolve(workload);
    const h = this.hardened;
    if (h) {
      // STRICT whatever the PeerAuthentications say; none of them is enforced then.
      deny.push(h.strict);
      allow.push(h.allowNothing);
      peerAuthn = {
        denies: [h.strict],
        mtls: () => ({
          mode: 'STRICT',
          policy: h.strict.key,
          reason:
            'hardened profile: mTLS is required mesh-wide (PeerAuthentications are not consulted)',
        }),
      };
    } else deny.push(...peerAuthn.denies);
    const out: Applicable = Object.freeze({ deny, allow, dryRun, ignored, peerAuthn });
    this.#memo.set(workload, out);
    return out;
  }
}

const cache = new WeakMap<object, Map<string, CompiledPolicies>>();

/** Compiles the policies of a snapshot once; later calls with the same snapshot (and root
 *  namespace) return the same object, so callers may simply pass the snapshot every time. */
export function compile(
  snapshot: Pick<MeshObjects, 'authorizationPolicies' | 'peerAuthentications'>,
  opts: CompileOptions = {},
): CompiledPolicies {
  const root = opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const hardened = opts.hardened === true;
  const key = `${root}${hardened ? ' hardened' : ''}`;
  const byRoot = cache.get(snapshot) ?? new Map<string, CompiledPolicies>();
  cache.set(snapshot, byRoot);
  const hit = byRoot.get(key);
  if (hit) return hit;
  const compiled = new CompiledPolicies(snapshot, { rootNamespace: root, hardened });
  byRoot.set(key, compiled);
  return compiled;
}
