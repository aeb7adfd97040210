// Shared fixtures for the HBONE tests: a real PKI (ca/pki.ts), servers and backends on
// 127.0.0.1 port 0, a logger whose lines the test can read, and small stream utilities.
// Nothing here ever dials an address other than 127.0.0.1.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import type { Test } from 'tap';
import { type Authority, createIntermediate, createRoot, issueKeyAndLeaf } from '../../ca/pki.js';
import { type SocketAddr, socketAddr } from '../../hbone/address.js';
import { StaticCertificateSource, type WorkloadCertificate } from '../../hbone/certificates.js';
import {
  HboneClient,
  type HboneClientOptions,
  type OpenRequest,
} from '../../hbone/client/client.js';
import { HboneServer, type HboneServerOptions } from '../../hbone/server/server.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import type { Logger } from '../../lib/logger.js';
import { eventually } from '../helpers/eventually.js';

export const TD = 'cluster.local';
export const CLIENT_ID = SpiffeId.of(TD, 'default', 'client');
export const SERVER_ID = SpiffeId.of(TD, 'default', 'server');
export const OTHER_ID = SpiffeId.of(TD, 'other', 'someone');

export interface Pki {
  readonly root: Authority;
  readonly issuer: Authority; // an intermediate, so chains are exercised
  readonly bundle: string[];
  readonly certs: StaticCertificateSource;
  issue(
    id: SpiffeId,
    opts?: { notBefore?: Date; notAfter?: Date; by?: Authority },
  ): Promise<WorkloadCertificate>;
}

export async function makePki(ids: SpiffeId[] = [CLIENT_ID, SERVER_ID, OTHER_ID]): Promise<Pki> {
  const root = await createRoot({ trustDomain: TD });
  const issuer = await createIntermediate(root, { trustDomain: TD });
  const bundle = [root.cert.toString('pem')];
  const issue: Pki['issue'] = async (id, opts = {}) => {
    const { keyPem, certPem, chainPem } = await issueKeyAndLeaf(opts.by ?? issuer, id, opts);
    return { identity: id, keyPem, certChainPem: [certPem, ...chainPem] };
  };
  const certs = new StaticCertificateSource(bundle, await Promise.all(ids.map((id) => issue(id))));
  return { root, issuer, bundle, certs, issue };
}

export interface CapturedLog {
  readonly logger: Logger;
  readonly lines: Array<Record<string, unknown>>;
}

export function captureLogger(level: 'debug' | 'info' | 'warn' = 'warn'): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

/** `eventually` with the argument order these tests use, checking every 10 ms. */
export const waitFor = (pred: () => boolean, ms = 5_000, what = 'condition'): Promise<void> =>
  eventually(pred, what, ms, 10);

export const LOOPBACK = '127.0.0.1';

export async function startServer(
  pki: Pki,
  overrides: Partial<HboneServerOptions> = {},
  port = 0,
): Promise<{ server: HboneServer; log: CapturedLog; via: SocketAddr }> {
  const log = captureLogger();
  const server = await HboneServer.listen(
    {
      certificates: pki.certs,
      selectIdentity: () => ({ identity: SERVER_ID }),
      logger: log.logger,
      ...overrides,
    },
    { host: LOOPBACK, port },
  );
  return { server, log, via: server.address() };
}

export function makeClient(pki: Pki, overrides: Partial<HboneClientOptions> = {}): HboneClient {
  return new HboneClient({ certificates: pki.certs, logger: captureLogger().logger, ...overrides });
}

/** A TCP backend on loopback; `onSocket` decides what it does (echo by default). */
export async function startBackend(
  onSocket: (s: Socket) => void = (s) => s.pipe(s),
): Promise<{ server: Server; addr: SocketAddr; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  // A deep backlog: load tests connect a thousand upstreams at once.
  server.listen({ port: 0, host: LOOPBACK, backlog: 4096 });
  await once(server, 'listening');
  const a = server.address();
  if (!a || typeof a === 'string') throw new Error('no address');
  return { server, addr: socketAddr(LOOPBACK, a.port), sockets };
}

/** A loopback port with nothing listening (bound, then closed). */
export async function closedPort(): Promise<SocketAddr> {
  const { server, addr } = await startBackend();
  await new Promise((r) => server.close(r));
  return addr;
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function closeServer(s: Server): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

export function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Opens a tunnel from CLIENT_ID, expecting SERVER_ID, to `destination` through `via`. */
export function openTunnel(
  client: HboneClient,
  via: SocketAddr,
  destination: SocketAddr,
  req: Partial<OpenRequest> = {},
) {
  return client.open({
    sourceIdentity: CLIENT_ID,
    destination,
    expectedIdentities: [SERVER_ID],
    via,
    ...req,
  });
}

/** The usual cast of a tunnel test: a backend, a server, a client, torn down with the test.
 *  `open()` opens a tunnel from CLIENT_ID to the backend through the server. */
export async function fixture(
  t: Test,
  pki: Pki,
  opts: {
    backend?: (s: Socket) => void;
    server?: Partial<HboneServerOptions>;
    client?: Partial<HboneClientOptions>;
  } = {},
) {
  const backend = await startBackend(opts.backend);
  const { server, via, log } = await startServer(pki, opts.server);
  const client = makeClient(pki, opts.client);
  t.teardown(async () => {
    client.close();
    await server.close(0);
    await closeServer(backend.server);
  });
  const open = (req: Partial<OpenRequest> = {}) => openTunnel(client, via, backend.addr, req);
  return { backend, server, via, log, client, open };
}

/** TLS client options with CLIENT_ID's certificate, our CA bundle and ALPN h2: what a peer
 *  that is not HboneClient needs to reach our server over mutual TLS. */
export async function clientTlsOptions(p: Pki) {
  const cert = await p.certs.forIdentity(CLIENT_ID);
  return {
    key: cert.keyPem,
    cert: cert.certChainPem.join('\n'),
    ca: p.bundle,
    ALPNProtocols: ['h2'],
  };
}

/** A plain node:http2 session over our mTLS (CLIENT_ID's certificate), for sending what
 *  HboneClient never would. Resolves once the server's SETTINGS arrived (it admitted us). */
export async function rawSession(
  pki: Pki,
  port: number,
  opts: { awaitSettings?: boolean } = {},
): Promise<ClientHttp2Session> {
  const tls = await clientTlsOptions(pki);
  const session = h2connect(`https://${LOOPBACK}:${port}`, {
    createConnection: () => tlsConnect({ host: LOOPBACK, port, ...tls, rejectUnauthorized: false }),
  });
  session.on('error', () => {});
  if (opts.awaitSettings !== false) await once(session, 'remoteSettings');
  return session;
}
