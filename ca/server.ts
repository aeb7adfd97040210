// The CA's HTTPS API (TLS 1.3): POST /v1/certificates, GET /v1/trust-bundle, GET /healthz,
// GET /metrics. Authenticates the calling node by bearer token (a NodeAuthenticator: tokens
// file or TokenReview), rate-limits per node, bounds bodies and time, writes one audit line
// per issuance, and reports every refusal through CaRefusals (counted by code, logged at warn
// with reason and peer, rate-limited; a client that went away is only counted, ABORTED).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { z } from 'zod';
import { SpiffeId } from '../identity/spiffe-id.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { TokenBuckets } from '../lib/token-bucket.js';
import type { NodeAuthenticator } from './auth/authenticator.js';
import { CA_ERROR_STATUS, CaError, errorBody } from './errors.js';
import type { Issuer } from './issuer.js';
import type { CaMetrics } from './metrics.js';
import {
  type Authority,
  BACKDATE_MS,
  generateP256,
  intermediatesOf,
  issueLeaf,
  privateKeyPem,
} from './pki.js';
import { CaRefusals } from './refusals.js';

export const MAX_BODY_BYTES = 64 * 1024;
const SERVING_CERT_LIFETIME_MS = 7 * 86_400_000;

const requestSchema = z
  .object({
    csr: z.string().min(1, 'expected a PEM PKCS#10 CSR'),
    ttlSeconds: z
      .number()
      .int()
      .positive()
      .max(365 * 86_400)
      .optional(),
  })
  .strict();

export interface CaServerOptions {
  readonly host: string;
  readonly port: number;
  readonly trustDomain: string;
  readonly authority: Authority;
  readonly issuer: Issuer;
  readonly authenticator: NodeAuthenticator;
  readonly metrics: CaMetrics;
  readonly logger: Logger;
  /** DNS names the serving certificate carries besides localhost and the Service names. */
  readonly extraDnsNames?: readonly string[];
  readonly rateLimit?: { readonly burst: number; readonly perSecond: number };
}

export class CaServer {
  readonly #server: Server;
  readonly #opts: CaServerOptions;
  readonly #limiter: TokenBuckets;
  readonly #bundlePem: string;
  readonly #refusals: CaRefusals;
  /** Refusals #certificates already reported, so that #handle does not report them twice. */
  readonly #reported = new WeakSet<Error>();
  #renewTimer: NodeJS.Timeout | undefined;

  private constructor(server: Server, opts: CaServerOptions) {
    this.#server = server;
    this.#opts = opts;
    this.#limiter = new TokenBuckets({
      capacity: opts.rateLimit?.burst ?? 100,
      refillPerSecond: opts.rateLimit?.perSecond ?? 20,
    });
    this.#bundlePem = opts.authority.roots.map((r) => r.toString('pem')).join('\n');
    this.#refusals = new CaRefusals(opts.metrics, opts.logger);
  }

  /** Builds the serving certificate, binds, and starts serving. Rejects if it cannot bind. */
  static async create(opts: CaServerOptions): Promise<CaServer> {
    const server = createServer({
      ...(await servingCredentials(opts)),
      minVersion: 'TLSv1.3',
      requestTimeout: 30_000,
      headersTimeout: 10_000,
      keepAliveTimeout: 5_000,
      maxHeaderSize: 16 * 1024,
    });
    const ca = new CaServer(server, opts);
    server.on('request', (req, res) => void ca.#handle(req, res));
    server.on('clientError', (err, socket) => ca.#refusals.onClientError(err, socket));
    server.on('tlsClientError', (err, socket) => ca.#refusals.onTlsClientError(err, socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    ca.#scheduleRenewal();
    return ca;
  }

  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  get trustBundlePem(): string {
    return this.#bundlePem;
  }

  async close(): Promise<void> {
    clearTimeout(this.#renewTimer);
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }

  #scheduleRenewal(): void {
    this.#renewTimer = setTimeout(async () => {
      try {
        this.#server.setSecureContext({
          ...(await servingCredentials(this.#opts)),
          minVersion: 'TLSv1.3',
        });
        this.#opts.logger.info('CA serving certificate renewed');
      } catch (err) {
        this.#opts.logger.error({ err }, 'CA serving certificate renewal failed; retrying later');
      }
      this.#scheduleRenewal();
    }, SERVING_CERT_LIFETIME_MS / 2);
    this.#renewTimer.unref();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/v1/certificates') {
        if (req.method !== 'POST') throw new CaError('METHOD_NOT_ALLOWED', 'use POST');
        await this.#certificates(req, res);
      } else if (path === '/v1/trust-bundle') {
        if (req.method !== 'GET') throw new CaError('METHOD_NOT_ALLOWED', 'use GET');
        send(res, 200, 'application/x-pem-file', `${this.#bundlePem}\n`);
      } else if (path === '/healthz') {
        send(res, 200, 'text/plain', 'ok\n');
      } else if (path === '/metrics') {
        send(
          res,
          200,
          this.#opts.metrics.registry.contentType,
          await this.#opts.metrics.registry.metrics(),
        );
      } else {
        throw new CaError('NOT_FOUND', `no such endpoint ${path}`);
      }
    } catch (err) {
      const caErr =
        err instanceof CaError ? err : new CaError('INTERNAL', 'internal error', { cause: err });
      if (!this.#reported.has(caErr))
        this.#refusals.record(
          caErr.code,
          { audit: 'ca', remote: req.socket.remoteAddress, method: req.method, path },
          caErr.message,
          'CA request refused',
          req.socket,
        );
      // A bug or an outage behind us (not the client's doing): the stack helps.
      if (caErr.code === 'INTERNAL')
        this.#opts.logger.error({ err: caErr.cause ?? caErr }, 'CA request failed');
      if (caErr.code === 'ABORTED' || req.socket.destroyed) return; // no one to answer
      if (!res.headersSent) {
        if (caErr.code === 'RATE_LIMITED') res.setHeader('retry-after', '1');
        if (caErr.code === 'BODY_TOO_LARGE') res.setHeader('connection', 'close');
        send(res, CA_ERROR_STATUS[caErr.code], 'application/json', errorBody(caErr));
      }
      if (caErr.code === 'BODY_TOO_LARGE') discardBounded(req, 1 << 20);
    }
  }

  async #certificates(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const audit: Record<string, unknown> = { audit: 'ca', remote: req.socket.remoteAddress };
    const { metrics, logger } = this.#opts;
    try {
      const auth = req.headers.authorization ?? '';
      const m = /^Bearer ([\x21-\x7e]+)$/.exec(auth);
      if (!m) throw new CaError('UNAUTHENTICATED', 'missing bearer token');
      // Fail closed: whatever the authenticator throws is a refusal (INTERNAL if not a CaError).
      const node = await this.#opts.authenticator.authenticate(m[1]!);
      audit['node'] = node;
      if (!this.#limiter.take(node))
        throw new CaError('RATE_LIMITED', `node ${node} is over its request rate`);
      const body = parseBody(await readBody(req, MAX_BODY_BYTES));
      const issued = await this.#opts.issuer.issue({
        node,
        csrPem: body.csr,
        ttlSeconds: body.ttlSeconds,
      });
      Object.assign(audit, {
        outcome: 'issued',
        identity: issued.id.toString(),
        serial: issued.serial,
        expiresAt: issued.expiresAt.toISOString(),
      });
      metrics.issued.inc();
      metrics.signSeconds.observe((performance.now() - started) / 1000);
      logger.info(audit, 'certificate issued');
      send(
        res,
        200,
        'application/json',
        JSON.stringify({
          certChain: [issued.leaf, ...issued.chain].map((c) => c.toString('pem')),
          trustBundle: issued.roots.map((c) => c.toString('pem')),
          expiresAt: issued.expiresAt.toISOString(),
        }),
      );
    } catch (err) {
      // The client is told "internal error" only; the log says what it was.
      const caErr =
        err instanceof CaError ? err : new CaError('INTERNAL', 'internal error', { cause: err });
      if (caErr.identity) audit['identity'] = caErr.identity;
      this.#refusals.record(
        caErr.code,
        audit,
        errorMessage(err),
        'certificate refused',
        req.socket,
      );
      this.#reported.add(caErr);
      throw caErr;
    }
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Reads and drops the rest of a refused upload so the client sees our answer rather than a
 *  reset, but only up to `limit` bytes: past that the connection is cut. */
function discardBounded(req: IncomingMessage, limit: number): void {
  let seen = 0;
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > limit) req.socket.destroy();
  });
  req.resume();
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    return Promise.reject(
      new CaError('BODY_TOO_LARGE', `body of ${declared} bytes is over ${limit} bytes`),
    );
  }
  // The client may have left while the node was being authenticated, before the listeners
  // below exist: then no 'error' or 'close' would ever come (a promise hung for good).
  if (req.destroyed && !req.complete)
    return Promise.reject(
      new CaError('ABORTED', 'the client closed the connection before sending its request body'),
    );
  // Listeners rather than async iteration: leaving a for-await early destroys the request,
  // and with it the socket our 413 must go out on.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.off('end', onEnd);
      reject(new CaError('BODY_TOO_LARGE', `body is over ${limit} bytes`));
    };
    const onEnd = () => resolve(Buffer.concat(chunks).toString('utf8'));
    // Node reports a client that closes mid-body as an 'error' ("aborted", ECONNRESET) and
    // a 'close' before 'end': the client left, which is not our failure (not INTERNAL).
    const onAbort = () =>
      reject(
        new CaError(
          'ABORTED',
          `the client closed the connection after ${size} bytes of the request body`,
        ),
      );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', () => {
      if (!req.complete) onAbort();
    });
  });
}

function parseBody(text: string): z.infer<typeof requestSchema> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CaError('BAD_REQUEST', 'body: expected JSON {"csr": "<PEM>", "ttlSeconds": N}');
  }
  const res = requestSchema.safeParse(json);
  if (!res.success) {
    const i = res.error.issues[0]!;
    throw new CaError('BAD_REQUEST', `body: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return res.data;
}

/** The CA's own TLS certificate, issued from its authority: the CA's SPIFFE ID plus the
 *  DNS names and IPs clients dial. */
async function servingCredentials(opts: CaServerOptions): Promise<{ key: string; cert: string }> {
  const keys = await generateP256();
  const dns = [
    'localhost',
    'mtun-ca',
    'mtun-ca.mtun-system',
    'mtun-ca.mtun-system.svc',
    'mtun-ca.mtun-system.svc.cluster.local',
    ...(opts.extraDnsNames ?? []),
  ];
  const ips = [
    '127.0.0.1',
    '::1',
    ...(isIP(opts.host) && opts.host !== '0.0.0.0' && opts.host !== '::' ? [opts.host] : []),
  ];
  const now = Date.now();
  const leaf = await issueLeaf(opts.authority, {
    id: SpiffeId.of(opts.trustDomain, 'mtun-system', 'mtun-ca'),
    publicKey: keys.publicKey,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(
      Math.min(now + SERVING_CERT_LIFETIME_MS, opts.authority.cert.notAfter.getTime()),
    ),
    extraSans: [
      ...dns.map((value) => ({ type: 'dns' as const, value })),
      ...[...new Set(ips)].map((value) => ({ type: 'ip' as const, value })),
    ],
  });
  return {
    key: await privateKeyPem(keys.privateKey),
    cert: [leaf, ...intermediatesOf(opts.authority)].map((c) => c.toString('pem')).join('\n'),
  };
}
