// `mtun agent`: flags → AgentConfig, then run one agent (or N worker processes sharing the
// listeners), ready when its certificates are loaded, drained on SIGTERM.
import cluster from 'node:cluster';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { type Command, Option } from 'commander';
import { Agent } from '../agent/agent.js';
import {
  originalDestinationFor,
  REDIRECT_MODES,
  type RedirectMode,
  startNodeRedirect,
  startRedirect,
} from '../agent/capture/index.js';
import { AGENT_DEFAULTS, type AgentConfig } from '../agent/config.js';
import { tuneMallocAndLog } from '../agent/malloc-tune.js';
import { CaClient } from '../ca/client.js';
import { isValidTrustDomain } from '../identity/spiffe-id.js';
import type { HostPort } from '../lib/address.js';
import { parseDurationMs } from '../lib/duration.js';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { deepFreeze } from '../lib/freeze.js';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../lib/logger.js';
import { resetDetection } from '../lib/socket-reset.js';
import { openMeshSource } from '../mesh/open.js';
import type { MeshSource } from '../mesh/source.js';
import { Problems, parseHostPort } from './args.js';
import { installLastResort } from './last-resort.js';
import { addMeshOptions, type MeshFlags, meshChoiceFromFlags } from './mesh-flags.js';
import { runUntilSignal } from './signals.js';
import { answerPrimary, servePrimary, workerConfig } from './workers.js';

export interface AgentFlags extends MeshFlags {
  node: string;
  ca: string;
  caTokenFile: string;
  caBundle: string;
  listenIp: string;
  outbound: string;
  inbound: string;
  inboundPlaintext: string;
  hbonePort?: string;
  socks5: string;
  socks5Workload?: string;
  socks5AllowNonPodClients?: boolean;
  admin: string;
  metrics: string;
  readiness: string;
  hboneDial?: string;
  clusterId: string;
  workers: string;
  trustDomain: string;
  rootNamespace: string;
  drainPeriod: string;
  certTtl?: string;
  connectTimeout: string;
  logLevel: LogLevel;
  redirect: RedirectMode;
  refuseBypassedPlaintext?: boolean;
  hardened?: boolean;
}

/** Every problem of the flags at once, each naming its flag; the config deep-frozen. */
export function agentConfigFromFlags(f: AgentFlags): AgentConfig {
  const problems = new Problems();
  const attempt = <T>(fn: () => T): T | undefined => problems.attempt(fn);
  const port = (text: string, flag: string): number => {
    const n = Number(text);
    if (!/^\d{1,5}$/.test(text) || n > 65535)
      throw new ConfigError(`${flag}: expected a port 0-65535, got ${JSON.stringify(text)}`);
    return n;
  };
  const optionalHostPort = (text: string, flag: string): HostPort | undefined =>
    text === 'off' ? undefined : parseHostPort(text, flag);
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(f.node))
    problems.add(`--node: ${JSON.stringify(f.node)} is not a Kubernetes node name`);
  if (isIP(f.listenIp) === 0)
    problems.add(`--listen-ip: expected an IP address, got ${JSON.stringify(f.listenIp)}`);
  // REDIRECT delivers to the address of the interface a packet came in on: any of them.
  if (f.redirect === 'iptables' && f.listenIp !== '0.0.0.0' && f.listenIp !== '::')
    problems.add(`--redirect iptables: needs --listen-ip 0.0.0.0 or ::, got ${f.listenIp}`);
  if (!isValidTrustDomain(f.trustDomain))
    problems.add(`--trust-domain: ${JSON.stringify(f.trustDomain)} is not a trust domain`);
  let caUrl: URL | undefined;
  try {
    caUrl = new URL(f.ca);
    if (caUrl.protocol !== 'https:')
      problems.add(`--ca: expected an https:// URL, got ${JSON.stringify(f.ca)}`);
  } catch {
    problems.add(`--ca: expected a URL like https://127.0.0.1:15012, got ${JSON.stringify(f.ca)}`);
  }
  const workers = Number(f.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    problems.add(`--workers: expected 1-64, got ${JSON.stringify(f.workers)}`);
  if (f.socks5Workload !== undefined && !/^[a-z0-9.-]+\/[a-z0-9.-]+$/.test(f.socks5Workload)) {
    problems.add(
      `--socks5-workload: expected NAMESPACE/POD, got ${JSON.stringify(f.socks5Workload)}`,
    );
  }
  if (f.meshSource === 'files' && (!f.mesh || f.mesh.length === 0))
    problems.add(
      "required option '--mesh <path...>' not specified (with --mesh-source files; or --mesh-source kubernetes)",
    );
  if (!/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(f.clusterId))
    problems.add(`--cluster-id: ${JSON.stringify(f.clusterId)} is not a cluster id`);
  const inboundPort = attempt(() => port(f.inbound, '--inbound'));
  const config = {
    node: f.node,
    logLevel: f.logLevel,
    redirect: f.redirect,
    mesh: attempt(() => meshChoiceFromFlags(f)),
    trustDomain: f.trustDomain,
    clusterDomain: f.clusterDomain,
    rootNamespace: f.rootNamespace,
    ca: {
      url: f.ca,
      tokenFile: f.caTokenFile,
      bundleFile: f.caBundle,
      certTtlSeconds:
        f.certTtl === undefined
          ? undefined
          : attempt(() => Math.round(parseDurationMs(f.certTtl!, '--cert-ttl') / 1000)),
    },
    listenIp: f.listenIp,
    outboundPort: attempt(() => port(f.outbound, '--outbound')),
    inboundPort,
    inboundPlaintextPort: attempt(() => port(f.inboundPlaintext, '--inbound-plaintext')),
    hbonePort:
      f.hbonePort === undefined ? inboundPort : attempt(() => port(f.hbonePort!, '--hbone-port')),
    hboneDial: (f.hboneDial ?? (f.redirect === 'iptables' ? 'pod' : 'node')) as 'pod' | 'node',
    socks5: attempt(() => optionalHostPort(f.socks5, '--socks5')),
    socks5Workload: f.socks5Workload,
    socks5AllowNonPodClients: f.socks5AllowNonPodClients === true,
    admin: attempt(() => optionalHostPort(f.admin, '--admin')),
    metrics: attempt(() => optionalHostPort(f.metrics, '--metrics')),
    readiness: attempt(() => optionalHostPort(f.readiness, '--readiness')),
    clusterId: f.clusterId,
    workers,
    drainPeriodMs: attempt(() => parseDurationMs(f.drainPeriod, '--drain-period')),
    connectTimeoutMs: attempt(() => parseDurationMs(f.connectTimeout, '--connect-timeout')),
    refuseBypassedPlaintext: f.refuseBypassedPlaintext === true,
    hardened: f.hardened === true,
  };
  problems.throwIfAny();
  return deepFreeze(config) as AgentConfig;
}

async function readText(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${flag} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : errorMessage(err)}`,
    );
  }
}

/** The mesh source the config names, for the agent and for the capture rules of a --workers
 *  primary alike. */
function openAgentMesh(config: AgentConfig, logger: Logger): Promise<MeshSource> {
  return openMeshSource(config.mesh, {
    logger: logger.child({ module: 'mesh' }),
    clusterDomain: config.clusterDomain,
  });
}

export async function runAgent(config: AgentConfig): Promise<void> {
  const logger = createLogger({ level: config.logLevel, name: 'agent' });
  tuneMallocAndLog(logger);
  const resets = resetDetection();
  if (!resets.available)
    logger.warn(
      { reason: resets.reason },
      'resets that arrive behind unread data cannot be told from a FIN (Node 20 reads them as an end): such a cut is forwarded as a clean end',
    );
  const originalDestination = originalDestinationFor(config.redirect, logger);
  const bundle = await readText(config.ca.bundleFile, '--ca-bundle');
  if (!bundle.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(`--ca-bundle ${config.ca.bundleFile}: expected PEM certificates`);
  // The token is re-read at every CA request: projected service-account tokens rotate.
  const token = async () => (await readText(config.ca.tokenFile, '--ca-token-file')).trim();
  await token();
  const mesh = await openAgentMesh(config, logger);
  // Until the signal handler exists, a stop asked for (by /quitquitquit or the last resort)
  // is remembered and carried out as soon as it does.
  let stopAsked = false;
  let stop: () => void = () => {
    stopAsked = true;
  };
  const agent = await Agent.create(config, {
    mesh,
    ca: new CaClient({ url: config.ca.url, caBundlePem: bundle, token }),
    caBundlePem: [bundle],
    logger,
    onQuit: () => stop(),
    ...(originalDestination ? { originalDestination } : {}),
  }).catch(async (err) => {
    await mesh.close();
    throw err;
  });
  const lastResort = installLastResort({
    logger,
    registry: agent.ctx.metrics.registry,
    giveUp: (reason) => {
      agent.markFailed(reason);
      process.exitCode = 1;
      stop();
    },
  });
  if (cluster.isWorker) answerPrimary(agent, logger);
  // Rules only once every listener is bound; with --workers the primary keeps them.
  const rules = cluster.isWorker
    ? undefined
    : await startRedirect(agent.ctx.state, config, logger).catch(async (err) => {
        await agent.close(0);
        await mesh.close();
        throw err;
      });
  await runUntilSignal(
    logger,
    async () => {
      await agent.close();
      await rules?.close();
      await mesh.close();
      lastResort.uninstall();
    },
    (trigger) => {
      stop = trigger;
      if (stopAsked) trigger();
    },
  );
  // Given up after the drain: exit now, whatever a broken state may still hold open (a
  // request in flight, a timer), so that the DaemonSet restarts a clean process.
  if (lastResort.failed()) process.exit(1);
}

export function registerAgent(program: Command): void {
  const d = AGENT_DEFAULTS;
  const cmd = program
    .command('agent')
    .description(
      "run the node agent: capture this node's pods' TCP, tunnel it over HBONE with their identities, enforce policy inbound",
    )
    .requiredOption('--node <name>', 'this node (pods with spec.nodeName = NAME are local)');
  addMeshOptions(
    cmd,
    'mesh YAML file(s) or directory (Pods, Services, Nodes, Namespaces, policies); watched (--mesh-source files)',
    'where the mesh model comes from: --mesh files, or the Kubernetes API (list/watch)',
  )
    .requiredOption('--ca <url>', 'CA service URL, e.g. https://127.0.0.1:15012')
    .requiredOption(
      '--ca-token-file <file>',
      "this node's credential for the CA (re-read at every request)",
    )
    .requiredOption('--ca-bundle <file>', 'PEM roots of the CA (its trust bundle)')
    .option('--listen-ip <ip>', 'address of the capture and HBONE listeners', d.listenIp)
    .option(
      '--outbound <port>',
      'outbound capture port (needs transparent capture)',
      String(d.outboundPort),
    )
    .option('--inbound <port>', 'inbound HBONE port', String(d.inboundPort))
    .option(
      '--inbound-plaintext <port>',
      'inbound plaintext capture port (needs transparent capture)',
      String(d.inboundPlaintextPort),
    )
    .option('--hbone-port <port>', "other agents' HBONE port (default: the same as --inbound)")
    .option('--socks5 <host:port|off>', 'SOCKS5 outbound listener', d.socks5)
    .option(
      '--socks5-workload <ns/pod>',
      'identity for SOCKS5 clients whose source IP is no local pod',
    )
    .option(
      '--socks5-allow-non-pod-clients',
      'relay for SOCKS5 clients whose source IP is no pod of this node (plain TCP to non-mesh addresses; default: refused, as it would be an open relay for any local process)',
    )
    .option(
      '--admin <host:port|off>',
      'admin endpoint: /config_dump, /logging, /quitquitquit',
      d.admin,
    )
    .option('--metrics <host:port|off>', 'Prometheus /metrics (and /stats/prometheus)', d.metrics)
    .option('--readiness <host:port|off>', 'readiness probe /healthz/ready', d.readiness)
    .addOption(
      new Option(
        '--hbone-dial <mode>',
        "where tunnels go: pod = the destination pod's IP:15008 without SNI, captured at the destination node (ztunnel's way; default with --redirect iptables); node = the destination node's agent with an SNI naming the pod (meshes without capture; default otherwise)",
      ).choices(['pod', 'node']),
    )
    .option(
      '--cluster-id <id>',
      "Istio's cluster id: the source_cluster/destination_cluster metric labels",
      d.clusterId,
    )
    .option('--workers <n>', 'processes sharing the listeners', String(d.workers))
    .option('--trust-domain <td>', 'SPIFFE trust domain', d.trustDomain)
    .option('--root-namespace <ns>', 'Istio root namespace (mesh-wide policies)', d.rootNamespace)
    .option(
      '--drain-period <duration>',
      'how long open connections may finish on shutdown',
      d.drainPeriod,
    )
    .option('--cert-ttl <duration>', 'certificate lifetime to ask the CA for (it may grant less)')
    .option('--connect-timeout <duration>', 'TCP/HBONE connect timeout', '10s')
    .option(
      '--refuse-bypassed-plaintext',
      "refuse plaintext from a mesh pod's address (its node's capture was bypassed) even under PERMISSIVE; default: accept, count and warn (Istio's semantics)",
    )
    .option(
      '--hardened',
      "hardened profile: STRICT mTLS and deny-by-default mesh-wide (only what an ALLOW policy names may connect); kubelet probes to this node's pods stay allowed",
    )
    .addOption(
      new Option('--log-level <level>', 'log level (change at run time: admin /logging?level=)')
        .choices(LOG_LEVELS)
        .default('info'),
    )
    .addOption(
      new Option(
        '--redirect <mode>',
        'capture rules: iptables = this agent installs them for its pods and removes them on exit (root, native addon); none = none, or deploy/iptables/mtun-redirect.sh',
      )
        .choices(REDIRECT_MODES)
        .default('none'),
    )
    .action(async (flags: AgentFlags) => {
      const config = agentConfigFromFlags(flags);
      if (config.workers > 1) return runWorkers(config);
      await runAgent(config);
    });
}

/** N processes with the same listeners; the kernel spreads accepted connections. */
async function runWorkers(config: AgentConfig): Promise<void> {
  if (cluster.isWorker) {
    await runAgent(workerConfig(config));
    // The IPC channel to the primary would keep this process alive after the drain.
    cluster.worker?.disconnect();
    return;
  }
  const logger = createLogger({ level: config.logLevel, name: 'agent' });
  originalDestinationFor(config.redirect, logger); // fail before forking when capture cannot work
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Until the workers listen, captured connections are refused: closed, never around the mesh.
  const rules = await startNodeRedirect(config, logger, () => openAgentMesh(config, logger));
  cluster.setupPrimary({ args: process.argv.slice(2) });
  for (let i = 0; i < config.workers; i++) cluster.fork();
  let stopping = false;
  let quit: () => void = () => {};
  const admin = await servePrimary(config, logger, () => quit());
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error({ worker: worker.id, code, signal }, 'worker died; starting another');
    cluster.fork();
  });
  await runUntilSignal(
    logger,
    async () => {
      stopping = true;
      const exits = Object.values(cluster.workers ?? {}).map(
        (w) => new Promise((r) => w!.once('exit', r)),
      );
      for (const w of Object.values(cluster.workers ?? {})) w!.process.kill('SIGTERM');
      await Promise.all(exits);
      await rules?.close();
      await admin.close();
    },
    (trigger) => {
      quit = trigger;
    },
  );
}
