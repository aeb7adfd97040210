// The `baggage` of an HBONE CONNECT as ztunnel writes it (istio/ztunnel src/baggage.rs
// baggage_header_val, from Workload::baggage in src/state/workload.rs): the source's
// cluster, namespace, workload name under its workload type, canonical service and
// revision. Peers (ztunnel's inbound, and ours) read the source workload from it.
import type { Workload } from '../../mesh/types.js';

/** istiod's WorkloadType, lower-cased as ztunnel writes it: deployment, cronjob, job, or pod
 *  for every other kind (StatefulSet and DaemonSet included). */
function workloadType(kind: string): string {
  switch (kind) {
    case 'Deployment':
      return 'deployment';
    case 'CronJob':
      return 'cronjob';
    case 'Job':
      return 'job';
    default:
      return 'pod';
  }
}

export function ztunnelBaggage(w: Workload, clusterId: string): Record<string, string> {
  const entries: [string, string][] = [
    ['k8s.cluster.name', clusterId],
    ['k8s.namespace.name', w.meta.namespace],
    [`k8s.${workloadType(w.workloadKind)}.name`, w.workloadName],
    ['service.name', w.canonicalName],
    ['service.version', w.canonicalRevision],
  ];
  return Object.fromEntries(entries.filter(([, v]) => v !== ''));
}
