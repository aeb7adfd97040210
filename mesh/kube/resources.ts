// The six kinds mtun reads from the API, where they are listed and watched, and what of each
// object is kept. Trimming on arrival bounds memory (a cluster's pods carry managedFields,
// last-applied annotations, whole container specs) to the fields mesh/convert reads;
// tests/kube/resources.test.ts pins that a trimmed object converts exactly like the full one.

export type ResourceName =
  | 'namespaces'
  | 'nodes'
  | 'pods'
  | 'services'
  | 'authorizationpolicies'
  | 'peerauthentications';

export interface Resource {
  readonly name: ResourceName;
  readonly apiVersion: string;
  readonly kind: string;
  /** Cluster-wide list and watch path. */
  readonly path: string;
  /** Keeps what the model reads; sets apiVersion/kind (list items come without them). */
  readonly trim: (obj: Wire) => Wire;
  /** Whether the object belongs in the model at all. */
  readonly selected: (obj: Wire) => boolean;
}

export type Wire = Record<string, unknown>;

const obj = (v: unknown): Wire =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Wire) : {};

const pick = (from: unknown, keys: readonly string[]): Wire => {
  const src = obj(from);
  const out: Wire = {};
  for (const k of keys) if (src[k] !== undefined) out[k] = src[k];
  return out;
};

const META = [
  'name',
  'namespace',
  'uid',
  'labels',
  'creationTimestamp',
  'resourceVersion',
  // Istio's workload name comes from the controller reference of a generated pod name.
  'generateName',
  'ownerReferences',
];
/** kubectl's copy of the whole object: often the largest field, never read. */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function meta(o: Wire): Wire {
  const out = pick(o['metadata'], META);
  const annotations = obj(obj(o['metadata'])['annotations']);
  if (Object.keys(annotations).length > 0) {
    const { [LAST_APPLIED]: _dropped, ...rest } = annotations;
    out['annotations'] = rest;
  }
  return out;
}

/** What of a pod the model reads besides its metadata. */
function podFields(o: Wire): Wire {
  const spec = obj(o['spec']);
  const containers = Array.isArray(spec['containers']) ? spec['containers'] : [];
  return {
    spec: {
      ...pick(spec, ['serviceAccountName', 'serviceAccount', 'nodeName', 'hostNetwork']),
      containers: containers.map((c) => ({
        ports: (Array.isArray(obj(c)['ports']) ? (obj(c)['ports'] as unknown[]) : []).map((p) =>
          pick(p, ['name', 'containerPort', 'protocol']),
        ),
      })),
    },
    status: pick(o['status'], ['podIP', 'podIPs', 'phase', 'conditions']),
  };
}

/** Pods that can be no mesh workload: host-network pods share the node's IP (kube-proxy,
 *  the CNI, mtun's own agent), and finished pods keep an IP that a new pod may now hold. */
function podSelected(o: Wire): boolean {
  if (obj(o['spec'])['hostNetwork'] === true) return false;
  const phase = obj(o['status'])['phase'];
  return phase !== 'Succeeded' && phase !== 'Failed';
}

const all = () => true;

/** A resource whose trimmed objects are apiVersion, kind, trimmed metadata and `fields`. */
function resource(
  apiVersion: string,
  name: ResourceName,
  kind: string,
  fields: (o: Wire) => Wire,
  selected: (o: Wire) => boolean = all,
): Resource {
  const base = apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`;
  return {
    name,
    apiVersion,
    kind,
    path: `${base}/${name}`,
    trim: (o: Wire) => ({ apiVersion, kind, metadata: meta(o), ...fields(o) }),
    selected,
  };
}

// Policies are small and read whole: unknown fields must reach the converter's checks.
const wholeSpec = (o: Wire): Wire => (o['spec'] === undefined ? {} : { spec: o['spec'] });

export const RESOURCES: Readonly<Record<ResourceName, Resource>> = Object.freeze({
  namespaces: resource('v1', 'namespaces', 'Namespace', () => ({})),
  nodes: resource('v1', 'nodes', 'Node', (o) => ({ status: pick(o['status'], ['addresses']) })),
  pods: resource('v1', 'pods', 'Pod', podFields, podSelected),
  services: resource('v1', 'services', 'Service', (o) => ({
    spec: pick(o['spec'], ['clusterIP', 'clusterIPs', 'selector', 'ports']),
  })),
  authorizationpolicies: resource(
    'security.istio.io/v1',
    'authorizationpolicies',
    'AuthorizationPolicy',
    wholeSpec,
  ),
  peerauthentications: resource(
    'security.istio.io/v1',
    'peerauthentications',
    'PeerAuthentication',
    wholeSpec,
  ),
});

/** What the agent reads: everything. */
export const AGENT_RESOURCES: readonly ResourceName[] = [
  'namespaces',
  'nodes',
  'pods',
  'services',
  'authorizationpolicies',
  'peerauthentications',
];

/** What the CA reads for node authorization: which mesh pod runs where. */
export const CA_RESOURCES: readonly ResourceName[] = ['namespaces', 'pods'];

/** `namespace/name` (cluster-scoped: `name`), the store key. */
export function keyOf(o: Wire): string | undefined {
  const m = obj(o['metadata']);
  const name = m['name'];
  if (typeof name !== 'string' || name === '') return undefined;
  return typeof m['namespace'] === 'string' && m['namespace'] !== ''
    ? `${m['namespace']}/${name}`
    : name;
}

export function resourceVersionOf(o: Wire): string | undefined {
  const rv = obj(o['metadata'])['resourceVersion'];
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}
