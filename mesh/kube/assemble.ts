// Stored API objects → MeshObjects through mesh/convert (the one wire→internal edge). Unlike
// the file source, one bad object must not freeze the whole cluster's model: an object that
// fails conversion keeps its last good version (so an edit that breaks a DENY policy does
// not remove the policy), and one that never converted is left out. Pure.
import { convertDocuments, MeshErrors, type SourceDocument } from '../convert/index.js';
import { MeshValidationError } from '../errors.js';
import type { MeshObjects } from '../types.js';
import type { Wire } from './resources.js';

export interface StoredObject {
  /** `kubernetes:<resource>/<namespace>/<name>`: the object's origin in messages. */
  readonly id: string;
  readonly wire: Wire;
}

export interface Rejection {
  readonly id: string;
  readonly message: string;
  /** What is in force instead: its last good version, or nothing. */
  readonly kept: 'last-good' | 'none';
}

export interface Assembled {
  readonly objects: MeshObjects;
  readonly rejected: readonly Rejection[];
  /** id → the version now in force; pass back as `lastGood` next time. */
  readonly lastGood: ReadonlyMap<string, Wire>;
}

const ROUNDS = 3;

/** Throws only when even the objects that converted before cannot be assembled. */
export function assemble(
  stored: readonly StoredObject[],
  lastGood: ReadonlyMap<string, Wire>,
  clusterDomain: string,
): Assembled {
  let current = new Map(stored.map((s) => [s.id, s.wire]));
  const rejected = new Map<string, Rejection>();
  for (let round = 1; ; round++) {
    const docs: SourceDocument[] = [...current].map(([id, wire]) => ({
      doc: wire,
      origin: { source: id },
    }));
    try {
      const objects = convertDocuments(docs, { clusterDomain });
      return { objects, rejected: [...rejected.values()], lastGood: current };
    } catch (err) {
      if (!(err instanceof MeshValidationError) || round >= ROUNDS) throw err;
      const errors = err instanceof MeshErrors ? err.all : [err];
      const next = new Map(current);
      for (const e of errors) {
        const id = e.origin.source;
        if (!next.has(id)) throw err; // not one object's fault: give up, keep the old snapshot
        const good = lastGood.get(id);
        // Round 1 falls back to the last good version; later rounds drop the object.
        if (round === 1 && good && good !== next.get(id)) next.set(id, good);
        else next.delete(id);
        const kept = next.has(id) ? 'last-good' : 'none';
        rejected.set(id, { id, message: e.message, kept });
      }
      current = next;
    }
  }
}
