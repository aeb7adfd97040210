// The one place that turns "which source" into an open MeshSource: watched YAML files, or
// the Kubernetes API (list/watch). The agent (and the capture rules of its --workers
// primary), the CA and the operator's commands all open their mesh here.
import type { Logger } from '../lib/logger.js';
import { FileMeshSource } from './file-source.js';
import { type KubeAccess, kubeConfigFor } from './kube/config.js';
import { KubeApi } from './kube/http.js';
import type { ResourceName } from './kube/resources.js';
import { KubeMeshSource } from './kube/source.js';
import type { MeshSource } from './source.js';

/** Where a mesh model comes from. Plain data: it is part of a frozen config. */
export type MeshChoice =
  | { readonly kind: 'files'; readonly paths: readonly string[] }
  | {
      readonly kind: 'kubernetes';
      readonly access: KubeAccess;
      /** The kinds listed and watched (default: all the agent reads). */
      readonly resources?: readonly ResourceName[];
    };

/** The Kubernetes API through a client the caller holds already: the CA shares its own with
 *  TokenReview and --root-secret, and tests pass a fake API server's. A live handle, so
 *  never part of a config. */
export interface KubeClientChoice {
  readonly kind: 'kubernetes';
  readonly api: KubeApi;
  readonly resources?: readonly ResourceName[];
}

export interface MeshOpenOptions {
  readonly logger: Logger;
  /** Of the services' host names (default cluster.local). */
  readonly clusterDomain?: string;
}

export async function openMeshSource(
  choice: MeshChoice | KubeClientChoice,
  opts: MeshOpenOptions,
): Promise<MeshSource> {
  const { logger, clusterDomain } = opts;
  if (choice.kind === 'files')
    return FileMeshSource.open({ paths: choice.paths, logger, clusterDomain });
  return KubeMeshSource.open({
    api: 'api' in choice ? choice.api : new KubeApi(await kubeConfigFor(choice.access)),
    logger,
    clusterDomain,
    resources: choice.resources,
  });
}
