// The demo's applications: tiny HTTP/1.1 services on their pod IPs, unaware of the mesh.
// reviews calls ratings the way an app would (through its node's agent, here by SOCKS5).
import { createServer, type Server } from 'node:http';
import { socks5Connect } from '../../lib/socks5-client.js';

export interface DemoApp {
  readonly pod: string;
  readonly ip: string;
  readonly server: Server;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** A GET through an agent's SOCKS5 listener, from the pod's own IP. */
export async function getVia(
  socks: { host: string; port: number },
  fromIp: string,
  host: string,
  port: number,
  path: string,
): Promise<HttpAnswer> {
  const s = await socks5Connect(socks, { host, port }, { localAddress: fromIp, timeoutMs: 5_000 });
  return new Promise((resolve, reject) => {
    let raw = '';
    const timer = setTimeout(() => s.destroy(new Error('no answer within 5 s')), 5_000);
    s.on('data', (d) => (raw += d));
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('end', () => {
      clearTimeout(timer);
      s.end(); // our side of the half-close: the tunnel ends when both sides did
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
      resolve({ status, body: raw.slice(raw.indexOf('\r\n\r\n') + 4) });
    });
    // Not end(): Node's HTTP server drops a connection half-closed before it answered.
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

export async function startDemoApps(
  socksOf: (ip: string) => { host: string; port: number },
): Promise<DemoApp[]> {
  const specs: { pod: string; ip: string; handle: () => Promise<unknown> }[] = [
    { pod: 'productpage-1', ip: '127.0.10.1', handle: async () => ({ page: 'product' }) },
    {
      pod: 'details-1',
      ip: '127.0.20.1',
      handle: async () => ({ book: 'The Comedy of Errors', pages: 200 }),
    },
    { pod: 'ratings-1', ip: '127.0.20.3', handle: async () => ({ stars: 4 }) },
    ...['reviews-v1:127.0.10.2', 'reviews-v2:127.0.20.2'].map((s) => {
      const [pod, ip] = s.split(':') as [string, string];
      return {
        pod,
        ip,
        handle: async () => {
          const r = await getVia(
            socksOf(ip),
            ip,
            'ratings.shop.svc.cluster.local',
            80,
            '/ratings',
          ).catch((e: Error) => ({ status: 0, body: e.message }));
          return {
            review: 'An extremely entertaining play by Shakespeare.',
            ratings: r.status === 200 ? JSON.parse(r.body) : { unavailable: r.body },
          };
        },
      };
    }),
  ];
  const apps: DemoApp[] = [];
  for (const spec of specs) {
    const server = createServer(async (_req, res) => {
      const body = JSON.stringify({ pod: spec.pod, ...((await spec.handle()) as object) });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(9080, spec.ip, () => resolve());
    });
    apps.push({ pod: spec.pod, ip: spec.ip, server });
  }
  return apps;
}

export async function stopDemoApps(apps: DemoApp[]): Promise<void> {
  await Promise.all(
    apps.map(
      (a) =>
        new Promise<void>((r) => {
          a.server.closeAllConnections();
          a.server.close(() => r());
        }),
    ),
  );
}
