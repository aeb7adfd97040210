// Core Kubernetes objects (v1 Pod, Service, Node, Namespace) → internal model. Only the
// fields mtun uses are read; everything else a real object carries passes untouched.
import { z } from 'zod';
import type { MeshNode, Namespace, Origin, OwnerReference, Service, Workload } from '../types.js';
import { ipAddress, k8sName, labels, metadataSchema, parseWith, toMeta } from './common.js';
import { canonicalService, workloadOf } from './workload-name.js';

/** Istio ambient's membership label (pod label wins over the namespace's). */
export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';

const port = z.number().int().min(1).max(65535);

const podSchema = z.object({
  metadata: metadataSchema,
  spec: z
    .object({
      serviceAccountName: k8sName.optional(),
      serviceAccount: k8sName.optional(),
      nodeName: z.string().min(1).optional(),
      containers: z
        .array(
          z
            .object({
              ports: z
                .array(z.object({ name: z.string().optional(), containerPort: port }).loose())
                .nullish(),
            })
            .loose(),
        )
        .nullish(),
    })
    .loose()
    .default({}),
  status: z
    .object({
      podIP: ipAddress.optional(),
      podIPs: z.array(z.object({ ip: ipAddress }).loose()).nullish(),
      phase: z.string().optional(),
      conditions: z.array(z.object({ type: z.string(), status: z.string() }).loose()).nullish(),
    })
    .loose()
    .default({}),
});

export function podToWorkload(
  doc: unknown,
  origin: Origin,
  namespaceLabels: (ns: string) => Record<string, string> | undefined,
): Workload {
  const pod = parseWith(podSchema, doc, origin, 'Pod');
  const meta = toMeta(pod.metadata, origin, { kind: 'Pod' });
  const ips = [
    ...new Set([
      ...(pod.status.podIP ? [pod.status.podIP] : []),
      ...(pod.status.podIPs ?? []).map((p) => p.ip),
    ]),
  ];
  const podMode = meta.labels[DATAPLANE_MODE_LABEL];
  const nsMode = namespaceLabels(meta.namespace)?.[DATAPLANE_MODE_LABEL];
  // Istio ambient: pod label `none` opts out; pod or namespace `ambient` opts in.
  const inMesh = podMode === 'none' ? false : podMode === 'ambient' || nsMode === 'ambient';
  const readyCond = (pod.status.conditions ?? []).find((c) => c.type === 'Ready');
  const phase = pod.status.phase;
  // Hand-written files usually omit status.conditions: a pod with an IP counts as ready
  // unless its phase or Ready condition says otherwise.
  const ready =
    ips.length > 0 &&
    (phase === undefined || phase === 'Running') &&
    (readyCond === undefined || readyCond.status === 'True');
  const namedPorts = new Map<string, number>();
  for (const c of pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name) namedPorts.set(p.name, p.containerPort);
  }
  const generateName = pod.metadata.generateName || undefined;
  const ownerReferences: readonly OwnerReference[] = Object.freeze(
    (pod.metadata.ownerReferences ?? []).map((r) =>
      Object.freeze({
        apiVersion: r.apiVersion,
        kind: r.kind,
        name: r.name,
        controller: r.controller === true,
      }),
    ),
  );
  const { name: workloadName, kind: workloadKind } = workloadOf({
    name: meta.name,
    generateName,
    labels: meta.labels,
    ownerReferences,
  });
  const canonical = canonicalService(meta.labels, workloadName);
  return Object.freeze({
    meta,
    generateName,
    ownerReferences,
    workloadName,
    workloadKind,
    canonicalName: canonical.name,
    canonicalRevision: canonical.revision,
    serviceAccount: pod.spec.serviceAccountName ?? pod.spec.serviceAccount ?? 'default',
    node: pod.spec.nodeName,
    ips: Object.freeze(ips),
    inMesh,
    ready,
    namedPorts,
  });
}

const serviceSchema = z.object({
  metadata: metadataSchema,
  spec: z
    .object({
      clusterIP: z.union([ipAddress, z.literal('None'), z.literal('')]).optional(),
      clusterIPs: z.array(z.union([ipAddress, z.literal('None')])).nullish(),
      selector: labels.nullish(),
      ports: z
        .array(
          z
            .object({
              name: z.string().optional(),
              port,
              targetPort: z.union([port, z.string().min(1)]).optional(),
              protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
            })
            .loose(),
        )
        .default([]),
    })
    .loose(),
});

export function serviceFromWire(doc: unknown, origin: Origin, clusterDomain: string): Service {
  const svc = parseWith(serviceSchema, doc, origin, 'Service');
  const meta = toMeta(svc.metadata, origin, { kind: 'Service' });
  const ips = [
    ...new Set(
      [svc.spec.clusterIP, ...(svc.spec.clusterIPs ?? [])].filter(
        (ip): ip is string => !!ip && ip !== 'None',
      ),
    ),
  ];
  return Object.freeze({
    meta,
    hostname: `${meta.name}.${meta.namespace}.svc.${clusterDomain}`,
    clusterIps: Object.freeze(ips),
    ports: Object.freeze(
      svc.spec.ports.map((p) =>
        Object.freeze({
          name: p.name,
          port: p.port,
          targetPort: p.targetPort ?? p.port,
          protocol: p.protocol,
        }),
      ),
    ),
    selector: svc.spec.selector ? Object.freeze({ ...svc.spec.selector }) : undefined,
  });
}

const nodeSchema = z.object({
  metadata: metadataSchema,
  status: z
    .object({
      addresses: z
        .array(z.object({ type: z.string(), address: z.string().min(1) }).loose())
        .nullish(),
    })
    .loose()
    .default({}),
});

export function nodeFromWire(doc: unknown, origin: Origin): MeshNode {
  const node = parseWith(nodeSchema, doc, origin, 'Node');
  return Object.freeze({
    meta: toMeta(node.metadata, origin, { kind: 'Node', clusterScoped: true }),
    addresses: Object.freeze(
      (node.status.addresses ?? []).map((a) => ({ type: a.type, address: a.address })),
    ),
  });
}

const namespaceSchema = z.object({ metadata: metadataSchema });

export function namespaceFromWire(doc: unknown, origin: Origin): Namespace {
  const ns = parseWith(namespaceSchema, doc, origin, 'Namespace');
  const meta = toMeta(ns.metadata, origin, { kind: 'Namespace', clusterScoped: true });
  return Object.freeze({ meta: { ...meta, namespace: meta.name } });
}
