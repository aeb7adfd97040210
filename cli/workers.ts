// `--workers N`: the primary process owns the metrics/readiness and admin endpoints and
// answers them for all workers: metrics are aggregated with prom-client's cluster support,
// readiness means every worker is ready, /config_dump lists each worker's dump, /logging
// changes every worker's level. Workers run the agent with those endpoints off.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { AdminServers } from '../agent/admin.js';
import type { Agent } from '../agent/agent.js';
import type { AgentConfig } from '../agent/config.js';
import { errorMessage } from '../lib/errors.js';
import { deepFreeze } from '../lib/freeze.js';
import { applyLogLevels, type Logger, parseLogLevels } from '../lib/logger.js';

const STATUS = 'mtun:status';
const LOGGING = 'mtun:logging';

interface StatusReply {
  readonly type: typeof STATUS;
  readonly id: number;
  readonly notReady: string | undefined;
  readonly dump: unknown;
}

/** The configuration a worker runs with: the primary's, but the primary serves the HTTP
 *  endpoints. */
export function workerConfig(config: AgentConfig): AgentConfig {
  return deepFreeze({ ...config, admin: undefined, metrics: undefined, readiness: undefined });
}

/** In a worker: answer the primary's status and logging requests. */
export function answerPrimary(agent: Agent, logger: Logger): void {
  const registry = agent.ctx.metrics.registry;
  new AggregatorRegistry(); // installs prom-client's worker-side listener
  AggregatorRegistry.setRegistries([registry]);
  process.on('message', (msg: { type?: string; id?: number; spec?: string; reset?: boolean }) => {
    if (msg.type === STATUS) {
      let reply: StatusReply;
      try {
        agent.refreshGauges();
        reply = {
          type: STATUS,
          id: msg.id!,
          notReady: agent.notReadyReason(),
          dump: agent.configDump(),
        };
      } catch (err) {
        // A worker that is shutting down has no listeners left to describe.
        reply = {
          type: STATUS,
          id: msg.id!,
          notReady: `worker ${cluster.worker?.id}: ${errorMessage(err)}`,
          dump: undefined,
        };
      }
      process.send?.(reply);
    } else if (msg.type === LOGGING && typeof msg.spec === 'string') {
      // The primary validated it; a worker applies the same change.
      applyLogLevels(
        logger,
        msg.spec ? parseLogLevels(msg.spec) : { level: undefined, scopes: [] },
        msg.reset === true,
      );
    }
  });
}

/** In the primary: the HTTP endpoints for all workers. */
export async function servePrimary(
  config: AgentConfig,
  logger: Logger,
  quit: () => void,
): Promise<AdminServers> {
  const aggregator = new AggregatorRegistry();
  let nextId = 1;
  const ask = async (): Promise<StatusReply[]> => {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    const id = nextId++;
    const replies = await Promise.all(
      workers.map(
        (w) =>
          new Promise<StatusReply | undefined>((resolve) => {
            const timer = setTimeout(() => done(undefined), 2_000);
            const onMsg = (m: StatusReply) => {
              if (m?.type === STATUS && m.id === id) done(m);
            };
            const done = (r: StatusReply | undefined) => {
              clearTimeout(timer);
              w.off('message', onMsg);
              resolve(r);
            };
            w.on('message', onMsg);
            w.send({ type: STATUS, id });
          }),
      ),
    );
    return replies.map(
      (r, i) =>
        r ?? {
          type: STATUS,
          id,
          notReady: `worker ${workers[i]!.id} did not answer`,
          dump: undefined,
        },
    );
  };
  // Readiness is asked often and must answer at once: keep a recent answer.
  let readiness: string | undefined = 'starting';
  const refresh = async () => {
    const replies = await ask();
    const waiting = replies.filter((r) => r.notReady);
    readiness =
      replies.length < config.workers
        ? `${replies.length} of ${config.workers} workers running`
        : waiting.length > 0
          ? waiting.map((r) => r.notReady).join('; ')
          : undefined;
  };
  const timer = setInterval(() => void refresh(), 1_000);
  timer.unref();
  void refresh();
  const servers = await AdminServers.create(
    {
      logger,
      configDump: async () => mergeDumps((await ask()).map((r) => r.dump)),
      notReadyReason: () => readiness,
      metrics: async () => ({
        contentType: aggregator.contentType,
        body: await aggregator.clusterMetrics(),
      }),
      onLogLevel: (spec, reset) => {
        for (const w of Object.values(cluster.workers ?? {}))
          w?.send({ type: LOGGING, spec, reset });
      },
      quit,
    },
    config.admin,
    config.metrics,
    config.readiness,
  );
  return servers;
}

type Dump = Record<string, unknown> & { mtun?: Record<string, unknown> };
interface Pair {
  readonly source: string;
  readonly destination: string;
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
}

/** One ztunnel-shaped dump for the node (readers such as istioctl expect one): the first
 *  worker's (the mesh and identities are the same in every worker), with the connections
 *  and bypassed pairs of all of them, and every worker's own dump under `workers`. */
export function mergeDumps(dumps: readonly unknown[]): Record<string, unknown> {
  const all = dumps.filter((d): d is Dump => typeof d === 'object' && d !== null);
  const first = all[0];
  if (!first) return { workers: dumps };
  const recent = all
    .flatMap((d) => (d.mtun?.['recentConnections'] as { at: string }[] | undefined) ?? [])
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const bypass = all.map(
    (d) => d.mtun?.['captureBypass'] as { total: number; pairs: Pair[] } | undefined,
  );
  // The same pair seen by several workers is one pair: counts summed, the widest time span.
  const pairs = new Map<string, Pair>();
  for (const p of bypass.flatMap((b) => b?.pairs ?? [])) {
    const key = `${p.source} ${p.destination}`;
    const seen = pairs.get(key);
    pairs.set(
      key,
      !seen
        ? p
        : {
            ...(p.lastSeen > seen.lastSeen ? p : seen),
            count: seen.count + p.count,
            firstSeen: p.firstSeen < seen.firstSeen ? p.firstSeen : seen.firstSeen,
          },
    );
  }
  return {
    ...first,
    mtun: {
      ...first.mtun,
      recentConnections: recent,
      captureBypass: {
        total: bypass.reduce((n, b) => n + (b?.total ?? 0), 0),
        pairs: [...pairs.values()],
      },
    },
    workers: dumps,
  };
}
