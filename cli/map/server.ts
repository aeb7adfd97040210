// The mesh map's HTTP server (`mtun map`, the demo): the page (page.ts), the cytoscape bundle
// from node_modules (offline: no CDN), and /graph.json, the agents' summaries merged
// (merge.ts). Viewers share one gathering at a time and a result younger than a second, so
// many open pages cost the agents no more than one. Plain HTTP, read-only, bounded answers.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { BindError, closeServer } from '../../agent/proxy/listener.js';
import type { HostPort } from '../../lib/address.js';
import { errorMessage } from '../../lib/errors.js';
import { askAgents } from './gather.js';
import { type Graph, mergeAnswers } from './merge.js';
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js';

export interface MapServerOptions {
  readonly listen: HostPort;
  /** The agents' admin base URLs, asked again at every gathering (the mesh may change). */
  readonly agents: () => readonly string[] | Promise<readonly string[]>;
}

interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer;
}

function asset(type: string, body: string | Buffer, level = 9): Asset {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return { type, body: b, gzip: gzipSync(b, { level }) };
}

/** cytoscape's own minified build, as npm installed it (package.json pins the version). */
function cytoscapeBundle(): Buffer {
  const require = createRequire(import.meta.url);
  return readFileSync(require.resolve('cytoscape/dist/cytoscape.min.js'));
}

// The page loads nothing from elsewhere and runs only its own two scripts (cytoscape sets
// inline styles on its canvas elements, hence the styles' 'unsafe-inline').
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:";

export class MapServer {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async create(opts: MapServerOptions): Promise<MapServer> {
    const assets: Record<string, Asset> = {
      '/': asset('text/html; charset=utf-8', PAGE_HTML),
      '/map.css': asset('text/css; charset=utf-8', PAGE_CSS),
      '/map.js': asset('text/javascript; charset=utf-8', PAGE_JS),
      '/cytoscape.min.js': asset('text/javascript; charset=utf-8', cytoscapeBundle()),
    };
    let last: { at: number; graph: Graph } | undefined;
    let pending: Promise<Graph> | undefined;
    const graph = (): Promise<Graph> => {
      if (last && Date.now() - last.at < 1_000) return Promise.resolve(last.graph);
      pending ??= (async () => {
        try {
          const g = mergeAnswers(await askAgents(await opts.agents()));
          last = { at: Date.now(), graph: g };
          return g;
        } finally {
          pending = undefined;
        }
      })();
      return pending;
    };
    const server = createServer(
      { requestTimeout: 10_000, headersTimeout: 5_000 },
      (req: IncomingMessage, res: ServerResponse) => {
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { allow: 'GET' }).end();
          return;
        }
        if (path === '/graph.json') {
          graph().then(
            (g) => send(req, res, asset('application/json', JSON.stringify(g), 6), 'no-store'),
            (err) => {
              res.writeHead(500, { 'content-type': 'text/plain' }).end(`${errorMessage(err)}\n`);
            },
          );
          return;
        }
        const a = assets[path === '/index.html' ? '/' : path];
        if (!a) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
          return;
        }
        send(req, res, a, path === '/cytoscape.min.js' ? 'max-age=86400' : 'no-cache');
      },
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new BindError('map', opts.listen, err)));
      server.listen(opts.listen.port, opts.listen.host, () => resolve());
    });
    return new MapServer(server);
  }

  /** The page's address, as a person would type it. */
  url(): string {
    const a = this.#server.address() as { address: string; port: number; family: string };
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${a.port}/`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await closeServer(this.#server);
  }
}

function send(req: IncomingMessage, res: ServerResponse, a: Asset, cache: string): void {
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? a.gzip : a.body;
  res.writeHead(200, {
    'content-type': a.type,
    'content-length': body.length,
    'cache-control': cache,
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    vary: 'accept-encoding',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
