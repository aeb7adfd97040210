// Assembles a running CA from its configuration: authority (state dir or cacerts), node
// tokens, the mesh model (watched), the issuer and the HTTPS server.
import type { Logger } from '../lib/logger.js';
import { FileMeshSource } from '../mesh/file-source.js';
import type { MeshSource } from '../mesh/source.js';
import { Issuer } from './issuer.js';
import { loadCacerts, loadOrCreateRoot } from './material.js';
import { CaMetrics } from './metrics.js';
import type { Authority } from './pki.js';
import { CaServer } from './server.js';
import { NodeTokens } from './tokens.js';

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
}

export interface RunningCa {
  readonly server: CaServer;
  readonly mesh: MeshSource;
  readonly metrics: CaMetrics;
  readonly url: string;
  close(): Promise<void>;
}

export async function startCa(config: CaConfig, logger: Logger): Promise<RunningCa> {
  const tokens = await NodeTokens.load(config.tokensFile);
  const mesh = await FileMeshSource.open({
    paths: config.meshPaths,
    logger: logger.child({ module: 'mesh' }),
  });
  try {
    let authority: Authority;
    if (config.cacertsDir) {
      authority = await loadCacerts(config.cacertsDir);
      logger.info(
        { cacerts: config.cacertsDir, issuer: authority.cert.subject },
        'signing as a plugged-in intermediate',
      );
    } else {
      const loaded = await loadOrCreateRoot(config.stateDir, config.trustDomain);
      authority = loaded.authority;
      logger.info(
        { stateDir: config.stateDir, created: loaded.created, root: authority.cert.subject },
        loaded.created ? 'generated a new root' : 'loaded the existing root',
      );
    }
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
      tokens,
      metrics,
      logger,
      ...(config.rateLimit ? { rateLimit: config.rateLimit } : {}),
    });
    const { address, port } = server.address();
    const url = `https://${address.includes(':') ? `[${address}]` : address}:${port}`;
    logger.info({ url, nodes: tokens.size, trustDomain: config.trustDomain }, 'CA listening');
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
