// Reading the mesh files: Kubernetes-shaped multi-document YAML from files and directories,
// each file kept with its text, documents and YAML problems, so that the watched source can
// judge a file on its own (an emptied file keeps its last good contents, emptiedFiles).
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigError, errorMessage, MtunError } from '../lib/errors.js';
import type { SourceDocument } from './convert/index.js';
import { MeshValidationError } from './errors.js';

const MAX_FILE_BYTES = 16 << 20;
const MAX_DOCUMENTS = 100_000;
const YAML_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** One mesh file as read: its documents, or the YAML problems that kept them from parsing. */
export interface MeshFile {
  readonly file: string;
  readonly text: string;
  readonly docs: readonly SourceDocument[];
  readonly errors: readonly MeshValidationError[];
}

/** The marker line that says "this file is empty on purpose" (see emptiedFiles). */
export const EMPTY_MARKER = '# mtun: empty';
const EMPTY_MARKER_LINE = /^#\s*mtun:\s*empty\s*$/m;

/** Number of objects (non-empty documents) in a file. */
function objectCount(f: MeshFile): number {
  return f.docs.filter((d) => d.doc !== null && d.doc !== undefined).length;
}

/** The files of `paths` (non-recursive; *.yaml, *.yml, *.json, sorted by name), read. */
export async function readMeshFiles(paths: readonly string[]): Promise<MeshFile[]> {
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
  const out: MeshFile[] = [];
  let total = 0;
  for (const file of files) {
    const st = await stat(file);
    if (st.size > MAX_FILE_BYTES) {
      throw new ConfigError(
        `${file}: ${st.size} bytes is over the limit of ${MAX_FILE_BYTES} bytes per mesh file`,
      );
    }
    const text = await readFile(file, 'utf8');
    const parsed = parseAllDocuments(text);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    const docs: SourceDocument[] = [];
    const errors: MeshValidationError[] = [];
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
    total += docs.length;
    if (total > MAX_DOCUMENTS)
      throw new ConfigError(`mesh files hold more than ${MAX_DOCUMENTS} documents`);
    out.push(Object.freeze({ file, text, docs, errors }));
  }
  return out;
}

/** The documents of read files and a digest of their text; throws on any YAML problem. */
export function documentsOf(files: readonly MeshFile[]): {
  docs: SourceDocument[];
  digest: string;
} {
  const hash = createHash('sha256');
  const errors = files.flatMap((f) => f.errors);
  if (errors.length > 0) {
    throw errors.length === 1
      ? errors[0]!
      : new ConfigError(errors.map((e) => e.message).join('\n'));
  }
  for (const f of files) hash.update(f.file).update('\0').update(f.text).update('\0');
  return { docs: files.flatMap((f) => f.docs), digest: hash.digest('hex') };
}

/** Reads files and directories (non-recursive; *.yaml, *.yml, *.json, sorted by name). */
export async function readDocuments(
  paths: readonly string[],
): Promise<{ docs: SourceDocument[]; digest: string }> {
  return documentsOf(await readMeshFiles(paths));
}

/** Files that held objects and now hold none, without saying so on purpose: a file being
 *  rewritten in place (truncated, then written) reads empty for a moment, and taking that
 *  at its word would lift every policy it held (issue 12, item 7). ztunnel keeps its last
 *  good XDS state; so do we, per file. Emptying on purpose: remove the file from the
 *  directory, or leave a line `# mtun: empty` in it. */
export function emptiedFiles(
  now: readonly MeshFile[],
  lastGood: ReadonlyMap<string, MeshFile>,
): Set<string> {
  const out = new Set<string>();
  for (const f of now) {
    const before = lastGood.get(f.file);
    if (
      before &&
      objectCount(before) > 0 &&
      f.errors.length === 0 &&
      objectCount(f) === 0 &&
      !EMPTY_MARKER_LINE.test(f.text)
    )
      out.add(f.file);
  }
  return out;
}

export class MeshFileEmptiedError extends MtunError {
  readonly files: readonly string[];
  constructor(files: readonly string[]) {
    super(
      'MESH_FILE_EMPTIED',
      `${files.join(', ')}: held objects and is now empty; its last good contents stay in force (remove the file, or write a line "${EMPTY_MARKER}" into it, to empty it on purpose)`,
    );
    this.files = files;
  }
}
