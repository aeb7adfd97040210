// The labels of Istio's TCP metrics, as ztunnel sets them (istio/ztunnel src/proxy/metrics.rs:
// CommonTrafficLabels, with_source, with_derived_source, with_destination,
// with_destination_service; DefaultedUnknown in src/metrics.rs). Pure: the caller resolves
// the workloads, services and node localities.
import type { Workload } from '../../mesh/types.js';

/** CommonTrafficLabels, in ztunnel's field order (src/proxy/metrics.rs). */
export const TRAFFIC_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

/** LocalityLabels: ztunnel encodes them (OptionallyEncode) only once a source or destination
 *  workload is known, and then all four. */
export const LOCALITY_LABELS = [
  'source_region',
  'source_zone',
  'destination_region',
  'destination_zone',
] as const;

export const ALL_TRAFFIC_LABELS = [...TRAFFIC_LABELS, ...LOCALITY_LABELS] as const;
export type TrafficLabel = (typeof ALL_TRAFFIC_LABELS)[number];
export type TrafficLabels = Partial<Record<TrafficLabel, string>>;

/** ztunnel's DefaultedUnknown: missing or empty values are `unknown`. */
export const UNKNOWN = 'unknown';

/** A workload as telemetry sees it: the pod plus its node's locality. */
export interface TelemetryWorkload {
  readonly workload: Workload;
  readonly region: string | undefined;
  readonly zone: string | undefined;
}

export interface TrafficInput {
  readonly reporter: 'source' | 'destination';
  readonly source: TelemetryWorkload | undefined;
  readonly destination: TelemetryWorkload | undefined;
  /** The proven peer identity (ztunnel: only from an mTLS handshake, with_derived_source). */
  readonly sourcePrincipal: string | undefined;
  readonly destinationPrincipal: string | undefined;
  readonly service:
    | { readonly hostname: string; readonly name?: string; readonly namespace?: string }
    | undefined;
  readonly mtls: boolean;
  /** The cluster every workload of this mesh belongs to (istiod's `CLUSTER_ID`). */
  readonly clusterId: string;
  /** Response flag (`-` when none). */
  readonly responseFlags: string;
}

const v = (s: string | undefined): string => (s === undefined || s === '' ? UNKNOWN : s);

export function trafficLabels(i: TrafficInput): TrafficLabels {
  const src = i.source?.workload;
  const dst = i.destination?.workload;
  const labels: TrafficLabels = {
    reporter: i.reporter,
    // with_source: workload_name, canonical name/revision; app/version = canonical ones.
    source_workload: v(src?.workloadName),
    source_canonical_service: v(src?.canonicalName),
    source_canonical_revision: v(src?.canonicalRevision),
    source_workload_namespace: v(src?.meta.namespace),
    // "We explicitly do not set source_principal here. This is set only with
    // with_derived_source based on the real mTLS identity."
    source_principal: v(i.mtls ? i.sourcePrincipal : undefined),
    source_app: v(src?.canonicalName),
    source_version: v(src?.canonicalRevision),
    source_cluster: v(src ? i.clusterId : undefined),
    destination_service: v(i.service?.hostname),
    destination_service_namespace: v(i.service?.namespace),
    destination_service_name: v(i.service?.name),
    destination_workload: v(dst?.workloadName),
    destination_canonical_service: v(dst?.canonicalName),
    destination_canonical_revision: v(dst?.canonicalRevision),
    destination_workload_namespace: v(dst?.meta.namespace),
    // with_destination: the destination workload's identity, mTLS or not.
    destination_principal: v(i.destinationPrincipal),
    destination_app: v(dst?.canonicalName),
    destination_version: v(dst?.canonicalRevision),
    destination_cluster: v(dst ? i.clusterId : undefined),
    request_protocol: 'tcp',
    response_flags: i.responseFlags,
    connection_security_policy: i.mtls ? 'mutual_tls' : UNKNOWN,
  };
  if (src || dst) {
    labels.source_region = v(i.source?.region);
    labels.source_zone = v(i.source?.zone);
    labels.destination_region = v(i.destination?.region);
    labels.destination_zone = v(i.destination?.zone);
  }
  return labels;
}
