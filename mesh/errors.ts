// Errors of the mesh model: where (file, document, object, field) and what was expected.
import { MtunError } from '../lib/errors.js';
import type { Origin } from './types.js';

export interface FieldProblem {
  /** Dotted path from the document root, e.g. `spec.rules[0].from[0].source.principals`. */
  readonly path: string;
  readonly message: string;
}

export class MeshValidationError extends MtunError {
  readonly origin: Origin;
  readonly object: string | undefined;
  readonly problems: readonly FieldProblem[];

  constructor(origin: Origin, object: string | undefined, problems: readonly FieldProblem[]) {
    super('MESH_INVALID', formatProblems(origin, object, problems));
    this.origin = origin;
    this.object = object;
    this.problems = problems;
  }
}

export function describeOrigin(origin: Origin): string {
  return origin.document === undefined
    ? origin.source
    : `${origin.source}, document ${origin.document}`;
}

function formatProblems(
  origin: Origin,
  object: string | undefined,
  problems: readonly FieldProblem[],
): string {
  const where = `${describeOrigin(origin)}${object ? ` (${object})` : ''}`;
  return problems
    .map((p) => `${where}: ${p.path === '' ? '(document)' : p.path}: ${p.message}`)
    .join('\n');
}

/** Formats a zod-style path array as `a.b[0].c`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}
