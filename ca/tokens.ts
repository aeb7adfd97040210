// Node credentials: bearer tokens mapped to node names. Only SHA-256 digests are kept in
// memory; a presented token is hashed and compared against every entry in constant time,
// so neither the match position nor a prefix leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { formatPath } from '../mesh/errors.js';

const entrySchema = z.union([
  z
    .object({
      node: z.string().min(1),
      token: z.string().min(16, 'expected a token of at least 16 characters'),
    })
    .strict(),
  z
    .object({
      node: z.string().min(1),
      sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits'),
    })
    .strict(),
]);
const fileSchema = z.array(entrySchema);

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export class NodeTokens {
  readonly #entries: readonly { node: string; digest: Buffer }[];

  constructor(entries: readonly { node: string; digest: Buffer }[]) {
    this.#entries = entries;
  }

  static fromYaml(text: string, file: string): NodeTokens {
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (err) {
      throw new ConfigError(`${file}: YAML syntax: ${errorMessage(err).split('\n')[0]}`);
    }
    const res = fileSchema.safeParse(doc ?? []);
    if (!res.success) {
      const i = res.error.issues[0]!;
      throw new ConfigError(
        `${file}: ${formatPath(i.path) || '(document)'}: ${i.message} (expected a list of {node, token} or {node, sha256})`,
      );
    }
    const entries = res.data.map((e) => ({
      node: e.node,
      digest: 'token' in e ? sha256(e.token) : Buffer.from(e.sha256, 'hex'),
    }));
    const seen = new Set<string>();
    for (const e of entries) {
      const hex = e.digest.toString('hex');
      if (seen.has(hex)) throw new ConfigError(`${file}: the same token is listed twice`);
      seen.add(hex);
    }
    return new NodeTokens(entries);
  }

  static async load(file: string): Promise<NodeTokens> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`tokens file ${file}: ${errorMessage(err)}`);
    }
    return NodeTokens.fromYaml(text, file);
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The node a bearer token belongs to, or undefined. Compares against all entries. */
  nodeFor(token: string): string | undefined {
    const digest = sha256(token);
    let found: string | undefined;
    for (const e of this.#entries) {
      if (timingSafeEqual(e.digest, digest) && found === undefined) found = e.node;
    }
    return found;
  }
}
