// The internal resource model shared by the agent, the CA and the policy engine. Wire
// formats (Kubernetes YAML/JSON objects) are converted to these types in mesh/convert/*
// and nowhere else. Everything here is plain, readonly data.

export type Labels = Readonly<Record<string, string>>;

/** Where an object came from, for error messages and `authz check` explanations. */
export interface Origin {
  readonly source: string; // file path or "kubernetes"
  readonly document?: number; // 0-based document index within a file
}

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  /** ISO-8601; Istio breaks ties between equal policies by age ("oldest wins"). */
  readonly creationTimestamp: string | undefined;
  readonly origin: Origin;
}

/** `namespace/name`: how Istio and kubectl name an object in logs, errors and keys. */
export function qualifiedName(meta: Pick<ObjectMeta, 'namespace' | 'name'>): string {
  return `${meta.namespace}/${meta.name}`;
}

/** A `metadata.ownerReferences` entry: which object made this one. */
export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  /** The managing controller (at most one reference has it). */
  readonly controller: boolean;
}

export interface Workload {
  readonly meta: ObjectMeta;
  /** `metadata.generateName`: istiod looks at the owner chain only for generated names. */
  readonly generateName: string | undefined;
  readonly ownerReferences: readonly OwnerReference[];
  /** Istio's telemetry names (istiod GetWorkloadMetaFromPod, CanonicalService; see
   *  mesh/convert/workload-name.ts): the Deployment/StatefulSet/... name, not the pod's. */
  readonly workloadName: string;
  /** The kind behind workloadName (`Deployment`, `CronJob`, `Job`, `StatefulSet`, `Pod`, ...). */
  readonly workloadKind: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly serviceAccount: string;
  /** Node the pod is scheduled on; undefined while pending. */
  readonly node: string | undefined;
  readonly ips: readonly string[];
  /** In the mesh per Istio ambient's `istio.io/dataplane-mode` label (pod, then namespace). */
  readonly inMesh: boolean;
  /** Running and not marked unready; only ready pods are service endpoints. */
  readonly ready: boolean;
  /** Named container ports, for Services whose targetPort is a name. */
  readonly namedPorts: ReadonlyMap<string, number>;
}

export interface ServicePort {
  readonly name: string | undefined;
  readonly port: number;
  /** A number, or the name of a container port (resolved per pod; see mesh/endpoints). */
  readonly targetPort: number | string;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
}

export interface Service {
  readonly meta: ObjectMeta;
  /** `name.namespace.svc.<domain>`, the name clients resolve through SOCKS5. */
  readonly hostname: string;
  readonly clusterIps: readonly string[];
  readonly ports: readonly ServicePort[];
  /** Undefined = a Service without selector (no endpoints managed by us). */
  readonly selector: Labels | undefined;
}

export interface NodeAddress {
  readonly type: string; // InternalIP, ExternalIP, Hostname
  readonly address: string;
}

export interface MeshNode {
  readonly meta: ObjectMeta;
  readonly addresses: readonly NodeAddress[];
}

export interface Namespace {
  readonly meta: ObjectMeta;
}

// ---- security.istio.io (validated here, compiled and evaluated by policy/) ----

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthzSource {
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly requestPrincipals?: readonly string[];
  readonly notRequestPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  readonly serviceAccounts?: readonly string[];
  readonly notServiceAccounts?: readonly string[];
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  readonly remoteIpBlocks?: readonly string[];
  readonly notRemoteIpBlocks?: readonly string[];
}

export interface AuthzOperation {
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  readonly ports?: readonly string[];
  readonly notPorts?: readonly string[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

export interface AuthzCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

export interface AuthzRule {
  readonly from?: readonly { readonly source: AuthzSource }[];
  readonly to?: readonly { readonly operation: AuthzOperation }[];
  readonly when?: readonly AuthzCondition[];
}

export interface PolicyTargetRef {
  readonly group?: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

export interface AuthorizationPolicy {
  readonly meta: ObjectMeta;
  readonly selector: Labels | undefined;
  readonly targetRefs: readonly PolicyTargetRef[];
  readonly action: AuthorizationAction;
  readonly provider: string | undefined;
  /** Undefined rules = match nothing; [] also matches nothing; [{}] matches everything. */
  readonly rules: readonly AuthzRule[] | undefined;
  /** Annotation `istio.io/dry-run: "true"`: evaluated and logged, never enforced. */
  readonly dryRun: boolean;
}

export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthentication {
  readonly meta: ObjectMeta;
  readonly selector: Labels | undefined;
  readonly mode: MtlsMode;
  readonly portLevelMtls: ReadonlyMap<number, MtlsMode>;
}

/** Everything a source read, before indexing. */
export interface MeshObjects {
  readonly workloads: readonly Workload[];
  readonly services: readonly Service[];
  readonly nodes: readonly MeshNode[];
  readonly namespaces: readonly Namespace[];
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  readonly peerAuthentications: readonly PeerAuthentication[];
}
