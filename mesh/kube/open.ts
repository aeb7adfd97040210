// One place that turns "which source" into an open MeshSource, for the commands: the files
// source (watched YAML) or the Kubernetes API (list/watch through a client-node KubeConfig).
import type { Logger } from '../../lib/logger.js';
import { FileMeshSource } from '../file-source.js';
import type { MeshSource } from '../source.js';
import { type KubeAccess, kubeConfigFor } from './config.js';
import { KubeApi } from './http.js';
import type { ResourceName } from './resources.js';
import { KubeMeshSource } from './source.js';

export type MeshChoice =
  | { readonly kind: 'files'; readonly paths: readonly string[] }
  | {
      readonly kind: 'kubernetes';
      readonly access: KubeAccess;
      readonly resources?: readonly ResourceName[];
    };

export async function openMeshSource(
  choice: MeshChoice,
  opts: { readonly logger: Logger; readonly clusterDomain: string },
): Promise<MeshSource> {
  if (choice.kind === 'files')
    return FileMeshSource.open({
      paths: choice.paths,
      logger: opts.logger,
      clusterDomain: opts.clusterDomain,
    });
  return KubeMeshSource.open({
    api: new KubeApi(await kubeConfigFor(choice.access)),
    logger: opts.logger,
    clusterDomain: opts.clusterDomain,
    ...(choice.resources ? { resources: choice.resources } : {}),
  });
}
