// The Kubernetes source of the mesh model: one reflector per resource, the same MeshSnapshot
// the file source builds. `open` resolves once every resource is listed (an agent or CA that
// starts on a half-read cluster would refuse or allow on partial data); after that each change
// yields a new snapshot, coalesced over `debounceMs`, and problems keep the last good state.
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { MeshSnapshot } from '../snapshot.js';
import { type MeshSource, SnapshotListeners, snapshotCounts } from '../source.js';
import { assemble, type Rejection, type StoredObject } from './assemble.js';
import { KubeError } from './errors.js';
import type { KubeApi } from './http.js';
import { Reflector, type ReflectorOptions } from './reflector.js';
import { AGENT_RESOURCES, keyOf, RESOURCES, type ResourceName, type Wire } from './resources.js';

export interface KubeSourceOptions {
  readonly api: KubeApi;
  readonly logger: Logger;
  readonly clusterDomain?: string;
  /** What to list and watch (default: all six kinds, what an agent needs). */
  readonly resources?: readonly ResourceName[];
  /** How long `open` waits for the first list of every resource (default 60 s). */
  readonly syncTimeoutMs?: number;
  readonly debounceMs?: number;
  readonly reflector?: Pick<
    ReflectorOptions,
    'pageSize' | 'watchTimeoutSeconds' | 'idleTimeoutMs' | 'backoff' | 'random'
  >;
}

export class KubeMeshSource implements MeshSource {
  readonly reflectors: readonly Reflector[];
  readonly #opts: KubeSourceOptions;
  readonly #listeners = new SnapshotListeners();
  #snapshot = MeshSnapshot.empty();
  #lastGood: ReadonlyMap<string, Wire> = new Map();
  #timer: NodeJS.Timeout | undefined;
  #onSynced: (() => void) | undefined;
  #closed = false;
  /** Objects not in force as they are now (see assemble.ts). */
  rejected: readonly Rejection[] = [];

  private constructor(opts: KubeSourceOptions) {
    this.#opts = opts;
    const names = opts.resources ?? AGENT_RESOURCES;
    this.reflectors = names.map(
      (name) =>
        new Reflector({
          ...opts.reflector,
          api: opts.api,
          resource: RESOURCES[name],
          logger: opts.logger,
          onChange: () => this.#changed(),
        }),
    );
  }

  static async open(opts: KubeSourceOptions): Promise<KubeMeshSource> {
    const source = new KubeMeshSource(opts);
    const timeoutMs = opts.syncTimeoutMs ?? 60_000;
    const synced = new Promise<void>((resolve) => {
      source.#onSynced = resolve;
    });
    for (const r of source.reflectors) r.start();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([synced, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      const waiting = source.reflectors
        .filter((r) => !r.synced)
        .map((r) => `${r.resource.name}: ${r.lastError?.message ?? 'no answer yet'}`);
      await source.close();
      throw new KubeError(
        'KUBE_NOT_SYNCED',
        `Kubernetes API ${opts.api.server}: not every resource listed in ${timeoutMs} ms (${waiting.join('; ')})`,
      );
    }
    source.#rebuild();
    opts.logger.info(
      {
        api: opts.api.server,
        version: source.#snapshot.version,
        ...snapshotCounts(source.#snapshot),
      },
      'mesh loaded from Kubernetes',
    );
    return source;
  }

  current(): MeshSnapshot {
    return this.#snapshot;
  }

  subscribe(listener: (s: MeshSnapshot) => void): () => void {
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await Promise.all(this.reflectors.map((r) => r.stop()));
  }

  #changed(): void {
    if (this.#closed) return;
    if (this.#onSynced) {
      if (!this.reflectors.every((r) => r.synced)) return;
      const done = this.#onSynced;
      this.#onSynced = undefined;
      done(); // open() builds the first snapshot
      return;
    }
    if (this.#timer) return; // a rebuild is already due; it reads the stores as they are then
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) this.#rebuild();
    }, this.#opts.debounceMs ?? 50);
    this.#timer.unref();
  }

  #rebuild(): void {
    const log = this.#opts.logger;
    const stored: StoredObject[] = [];
    for (const r of this.reflectors) {
      for (const wire of r.objects())
        stored.push({ id: `kubernetes:${r.resource.name}/${keyOf(wire)}`, wire });
    }
    let next: MeshSnapshot;
    try {
      const a = assemble(stored, this.#lastGood, this.#opts.clusterDomain ?? 'cluster.local');
      for (const r of a.rejected) {
        if (!this.rejected.some((p) => p.id === r.id && p.message === r.message))
          log.error({ object: r.id, kept: r.kept, err: r.message }, 'Kubernetes object rejected');
      }
      this.rejected = a.rejected;
      this.#lastGood = a.lastGood;
      next = new MeshSnapshot(a.objects, this.#snapshot.version + 1);
    } catch (err) {
      log.error(
        { err: errorMessage(err), keptVersion: this.#snapshot.version },
        'Kubernetes objects rejected; the previous snapshot stays in force',
      );
      return;
    }
    this.#snapshot = next;
    log.debug({ version: next.version, ...snapshotCounts(next) }, 'mesh updated from Kubernetes');
    this.#listeners.publish(next, log);
  }
}
