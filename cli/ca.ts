// `mtun ca`: flags → CaConfig, start the CA, stop it cleanly on SIGTERM/SIGINT.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { parseSecretRef } from '../ca/kube-root.js';
import { type CaConfig, type CaDeps, needsKubeApi, startCa } from '../ca/service.js';
import { isValidTrustDomain } from '../identity/spiffe-id.js';
import { parseDurationMs } from '../lib/duration.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../lib/logger.js';
import { IN_CLUSTER, kubeConfigFor } from '../mesh/kube/config.js';
import { KubeApi } from '../mesh/kube/http.js';
import { kubeAccessFromFlags, Problems, parseHostPort } from './args.js';
import { runUntilSignal } from './signals.js';

interface CaFlags {
  stateDir: string;
  mesh?: string[];
  tokens?: string;
  meshSource: 'files' | 'kubernetes';
  auth: 'tokens' | 'tokenreview';
  tokenAudience: string;
  agentServiceAccount: string[];
  rootSecret?: string;
  kubeconfig?: string;
  kubeContext?: string;
  kubeTokenFile: string;
  kubeCaFile: string;
  listen: string;
  trustDomain: string;
  cacerts?: string;
  maxTtl: string;
  logLevel: LogLevel;
  nodeRate: string;
  nodeBurst: string;
}

export function caConfigFromFlags(f: CaFlags): CaConfig {
  const problems = new Problems();
  const attempt = <T>(fn: () => T): T | undefined => problems.attempt(fn);
  const listen = attempt(() => parseHostPort(f.listen, '--listen'));
  const maxTtlMs = attempt(() => parseDurationMs(f.maxTtl, '--max-ttl'));
  if (!isValidTrustDomain(f.trustDomain)) {
    problems.add(
      `--trust-domain: ${JSON.stringify(f.trustDomain)} is not a trust domain (lowercase letters, digits, '.', '-', '_')`,
    );
  }
  const perSecond = Number(f.nodeRate);
  const burst = Number(f.nodeBurst);
  if (!(perSecond > 0))
    problems.add(
      `--node-rate: expected a positive number of requests per second, got ${JSON.stringify(f.nodeRate)}`,
    );
  if (!(Number.isInteger(burst) && burst >= 1))
    problems.add(`--node-burst: expected a positive integer, got ${JSON.stringify(f.nodeBurst)}`);
  if (f.meshSource === 'files' && (!f.mesh || f.mesh.length === 0))
    problems.add(
      "required option '--mesh <path...>' not specified (with --mesh-source files; or --mesh-source kubernetes)",
    );
  if (f.auth === 'tokens' && !f.tokens)
    problems.add(
      "required option '--tokens <file>' not specified (with --auth tokens; or --auth tokenreview)",
    );
  const rootSecret =
    f.rootSecret === undefined
      ? undefined
      : attempt(() => parseSecretRef(f.rootSecret!, '--root-secret'));
  for (const sa of f.agentServiceAccount) {
    if (!/^[a-z0-9.-]+\/[a-z0-9.-]+$/.test(sa))
      problems.add(`--agent-service-account: expected NAMESPACE/NAME, got ${JSON.stringify(sa)}`);
  }
  problems.throwIfAny();
  return Object.freeze({
    stateDir: f.stateDir,
    meshPaths: f.mesh ?? [],
    tokensFile: f.tokens ?? '',
    host: listen!.host,
    port: listen!.port,
    trustDomain: f.trustDomain,
    cacertsDir: f.cacerts,
    maxTtlMs: maxTtlMs!,
    rateLimit: { burst, perSecond },
    meshSource: f.meshSource,
    auth:
      f.auth === 'tokenreview'
        ? {
            kind: 'tokenreview' as const,
            audience: f.tokenAudience,
            serviceAccounts: Object.freeze([...f.agentServiceAccount]),
          }
        : { kind: 'tokens' as const },
    ...(rootSecret ? { rootSecret } : {}),
  });
}

export function registerCa(program: Command): void {
  program
    .command('ca')
    .description(
      'run the certificate authority: issues SPIFFE X.509-SVIDs from CSRs, only to the node that runs the workload',
    )
    .option(
      '--state-dir <dir>',
      'where the generated root key and certificate live (0600)',
      join(homedir(), '.mtun', 'ca'),
    )
    .option(
      '--mesh <path...>',
      'mesh YAML file(s) or directory (Pods, Namespaces): who runs where; watched (--mesh-source files)',
    )
    .option(
      '--tokens <file>',
      'YAML list of {node, token} or {node, sha256}: node credentials (--auth tokens)',
    )
    .addOption(
      new Option(
        '--mesh-source <source>',
        'where pods and namespaces come from: --mesh files, or the Kubernetes API (list/watch)',
      )
        .choices(['files', 'kubernetes'])
        .default('files'),
    )
    .addOption(
      new Option(
        '--auth <method>',
        "how nodes authenticate: --tokens file, or Kubernetes TokenReview of the agents' projected service-account tokens",
      )
        .choices(['tokens', 'tokenreview'])
        .default('tokens'),
    )
    .option(
      '--token-audience <aud>',
      "audience the agents' tokens must carry (--auth tokenreview)",
      'mtun-ca',
    )
    .option(
      '--agent-service-account <ns/name...>',
      'service account(s) whose tokens may act for a node (--auth tokenreview)',
      ['mtun-system/mtun-agent'],
    )
    .option(
      '--root-secret <ns/name>',
      "keep the root in this Kubernetes Secret (created on first start; Istio's cacerts layout is used as an intermediate)",
    )
    .option('--kubeconfig <file>', 'Kubernetes API access (default: in-cluster service account)')
    .option('--kube-context <name>', 'context of --kubeconfig (default: its current context)')
    .option('--kube-token-file <file>', 'in-cluster service-account token', IN_CLUSTER.tokenFile)
    .option('--kube-ca-file <file>', 'in-cluster API server CA', IN_CLUSTER.caFile)
    .option('--listen <host:port>', 'address to serve HTTPS on', '127.0.0.1:15012')
    .option('--trust-domain <td>', 'SPIFFE trust domain', 'cluster.local')
    .option(
      '--cacerts <dir>',
      "Istio plug-in CA layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); overrides --state-dir's root",
    )
    .option('--max-ttl <duration>', 'longest certificate lifetime granted (e.g. 24h, 90m)', '24h')
    .option(
      '--node-rate <per-second>',
      'certificate requests per second one node may sustain (429 beyond)',
      '20',
    )
    .option(
      '--node-burst <n>',
      'requests one node may make at once before --node-rate applies',
      '100',
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addHelpText(
      'after',
      '\nAPI: POST /v1/certificates {"csr": PEM, "ttlSeconds": N} with "Authorization: Bearer <node token>";\n     GET /v1/trust-bundle, GET /healthz, GET /metrics.',
    )
    .action(async (flags: CaFlags) => {
      const config = caConfigFromFlags(flags);
      const logger = createLogger({ level: flags.logLevel, name: 'ca' });
      const deps: CaDeps = needsKubeApi(config)
        ? {
            kube: new KubeApi(await kubeConfigFor(kubeAccessFromFlags(flags))),
          }
        : {};
      const ca = await startCa(config, logger, deps);
      await runUntilSignal(logger, () => ca.close());
    });
}
