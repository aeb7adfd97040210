// GET :15000/config_dump in ztunnel's shape (src/admin.rs ConfigDump: the proxy state's
// `workloads`, `services`, `policies`, then `certificates`, `config`), so that what
// `istioctl ztunnel-config` decodes (istioctl/pkg/writer/ztunnel/configdump/api.go) reads
// ours: tests/agent/config-dump-schema.test.ts runs that decoder on it. mtun's own facts
// (listeners, readiness, the renewal schedule, PeerAuthentications, bypassed pairs, recent
// connections, pool) sit under the `mtun` key, which ztunnel's readers ignore.
import { X509Certificate } from 'node:crypto';
import type { Service, Workload } from '../../mesh/types.js';
import type { CertManager } from '../certs/cert-manager.js';
import type { AgentConfig } from '../config.js';
import type { BypassPair } from '../observe/bypass.js';
import type { RecentConnection } from '../observe/recent.js';
import type { LiveInbound } from '../proxy/live.js';
import type { MeshView } from '../state.js';
import { dumpPolicies } from './dump-policies.js';

export interface DumpInputs {
  readonly config: AgentConfig;
  readonly view: MeshView;
  readonly certificates: ReturnType<CertManager['chains']>;
  readonly live: ReturnType<LiveInbound['list']>;
  readonly recent: readonly RecentConnection[];
  readonly bypass: { readonly total: number; readonly pairs: readonly BypassPair[] };
  /** mtun's runtime facts (listeners, readiness, pool, ...), copied under `mtun`. */
  readonly runtime: Record<string, unknown>;
  readonly now?: Date;
}

/** ztunnel's workload uid for a Kubernetes pod (istiod `WorkloadUID`). */
export function workloadUid(clusterId: string, w: Workload): string {
  return `${clusterId}//Pod/${w.meta.namespace}/${w.meta.name}`;
}

/** NetworkAddress as serde writes it: `network/ip` (our pods are on the default network). */
const netAddr = (ip: string) => `/${ip}`;

function workload(config: AgentConfig, view: MeshView, w: Workload): Record<string, unknown> {
  const applying = w.inMesh ? view.policies.applicable(w) : undefined;
  return {
    uid: workloadUid(config.clusterId, w),
    workloadIps: w.ips,
    // HBONE: the destination agent takes tunnels for it; TCP: plain (not in the mesh).
    protocol: w.inMesh ? 'HBONE' : 'TCP',
    networkMode: 'Standard',
    name: w.meta.name,
    namespace: w.meta.namespace,
    trustDomain: config.trustDomain,
    serviceAccount: w.serviceAccount,
    workloadName: w.workloadName,
    workloadType: w.workloadKind.toLowerCase(),
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    ...(w.node ? { node: w.node } : {}),
    ...(applying && applying.allow.length + applying.deny.length > 0
      ? {
          authorizationPolicies: [...applying.deny, ...applying.allow]
            .filter((p) => p.kind === 'AuthorizationPolicy')
            .map((p) => p.key),
        }
      : {}),
    status: w.ready ? 'Healthy' : 'Unhealthy',
    clusterId: config.clusterId,
    capacity: 1,
  };
}

/** A port map `{servicePort: targetPort}`; 0 where the target is a named port (ztunnel:
 *  resolved per endpoint). */
function service(config: AgentConfig, view: MeshView, s: Service): Record<string, unknown> {
  const ports: Record<string, number> = {};
  for (const p of s.ports)
    if (p.protocol === 'TCP')
      ports[String(p.port)] = typeof p.targetPort === 'number' ? p.targetPort : 0;
  const endpoints: Record<string, unknown> = {};
  for (const w of view.snapshot.endpointsOf(s)) {
    const uid = workloadUid(config.clusterId, w);
    const port: Record<string, number> = {};
    for (const p of s.ports) {
      if (p.protocol !== 'TCP') continue;
      port[String(p.port)] =
        typeof p.targetPort === 'number' ? p.targetPort : (w.namedPorts.get(p.targetPort) ?? 0);
    }
    for (const ip of w.ips.slice(0, 1))
      endpoints[`${uid}:${netAddr(ip)}`] = {
        workloadUid: uid,
        service: `${s.meta.namespace}/${s.hostname}`,
        address: netAddr(ip),
        port,
        status: w.ready ? 'Healthy' : 'Unhealthy',
      };
  }
  const v6 = s.clusterIps.some((ip) => ip.includes(':'));
  const v4 = s.clusterIps.some((ip) => !ip.includes(':'));
  return {
    name: s.meta.name,
    namespace: s.meta.namespace,
    hostname: s.hostname,
    vips: s.clusterIps.map(netAddr),
    ports,
    endpoints,
    subjectAltNames: [],
    ipFamilies: v4 && v6 ? 'Dual' : v6 ? 'IPv6' : 'IPv4',
    canonical: true,
  };
}

/** ztunnel admin.rs dump_cert: the PEM base64-encoded, the serial in decimal, RFC 3339 to
 *  the second. */
export function dumpCert(pem: string): Record<string, string> {
  const x = new X509Certificate(pem);
  const rfc3339 = (d: string) => new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    pem: Buffer.from(pem).toString('base64'),
    serialNumber: BigInt(`0x${x.serialNumber}`).toString(10),
    validFrom: rfc3339(x.validFrom),
    expirationTime: rfc3339(x.validTo),
  };
}

/** PEM blocks of a bundle (a file may hold several). */
export function pemBlocks(pems: readonly string[]): string[] {
  return pems.flatMap(
    (p) => p.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [],
  );
}

function certificates(inputs: DumpInputs): { ztunnel: unknown[]; schedule: unknown[] } {
  const now = (inputs.now ?? new Date()).getTime();
  const sorted = [...inputs.certificates].sort((a, b) => (a.identity < b.identity ? -1 : 1));
  const ztunnel = sorted.map((c) => {
    const valid = c.expiresAt !== undefined && Date.parse(c.expiresAt) > now;
    // ztunnel's CertState: Initializing, Available, "Unavailable: <error>". A certificate
    // that failed to renew but is still valid keeps being served: Available.
    const state = valid
      ? 'Available'
      : c.failures > 0
        ? `Unavailable: ${c.lastError ?? 'fetch failed'}`
        : 'Initializing';
    return {
      identity: c.identity,
      state,
      certChain: valid ? pemBlocks(c.certChainPem).map(dumpCert) : [],
      rootCerts: valid ? pemBlocks(c.rootsPem).map(dumpCert) : [],
    };
  });
  const schedule = sorted.map((c) => ({
    identity: c.identity,
    state: c.state,
    notBefore: c.notBefore,
    expiresAt: c.expiresAt,
    // Renewal at half life with jitter (agent/certs/schedule.ts), or the next retry.
    nextAttemptAt: c.nextAttemptAt,
    failures: c.failures,
    lastError: c.lastError,
  }));
  return { ztunnel, schedule };
}

/** ztunnel's workloadState: per local workload, its open connections. */
function workloadState(inputs: DumpInputs): Record<string, unknown> {
  const out: Record<string, { info: unknown; connections: { inbound: unknown[]; outbound: [] } }> =
    {};
  const { config, view } = inputs;
  for (const w of view.local) {
    out[workloadUid(config.clusterId, w)] = {
      info: {
        name: w.meta.name,
        namespace: w.meta.namespace,
        trustDomain: config.trustDomain,
        serviceAccount: w.serviceAccount,
      },
      connections: { inbound: [], outbound: [] },
    };
  }
  for (const { connection, record } of inputs.live) {
    const w = connection.destination.workload;
    const entry = out[workloadUid(config.clusterId, w)];
    if (!entry) continue;
    const dst = `${connection.destination.ip}:${connection.destination.port}`;
    entry.connections.inbound.push({
      src: record.fields.src.addr ?? connection.source.ip,
      originalDst: dst,
      actualDst: dst,
      protocol: record.fields.security === 'mutual_tls' ? 'HBONE' : 'TCP',
    });
  }
  return out;
}

export function buildConfigDump(inputs: DumpInputs): Record<string, unknown> {
  const { config, view } = inputs;
  const s = view.snapshot;
  const policies = dumpPolicies(
    s.authorizationPolicies,
    config.rootNamespace,
    view.policies.hardened,
  );
  const certs = certificates(inputs);
  return {
    workloads: s.workloads.map((w) => workload(config, view, w)),
    services: s.services.map((v) => service(config, view, v)),
    policies: policies.policies,
    certificates: certs.ztunnel,
    workloadState: workloadState(inputs),
    config: configDump(config),
    mtun: {
      node: config.node,
      meshVersion: s.version,
      hardened: config.hardened,
      refuseBypassedPlaintext: config.refuseBypassedPlaintext,
      ...inputs.runtime,
      localWorkloads: view.local.map((w) => `${w.meta.namespace}/${w.meta.name}`),
      peerAuthentications: s.peerAuthentications.map((p) => ({
        name: p.meta.name,
        namespace: p.meta.namespace,
        selector: p.selector ?? null,
        mode: p.mode,
        portLevelMtls: Object.fromEntries(p.portLevelMtls),
      })),
      ignoredPolicies: policies.ignored,
      certificates: certs.schedule,
      captureBypass: inputs.bypass,
      recentConnections: inputs.recent,
    },
  };
}

/** The configuration as the agent runs it, without the token file's path and without the
 *  starting log level (the levels in force are `/logging`'s). */
function configDump(config: AgentConfig): Record<string, unknown> {
  const { logLevel: _startingLevel, ...rest } = config;
  return { ...rest, ca: { url: config.ca.url, certTtlSeconds: config.ca.certTtlSeconds } };
}
