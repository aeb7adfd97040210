// `mtun check SRC DST[:PORT]`: is this link really mTLS, and is it allowed? SRC is a pod
// (`namespace/name`); DST a pod, a service host (`name.namespace[.svc.cluster.local]`), a
// pod IP or a service VIP. The mesh files give the model and the policy verdict; the agents
// of both nodes, when reachable (--admin-for NODE=URL, or --admin-port with the nodes'
// InternalIPs from the mesh), give the live facts: capture, certificates held, bypassed
// plaintext, and the recent connections on the edge. Exit 0 when the link is mTLS and
// allowed, 1 otherwise, 2 on bad input (the decision itself is cli/check-verdict.ts).
import { isIP } from 'node:net';
import { type Command, Option } from 'commander';
import { ConfigError, errorMessage } from '../lib/errors.js';
import type { MeshSnapshot } from '../mesh/snapshot.js';
import type { Workload } from '../mesh/types.js';
import { compile } from '../policy/index.js';
import { adminUrlOfNode, fetchDump, parseAdminUrl } from './admin-client.js';
import { type AgentView, type CheckReport, type CheckTarget, checkLink } from './check-verdict.js';
import { addMeshOptions, type MeshFlags, readMeshSnapshot } from './mesh-flags.js';

interface CheckFlags extends MeshFlags {
  readonly adminFor?: string[];
  readonly adminPort?: string;
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly output: 'short' | 'json';
  readonly hardened?: boolean;
}

const NAME = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/** `host:port`, `[v6]:port`, a bare v6 address, or `host`. */
function splitPort(text: string): { host: string; port: number | undefined } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) return { host: v6[1]!, port: v6[2] === undefined ? undefined : portOf(v6[2], text) };
  if (isIP(text) === 6) return { host: text, port: undefined };
  const i = text.lastIndexOf(':');
  if (i < 0) return { host: text, port: undefined };
  return { host: text.slice(0, i), port: portOf(text.slice(i + 1), text) };
}

function portOf(p: string, whole: string): number {
  const n = Number(p);
  if (!/^\d{1,5}$/.test(p) || n < 1 || n > 65535)
    throw new ConfigError(
      `DST ${JSON.stringify(whole)}: ${JSON.stringify(p)} is not a port 1-65535`,
    );
  return n;
}

function pod(snapshot: MeshSnapshot, text: string, what: string): Workload {
  const m = /^([^/]+)\/([^/]+)$/.exec(text);
  if (!m || !NAME.test(m[1]!) || !NAME.test(m[2]!))
    throw new ConfigError(`${what} ${JSON.stringify(text)}: expected NAMESPACE/POD`);
  const w = snapshot.workload(m[1]!, m[2]!);
  if (!w) throw new ConfigError(`${what} ${text}: no such pod in the mesh files`);
  return w;
}

/** The pod, IP and port DST reaches; a service resolves to its first ready endpoint. */
export function resolveTarget(
  snapshot: MeshSnapshot,
  source: Workload,
  dstText: string,
  clusterDomain: string,
): CheckTarget {
  const { host, port } = splitPort(dstText);
  if (host.includes('/')) {
    const destination = pod(snapshot, host, 'DST');
    if (port === undefined)
      throw new ConfigError(`DST ${dstText}: a pod needs a port (NAMESPACE/POD:PORT)`);
    const ip = destination.ips[0];
    if (!ip) throw new ConfigError(`DST ${dstText}: the pod has no IP yet`);
    return { source, destination, ip, port };
  }
  const byIp = isIP(host) ? snapshot.workloadByIp(host) : undefined;
  if (byIp) {
    if (port === undefined)
      throw new ConfigError(`DST ${dstText}: a pod IP needs a port (IP:PORT)`);
    return { source, destination: byIp, ip: host, port };
  }
  const service = isIP(host)
    ? snapshot.serviceByIp(host)
    : (snapshot.serviceByHostname(host) ??
      snapshot.serviceByHostname(`${host}.svc.${clusterDomain}`) ??
      snapshot.serviceByHostname(`${host}.${source.meta.namespace}.svc.${clusterDomain}`));
  if (!service)
    throw new ConfigError(
      `DST ${dstText}: no pod, service or VIP of that name or address in the mesh files`,
    );
  const sp = port === undefined ? service.ports[0] : service.ports.find((p) => p.port === port);
  if (!sp)
    throw new ConfigError(
      `DST ${dstText}: service ${service.meta.namespace}/${service.meta.name} has no port ${port} (ports: ${service.ports.map((p) => p.port).join(', ') || 'none'})`,
    );
  for (const w of snapshot.endpointsOf(service)) {
    const target =
      typeof sp.targetPort === 'number' ? sp.targetPort : w.namedPorts.get(sp.targetPort);
    const ip = w.ips[0];
    if (w.ready && ip && target)
      return {
        source,
        destination: w,
        ip,
        port: target,
        service: {
          name: `${service.meta.namespace}/${service.meta.name}`,
          port: sp.port,
          ...(service.clusterIps[0] ? { vip: service.clusterIps[0] } : {}),
        },
      };
  }
  throw new ConfigError(
    `DST ${dstText}: service ${service.meta.namespace}/${service.meta.name} has no ready endpoint`,
  );
}

async function agentView(
  node: string | undefined,
  urls: Map<string, string>,
  snapshot: MeshSnapshot,
  adminPort: number | undefined,
): Promise<AgentView> {
  if (!node) return { node: '(unscheduled)', dump: undefined, error: 'the pod has no node' };
  let url = urls.get(node);
  try {
    if (!url && adminPort !== undefined) url = adminUrlOfNode(snapshot, node, adminPort);
  } catch (err) {
    return { node, dump: undefined, error: errorMessage(err) };
  }
  if (!url) return { node, dump: undefined, error: undefined };
  try {
    return { node, dump: await fetchDump(url), error: undefined };
  } catch (err) {
    return { node, dump: undefined, error: errorMessage(err) };
  }
}

function print(report: CheckReport, target: CheckTarget): string {
  const via = target.service
    ? ` (service ${target.service.name}:${target.service.port}${target.service.vip ? `, VIP ${target.service.vip}` : ''})`
    : '';
  const lines = [
    report.summary,
    `  target:        ${target.ip}:${target.port}${via}`,
    ...report.findings.map((f) => `  ${`${f.what}:`.padEnd(14)} ${f.ok ? '' : '✗ '}${f.text}`),
  ];
  for (const c of report.evidence.slice(-10))
    lines.push(
      `    ${c.at.replace(/\.\d{3}Z$/, 'Z')} ${c.reporter.padEnd(8)} ${c.direction.padEnd(8)} ${c.src ?? '?'} -> ${c.dst ?? '?'} ${c.security === 'mutual_tls' ? 'mTLS' : 'PLAINTEXT'} ${c.verdict ?? '-'}${c.policy ? ` (${c.policy})` : ''}${c.error ? ` ${c.error}` : ''}${c.captureBypass ? ' BYPASS' : ''}`,
    );
  return `${lines.join('\n')}\n`;
}

export function registerCheck(program: Command): void {
  const cmd = program
    .command('check')
    .description('is the link SRC -> DST mTLS and allowed? exit 0 yes, 1 no, 2 bad input')
    .argument('<src>', 'source pod NAMESPACE/POD')
    .argument(
      '<dst>',
      'destination: NAMESPACE/POD:PORT, a service host[:PORT], a pod IP:PORT or a VIP[:PORT]',
    )
    .option(
      '--admin-for <node=url...>',
      "a node's agent admin endpoint, e.g. node-1=http://198.18.0.1:15000",
    )
    .option(
      '--admin-port <port>',
      "read every node's agent at its InternalIP (from the mesh) on this port",
    )
    .option('--trust-domain <td>', 'SPIFFE trust domain', 'cluster.local')
    .option('--root-namespace <ns>', 'Istio root namespace', 'istio-system')
    .option(
      '--hardened',
      'decide as agents with --hardened do (implied when the destination agent runs so)',
    )
    .addOption(
      new Option('-o, --output <format>', 'short or json')
        .choices(['short', 'json'])
        .default('short'),
    );
  addMeshOptions(cmd, 'mesh YAML files or directories (--mesh-source files)');
  cmd.action(async (srcText: string, dstText: string, flags: CheckFlags) => {
    const urls = new Map<string, string>();
    for (const pair of flags.adminFor ?? []) {
      const i = pair.indexOf('=');
      if (i <= 0) throw new ConfigError(`--admin-for ${JSON.stringify(pair)}: expected NODE=URL`);
      urls.set(pair.slice(0, i), parseAdminUrl(pair.slice(i + 1), '--admin-for'));
    }
    const adminPort = flags.adminPort === undefined ? undefined : Number(flags.adminPort);
    if (
      adminPort !== undefined &&
      !(Number.isInteger(adminPort) && adminPort > 0 && adminPort < 65536)
    )
      throw new ConfigError(
        `--admin-port: expected a port, got ${JSON.stringify(flags.adminPort)}`,
      );
    const snapshot = await readMeshSnapshot(flags, 'mtun check');
    const source = pod(snapshot, srcText, 'SRC');
    const target = resolveTarget(snapshot, source, dstText, flags.clusterDomain);
    const [srcAgent, dstAgent] = await Promise.all([
      agentView(source.node, urls, snapshot, adminPort),
      agentView(target.destination.node, urls, snapshot, adminPort),
    ]);
    const report = checkLink(
      target,
      // Decided as the destination's agent decides: hardened if it runs so.
      compile(snapshot, {
        rootNamespace: flags.rootNamespace,
        hardened: flags.hardened === true || dstAgent.dump?.mtun?.hardened === true,
      }),
      flags.trustDomain,
      {
        source: srcAgent,
        destination: dstAgent,
      },
    );
    process.stdout.write(
      flags.output === 'json'
        ? `${JSON.stringify(
            {
              ...report,
              target: {
                source: `${source.meta.namespace}/${source.meta.name}`,
                destination: `${target.destination.meta.namespace}/${target.destination.meta.name}`,
                ip: target.ip,
                port: target.port,
                service: target.service,
              },
            },
            null,
            2,
          )}\n`
        : print(report, target),
    );
    process.exitCode = report.verdict === 'mtls-allowed' ? 0 : 1;
  });
}
