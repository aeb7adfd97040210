// From a connection record's fields to the inputs of Istio's labels: which workloads, which
// service, which localities, as ztunnel finds them (by address in its state; src/proxy/
// inbound.rs build_inbound_request, outbound.rs conn_metrics_from_request). Pure over one
// mesh snapshot.
import type { MeshSnapshot } from '../../mesh/snapshot.js';
import type { Workload } from '../../mesh/types.js';
import type { TelemetryWorkload, TrafficInput } from './labels.js';
import type { ConnectionFields, Peer } from './record.js';

export interface TelemetrySettings {
  /** Istio's cluster id (`CLUSTER_ID`; default `Kubernetes`). */
  readonly clusterId: string;
  readonly trustDomain: string;
}

/** Node labels istiod reads for a pod's locality (pilot getPodLocality, pkg/kube/labels). */
export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** `ip:port` (or `[v6]:port`) → ip. */
export function ipOf(addr: string | undefined): string | undefined {
  if (!addr) return undefined;
  const at = addr.lastIndexOf(':');
  const host = at < 0 ? addr : addr.slice(0, at);
  return host.replace(/^\[|\]$/g, '');
}

/** The pod the record names: found by its address (O(1)), checked against its name. */
function workloadOf(peer: Peer, snapshot: MeshSnapshot): Workload | undefined {
  if (!peer.workload || !peer.namespace) return undefined;
  const ip = ipOf(peer.addr);
  const byIp = ip ? snapshot.workloadByIp(ip) : undefined;
  if (byIp && byIp.meta.name === peer.workload && byIp.meta.namespace === peer.namespace)
    return byIp;
  return snapshot.workload(peer.namespace, peer.workload);
}

function located(w: Workload | undefined, snapshot: MeshSnapshot): TelemetryWorkload | undefined {
  if (!w) return undefined;
  const labels = w.node ? snapshot.node(w.node)?.meta.labels : undefined;
  return { workload: w, region: labels?.[REGION_LABEL], zone: labels?.[ZONE_LABEL] };
}

export function trafficInput(
  f: ConnectionFields,
  snapshot: MeshSnapshot,
  s: TelemetrySettings,
  responseFlags: string,
): TrafficInput {
  const source = located(workloadOf(f.src, snapshot), snapshot);
  const dst = workloadOf(f.dst, snapshot);
  const hostname = f.dst.service;
  const svc = hostname ? snapshot.serviceByHostname(hostname) : undefined;
  return {
    reporter: f.direction === 'outbound' ? 'source' : 'destination',
    source,
    destination: located(dst, snapshot),
    sourcePrincipal: f.src.identity,
    destinationPrincipal:
      f.dst.identity ??
      (dst
        ? `spiffe://${s.trustDomain}/ns/${dst.meta.namespace}/sa/${dst.serviceAccount}`
        : undefined),
    service: hostname
      ? { hostname, name: svc?.meta.name, namespace: svc?.meta.namespace }
      : undefined,
    mtls: f.security === 'mutual_tls',
    clusterId: s.clusterId,
    responseFlags,
  };
}
