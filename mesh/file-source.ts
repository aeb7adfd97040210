// The file source: Kubernetes-shaped multi-document YAML from files and directories,
// watched. Each good change yields a new snapshot; a bad one is reported (file, document,
// field, expectation) once, at warn, and the previous snapshot stays in force. A file that
// held objects and reads empty keeps its last good contents (mesh-files.ts, emptiedFiles).
import { type FSWatcher, statSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { convertDocuments } from './convert/index.js';
import {
  documentsOf,
  emptiedFiles,
  type MeshFile,
  MeshFileEmptiedError,
  readMeshFiles,
} from './mesh-files.js';
import { MeshSnapshot } from './snapshot.js';
import { type MeshSource, SnapshotListeners, snapshotCounts } from './source.js';

export { EMPTY_MARKER, readDocuments } from './mesh-files.js';

export interface FileSourceOptions {
  readonly paths: readonly string[];
  readonly clusterDomain?: string;
  readonly logger: Logger;
  /** Watch for changes (default true). */
  readonly watch?: boolean;
  readonly debounceMs?: number;
}

export class FileMeshSource implements MeshSource {
  readonly #opts: FileSourceOptions;
  readonly #listeners = new SnapshotListeners();
  readonly #watchers: FSWatcher[] = [];
  #snapshot: MeshSnapshot;
  #digest = '';
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<boolean> | undefined;
  #again = false;
  #closed = false;
  /** Each file as it is in force now (for an emptied file: as it was before). */
  #lastGood: ReadonlyMap<string, MeshFile>;
  /** Emptied files already reported, so that each episode is logged once. */
  #held = new Set<string>();
  /** The last rejection reported (its message), so that each rejection is logged once. */
  #rejected = '';
  /** The problem that kept the last reload from applying, or an emptied file whose last
   *  good contents are kept (MeshFileEmptiedError); cleared when all is well again. */
  lastError: Error | undefined;

  private constructor(
    opts: FileSourceOptions,
    snapshot: MeshSnapshot,
    files: readonly MeshFile[],
    digest: string,
  ) {
    this.#opts = opts;
    this.#snapshot = snapshot;
    this.#lastGood = new Map(files.map((f) => [f.file, f]));
    this.#digest = digest;
  }

  /** Loads once (throwing on bad input: nothing good to keep yet), then watches. */
  static async open(opts: FileSourceOptions): Promise<FileMeshSource> {
    const paths = opts.paths.map((p) => resolve(p));
    if (paths.length === 0) throw new ConfigError('no mesh path given (--mesh FILE|DIR)');
    const files = await readMeshFiles(paths);
    const { docs, digest } = documentsOf(files);
    const objects = convertDocuments(docs, {
      clusterDomain: opts.clusterDomain ?? 'cluster.local',
    });
    const snapshot = new MeshSnapshot(objects, 1);
    const source = new FileMeshSource({ ...opts, paths }, snapshot, files, digest);
    if (opts.watch !== false) source.#watch();
    opts.logger.info({ paths, version: 1, ...snapshotCounts(source.#snapshot) }, 'mesh loaded');
    return source;
  }

  current(): MeshSnapshot {
    return this.#snapshot;
  }

  subscribe(listener: (s: MeshSnapshot) => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Re-reads now. Resolves true when a new snapshot was published. Reloads never overlap. */
  reload(): Promise<boolean> {
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = this.#doReload().finally(() => {
      this.#reloading = undefined;
      if (this.#again && !this.#closed) {
        this.#again = false;
        void this.reload();
      }
    });
    return this.#reloading;
  }

  async #doReload(): Promise<boolean> {
    const log = this.#opts.logger;
    let digest: string;
    let held: Set<string>;
    let effective: MeshFile[];
    try {
      const files = await readMeshFiles(this.#opts.paths);
      held = emptiedFiles(files, this.#lastGood);
      effective = files.map((f) => (held.has(f.file) ? this.#lastGood.get(f.file)! : f));
      const read = documentsOf(effective);
      digest = read.digest;
      if (digest !== this.#digest) {
        const objects = convertDocuments(read.docs, {
          clusterDomain: this.#opts.clusterDomain ?? 'cluster.local',
        });
        this.#snapshot = new MeshSnapshot(objects, this.#snapshot.version + 1);
      }
    } catch (err) {
      this.lastError = err as Error;
      // Once per rejected contents: the watcher fires again on every write.
      const key = errorMessage(err);
      if (key !== this.#rejected) {
        this.#rejected = key;
        log.warn(
          {
            err: { code: (err as { code?: string }).code, message: errorMessage(err) },
            keptVersion: this.#snapshot.version,
          },
          'mesh files rejected; the previous snapshot stays in force',
        );
      }
      return false;
    }
    this.#rejected = '';
    this.#noteHeld(held);
    this.#lastGood = new Map(effective.map((f) => [f.file, f]));
    if (digest === this.#digest) return false;
    this.#digest = digest;
    log.info(
      { version: this.#snapshot.version, ...snapshotCounts(this.#snapshot) },
      'mesh reloaded',
    );
    this.#listeners.publish(this.#snapshot, log);
    return true;
  }

  /** Reports each emptied file once per episode, and its end. */
  #noteHeld(held: Set<string>): void {
    const log = this.#opts.logger;
    const fresh = [...held].filter((f) => !this.#held.has(f));
    if (fresh.length > 0) {
      const err = new MeshFileEmptiedError(fresh);
      log.warn(
        { err: { code: err.code, message: err.message }, files: fresh },
        'mesh file emptied; its last good contents stay in force',
      );
    }
    for (const f of this.#held)
      if (!held.has(f)) log.info({ file: f }, 'mesh file has contents again');
    this.#held = held;
    this.lastError = held.size > 0 ? new MeshFileEmptiedError([...held]) : undefined;
  }

  #watch(): void {
    // Watch directories, not files: editors and `kubectl`-style tools replace files by
    // rename, which ends a watch on the file itself.
    const dirs = new Map<string, Set<string> | undefined>();
    for (const p of this.#opts.paths) {
      if (statSync(p).isDirectory()) {
        dirs.set(p, undefined); // the whole directory
      } else if (!dirs.has(dirname(p)) || dirs.get(dirname(p))) {
        dirs.set(dirname(p), (dirs.get(dirname(p)) ?? new Set<string>()).add(basename(p)));
      }
    }
    for (const [dir, only] of dirs) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (only && name && !only.has(name.toString())) return;
          this.#schedule();
        });
        w.on('error', (err) => this.#opts.logger.warn({ err, dir }, 'mesh watch failed'));
        this.#watchers.push(w);
      } catch (err) {
        this.#opts.logger.warn({ err, dir }, 'cannot watch mesh path; changes need a restart');
      }
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.reload(), this.#opts.debounceMs ?? 100);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of this.#watchers) w.close();
    await this.#reloading;
  }
}
