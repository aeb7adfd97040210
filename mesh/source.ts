// What every source of the mesh model offers (files, the Kubernetes API), and the pieces both
// sources share: their subscribers, and the counts they log with each snapshot.
import type { Logger } from '../lib/logger.js';
import type { MeshSnapshot } from './snapshot.js';

export interface MeshSource {
  /** The last good snapshot. */
  current(): MeshSnapshot;
  /** Called with each new good snapshot; returns an unsubscribe function. */
  subscribe(listener: (snapshot: MeshSnapshot) => void): () => void;
  close(): Promise<void>;
}

/** A source's subscribers. A listener that throws is logged and never stops the others. */
export class SnapshotListeners {
  readonly #listeners = new Set<(s: MeshSnapshot) => void>();

  add(listener: (s: MeshSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(snapshot: MeshSnapshot, log: Logger): void {
    for (const l of this.#listeners) {
      try {
        l(snapshot);
      } catch (err) {
        log.error({ err }, 'mesh listener failed');
      }
    }
  }
}

/** Log fields describing a snapshot's size. */
export function snapshotCounts(s: MeshSnapshot) {
  return {
    workloads: s.workloads.length,
    services: s.services.length,
    nodes: s.nodes.length,
    policies: s.authorizationPolicies.length + s.peerAuthentications.length,
  };
}
