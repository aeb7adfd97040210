// The mesh-source flags, the same on every command that reads the mesh model (`mtun agent`,
// `mtun check`, `mtun config --node`, `mtun map`): YAML files (--mesh) or the Kubernetes API
// (--mesh-source kubernetes, with --kubeconfig or in-cluster access), turned into a
// MeshChoice that mesh/open.ts opens.
import { type Command, Option } from 'commander';
import { ConfigError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import { IN_CLUSTER } from '../mesh/kube/config.js';
import type { ResourceName } from '../mesh/kube/resources.js';
import { type MeshChoice, openMeshSource } from '../mesh/open.js';
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

/** Adds the flags; `meshHelp` says what the files must hold for this command. */
export function addMeshOptions(cmd: Command, meshHelp: string, sourceHelp?: string): Command {
  return cmd
    .option('--mesh <path...>', meshHelp)
    .addOption(
      new Option(
        '--mesh-source <source>',
        sourceHelp ?? 'where the mesh model comes from: --mesh files, or the Kubernetes API',
      )
        .choices(['files', 'kubernetes'])
        .default('files'),
    )
    .option('--kubeconfig <file>', 'Kubernetes API access (default: in-cluster service account)')
    .option('--kube-context <name>', 'context of --kubeconfig (default: its current context)')
    .option('--kube-token-file <file>', 'in-cluster service-account token', IN_CLUSTER.tokenFile)
    .option('--kube-ca-file <file>', 'in-cluster API server CA', IN_CLUSTER.caFile)
    .option(
      '--cluster-domain <domain>',
      'Kubernetes cluster domain of service names',
      'cluster.local',
    );
}

/** The source the flags name; `resources` narrows what is read from the Kubernetes API. A
 *  ConfigError when the API's address is unknown (no --kubeconfig, not in a cluster). */
export function meshChoiceFromFlags(f: MeshFlags, resources?: readonly ResourceName[]): MeshChoice {
  if (f.meshSource === 'files') return { kind: 'files', paths: [...(f.mesh ?? [])] };
  return {
    kind: 'kubernetes',
    access: kubeAccessFromFlags(f),
    ...(resources ? { resources } : {}),
  };
}

/** The mesh as it is now, read once (these commands answer about now and exit); a
 *  ConfigError (exit 2) when no source is given or it fails. */
export async function readMeshSnapshot(f: MeshFlags, why: string): Promise<MeshSnapshot> {
  if (f.meshSource === 'files' && !f.mesh?.length)
    throw new ConfigError(`${why} needs --mesh <path...> (or --mesh-source kubernetes)`);
  const source = await openMeshSource(meshChoiceFromFlags(f), {
    logger: silentLogger(),
    clusterDomain: f.clusterDomain,
  });
  try {
    return source.current();
  } finally {
    await source.close();
  }
}
