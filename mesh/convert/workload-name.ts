// The names Istio's telemetry gives a pod: its workload (the Deployment, StatefulSet, ... that
// runs it) and its canonical service and revision. istiod computes them and sends them to
// ztunnel as `workload_name`, `canonical_name`, `canonical_revision` (ztunnel
// src/state/workload.rs); ztunnel's metrics and access log read them (src/proxy/metrics.rs).
// Transcribed from istio/istio pkg/kube/util.go (GetDeployMetaFromPod, GetWorkloadMetaFromPod)
// and pkg/kube/labels/labels.go (CanonicalService). Pure.
import type { Labels, OwnerReference } from '../types.js';

/** `service.istio.io/workload-name`: the user's override of the heuristics below. */
export const WORKLOAD_NAME_LABEL = 'service.istio.io/workload-name';

// pkg/kube/labels/labels.go nameLabels / revisionLabels: the order matters.
const NAME_LABELS = ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app'];
const REVISION_LABELS = [
  'service.istio.io/canonical-revision',
  'app.kubernetes.io/version',
  'version',
];

// pkg/kube/util.go cronJobNameRegexp: a Job that a CronJob made is `<cronjob>-<8..10 digits>`.
const CRONJOB_JOB = /^(.+)-\d{8,10}$/;

export interface PodNaming {
  readonly name: string;
  readonly generateName: string | undefined;
  readonly labels: Labels;
  readonly ownerReferences: readonly OwnerReference[];
}

export interface WorkloadNameAndKind {
  readonly name: string;
  readonly kind: string;
}

/** GetWorkloadMetaFromPod: the override label, else the owner heuristics. No API lookups,
 *  as istiod does none: a ReplicaSet's Deployment is its name without `-<pod-template-hash>`,
 *  a CronJob's Job its name without the timestamp suffix. */
export function workloadOf(pod: PodNaming): WorkloadNameAndKind {
  const meta = deployMetaOf(pod);
  const override = pod.labels[WORKLOAD_NAME_LABEL];
  return override !== undefined ? { name: override, kind: meta.kind } : meta;
}

/** GetDeployMetaFromPod. Only a generated pod name (generateName set) sends istiod to the
 *  controller reference; a hand-named pod is its own workload. */
function deployMetaOf(pod: PodNaming): WorkloadNameAndKind {
  const controller = pod.generateName ? pod.ownerReferences.find((r) => r.controller) : undefined;
  if (!controller) return { name: pod.name, kind: 'Pod' };
  let name = controller.name;
  let kind = controller.kind;
  const hash = pod.labels['pod-template-hash'];
  const rolloutHash = pod.labels['rollouts-pod-template-hash'];
  if (kind === 'ReplicaSet' && hash && name.endsWith(hash)) {
    name = trimSuffix(name, `-${hash}`);
    kind = 'Deployment';
  } else if (kind === 'ReplicaSet' && rolloutHash && name.endsWith(rolloutHash)) {
    name = trimSuffix(name, `-${rolloutHash}`); // Argo Rollouts
    kind = 'Rollout';
  } else if (kind === 'ReplicationController' && pod.labels['deploymentconfig']) {
    name = pod.labels['deploymentconfig']; // OpenShift DeploymentConfig
    kind = 'DeploymentConfig';
  } else if (kind === 'Job') {
    const m = CRONJOB_JOB.exec(name);
    if (m) {
      name = m[1]!;
      kind = 'CronJob';
    }
  }
  return { name: name || pod.name, kind };
}

// Go strings.TrimSuffix: only when present.
const trimSuffix = (s: string, suffix: string) =>
  s.endsWith(suffix) ? s.slice(0, s.length - suffix.length) : s;

/** CanonicalService: name from the first label present, else the workload name; revision
 *  likewise, else `latest`. A label present with an empty value counts as present. */
export function canonicalService(
  labels: Labels,
  workloadName: string,
): { readonly name: string; readonly revision: string } {
  const first = (keys: readonly string[]) => keys.find((k) => labels[k] !== undefined);
  const n = first(NAME_LABELS);
  const r = first(REVISION_LABELS);
  return {
    name: n !== undefined ? labels[n]! : workloadName,
    revision: r !== undefined ? labels[r]! : 'latest',
  };
}
