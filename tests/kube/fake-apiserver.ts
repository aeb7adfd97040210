// A Kubernetes API server on 127.0.0.1 (HTTPS, bearer token) that speaks the real list/watch
// protocol: a global resourceVersion, paginated lists (limit/continue, items without kind),
// chunked watch streams from a resourceVersion with bookmarks and timeoutSeconds, `410 Gone`
// once history is compacted (as an HTTP status or as an ERROR event, like the real server),
// and faults on demand (dropped connections, failing requests, events split across chunks).
// Also TokenReview, pod GET and Secret GET/POST for the CA. The objects it holds are built
// by objects.ts.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import type { Test } from 'tap';
import { createRoot, generateP256, issueLeaf, privateKeyPem } from '../../ca/pki.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { KubeApi, type KubeApiOptions } from '../../mesh/kube/http.js';
import type { Obj } from './objects.js';

const CORE = new Set(['namespaces', 'nodes', 'pods', 'services']);
const ISTIO = new Set(['authorizationpolicies', 'peerauthentications']);

interface Event {
  readonly rv: number;
  readonly resource: string;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Obj;
}

interface OpenWatch {
  queue: Promise<void>;
  readonly resource: string;
  readonly res: ServerResponse;
  readonly socket: Socket;
}

export interface TokenReviewAnswer {
  readonly status?: number;
  readonly body?: Obj;
  readonly delayMs?: number;
}

export interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly auth: string | undefined;
  readonly body: unknown;
}

export class FakeApiServer {
  readonly token = `api-${randomUUID()}`;
  readonly requests: Recorded[] = [];
  readonly #objects = new Map<string, Map<string, Obj>>();
  readonly #events: Event[] = [];
  readonly #watches = new Set<OpenWatch>();
  readonly #pages = new Map<string, Obj[]>();
  #rv = 100;
  #compactedRv = 0;
  #server!: Server;
  readonly #unixListeners: NetServer[] = [];
  caPem = '';
  url = '';
  /** 'event': 200 then an ERROR event with 410 (what kube-apiserver does); 'http': a 410. */
  goneAs: 'event' | 'http' = 'event';
  /** Fail the next N list or watch requests with this status. */
  failNext: { list: number; watch: number; status: number } = { list: 0, watch: 0, status: 500 };
  /** Write every watch event in two chunks, a pause between: lines span chunk borders. */
  splitEvents = false;
  /** The TokenReview answer, per presented token. Default: unauthenticated. */
  tokenReview: (spec: Obj) => TokenReviewAnswer = () => ({
    body: { status: { authenticated: false, error: 'invalid bearer token' } },
  });

  /** `ipSans`: more addresses its certificate is valid for (a relay in front of it). */
  static async start(t: Test, opts: { ipSans?: readonly string[] } = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer();
    const ca = await createRoot({ trustDomain: 'kube.test' });
    const keys = await generateP256();
    const now = Date.now();
    const leaf = await issueLeaf(ca, {
      id: SpiffeId.of('kube.test', 'default', 'kube-apiserver'),
      publicKey: keys.publicKey,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
      extraSans: ['127.0.0.1', ...(opts.ipSans ?? [])].map((value) => ({
        type: 'ip' as const,
        value,
      })),
    });
    s.caPem = ca.cert.toString('pem');
    s.#server = createServer({
      key: await privateKeyPem(keys.privateKey),
      cert: leaf.toString('pem'),
    });
    s.#server.on('request', (req, res) => void s.#handle(req, res));
    await new Promise<void>((resolve) => s.#server.listen(0, '127.0.0.1', resolve));
    const { port } = s.#server.address() as { port: number };
    s.url = `https://127.0.0.1:${port}`;
    t.teardown(() => s.close());
    return s;
  }

  /** Also serves on a UNIX socket (same TLS, same certificate): a relay in another network
   *  namespace can reach it there. Closed with the server. */
  async listenUnix(path: string): Promise<void> {
    const unix = createNetServer((socket) => this.#server.emit('connection', socket));
    this.#unixListeners.push(unix);
    await new Promise<void>((resolve, reject) => {
      unix.once('error', reject);
      unix.listen(path, resolve);
    });
  }

  /** A client configured like a kubeconfig for this server. */
  kubeConfig(token = this.token): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'fake', server: this.url, caData: Buffer.from(this.caPem).toString('base64') },
      ],
      users: [{ name: 'fake', token }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** The same, as a kubeconfig file's text for a process; `server` when it is reached
   *  another way (a relay) than `url`. */
  kubeconfigYaml(server = this.url): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${server}`,
      `    certificate-authority-data: ${Buffer.from(this.caPem).toString('base64')}`,
      'users:',
      '- name: fake',
      `  user: {token: ${this.token}}`,
      'contexts:',
      '- name: fake',
      '  context: {cluster: fake, user: fake}',
      'current-context: fake',
      '',
    ].join('\n');
  }

  api(opts: KubeApiOptions = {}): KubeApi {
    return new KubeApi(this.kubeConfig(), opts);
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  get openWatches(): number {
    return this.#watches.size;
  }

  watchesOf(resource: string): number {
    return [...this.#watches].filter((w) => w.resource === resource).length;
  }

  /** Creates or replaces an object (kubectl apply); emits ADDED or MODIFIED. */
  apply(resource: string, obj: Obj): Obj {
    const store = this.#store(resource);
    const key = keyOf(obj);
    const prev = store.get(key);
    const rv = ++this.#rv;
    const o = structuredClone(obj);
    o.metadata = {
      uid: prev?.metadata?.uid ?? randomUUID(),
      creationTimestamp:
        prev?.metadata?.creationTimestamp ?? new Date(1_700_000_000_000 + rv * 1000).toISOString(),
      ...o.metadata,
      resourceVersion: String(rv),
    };
    store.set(key, o);
    this.#emit({ rv, resource, type: prev ? 'MODIFIED' : 'ADDED', object: o });
    return o;
  }

  remove(resource: string, namespace: string | undefined, name: string): void {
    const store = this.#store(resource);
    const key = namespace ? `${namespace}/${name}` : name;
    const prev = store.get(key);
    if (!prev) throw new Error(`no ${resource} ${key}`);
    store.delete(key);
    const rv = ++this.#rv;
    this.#emit({
      rv,
      resource,
      type: 'DELETED',
      object: { ...prev, metadata: { ...prev.metadata, resourceVersion: String(rv) } },
    });
  }

  get(resource: string, key: string): Obj | undefined {
    return this.#store(resource).get(key);
  }

  /** One entry of a Secret ("ns/name"), decoded: what a pod mounting it would read. */
  secretText(key: string, entry: string): string {
    return Buffer.from(this.get('secrets', key)!['data'][entry], 'base64').toString();
  }

  /** etcd compaction: history up to now is gone; watches from older versions get 410. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#events.length = 0;
    this.#pages.clear();
  }

  /** Cuts every open watch connection mid-stream (no clean end of the chunked body). */
  dropWatches(): void {
    for (const w of this.#watches) w.socket.destroy();
    this.#watches.clear();
  }

  /** Sends `410 Expired` as an ERROR event on every open watch and ends it (after compact). */
  expireWatches(): void {
    for (const w of this.#watches) {
      w.res.end(`${JSON.stringify({ type: 'ERROR', object: goneStatus() })}\n`);
    }
    this.#watches.clear();
  }

  /** A BOOKMARK at the current version on every open watch. */
  bookmark(): void {
    for (const w of this.#watches) {
      const kind = kindOf(w.resource);
      this.#write(w, {
        type: 'BOOKMARK',
        object: {
          kind,
          apiVersion: apiVersionOf(w.resource),
          metadata: { resourceVersion: String(this.#rv) },
        },
      });
    }
  }

  async close(): Promise<void> {
    for (const w of this.#watches) w.socket.destroy();
    this.#watches.clear();
    for (const unix of this.#unixListeners.splice(0)) unix.close();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #store(resource: string): Map<string, Obj> {
    let s = this.#objects.get(resource);
    if (!s) {
      s = new Map();
      this.#objects.set(resource, s);
    }
    return s;
  }

  #emit(ev: Event): void {
    this.#events.push(ev);
    for (const w of this.#watches) {
      if (w.resource === ev.resource) this.#write(w, { type: ev.type, object: ev.object });
    }
  }

  #write(w: OpenWatch, ev: Obj): void {
    const line = `${JSON.stringify(ev)}\n`;
    if (!this.splitEvents) return void w.res.write(line);
    // Halves in order, a pause between: a line always spans two chunks.
    const cut = Math.floor(line.length / 2);
    w.queue = w.queue.then(async () => {
      if (w.res.destroyed || w.res.writableEnded) return;
      w.res.write(line.slice(0, cut));
      await new Promise((r) => setTimeout(r, 3));
      if (!w.res.destroyed && !w.res.writableEnded) w.res.write(line.slice(cut));
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://x');
    let body: unknown;
    if (req.method === 'POST') {
      let text = '';
      for await (const c of req) text += c;
      body = JSON.parse(text);
    }
    this.requests.push({
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      auth: req.headers.authorization,
      body,
    });
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return json(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const p = url.pathname.split('/').filter(Boolean);
    // /api/v1/<res>  or  /apis/security.istio.io/v1/<res>
    const listRes =
      p.length === 3 && p[0] === 'api' && p[1] === 'v1' && CORE.has(p[2]!)
        ? p[2]
        : p.length === 4 &&
            p[0] === 'apis' &&
            p[1] === 'security.istio.io' &&
            p[2] === 'v1' &&
            ISTIO.has(p[3]!)
          ? p[3]
          : undefined;
    if (listRes && req.method === 'GET') {
      return url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true'
        ? this.#watch(listRes, url.searchParams, req, res)
        : this.#list(listRes, url.searchParams, res);
    }
    if (url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews' && req.method === 'POST') {
      const a = this.tokenReview((body as Obj).spec ?? {});
      if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
      return json(res, a.status ?? 201, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: (body as Obj).spec,
        ...(a.body ?? {}),
      });
    }
    // /api/v1/namespaces/<ns>/<res>[/<name>]
    if (p[0] === 'api' && p[1] === 'v1' && p[2] === 'namespaces' && p.length >= 5) {
      const [ns, res2, name] = [p[3]!, p[4]!, p[5]];
      if (req.method === 'GET' && name) {
        const o = this.#store(res2).get(`${ns}/${name}`);
        return o
          ? json(res, 200, o)
          : json(res, 404, status(404, 'NotFound', `${res2} "${name}" not found`));
      }
      if (req.method === 'POST' && !name && res2 === 'secrets') {
        const o = body as Obj;
        if (this.#store('secrets').has(`${ns}/${o.metadata?.name}`))
          return json(
            res,
            409,
            status(409, 'AlreadyExists', `secrets "${o.metadata?.name}" already exists`),
          );
        return json(
          res,
          201,
          this.apply('secrets', { ...o, metadata: { ...o.metadata, namespace: ns } }),
        );
      }
    }
    json(res, 404, status(404, 'NotFound', `no route ${req.method} ${url.pathname}`));
  }

  /** Answers with the injected failure while failNext[kind] lasts. */
  #failed(kind: 'list' | 'watch', res: ServerResponse): boolean {
    if (this.failNext[kind] <= 0) return false;
    this.failNext[kind]--;
    const code = this.failNext.status;
    json(res, code, status(code, 'InternalError', `injected ${kind} failure`));
    return true;
  }

  #list(resource: string, q: URLSearchParams, res: ServerResponse): void {
    if (this.#failed('list', res)) return;
    const limit = Number(q.get('limit') ?? 0) || Number.POSITIVE_INFINITY;
    let items: Obj[];
    let offset = 0;
    let rv: string;
    const cont = q.get('continue');
    if (cont) {
      const [rvText, off] = Buffer.from(cont, 'base64url').toString().split(':');
      const page = this.#pages.get(`${resource}@${rvText}`);
      if (!page || Number(rvText) < this.#compactedRv) {
        json(res, 410, status(410, 'Expired', 'The provided continue parameter is too old'));
        return;
      }
      items = page;
      offset = Number(off);
      rv = rvText!;
    } else {
      // Items carry no apiVersion/kind in a list, as from the real server.
      items = [...this.#store(resource).values()]
        .sort((a, b) => keyOf(a).localeCompare(keyOf(b)))
        .map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
      rv = String(this.#rv);
      this.#pages.set(`${resource}@${rv}`, items);
    }
    const slice = items.slice(offset, offset + limit);
    const next =
      offset + slice.length < items.length
        ? Buffer.from(`${rv}:${offset + slice.length}`).toString('base64url')
        : undefined;
    json(res, 200, {
      apiVersion: apiVersionOf(resource),
      kind: `${kindOf(resource)}List`,
      metadata: { resourceVersion: rv, ...(next ? { continue: next } : {}) },
      items: slice,
    });
  }

  #watch(resource: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    if (this.#failed('watch', res)) return;
    const from = Number(q.get('resourceVersion') ?? '0');
    if (from < this.#compactedRv) {
      if (this.goneAs === 'http') {
        json(res, 410, goneStatus());
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: goneStatus() })}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    const w: OpenWatch = { resource, res, socket: req.socket, queue: Promise.resolve() };
    for (const ev of this.#events) {
      if (ev.resource === resource && ev.rv > from)
        this.#write(w, { type: ev.type, object: ev.object });
    }
    this.#watches.add(w);
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const timer =
      timeout > 0
        ? setTimeout(() => {
            this.#watches.delete(w);
            res.end();
          }, timeout * 1000)
        : undefined;
    res.on('close', () => {
      clearTimeout(timer);
      this.#watches.delete(w);
    });
  }
}

function keyOf(o: Obj): string {
  return o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata?.name;
}

function kindOf(resource: string): string {
  return (
    (
      {
        namespaces: 'Namespace',
        nodes: 'Node',
        pods: 'Pod',
        services: 'Service',
        authorizationpolicies: 'AuthorizationPolicy',
        peerauthentications: 'PeerAuthentication',
        secrets: 'Secret',
      } as Record<string, string>
    )[resource] ?? 'Unknown'
  );
}

function apiVersionOf(resource: string): string {
  return ISTIO.has(resource) ? 'security.istio.io/v1' : 'v1';
}

function status(code: number, reason: string, message: string): Obj {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
}

function goneStatus(): Obj {
  return status(410, 'Expired', 'too old resource version');
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
