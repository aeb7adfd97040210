// The file source: Kubernetes-shaped multi-document YAML from files and directories,
// watched. Each good change yields a new snapshot; a bad one is reported (file, document,
// field, expectation) and the previous snapshot stays in force.
import { createHash } from 'node:crypto';
import { type FSWatcher, statSync, watch } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { convertDocuments, type SourceDocument } from './convert/index.js';
import { MeshValidationError } from './errors.js';
import { MeshSnapshot } from './snapshot.js';
import { type MeshSource, SnapshotListeners, snapshotCounts } from './source.js';

const MAX_FILE_BYTES = 16 << 20;
const MAX_DOCUMENTS = 100_000;
const YAML_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface FileSourceOptions {
  readonly paths: readonly string[];
  readonly clusterDomain?: string;
  readonly logger: Logger;
  /** Watch for changes (default true). */
  readonly watch?: boolean;
  readonly debounceMs?: number;
}

/** Reads files and directories (non-recursive; *.yaml, *.yml, *.json, sorted by name). */
export async function readDocuments(
  paths: readonly string[],
): Promise<{ docs: SourceDocument[]; digest: string }> {
  const files: string[] = [];
  for (const p of paths) {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(p);
    } catch (err) {
      throw new ConfigError(
        `mesh path ${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : errorMessage(err)}`,
      );
    }
    if (st.isDirectory()) {
      const names = (await readdir(p))
        .filter((n) => YAML_EXTENSIONS.has(extname(n)) && !n.startsWith('.'))
        .sort();
      files.push(...names.map((n) => join(p, n)));
    } else files.push(p);
  }
  const hash = createHash('sha256');
  const docs: SourceDocument[] = [];
  const errors: MeshValidationError[] = [];
  for (const file of files) {
    const st = await stat(file);
    if (st.size > MAX_FILE_BYTES) {
      throw new ConfigError(
        `${file}: ${st.size} bytes is over the limit of ${MAX_FILE_BYTES} bytes per mesh file`,
      );
    }
    const text = await readFile(file, 'utf8');
    hash.update(file).update('\0').update(text).update('\0');
    const parsed = parseAllDocuments(text);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    list.forEach((d, i) => {
      const origin = { source: file, document: i };
      if (d.errors.length > 0) {
        errors.push(
          new MeshValidationError(
            origin,
            undefined,
            d.errors.map((e) => ({
              path: '',
              message: `YAML syntax: ${e.message.split('\n')[0]}`,
            })),
          ),
        );
        return;
      }
      docs.push({ doc: d.toJS({ maxAliasCount: 100 }), origin });
    });
    if (docs.length > MAX_DOCUMENTS)
      throw new ConfigError(`mesh files hold more than ${MAX_DOCUMENTS} documents`);
  }
  if (errors.length > 0) {
    throw errors.length === 1
      ? errors[0]!
      : new ConfigError(errors.map((e) => e.message).join('\n'));
  }
  return { docs, digest: hash.digest('hex') };
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
  /** The problem that kept the last reload from applying, if any (cleared by a good one). */
  lastError: Error | undefined;

  private constructor(opts: FileSourceOptions, snapshot: MeshSnapshot, digest: string) {
    this.#opts = opts;
    this.#snapshot = snapshot;
    this.#digest = digest;
  }

  /** Loads once (throwing on bad input: nothing good to keep yet), then watches. */
  static async open(opts: FileSourceOptions): Promise<FileMeshSource> {
    const paths = opts.paths.map((p) => resolve(p));
    if (paths.length === 0) throw new ConfigError('no mesh path given (--mesh FILE|DIR)');
    const { docs, digest } = await readDocuments(paths);
    const objects = convertDocuments(docs, {
      clusterDomain: opts.clusterDomain ?? 'cluster.local',
    });
    const source = new FileMeshSource({ ...opts, paths }, new MeshSnapshot(objects, 1), digest);
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
    try {
      const { docs, digest } = await readDocuments(this.#opts.paths);
      if (digest === this.#digest) return false;
      const objects = convertDocuments(docs, {
        clusterDomain: this.#opts.clusterDomain ?? 'cluster.local',
      });
      this.#digest = digest;
      this.#snapshot = new MeshSnapshot(objects, this.#snapshot.version + 1);
      this.lastError = undefined;
    } catch (err) {
      this.lastError = err as Error;
      log.error(
        {
          err: { code: (err as { code?: string }).code, message: errorMessage(err) },
          keptVersion: this.#snapshot.version,
        },
        'mesh files rejected; the previous snapshot stays in force',
      );
      return false;
    }
    log.info(
      { version: this.#snapshot.version, ...snapshotCounts(this.#snapshot) },
      'mesh reloaded',
    );
    this.#listeners.publish(this.#snapshot, log);
    return true;
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
