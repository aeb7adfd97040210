// Where the operator's commands (`mtun check`, `mtun config --node`) read the mesh model:
// YAML files (--mesh) or the Kubernetes API (--mesh-source kubernetes, with --kubeconfig or
// in-cluster access), as the agent and the CA do (mesh/kube/open.ts). One snapshot, read
// once: these commands answer about now and exit.
import { type Command, Option } from 'commander';
import { ConfigError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import { IN_CLUSTER } from '../mesh/kube/config.js';
import { openMeshSource } from '../mesh/kube/open.js';
import type { MeshSnapshot } from '../mesh/snapshot.js';
import { kubeAccessFromFlags } from './args.js';

export interface MeshFlags {
  readonly mesh?: string[];
  readonly meshSource: 'files' | 'kubernetes';
  readonly kubeconfig?: string;
  readonly kubeContext?: string;
  readonly kubeTokenFile: string;
  readonly kubeCaFile: string;
  readonly clusterDomain: string;
}

export function addMeshOptions(cmd: Command, meshHelp: string): Command {
  return cmd
    .option('--mesh <path...>', meshHelp)
    .addOption(
      new Option('--mesh-source <source>', 'where the mesh model comes from')
        .choices(['files', 'kubernetes'])
        .default('files'),
    )
    .option('--kubeconfig <file>', 'Kubernetes API access (default: in-cluster service account)')
    .option('--kube-context <name>', 'context of --kubeconfig (default: its current context)')
    .option('--kube-token-file <file>', 'in-cluster service-account token', IN_CLUSTER.tokenFile)
    .option('--kube-ca-file <file>', 'in-cluster API server CA', IN_CLUSTER.caFile)
    .option('--cluster-domain <domain>', 'Kubernetes cluster domain', 'cluster.local');
}

/** The mesh as it is now; a ConfigError (exit 2) when no source is given or it fails. */
export async function readMeshSnapshot(f: MeshFlags, why: string): Promise<MeshSnapshot> {
  if (f.meshSource === 'files' && !f.mesh?.length)
    throw new ConfigError(`${why} needs --mesh <path...> (or --mesh-source kubernetes)`);
  const source = await openMeshSource(
    f.meshSource === 'kubernetes'
      ? { kind: 'kubernetes', access: kubeAccessFromFlags(f) }
      : { kind: 'files', paths: f.mesh ?? [] },
    { logger: silentLogger(), clusterDomain: f.clusterDomain },
  );
  try {
    return source.current();
  } finally {
    await source.close();
  }
}
