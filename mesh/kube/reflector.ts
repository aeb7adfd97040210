// List-then-watch of one resource kept in a local store, in the manner of client-go's
// reflector. Invariants: the store always equals the server's state at `resourceVersion`
// (a list replaces it whole; each watch event moves it on by one); a watch resumes from the
// last version applied, so a dropped connection loses nothing; `410 Gone` (the version was
// compacted away) is the only thing that forces a re-list. Failures back off with jitter.
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { type BackoffOptions, backoffMs, WATCH_BACKOFF } from './backoff.js';
import { KubeError } from './errors.js';
import type { KubeApi } from './http.js';
import { keyOf, type Resource, resourceVersionOf, type Wire } from './resources.js';

export interface ReflectorOptions {
  readonly api: KubeApi;
  readonly resource: Resource;
  readonly logger: Logger;
  /** Called after every change of the store (the source coalesces). */
  readonly onChange: () => void;
  readonly pageSize?: number;
  /** Server-side watch timeout; default 5-10 min, random so watches do not end together. */
  readonly watchTimeoutSeconds?: number;
  /** With no byte for this long the watch counts as dead (bookmarks keep a live one busy). */
  readonly idleTimeoutMs?: number;
  readonly backoff?: BackoffOptions;
  readonly random?: () => number;
}

export interface ReflectorStats {
  lists: number;
  watches: number;
  events: number;
  /** Re-lists forced by 410 Gone. */
  gone: number;
  failures: number;
}

const EVENT_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

export class Reflector {
  readonly resource: Resource;
  readonly stats: ReflectorStats = { lists: 0, watches: 0, events: 0, gone: 0, failures: 0 };
  readonly #opts: ReflectorOptions;
  readonly #abort = new AbortController();
  readonly #store = new Map<string, Wire>();
  #rv: string | undefined;
  #synced = false;
  #loop: Promise<void> | undefined;
  lastError: Error | undefined;

  constructor(opts: ReflectorOptions) {
    this.#opts = opts;
    this.resource = opts.resource;
  }

  /** True once the first list completed (the store is a real view of the cluster). */
  get synced(): boolean {
    return this.#synced;
  }

  get resourceVersion(): string | undefined {
    return this.#rv;
  }

  objects(): IterableIterator<Wire> {
    return this.#store.values();
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { logger, resource } = this.#opts;
    const random = this.#opts.random ?? Math.random;
    let attempt = 0;
    let goneInARow = 0;
    while (!this.#abort.signal.aborted) {
      try {
        if (this.#rv === undefined) await this.#list();
        await this.#watch();
        attempt = 0;
        goneInARow = 0;
      } catch (err) {
        if (this.#abort.signal.aborted) break;
        this.lastError = err as Error;
        if (err instanceof KubeError && err.gone) {
          // The only cure is a fresh list. Back off only if that keeps happening.
          this.stats.gone++;
          this.#rv = undefined;
          logger.info({ resource: resource.name }, 'resourceVersion expired (410); re-listing');
          if (++goneInARow < 3) continue;
        }
        this.stats.failures++;
        const delayMs = backoffMs(++attempt, this.#opts.backoff ?? WATCH_BACKOFF, random);
        logger.warn(
          {
            resource: resource.name,
            code: (err as { code?: string }).code,
            err: errorMessage(err),
            retryInMs: delayMs,
          },
          'Kubernetes list/watch failed; retrying',
        );
        await sleep(delayMs, undefined, { signal: this.#abort.signal }).catch(() => {});
      }
    }
  }

  /** Lists every page (one consistent snapshot) and replaces the store with it. */
  async #list(): Promise<void> {
    const { api, resource } = this.#opts;
    const limit = this.#opts.pageSize ?? 500;
    const fresh = new Map<string, Wire>();
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const q = new URLSearchParams({ limit: String(limit) });
      if (cont) q.set('continue', cont);
      const body = (await api.get(`${resource.path}?${q}`)) as {
        items?: unknown;
        metadata?: { resourceVersion?: unknown; continue?: unknown };
      };
      if (!body || !Array.isArray(body.items) || typeof body.metadata?.resourceVersion !== 'string')
        throw new KubeError('KUBE_BAD_RESPONSE', `list ${resource.path}: not a list`);
      for (const item of body.items as Wire[]) this.#put(fresh, item);
      rv = body.metadata.resourceVersion;
      cont =
        typeof body.metadata.continue === 'string' && body.metadata.continue !== ''
          ? body.metadata.continue
          : undefined;
      if (this.#abort.signal.aborted) return;
    } while (cont);
    this.#store.clear();
    for (const [k, v] of fresh) this.#store.set(k, v);
    this.#rv = rv;
    this.#synced = true;
    this.stats.lists++;
    this.#opts.logger.debug({ resource: resource.name, count: fresh.size, rv }, 'listed');
    this.#opts.onChange();
  }

  async #watch(): Promise<void> {
    const { api, resource } = this.#opts;
    const timeoutSeconds =
      this.#opts.watchTimeoutSeconds ??
      300 + Math.floor((this.#opts.random ?? Math.random)() * 300);
    const q = new URLSearchParams({
      watch: '1',
      resourceVersion: this.#rv!,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
    });
    const started = Date.now();
    let seen = 0;
    this.stats.watches++;
    await api.stream(
      `${resource.path}?${q}`,
      (line) => {
        seen++;
        this.#event(line);
      },
      {
        signal: this.#abort.signal,
        idleTimeoutMs: this.#opts.idleTimeoutMs ?? timeoutSeconds * 1000 + 30_000,
      },
    );
    // A server that ends every watch at once would otherwise make this a busy loop.
    if (seen === 0 && Date.now() - started < 1_000 && !this.#abort.signal.aborted)
      throw new KubeError('KUBE_TRANSPORT', `watch ${resource.path}: ended at once`);
  }

  #event(line: string): void {
    let ev: { type?: unknown; object?: unknown };
    try {
      ev = JSON.parse(line);
    } catch (err) {
      // Never skip a line: the watch restarts from the last version applied instead.
      throw new KubeError('KUBE_BAD_RESPONSE', 'watch event is not JSON', { cause: err });
    }
    const type = ev?.type;
    const o = ev?.object as Wire | undefined;
    if (typeof type !== 'string' || !EVENT_TYPES.has(type) || !o || typeof o !== 'object')
      throw new KubeError(
        'KUBE_BAD_RESPONSE',
        `watch event of unknown shape (type ${String(type)})`,
      );
    if (type === 'ERROR') {
      const s = o as { code?: unknown; reason?: unknown; message?: unknown };
      throw new KubeError(
        'KUBE_HTTP',
        `watch ${this.resource.path}: ${String(s.message ?? 'error event')}`,
        {
          ...(typeof s.code === 'number' ? { status: s.code } : {}),
          ...(typeof s.reason === 'string' ? { reason: s.reason } : {}),
        },
      );
    }
    const rv = resourceVersionOf(o);
    let changed = false;
    if (type === 'DELETED') {
      const key = keyOf(o);
      changed = key !== undefined && this.#store.delete(key);
    } else if (type !== 'BOOKMARK') {
      changed = this.#put(this.#store, o);
    }
    if (rv) this.#rv = rv;
    this.stats.events++;
    // Most pod updates touch fields mtun drops (status heartbeats): no new snapshot for those.
    if (changed) this.#opts.onChange();
  }

  /** Adds a selected object, or removes one that is no longer selected (a pod that ended).
   *  True when the store changed in a field the model reads. */
  #put(store: Map<string, Wire>, o: Wire): boolean {
    const key = keyOf(o);
    if (!key) return false;
    const { resource } = this.#opts;
    if (!resource.selected(o)) return store.delete(key);
    const trimmed = resource.trim(o);
    const before = store.get(key);
    store.set(key, trimmed);
    return before === undefined || !sameExceptVersion(before, trimmed);
  }
}

function sameExceptVersion(a: Wire, b: Wire): boolean {
  const strip = (w: Wire) =>
    JSON.stringify({ ...w, metadata: { ...(w['metadata'] as Wire), resourceVersion: undefined } });
  return strip(a) === strip(b);
}
