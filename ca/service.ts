// Assembles a running CA from its configuration: authority (state dir, cacerts, or a
// Kubernetes Secret), node authentication (tokens file or TokenReview), the mesh model
// (files or the Kubernetes API, watched), the issuer and the HTTPS server.
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { KubeApi } from '../mesh/kube/http.js';
import { CA_RESOURCES } from '../mesh/kube/resources.js';
import { openMeshSource } from '../mesh/open.js';
import type { MeshSource } from '../mesh/source.js';
import { type NodeAuthenticator, TokensFileAuthenticator } from './auth/authenticator.js';
import { TokenReviewAuthenticator } from './auth/token-review.js';
import { Issuer } from './issuer.js';
import { loadOrCreateRootSecret, type SecretRef } from './kube-root.js';
import { loadCacerts, loadOrCreateRoot } from './material.js';
import { CaMetrics } from './metrics.js';
import type { Authority } from './pki.js';
import { CaServer } from './server.js';
import { NodeTokens } from './tokens.js';

export type CaAuth =
  | { readonly kind: 'tokens' }
  | {
      readonly kind: 'tokenreview';
      /** Audience of the agents' projected tokens. */
      readonly audience: string;
      /** `namespace/name` of the agents' service account(s). */
      readonly serviceAccounts: readonly string[];
    };

export interface CaConfig {
  readonly stateDir: string;
  readonly meshPaths: readonly string[];
  readonly tokensFile: string;
  readonly host: string;
  readonly port: number;
  readonly trustDomain: string;
  readonly cacertsDir: string | undefined;
  readonly maxTtlMs: number;
  readonly rateLimit?: { readonly burst: number; readonly perSecond: number };
  /** Where the mesh model comes from (default 'files': meshPaths). */
  readonly meshSource?: 'files' | 'kubernetes';
  /** How nodes authenticate (default tokens: tokensFile). */
  readonly auth?: CaAuth;
  /** Root material in this Secret rather than stateDir (cacertsDir still wins). */
  readonly rootSecret?: SecretRef;
}

/** Live handles the configuration needs (the Kubernetes API, when any part uses it). */
export interface CaDeps {
  readonly kube?: KubeApi;
}

export interface RunningCa {
  readonly server: CaServer;
  readonly mesh: MeshSource;
  readonly metrics: CaMetrics;
  readonly url: string;
  close(): Promise<void>;
}

/** Whether any part of the configuration reads the Kubernetes API (then `CaDeps.kube` is due). */
export function needsKubeApi(config: CaConfig): boolean {
  return (
    config.meshSource === 'kubernetes' ||
    config.auth?.kind === 'tokenreview' ||
    config.rootSecret !== undefined
  );
}

export async function startCa(
  config: CaConfig,
  logger: Logger,
  deps: CaDeps = {},
): Promise<RunningCa> {
  if (needsKubeApi(config) && !deps.kube)
    throw new ConfigError(
      'the Kubernetes mesh source, TokenReview and --root-secret need the Kubernetes API',
    );
  const authenticator: NodeAuthenticator =
    config.auth?.kind === 'tokenreview'
      ? new TokenReviewAuthenticator({
          api: deps.kube!,
          audience: config.auth.audience,
          serviceAccounts: config.auth.serviceAccounts,
        })
      : new TokensFileAuthenticator(await NodeTokens.load(config.tokensFile));
  // Only what node authorization reads: who runs where, in which namespace.
  const mesh = await openMeshSource(
    config.meshSource === 'kubernetes'
      ? { kind: 'kubernetes', api: deps.kube!, resources: CA_RESOURCES }
      : { kind: 'files', paths: config.meshPaths },
    { logger: logger.child({ module: 'mesh' }) },
  );
  try {
    const authority = await loadAuthority(config, logger, deps);
    const metrics = new CaMetrics();
    const issuer = new Issuer({
      authority,
      trustDomain: config.trustDomain,
      maxTtlMs: config.maxTtlMs,
      mesh: () => mesh.current(),
    });
    const server = await CaServer.create({
      host: config.host,
      port: config.port,
      trustDomain: config.trustDomain,
      authority,
      issuer,
      authenticator,
      metrics,
      logger,
      ...(config.rateLimit ? { rateLimit: config.rateLimit } : {}),
    });
    const { address, port } = server.address();
    const url = `https://${address.includes(':') ? `[${address}]` : address}:${port}`;
    logger.info(
      { url, ...authenticator.describe(), trustDomain: config.trustDomain },
      'CA listening',
    );
    return {
      server,
      mesh,
      metrics,
      url,
      close: async () => {
        await server.close();
        await mesh.close();
      },
    };
  } catch (err) {
    await mesh.close();
    throw err;
  }
}

async function loadAuthority(config: CaConfig, logger: Logger, deps: CaDeps): Promise<Authority> {
  if (config.cacertsDir) {
    const authority = await loadCacerts(config.cacertsDir);
    logger.info(
      { cacerts: config.cacertsDir, issuer: authority.cert.subject },
      'signing as a plugged-in intermediate',
    );
    return authority;
  }
  if (config.rootSecret) {
    const { namespace, name } = config.rootSecret;
    const loaded = await loadOrCreateRootSecret(deps.kube!, config.rootSecret, config.trustDomain);
    logger.info(
      {
        secret: `${namespace}/${name}`,
        layout: loaded.layout,
        created: loaded.created,
        issuer: loaded.authority.cert.subject,
      },
      loaded.created ? 'generated a new root into the Secret' : 'loaded the root from the Secret',
    );
    return loaded.authority;
  }
  const loaded = await loadOrCreateRoot(config.stateDir, config.trustDomain);
  logger.info(
    { stateDir: config.stateDir, created: loaded.created, root: loaded.authority.cert.subject },
    loaded.created ? 'generated a new root' : 'loaded the existing root',
  );
  return loaded.authority;
}
