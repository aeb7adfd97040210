// A whole mesh in one process on loopback: the CA and one agent per node, each node on its
// own loopback address, all reading the same mesh files. What `mtun demo` runs, and what the
// in-process end-to-end tests start. Not a production entry point (an agent per process is).
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from '../agent/agent.js';
import type { AgentConfig } from '../agent/config.js';
import type { OriginalDestination } from '../agent/context.js';
import type { AccessLogSink } from '../agent/observe/record.js';
import { CaClient } from '../ca/client.js';
import { type RunningCa, startCa } from '../ca/service.js';
import { deepFreeze } from '../lib/freeze.js';
import type { Logger, LogLevel } from '../lib/logger.js';
import { openMeshSource } from '../mesh/open.js';
import type { MeshSource } from '../mesh/source.js';

export interface LocalNode {
  readonly name: string;
  /** The loopback address this node's agent listens on (its InternalIP in the mesh). */
  readonly ip: string;
}

export interface LocalMeshOptions {
  readonly dir: string;
  readonly meshPaths: readonly string[];
  readonly nodes: readonly LocalNode[];
  readonly hbonePort: number;
  /** 0 = any free port. */
  readonly caPort?: number;
  readonly socks5Port?: number;
  readonly adminPort?: number;
  readonly metricsPort?: number;
  readonly readinessPort?: number;
  readonly certTtlSeconds?: number;
  readonly drainPeriodMs?: number;
  /** The hardened profile on every agent (agent/config.ts). */
  readonly hardened?: boolean;
  readonly logger: Logger;
  readonly accessLog?: (node: string) => AccessLogSink;
  readonly originalDestination?: OriginalDestination;
}

export interface LocalMesh {
  readonly ca: RunningCa;
  readonly agents: ReadonlyMap<string, Agent>;
  close(): Promise<void>;
}

export async function startLocalMesh(o: LocalMeshOptions): Promise<LocalMesh> {
  const tokens = new Map(o.nodes.map((n) => [n.name, randomBytes(24).toString('hex')]));
  const tokensFile = join(o.dir, 'tokens.yaml');
  await writeFile(
    tokensFile,
    [...tokens].map(([node, token]) => `- {node: ${node}, token: ${token}}\n`).join(''),
    { mode: 0o600 },
  );
  const ca = await startCa(
    {
      stateDir: join(o.dir, 'ca'),
      meshPaths: o.meshPaths,
      tokensFile,
      host: '127.0.0.1',
      port: o.caPort ?? 0,
      trustDomain: 'cluster.local',
      cacertsDir: undefined,
      maxTtlMs: 86_400_000,
      rateLimit: { burst: 1000, perSecond: 100 },
    },
    o.logger.child({ module: 'ca' }),
  );
  const agents = new Map<string, Agent>();
  const sources = new Map<string, MeshSource>();
  try {
    for (const node of o.nodes) {
      const logger = o.logger.child({ node: node.name });
      const config: AgentConfig = deepFreeze({
        node: node.name,
        logLevel: logger.level as LogLevel,
        redirect: 'none',
        mesh: { kind: 'files', paths: [...o.meshPaths] },
        trustDomain: 'cluster.local',
        clusterDomain: 'cluster.local',
        rootNamespace: 'istio-system',
        ca: { url: ca.url, tokenFile: '', bundleFile: '', certTtlSeconds: o.certTtlSeconds },
        listenIp: node.ip,
        outboundPort: 0,
        inboundPort: o.hbonePort,
        inboundPlaintextPort: 0,
        hbonePort: o.hbonePort,
        hboneDial: 'node',
        socks5: { host: node.ip, port: o.socks5Port ?? 0 },
        socks5Workload: undefined,
        socks5AllowNonPodClients: false,
        admin: { host: node.ip, port: o.adminPort ?? 0 },
        metrics: { host: node.ip, port: o.metricsPort ?? 0 },
        readiness: { host: node.ip, port: o.readinessPort ?? 0 },
        clusterId: 'Kubernetes',
        workers: 1,
        drainPeriodMs: o.drainPeriodMs ?? 5_000,
        connectTimeoutMs: 5_000,
        refuseBypassedPlaintext: false,
        hardened: o.hardened ?? false,
      });
      const mesh = await openMeshSource(config.mesh, {
        logger: logger.child({ module: 'mesh' }),
        clusterDomain: config.clusterDomain,
      });
      sources.set(node.name, mesh);
      const token = tokens.get(node.name)!;
      const agent = await Agent.create(config, {
        mesh,
        ca: new CaClient({
          url: ca.url,
          caBundlePem: ca.server.trustBundlePem,
          token: async () => token,
        }),
        caBundlePem: [ca.server.trustBundlePem],
        logger,
        ...(o.accessLog ? { accessLog: o.accessLog(node.name) } : {}),
        ...(o.originalDestination ? { originalDestination: o.originalDestination } : {}),
      });
      agents.set(node.name, agent);
    }
  } catch (err) {
    await Promise.all([...agents.values()].map((a) => a.close(0)));
    await Promise.all([...sources.values()].map((s) => s.close()));
    await ca.close();
    throw err;
  }
  return {
    ca,
    agents,
    close: async () => {
      await Promise.all([...agents.values()].map((a) => a.close(o.drainPeriodMs ?? 1_000)));
      await Promise.all([...sources.values()].map((s) => s.close()));
      await ca.close();
    },
  };
}

/** Waits until every agent is ready (certificates loaded), or throws after `timeoutMs`. */
export async function waitReady(mesh: LocalMesh, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const waiting = [...mesh.agents]
      .map(([n, a]) => [n, a.notReadyReason()] as const)
      .filter(([, why]) => why);
    if (waiting.length === 0) return;
    if (Date.now() > end)
      throw new Error(`agents not ready: ${waiting.map(([n, w]) => `${n}: ${w}`).join('; ')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
