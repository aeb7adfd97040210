// Raw JSON over the Kubernetes API, authenticated and configured by @kubernetes/client-node's
// KubeConfig (in-cluster token that rotates, kubeconfig files, exec plugins, TLS, proxies).
// Lists and watches go through here rather than the typed API so that objects stay wire JSON
// until mesh/convert, the one wire→internal edge; every body, line and wait is bounded.
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { errorMessage } from '../../lib/errors.js';
import { KubeError } from './errors.js';

export interface KubeApiOptions {
  /** Whole-request limit for non-streaming calls (default 15 s). */
  readonly timeoutMs?: number;
  /** Largest JSON answer accepted (default 64 MiB: a list page of 500 big pods fits). */
  readonly maxBodyBytes?: number;
  /** Largest watch event line (default 8 MiB; etcd caps objects near 1.5 MiB). */
  readonly maxLineBytes?: number;
}

export interface JsonAnswer {
  readonly status: number;
  readonly body: unknown;
}

export class KubeApi {
  readonly #kc: KubeConfig;
  readonly #server: URL;
  readonly #timeoutMs: number;
  readonly #maxBody: number;
  readonly #maxLine: number;

  constructor(kc: KubeConfig, opts: KubeApiOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeError('KUBE_BAD_RESPONSE', 'kubeconfig has no current cluster');
    this.#kc = kc;
    this.#server = new URL(cluster.server);
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
    this.#maxBody = opts.maxBodyBytes ?? 64 << 20;
    this.#maxLine = opts.maxLineBytes ?? 8 << 20;
  }

  get server(): string {
    return this.#server.toString();
  }

  /** One JSON request; answers any status (callers decide what 404 or 409 mean). */
  async json(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    opts: { timeoutMs?: number } = {},
  ): Promise<JsonAnswer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = await this.#open(method, path, {
      accept: 'application/json',
      ...(payload === undefined
        ? {}
        : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
    });
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    return new Promise<JsonAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        req.destroy(
          new KubeError('KUBE_TIMEOUT', `${method} ${path}: no answer in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      timer.unref();
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(transportError(method, path, err));
      });
      req.on('response', (res) => {
        readBounded(res, this.#maxBody).then(
          (text) => {
            clearTimeout(timer);
            let parsed: unknown;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch (err) {
              return reject(
                new KubeError('KUBE_BAD_RESPONSE', `${method} ${path}: answer is not JSON`, {
                  status: res.statusCode,
                  cause: err,
                }),
              );
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          },
          (err) => {
            clearTimeout(timer);
            req.destroy();
            reject(err instanceof KubeError ? err : transportError(method, path, err));
          },
        );
      });
      req.end(payload);
    });
  }

  /** GET that must answer 2xx; anything else becomes a KubeError carrying the Status. */
  async get(path: string, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    const a = await this.json('GET', path, undefined, opts);
    if (a.status < 200 || a.status > 299) throw statusError('GET', path, a);
    return a.body;
  }

  /**
   * A streaming GET (watch): calls `onLine` per newline-terminated line, resolves when the
   * server ends the stream, rejects on a non-200 answer, a broken stream, a line over the
   * limit, or `idleTimeoutMs` without a byte (a half-open connection). `signal` ends it.
   */
  async stream(
    path: string,
    onLine: (line: string) => void,
    opts: { signal: AbortSignal; idleTimeoutMs: number },
  ): Promise<void> {
    const req = await this.#open('GET', path, { accept: 'application/json' });
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        opts.signal.removeEventListener('abort', onAbort);
        req.destroy();
        if (err === undefined) resolve();
        else reject(err instanceof KubeError ? err : transportError('WATCH', path, err));
      };
      const onAbort = () => finish();
      // Before any destroy(): a request stopped while it was being opened (a source closed
      // right after its first sync) emits 'error', which with no listener ends the process.
      req.on('error', finish);
      if (opts.signal.aborted) return finish();
      opts.signal.addEventListener('abort', onAbort);
      req.setTimeout(opts.idleTimeoutMs, () =>
        finish(new KubeError('KUBE_TIMEOUT', `watch ${path}: no data in ${opts.idleTimeoutMs} ms`)),
      );
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          readBounded(res, 1 << 20).then(
            (text) => {
              let body: unknown;
              try {
                body = JSON.parse(text);
              } catch {
                body = undefined;
              }
              finish(statusError('WATCH', path, { status: res.statusCode ?? 0, body }));
            },
            (err) => finish(err),
          );
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl = buf.indexOf('\n');
          while (nl >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line !== '') {
              try {
                onLine(line);
              } catch (err) {
                return finish(err);
              }
            }
            nl = buf.indexOf('\n');
          }
          if (buf.length > this.#maxLine) {
            finish(
              new KubeError('KUBE_TOO_LARGE', `watch ${path}: a line over ${this.#maxLine} bytes`),
            );
          }
        });
        // A clean end after a whole last line is the server's timeoutSeconds; a partial last
        // line means the stream broke mid-event (the caller resumes from what it has).
        res.on('end', () =>
          finish(
            buf.trim() === ''
              ? undefined
              : new KubeError('KUBE_TRANSPORT', `watch ${path}: stream ended inside an event`),
          ),
        );
        res.on('error', finish);
        res.on('aborted', () =>
          finish(new KubeError('KUBE_TRANSPORT', `watch ${path}: connection dropped`)),
        );
      });
      req.end();
    });
  }

  async #open(
    method: string,
    path: string,
    headers: Record<string, string | number>,
  ): Promise<ClientRequest> {
    const url = new URL(this.#server.pathname.replace(/\/$/, '') + path, this.#server);
    const opts: RequestOptions = { method, headers: { ...headers } };
    // Sets the Authorization header (re-reading a rotated token file), CA, client certs, agent.
    await this.#kc.applyToHTTPSOptions(opts);
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return send(url, opts);
  }
}

function readBounded(res: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        res.destroy();
        reject(new KubeError('KUBE_TOO_LARGE', `answer over ${limit} bytes`));
      } else chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new KubeError('KUBE_TRANSPORT', 'answer cut short')));
  });
}

function transportError(method: string, path: string, err: unknown): KubeError {
  if (err instanceof KubeError) return err;
  return new KubeError('KUBE_TRANSPORT', `${method} ${path}: ${errorMessage(err)}`, {
    cause: err,
  });
}

/** The API's Status object (`{kind: Status, code, reason, message}`) as a KubeError. */
export function statusError(method: string, path: string, a: JsonAnswer): KubeError {
  const s = (a.body ?? {}) as { reason?: unknown; message?: unknown };
  const reason = typeof s.reason === 'string' ? s.reason : undefined;
  const message = typeof s.message === 'string' ? s.message : `HTTP ${a.status}`;
  return new KubeError('KUBE_HTTP', `${method} ${path}: ${a.status} ${message}`, {
    status: a.status,
    ...(reason ? { reason } : {}),
  });
}
