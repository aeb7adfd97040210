// The agent's HTTP endpoints, on ztunnel's ports: admin on loopback (/config_dump, /logging,
// /quitquitquit; 15000), metrics (/metrics, /stats/prometheus; 15020) and readiness
// (/healthz/ready; 15021, ztunnel src/readiness/server.rs). Plain HTTP, small bounded
// answers; nothing here can change routing or policy.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { HostPort } from '../lib/address.js';
import { errorMessage } from '../lib/errors.js';
import {
  applyLogLevels,
  describeLogLevels,
  type Logger,
  type LogLevelSpec,
  parseLogLevels,
} from '../lib/logger.js';
import { BindError, closeServer } from './proxy/listener.js';

export interface AdminHooks {
  readonly logger: Logger;
  configDump(): unknown;
  /** Also told about a level change (the primary of --workers passes it on). */
  onLogLevel?(spec: string, reset: boolean): void;
  /** Why the agent is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** The mesh map's summary (agent/observe/map-summary.ts): admin `/edges`. */
  edges?(): unknown;
  quit(): void;
}

const LOGGING_HELP =
  'usage: /logging?level=<level> | ?level=<scope>:<level>,... | ?reset; levels: error, warn, info, debug, trace, off\n';

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

function send(
  res: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function serve(what: string, at: HostPort, routes: Record<string, Route>): Promise<Server> {
  const server = createServer(
    { requestTimeout: 10_000, headersTimeout: 5_000 },
    async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const route = routes[url.pathname];
      if (!route)
        return send(res, 404, `no such endpoint; try ${Object.keys(routes).join(', ')}\n`);
      try {
        await route(req, res, url);
      } catch (err) {
        send(res, 500, `${errorMessage(err)}\n`);
      }
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new BindError(what, at, err)));
    server.listen(at.port, at.host, () => resolve());
  });
  return server;
}

export class AdminServers {
  readonly #servers: Server[];

  private constructor(servers: Server[]) {
    this.#servers = servers;
  }

  static async create(
    hooks: AdminHooks,
    admin: HostPort | undefined,
    metrics: HostPort | undefined,
    readiness?: HostPort | undefined,
  ): Promise<AdminServers> {
    const servers: Server[] = [];
    try {
      if (metrics) {
        const metricsRoute: Route = async (_req, res) => {
          const m = await hooks.metrics();
          send(res, 200, m.body, m.contentType);
        };
        servers.push(
          await serve('metrics', metrics, {
            '/metrics': metricsRoute,
            '/stats/prometheus': metricsRoute,
          }),
        );
      }
      if (readiness) {
        servers.push(
          await serve('readiness', readiness, {
            // ztunnel handle_ready: GET only; 200 "ready", else 500 with what is pending.
            '/healthz/ready': (req, res) => {
              if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'use GET\n');
              const why = hooks.notReadyReason();
              send(res, why ? 500 : 200, why ? `not ready, pending: ${why}\n` : 'ready\n');
            },
          }),
        );
      }
      if (admin) {
        servers.push(
          await serve('admin', admin, {
            '/config_dump': async (_req, res) =>
              send(
                res,
                200,
                `${JSON.stringify(await hooks.configDump(), null, 2)}\n`,
                'application/json',
              ),
            // ztunnel's /logging: `level=info`, `level=access:debug,hbone:trace`, `reset`.
            '/logging': (_req, res, url) => {
              const text = url.searchParams.get('level');
              const reset = url.searchParams.has('reset');
              if (text !== null || reset) {
                let spec: LogLevelSpec;
                try {
                  spec = text ? parseLogLevels(text) : { level: undefined, scopes: [] };
                } catch (err) {
                  return send(res, 400, `${errorMessage(err)}\n${LOGGING_HELP}`);
                }
                applyLogLevels(hooks.logger, spec, reset);
                hooks.onLogLevel?.(text ?? '', reset);
                hooks.logger.info({ level: describeLogLevels(hooks.logger) }, 'log level changed');
              }
              send(res, 200, `current log level is ${describeLogLevels(hooks.logger)}\n`);
            },
            ...(hooks.edges && {
              '/edges': (_req: IncomingMessage, res: ServerResponse) =>
                send(res, 200, JSON.stringify(hooks.edges?.()), 'application/json'),
            }),
            '/quitquitquit': (req, res) => {
              if (req.method !== 'POST') return send(res, 405, 'use POST\n');
              send(res, 200, 'shutting down\n');
              hooks.quit();
            },
          }),
        );
      }
    } catch (err) {
      await Promise.all(servers.map(closeServer));
      throw err;
    }
    return new AdminServers(servers);
  }

  addresses(): HostPort[] {
    return this.#servers.map((s) => {
      const a = s.address() as { address: string; port: number };
      return { host: a.address, port: a.port };
    });
  }

  async close(): Promise<void> {
    for (const s of this.#servers) s.closeAllConnections();
    await Promise.all(this.#servers.map(closeServer));
  }
}
