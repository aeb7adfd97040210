// `mtun ca`: flags → CaConfig, start the CA, stop it cleanly on SIGTERM/SIGINT.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { type CaConfig, startCa } from '../ca/service.js';
import { isValidTrustDomain } from '../identity/spiffe-id.js';
import { parseDurationMs } from '../lib/duration.js';
import { ConfigError } from '../lib/errors.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../lib/logger.js';
import { parseHostPort } from './args.js';
import { runUntilSignal } from './signals.js';

interface CaFlags {
  stateDir: string;
  mesh: string[];
  tokens: string;
  listen: string;
  trustDomain: string;
  cacerts?: string;
  maxTtl: string;
  logLevel: LogLevel;
  nodeRate: string;
  nodeBurst: string;
}

export function caConfigFromFlags(f: CaFlags): CaConfig {
  const problems: string[] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      problems.push((err as Error).message);
      return undefined;
    }
  };
  const listen = attempt(() => parseHostPort(f.listen, '--listen'));
  const maxTtlMs = attempt(() => parseDurationMs(f.maxTtl, '--max-ttl'));
  if (!isValidTrustDomain(f.trustDomain)) {
    problems.push(
      `--trust-domain: ${JSON.stringify(f.trustDomain)} is not a trust domain (lowercase letters, digits, '.', '-', '_')`,
    );
  }
  const perSecond = Number(f.nodeRate);
  const burst = Number(f.nodeBurst);
  if (!(perSecond > 0))
    problems.push(
      `--node-rate: expected a positive number of requests per second, got ${JSON.stringify(f.nodeRate)}`,
    );
  if (!(Number.isInteger(burst) && burst >= 1))
    problems.push(`--node-burst: expected a positive integer, got ${JSON.stringify(f.nodeBurst)}`);
  if (!f.mesh || f.mesh.length === 0)
    problems.push('--mesh: required (a YAML file or directory of Pods, Namespaces, ...)');
  if (problems.length > 0) throw new ConfigError(problems.join('\n'));
  return Object.freeze({
    stateDir: f.stateDir,
    meshPaths: f.mesh,
    tokensFile: f.tokens,
    host: listen!.host,
    port: listen!.port,
    trustDomain: f.trustDomain,
    cacertsDir: f.cacerts,
    maxTtlMs: maxTtlMs!,
    rateLimit: { burst, perSecond },
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
    .requiredOption(
      '--mesh <path...>',
      'mesh YAML file(s) or directory (Pods, Namespaces): who runs where; watched',
    )
    .requiredOption(
      '--tokens <file>',
      'YAML list of {node, token} or {node, sha256}: node credentials',
    )
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
      const ca = await startCa(config, logger);
      await runUntilSignal(logger, () => ca.close());
    });
}
