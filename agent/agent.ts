// The node agent: binds every listener, loads certificates for the local workloads, keeps
// them in step with the mesh, and shuts down by draining. Readiness: all listeners bound,
// and a valid certificate for every local identity. Inputs are explicit (STYLE.md §7-9).
import { networkInterfaces } from 'node:os';
import { HboneClient } from '../hbone/index.js';
import { canonical, formatAddr, type HostPort } from '../lib/address.js';
import type { Logger } from '../lib/logger.js';
import type { MeshSource } from '../mesh/source.js';
import { buildConfigDump } from './admin/config-dump.js';
import { AdminServers } from './admin.js';
import { type CertificateFetcher, CertManager } from './certs/cert-manager.js';
import type { AgentConfig } from './config.js';
import type { AgentContext, OriginalDestination } from './context.js';
import { Drain } from './drain.js';
import { MTUN_VERSION } from './observe/build.js';
import { BypassDetector } from './observe/bypass.js';
import { mapSummary } from './observe/map-summary.js';
import { AgentMetrics } from './observe/metrics.js';
import { PolicyStatusReporter } from './observe/policy-status.js';
import { RecentConnections } from './observe/recent.js';
import type { AccessLogSink } from './observe/record.js';
import { InboundListener } from './proxy/inbound.js';
import { InboundPlaintextListener } from './proxy/inbound-plaintext.js';
import type { TcpListener } from './proxy/listener.js';
import { LiveInbound } from './proxy/live.js';
import { OutboundCaptureListener } from './proxy/outbound-capture.js';
import { Socks5Listener } from './proxy/socks5.js';
import { AgentState } from './state.js';

export interface AgentDeps {
  readonly mesh: MeshSource;
  readonly ca: CertificateFetcher;
  readonly caBundlePem: readonly string[];
  readonly logger: Logger;
  /** Where access-log lines go (default: the logger, at info, as `access` records). */
  readonly accessLog?: AccessLogSink;
  /** SO_ORIGINAL_DST; undefined when transparent capture is unavailable. */
  readonly originalDestination?: OriginalDestination;
  /** Called when an operator asks the agent to stop (admin /quitquitquit). */
  readonly onQuit?: () => void;
}

export interface AgentAddresses {
  readonly outbound: HostPort | undefined;
  readonly inbound: HostPort;
  readonly inboundPlaintext: HostPort | undefined;
  readonly socks5: HostPort | undefined;
  readonly admin: HostPort[];
}

interface Listeners {
  readonly inbound: InboundListener;
  readonly plaintext: TcpListener | undefined;
  readonly outbound: TcpListener | undefined;
  readonly socks5: TcpListener | undefined;
}

export class Agent {
  readonly ctx: AgentContext;
  readonly #listeners: Listeners;
  readonly #admin: AdminServers;
  readonly #stopWatching: () => void;
  #closing: Promise<void> | undefined;
  #failed: string | undefined;

  private constructor(
    ctx: AgentContext,
    listeners: Listeners,
    admin: AdminServers,
    stopWatching: () => void,
  ) {
    this.ctx = ctx;
    this.#listeners = listeners;
    this.#admin = admin;
    this.#stopWatching = stopWatching;
  }

  static async create(config: AgentConfig, deps: AgentDeps): Promise<Agent> {
    const logger = deps.logger;
    const state = new AgentState(deps.mesh, config.node, config.rootNamespace, config.hardened);
    const metrics = new AgentMetrics({
      version: MTUN_VERSION,
      processMetrics: true,
      snapshot: () => state.current.snapshot,
      telemetry: { clusterId: config.clusterId, trustDomain: config.trustDomain },
    });
    const certs = new CertManager({
      fetcher: {
        fetchCertificate: async (id, ttl) => {
          try {
            const got = await deps.ca.fetchCertificate(id, ttl);
            metrics.caRequests.inc({ outcome: 'issued' });
            return got;
          } catch (err) {
            metrics.caRequests.inc({ outcome: (err as { code?: string }).code ?? 'error' });
            throw err;
          }
        },
      },
      logger: logger.child({ module: 'certs' }),
      initialTrustBundle: deps.caBundlePem,
      ...(config.ca.certTtlSeconds ? { ttlSeconds: config.ca.certTtlSeconds } : {}),
    });
    const accessLogger = logger.child({ module: 'access' });
    const recent = new RecentConnections();
    const ctx: AgentContext = {
      config,
      state,
      certs,
      hbone: new HboneClient({
        certificates: certs,
        logger: logger.child({ module: 'hbone' }),
        connectTimeoutMs: config.connectTimeoutMs,
      }),
      metrics,
      // ztunnel's access log: target "access", "connection complete", error level on failure.
      accessLog: recent.tee(
        deps.accessLog ?? {
          write: (line, level = 'info') => accessLogger[level](line, 'connection complete'),
        },
      ),
      recent,
      bypass: new BypassDetector(metrics.registry, logger.child({ module: 'bypass' })),
      logger,
      drain: new Drain(),
      live: new LiveInbound(),
      routeSettings: {
        node: config.node,
        trustDomain: config.trustDomain,
        clusterDomain: config.clusterDomain,
        hbonePort: config.hbonePort,
        hboneDial: config.hboneDial,
        ownAddresses: ownAddresses(config),
      },
      originalDestination: deps.originalDestination,
      spread: roundRobin(),
    };
    const follow = () => certs.want(state.current.localIdentities(config.trustDomain));
    follow();
    const policyStatus = new PolicyStatusReporter(
      metrics.policyStatus,
      logger.child({ module: 'policy' }),
    );
    policyStatus.update(state.current.snapshot.authorizationPolicies);
    const stopWatching = state.onChange((view) => {
      follow();
      policyStatus.update(view.snapshot.authorizationPolicies);
      const closed = ctx.live.recheck(view, logger);
      if (closed > 0)
        logger.info(
          { closed, version: view.snapshot.version },
          'policy change closed open connections',
        );
    });

    const opened: { close(grace?: number): Promise<void> }[] = [];
    try {
      const at = (port: number) => ({ host: config.listenIp, port });
      const inbound = await InboundListener.create(ctx, at(config.inboundPort));
      opened.push(inbound);
      const capture = deps.originalDestination !== undefined;
      const plaintext = capture
        ? await InboundPlaintextListener.create(ctx, at(config.inboundPlaintextPort))
        : undefined;
      if (plaintext) opened.push(plaintext);
      const outbound = capture
        ? await OutboundCaptureListener.create(ctx, at(config.outboundPort))
        : undefined;
      if (outbound) opened.push(outbound);
      const socks5 = config.socks5 ? await Socks5Listener.create(ctx, config.socks5) : undefined;
      if (socks5) opened.push(socks5);
      if (!capture)
        logger.warn(
          'transparent capture unavailable (no original-destination support): only SOCKS5 and HBONE inbound are served',
        );
      let agent: Agent | undefined;
      const admin = await AdminServers.create(
        {
          logger,
          configDump: () => agent?.configDump(),
          notReadyReason: () => (agent ? agent.notReadyReason() : 'starting'),
          metrics: async () => {
            agent?.refreshGauges();
            return {
              contentType: metrics.registry.contentType,
              body: await metrics.registry.metrics(),
            };
          },
          edges: () => mapSummary(config.node, state.current.snapshot, metrics.edges),
          quit: () => deps.onQuit?.(),
        },
        config.admin,
        config.metrics,
        config.readiness,
      );
      agent = new Agent(ctx, { inbound, plaintext, outbound, socks5 }, admin, stopWatching);
      logger.info({ node: config.node, ...agent.addressesForLog() }, 'agent listening');
      if (config.hardened)
        logger.info(
          { rootNamespace: config.rootNamespace },
          'hardened profile: STRICT mTLS and deny-by-default mesh-wide',
        );
      return agent;
    } catch (err) {
      stopWatching();
      state.close();
      certs.close();
      metrics.close();
      ctx.hbone.close();
      await Promise.all(opened.map((l) => l.close(0)));
      throw err;
    }
  }

  addresses(): AgentAddresses {
    return {
      inbound: this.#listeners.inbound.address(),
      inboundPlaintext: this.#listeners.plaintext?.address(),
      outbound: this.#listeners.outbound?.address(),
      socks5: this.#listeners.socks5?.address(),
      admin: this.#admin.addresses(),
    };
  }

  addressesForLog(): Record<string, string | string[] | undefined> {
    const a = this.addresses();
    return {
      inbound: formatAddr(a.inbound),
      inboundPlaintext: a.inboundPlaintext && formatAddr(a.inboundPlaintext),
      outbound: a.outbound && formatAddr(a.outbound),
      socks5: a.socks5 && formatAddr(a.socks5),
      http: a.admin.map(formatAddr),
    };
  }

  /** Marks the agent unfit to serve (cli/last-resort.ts): readiness says why from now on. */
  markFailed(reason: string): void {
    this.#failed ??= reason;
  }

  notReadyReason(): string | undefined {
    if (this.#failed) return `failed: ${this.#failed}`;
    if (this.#closing) return 'shutting down';
    if (this.ctx.certs.ready()) return undefined;
    const missing = this.ctx.certs.status().filter((s) => s.state !== 'valid');
    return `waiting for certificates: ${missing.map((s) => `${s.identity}${s.lastError ? ` (${s.lastError})` : ''}`).join(', ')}`;
  }

  refreshGauges(): void {
    const now = Date.now();
    this.ctx.metrics.certExpirySeconds.reset();
    for (const s of this.ctx.certs.status()) {
      if (s.expiresAt)
        this.ctx.metrics.certExpirySeconds.set(
          { identity: s.identity },
          Math.round((Date.parse(s.expiresAt) - now) / 1000),
        );
    }
    this.ctx.metrics.poolConnections.set(this.ctx.hbone.stats().connections);
    const inbound = this.#listeners.inbound.stats();
    this.ctx.metrics.setSocketsOpen(inbound.handshaking + inbound.sessions);
  }

  /** ztunnel's config dump plus mtun's facts under `mtun` (admin/config-dump.ts). */
  configDump(): Record<string, unknown> {
    return buildConfigDump({
      config: this.ctx.config,
      view: this.ctx.state.current,
      certificates: this.ctx.certs.chains(),
      live: this.ctx.live.list(),
      recent: this.ctx.recent.list(),
      bypass: { total: this.ctx.bypass.total, pairs: this.ctx.bypass.pairs() },
      runtime: {
        listeners: this.addressesForLog(),
        ready: this.notReadyReason() ?? 'ready',
        pool: this.ctx.hbone.stats(),
        inbound: this.#listeners.inbound.stats(),
        openConnections: this.ctx.drain.size,
      },
    });
  }

  /** Stops accepting, sends GOAWAY, lets open connections finish for the drain period,
   *  then closes what is left. Idempotent. */
  close(drainPeriodMs = this.ctx.config.drainPeriodMs): Promise<void> {
    this.#closing ??= (async () => {
      const log = this.ctx.logger;
      log.info({ drainPeriodMs, open: this.ctx.drain.size }, 'draining');
      const l = this.#listeners;
      // Stop accepting now, but do not wait for the listeners' close callbacks before the
      // drain: net.Server.close() calls back only when its last connection is gone, so
      // awaiting it first let one idle client keep the agent up for as long as it liked
      // (issue 12). The drain bounds that time; what is still being set up after it (a
      // SOCKS5 handshake, a dial) gets a second more, then the process ends it.
      const stopped = Promise.all([l.plaintext?.close(), l.outbound?.close(), l.socks5?.close()]);
      const [destroyed] = await Promise.all([
        this.ctx.drain.drain(drainPeriodMs),
        l.inbound.close(drainPeriodMs),
      ]);
      this.ctx.hbone.close();
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 1_000).unref())]);
      this.#stopWatching();
      this.ctx.state.close();
      this.ctx.certs.close();
      this.ctx.metrics.close();
      await this.#admin.close();
      log.info({ forcedClosed: destroyed }, 'agent stopped');
    })();
    return this.#closing;
  }
}

function ownAddresses(config: AgentConfig): Set<string> {
  // A wildcard bind (0.0.0.0, ::) listens on every local address: a loop is a connection
  // to one of those on one of our ports, not to that port anywhere (other pods use 15020).
  const local = Object.values(networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => !!a);
  const set = new Set<string>();
  const add = (host: string, port: number) => {
    // The wildcard itself too: route() reads it as "every loopback address" (127/8 is not
    // listed by the interfaces, yet 127.0.0.2 reaches a 0.0.0.0 listener).
    for (const h of host === '0.0.0.0' || host === '::' ? [host, ...local] : [host])
      set.add(formatAddr({ host: canonical(h) ?? h, port })); // route() compares canonically
  };
  for (const p of [config.outboundPort, config.inboundPort, config.inboundPlaintextPort])
    add(config.listenIp, p);
  for (const hp of [config.socks5, config.admin, config.metrics]) if (hp) add(hp.host, hp.port);
  return set;
}

/** Round robin per destination key, starting at a random place so that agents do not all
 *  send their first connection to the same endpoint. Keys are bounded (oldest dropped). */
function roundRobin(maxKeys = 10_000): (key: string, n: number) => number {
  const next = new Map<string, number>();
  return (key, n) => {
    const i = next.get(key) ?? Math.floor(Math.random() * n);
    next.delete(key);
    next.set(key, i + 1);
    if (next.size > maxKeys) next.delete(next.keys().next().value as string);
    return i % n;
  };
}
