// An immutable, indexed view of the mesh at one point in time. Sources build a new one per
// change; readers hold on to the one they started with, so a decision never sees a mix.
import type {
  AuthorizationPolicy,
  Labels,
  MeshNode,
  MeshObjects,
  Namespace,
  PeerAuthentication,
  Service,
  Workload,
} from './types.js';

export class MeshSnapshot implements MeshObjects {
  readonly version: number;
  readonly workloads: readonly Workload[];
  readonly services: readonly Service[];
  readonly nodes: readonly MeshNode[];
  readonly namespaces: readonly Namespace[];
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  readonly peerAuthentications: readonly PeerAuthentication[];

  readonly #workloadByIp = new Map<string, Workload>();
  readonly #workloadsByNode = new Map<string, Workload[]>();
  readonly #serviceByIp = new Map<string, Service>();
  readonly #serviceByHostname = new Map<string, Service>();
  readonly #nodeByName = new Map<string, MeshNode>();

  constructor(objects: MeshObjects, version: number) {
    this.version = version;
    this.workloads = Object.freeze([...objects.workloads]);
    this.services = Object.freeze([...objects.services]);
    this.nodes = Object.freeze([...objects.nodes]);
    this.namespaces = Object.freeze([...objects.namespaces]);
    this.authorizationPolicies = Object.freeze([...objects.authorizationPolicies]);
    this.peerAuthentications = Object.freeze([...objects.peerAuthentications]);
    for (const w of this.workloads) {
      for (const ip of w.ips) this.#workloadByIp.set(ip, w);
      if (w.node) {
        const list = this.#workloadsByNode.get(w.node) ?? [];
        list.push(w);
        this.#workloadsByNode.set(w.node, list);
      }
    }
    for (const s of this.services) {
      for (const ip of s.clusterIps) this.#serviceByIp.set(ip, s);
      this.#serviceByHostname.set(s.hostname, s);
    }
    for (const n of this.nodes) this.#nodeByName.set(n.meta.name, n);
    Object.freeze(this);
  }

  static empty(): MeshSnapshot {
    return new MeshSnapshot(
      {
        workloads: [],
        services: [],
        nodes: [],
        namespaces: [],
        authorizationPolicies: [],
        peerAuthentications: [],
      },
      0,
    );
  }

  workloadByIp(ip: string): Workload | undefined {
    return this.#workloadByIp.get(ip);
  }

  workloadsOnNode(node: string): readonly Workload[] {
    return this.#workloadsByNode.get(node) ?? [];
  }

  workload(namespace: string, name: string): Workload | undefined {
    return this.workloads.find((w) => w.meta.namespace === namespace && w.meta.name === name);
  }

  serviceByIp(ip: string): Service | undefined {
    return this.#serviceByIp.get(ip);
  }

  serviceByHostname(hostname: string): Service | undefined {
    return this.#serviceByHostname.get(hostname.toLowerCase().replace(/\.$/, ''));
  }

  node(name: string): MeshNode | undefined {
    return this.#nodeByName.get(name);
  }

  /** Mesh pods selected by a service (same namespace, labels ⊇ selector). */
  endpointsOf(service: Service): readonly Workload[] {
    const sel = service.selector;
    if (!sel) return [];
    return this.workloads.filter(
      (w) => w.meta.namespace === service.meta.namespace && labelsMatch(sel, w.meta.labels),
    );
  }

  /** Is there a mesh workload with this namespace/service account scheduled on `node`?
   *  This is the CA's node authorization rule (istiod's node authorizer). */
  runsIdentityOnNode(node: string, namespace: string, serviceAccount: string): boolean {
    return this.workloadsOnNode(node).some(
      (w) => w.inMesh && w.meta.namespace === namespace && w.serviceAccount === serviceAccount,
    );
  }
}

/** Kubernetes equality-based selection: every selector label present with the same value. */
export function labelsMatch(selector: Labels, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}
