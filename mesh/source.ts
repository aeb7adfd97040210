// What every source of the mesh model offers (files now, the Kubernetes API later).
import type { MeshSnapshot } from './snapshot.js';

export interface MeshSource {
  /** The last good snapshot. */
  current(): MeshSnapshot;
  /** Called with each new good snapshot; returns an unsubscribe function. */
  subscribe(listener: (snapshot: MeshSnapshot) => void): () => void;
  close(): Promise<void>;
}
