// Where the Kubernetes API is and how to authenticate, as a client-node KubeConfig. Built
// from explicit inputs: the CLI reads KUBERNETES_SERVICE_HOST/PORT and passes them in, so
// nothing below the entry point reads the environment (client-node's loadFromCluster does).
import { isIPv6 } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, errorMessage } from '../../lib/errors.js';

export const IN_CLUSTER = Object.freeze({
  tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
  caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
});

export type KubeAccess =
  /** A pod's own service account: the API at host:port, its token re-read as it rotates. */
  | {
      readonly kind: 'in-cluster';
      readonly host: string;
      readonly port: string;
      readonly tokenFile: string;
      readonly caFile: string;
    }
  /** A kubeconfig file (a person's, kind's); `context` defaults to its current context. */
  | { readonly kind: 'kubeconfig'; readonly file: string; readonly context?: string };

/** Loads @kubernetes/client-node only here, when the Kubernetes API is used at all: it is
 *  ~13 MiB of code that a file-source agent would otherwise carry in every process. */
export async function kubeConfigFor(access: KubeAccess): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (access.kind === 'kubeconfig') {
    try {
      kc.loadFromFile(access.file);
      if (access.context) kc.setCurrentContext(access.context);
    } catch (err) {
      throw new ConfigError(`--kubeconfig ${access.file}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    if (!kc.getCurrentCluster())
      throw new ConfigError(`--kubeconfig ${access.file}: no current context with a cluster`);
    return kc;
  }
  const host = isIPv6(access.host) ? `[${access.host}]` : access.host;
  kc.loadFromClusterAndUser(
    {
      name: 'in-cluster',
      server: `https://${host}:${access.port}`,
      caFile: access.caFile,
      skipTLSVerify: false,
    },
    {
      name: 'in-cluster',
      authProvider: { name: 'tokenFile', config: { tokenFile: access.tokenFile } },
    },
  );
  return kc;
}

/** Flags → KubeAccess: a kubeconfig when given, else in-cluster from the service env. */
export function kubeAccessFrom(
  flags: { kubeconfig?: string; kubeContext?: string; kubeTokenFile: string; kubeCaFile: string },
  serviceEnv: { host: string | undefined; port: string | undefined },
): KubeAccess {
  if (flags.kubeconfig) {
    return {
      kind: 'kubeconfig',
      file: flags.kubeconfig,
      ...(flags.kubeContext ? { context: flags.kubeContext } : {}),
    };
  }
  if (!serviceEnv.host || !serviceEnv.port) {
    throw new ConfigError(
      'Kubernetes API: not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset); pass --kubeconfig FILE',
    );
  }
  return {
    kind: 'in-cluster',
    host: serviceEnv.host,
    port: serviceEnv.port,
    tokenFile: flags.kubeTokenFile,
    caFile: flags.kubeCaFile,
  };
}
