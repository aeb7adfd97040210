// The agent's view of the mesh: the current snapshot with its compiled policies, and what
// this node needs from it (local workloads and their identities). Rebuilt per snapshot;
// readers take `current` once per connection so a decision never mixes two versions.
import { SpiffeId } from '../identity/spiffe-id.js';
import type { MeshSnapshot } from '../mesh/snapshot.js';
import type { MeshSource } from '../mesh/source.js';
import type { Workload } from '../mesh/types.js';
import { type CompiledPolicies, compile } from '../policy/index.js';

export class MeshView {
  readonly snapshot: MeshSnapshot;
  readonly policies: CompiledPolicies;
  /** Mesh workloads scheduled on this node. */
  readonly local: readonly Workload[];
  readonly #localByIp = new Map<string, Workload>();

  constructor(snapshot: MeshSnapshot, node: string, rootNamespace: string, hardened = false) {
    this.snapshot = snapshot;
    this.policies = compile(snapshot, { rootNamespace, hardened });
    this.local = snapshot.workloadsOnNode(node).filter((w) => w.inMesh);
    for (const w of this.local) for (const ip of w.ips) this.#localByIp.set(ip, w);
  }

  /** The mesh workload on this node with this IP. */
  localWorkload(ip: string): Workload | undefined {
    return this.#localByIp.get(ip);
  }

  localIdentities(trustDomain: string): SpiffeId[] {
    const seen = new Map<string, SpiffeId>();
    for (const w of this.local) {
      const id = SpiffeId.of(trustDomain, w.meta.namespace, w.serviceAccount);
      seen.set(id.toString(), id);
    }
    return [...seen.values()];
  }
}

export class AgentState {
  #view: MeshView;
  readonly #listeners = new Set<(view: MeshView, previous: MeshView) => void>();
  readonly #unsubscribe: () => void;

  constructor(source: MeshSource, node: string, rootNamespace: string, hardened = false) {
    this.#view = new MeshView(source.current(), node, rootNamespace, hardened);
    this.#unsubscribe = source.subscribe((snapshot) => {
      const previous = this.#view;
      this.#view = new MeshView(snapshot, node, rootNamespace, hardened);
      for (const l of this.#listeners) l(this.#view, previous);
    });
  }

  get current(): MeshView {
    return this.#view;
  }

  onChange(listener: (view: MeshView, previous: MeshView) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#unsubscribe();
    this.#listeners.clear();
  }
}
