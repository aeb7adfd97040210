// What an agent tells the mesh map (admin `/edges`): its recent edges (edges.ts) and the
// workloads of the mesh as it knows them, by Istio's workload name, with the mesh/non-mesh
// marker. Plain JSON; the map merges the answers of every agent (cli/map/gather.ts).
import type { MeshSnapshot } from '../../mesh/snapshot.js';
import type { EdgeSummary, EdgeWindow } from './edges.js';

export const MAP_SUMMARY_VERSION = 1;

export interface MapWorkload {
  readonly namespace: string;
  readonly workload: string;
  readonly kind: string;
  readonly inMesh: boolean;
  readonly pods: number;
  readonly serviceAccounts: readonly string[];
  readonly nodes: readonly string[];
}

export interface MapSummary {
  readonly version: typeof MAP_SUMMARY_VERSION;
  readonly node: string;
  readonly at: number;
  readonly meshVersion: number;
  readonly windowMs: number;
  readonly maxEdges: number;
  readonly evicted: number;
  readonly workloads: readonly MapWorkload[];
  readonly edges: readonly EdgeSummary[];
}

export function mapSummary(node: string, snapshot: MeshSnapshot, edges: EdgeWindow): MapSummary {
  const byName = new Map<
    string,
    { w: MapWorkload; sas: Set<string>; nodes: Set<string>; pods: number }
  >();
  for (const p of snapshot.workloads) {
    const key = `${p.meta.namespace}/${p.workloadName}`;
    let e = byName.get(key);
    if (!e) {
      e = {
        w: {
          namespace: p.meta.namespace,
          workload: p.workloadName,
          kind: p.workloadKind,
          inMesh: p.inMesh,
          pods: 0,
          serviceAccounts: [],
          nodes: [],
        },
        sas: new Set(),
        nodes: new Set(),
        pods: 0,
      };
      byName.set(key, e);
    }
    e.pods++;
    e.sas.add(p.serviceAccount);
    if (p.node) e.nodes.add(p.node);
  }
  const s = edges.summary();
  return {
    version: MAP_SUMMARY_VERSION,
    node,
    at: Date.now(),
    meshVersion: snapshot.version,
    windowMs: s.windowMs,
    maxEdges: s.maxEdges,
    evicted: s.evicted,
    workloads: [...byName.values()].map((e) => ({
      ...e.w,
      pods: e.pods,
      serviceAccounts: [...e.sas],
      nodes: [...e.nodes],
    })),
    edges: s.edges,
  };
}
