// A made-up mesh for the map page at scale: N workloads in namespaces of ten, each calling
// three others (a few denied, a few plaintext, a few refused), answered on admin /edges by a
// stand-in agent, so that bench/map-page.ts can time the page at a few hundred workloads
// without running hundreds of pods. Deterministic (no randomness): runs compare.
import { createServer, type Server } from 'node:http';
import type { EdgeSummary } from '../../agent/observe/edges.js';
import type { MapSummary, MapWorkload } from '../../agent/observe/map-summary.js';

export function syntheticSummary(workloads: number): MapSummary {
  const ws: MapWorkload[] = Array.from({ length: workloads }, (_, i) => ({
    namespace: `ns-${Math.floor(i / 10)}`,
    workload: `app-${i}`,
    kind: 'Deployment',
    inMesh: i % 17 !== 0,
    pods: 2,
    serviceAccounts: [`app-${i}`],
    nodes: [`node-${i % 8}`],
  }));
  const edges: EdgeSummary[] = [];
  for (let i = 0; i < workloads; i++) {
    for (const step of [1, 7, 31]) {
      const j = (i + step) % workloads;
      const kind = (i * 3 + step) % 23;
      const src = ws[i]!;
      const dst = ws[j]!;
      edges.push({
        reporter: 'destination',
        source: {
          workload: src.workload,
          namespace: src.namespace,
          ...(kind === 1
            ? {}
            : { principal: `spiffe://cluster.local/ns/${src.namespace}/sa/${src.workload}` }),
        },
        destination: {
          workload: dst.workload,
          namespace: dst.namespace,
          service: `${dst.workload}.${dst.namespace}.svc.cluster.local`,
        },
        security: kind === 1 ? 'none' : 'mutual_tls',
        opened: 10 + kind,
        active: kind % 3,
        closed: 10,
        allowed: kind === 2 ? 0 : 10,
        denied: kind === 2 ? 10 : 0,
        failed: kind === 3 ? 2 : 0,
        policies: [
          {
            policy: `${dst.namespace}/policy-${kind}`,
            verdict: kind === 2 ? 'deny' : 'allow',
            count: 10,
          },
        ],
        bytesFromClient: 1000 * kind,
        bytesToClient: 5000 * kind,
        connectionsPerSecond: 0.1 * kind,
        bytesPerSecond: 100 * kind,
        setupMs: { count: 10, mean: 2 + kind / 10, max: 9 },
        firstSeen: 0,
        lastSeen: Date.now(),
      });
    }
  }
  return {
    version: 1,
    node: 'synthetic',
    at: Date.now(),
    meshVersion: 1,
    windowMs: 300_000,
    maxEdges: 2_000,
    evicted: 0,
    workloads: ws,
    edges,
  };
}

/** A stand-in agent answering GET /edges with `summary`, on 127.0.0.1 at a free port. */
export async function syntheticAgent(
  summary: MapSummary,
): Promise<{ url: string; server: Server }> {
  const body = JSON.stringify(summary);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/`, server };
}
