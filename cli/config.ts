// `mtun config workloads|services|policies|certificates|connections|all`: a live agent's
// view, as `istioctl ztunnel-config` prints ztunnel's (istioctl/pkg/writer/ztunnel/
// configdump/*.go: the same columns), from its /config_dump. The certificates view adds when
// each one is renewed next; connections adds the recent ones the agent recorded (mTLS or
// plaintext, verdict, capture bypass). `-o json|yaml` prints that part of the dump as is.
import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { ConfigError } from '../lib/errors.js';
import { convertDocuments } from '../mesh/convert/index.js';
import { readDocuments } from '../mesh/file-source.js';
import { MeshSnapshot } from '../mesh/snapshot.js';
import { adminUrlOfNode, type ConfigDump, fetchDump, parseAdminUrl } from './admin-client.js';

export const VIEWS = [
  'workloads',
  'services',
  'policies',
  'certificates',
  'connections',
  'all',
] as const;
type View = (typeof VIEWS)[number];

interface ConfigFlags {
  readonly admin?: string;
  readonly node?: string;
  readonly mesh?: string[];
  readonly adminPort: string;
  readonly output: 'short' | 'json' | 'yaml';
}

/** Columns padded like Go's tabwriter (minwidth 0, padding `pad`, spaces). */
export function table(rows: readonly (readonly string[])[], pad = 1): string {
  const widths: number[] = [];
  for (const r of rows)
    for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + pad)))
        .join('')
        .trimEnd(),
    )
    .map((l) => `${l}\n`)
    .join('');
}

const stripNet = (a: string) => a.slice(a.indexOf('/') + 1); // "network/ip" -> ip
const waypointName = (w: { destination: string } | undefined) => (w ? w.destination : 'None');

export function workloadsTable(d: ConfigDump): string {
  const rows = [...d.workloads]
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
    .map((w) => [
      w.namespace,
      w.name,
      w.workloadIps.join(','),
      w.node ?? '',
      waypointName(w.waypoint),
      w.protocol,
    ]);
  return table([['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'], ...rows]);
}

export function servicesTable(d: ConfigDump): string {
  const rows = [...d.services]
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
    .map((s) => {
      const eps = Object.values(s.endpoints);
      const healthy = eps.filter((e) => (e.status ?? 'Healthy') === 'Healthy').length;
      return [
        s.namespace,
        s.name,
        s.vips.map(stripNet).join(','),
        waypointName(s.waypoint),
        `${healthy}/${eps.length}`,
      ];
    });
  return table([['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'WAYPOINT', 'ENDPOINTS'], ...rows]);
}

export function policiesTable(d: ConfigDump): string {
  const rows = [...d.policies]
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
    .map((p) => [p.namespace, p.name, p.action, p.scope]);
  return table([['NAMESPACE', 'POLICY NAME', 'ACTION', 'SCOPE'], ...rows]);
}

/** istioctl's certificate columns, serial in hex as it prints it, plus mtun's RENEWAL. */
export function certificatesTable(d: ConfigDump, now = new Date()): string {
  const schedule = new Map(d.mtun.certificates.map((c) => [c.identity, c]));
  const rows: string[][] = [];
  for (const c of d.certificates) {
    const state = c.state.startsWith('Unavailable') ? 'Unavailable' : c.state;
    const s = schedule.get(c.identity);
    const renewal = s?.nextAttemptAt
      ? `${s.nextAttemptAt.replace(/\.\d{3}Z$/, 'Z')}${s.failures > 0 ? ` (retry ${s.failures})` : ''}`
      : 'NA';
    if (c.certChain.length === 0) {
      rows.push([c.identity, 'NA', state, 'false', 'NA', 'NA', 'NA', renewal]);
      continue;
    }
    const valid = (x: { validFrom: string; expirationTime: string }) =>
      String(
        Date.parse(x.validFrom) < now.getTime() && now.getTime() < Date.parse(x.expirationTime),
      );
    const hex = (n: string) => BigInt(n).toString(16);
    for (const [i, x] of c.certChain.entries())
      rows.push([
        c.identity,
        i === 0 ? 'Leaf' : 'Intermediate',
        state,
        valid(x),
        hex(x.serialNumber),
        x.expirationTime,
        x.validFrom,
        i === 0 ? renewal : '',
      ]);
    for (const x of c.rootCerts)
      rows.push([
        c.identity,
        'Root',
        state,
        valid(x),
        hex(x.serialNumber),
        x.expirationTime,
        x.validFrom,
        '',
      ]);
  }
  return table(
    [
      [
        'CERTIFICATE NAME',
        'TYPE',
        'STATUS',
        'VALID CERT',
        'SERIAL NUMBER',
        'NOT AFTER',
        'NOT BEFORE',
        'RENEWAL',
      ],
      ...rows,
    ],
    5,
  );
}

/** Open connections (ztunnel's workloadState), then the recent ones mtun recorded. */
export function connectionsTable(d: ConfigDump): string {
  const open: string[][] = [];
  for (const s of Object.values(d.workloadState ?? {})) {
    const name = `${s.info.name}.${s.info.namespace}`;
    for (const c of s.connections.inbound)
      open.push([name, 'Inbound', c.actualDst, c.src, c.originalDst, c.protocol]);
    for (const c of s.connections.outbound)
      open.push([name, 'Outbound', c.src, c.actualDst, c.originalDst, c.protocol]);
  }
  const who = (w?: string, ns?: string) => (w ? `${ns ?? ''}/${w}` : '-');
  const recent = d.mtun.recentConnections.map((c) => [
    c.at.replace(/\.\d{3}Z$/, 'Z'),
    c.direction,
    `${who(c.srcWorkload, c.srcNamespace)} ${c.src ?? ''}`,
    `${who(c.dstWorkload, c.dstNamespace)} ${c.dst ?? ''}`,
    c.security === 'mutual_tls' ? 'mTLS' : 'plaintext',
    c.verdict ?? '-',
    c.policy ?? '-',
    c.error ?? '-',
    c.captureBypass ? 'BYPASS' : '',
  ]);
  return (
    table([['WORKLOAD', 'DIRECTION', 'LOCAL', 'REMOTE', 'REMOTE TARGET', 'PROTOCOL'], ...open]) +
    `\nrecent connections on ${d.mtun.node} (newest last):\n` +
    table([
      ['ENDED', 'DIRECTION', 'SOURCE', 'DESTINATION', 'SECURITY', 'VERDICT', 'POLICY', 'ERROR', ''],
      ...recent,
    ])
  );
}

function part(d: ConfigDump, view: View): unknown {
  switch (view) {
    case 'workloads':
    case 'services':
    case 'policies':
    case 'certificates':
      return d[view];
    case 'connections':
      return { workloadState: d.workloadState, recentConnections: d.mtun.recentConnections };
    case 'all':
      return d;
  }
}

export function render(d: ConfigDump, view: View, output: ConfigFlags['output']): string {
  if (output === 'json') return `${JSON.stringify(part(d, view), null, 2)}\n`;
  if (output === 'yaml') return stringify(part(d, view));
  switch (view) {
    case 'workloads':
      return workloadsTable(d);
    case 'services':
      return servicesTable(d);
    case 'policies':
      return policiesTable(d);
    case 'certificates':
      return certificatesTable(d);
    case 'connections':
      return connectionsTable(d);
    case 'all':
      return [workloadsTable(d), servicesTable(d), policiesTable(d), certificatesTable(d)].join(
        '\n',
      );
  }
}

/** The admin URL the flags point at (--admin, or --node with --mesh). */
export async function adminFromFlags(f: {
  admin?: string;
  node?: string;
  mesh?: string[];
  adminPort: string;
}): Promise<string> {
  if (f.admin && f.node) throw new ConfigError('give --admin or --node, not both');
  if (f.node) {
    if (!f.mesh?.length) throw new ConfigError('--node needs --mesh (where the Node objects are)');
    const port = Number(f.adminPort);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new ConfigError(`--admin-port: expected a port, got ${JSON.stringify(f.adminPort)}`);
    const { docs } = await readDocuments(f.mesh);
    const snap = new MeshSnapshot(convertDocuments(docs, { clusterDomain: 'cluster.local' }), 1);
    return adminUrlOfNode(snap, f.node, port);
  }
  return parseAdminUrl(f.admin ?? 'http://127.0.0.1:15000', '--admin');
}

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description(
      "a live agent's workloads, services, policies, certificates (with renewal) and connections, as istioctl ztunnel-config prints ztunnel's",
    )
    .argument('<view>', VIEWS.join('|'))
    .option('--admin <url>', "the agent's admin endpoint (default http://127.0.0.1:15000)")
    .option('--node <name>', 'the agent of this node: its InternalIP in --mesh, at --admin-port')
    .option('--mesh <path...>', 'mesh YAML with the Node objects (for --node)')
    .option('--admin-port <port>', 'admin port of the agents (with --node)', '15000')
    .addOption(
      new Option('-o, --output <format>', 'short (tables), json or yaml')
        .choices(['short', 'json', 'yaml'])
        .default('short'),
    )
    .action(async (view: string, flags: ConfigFlags) => {
      if (!(VIEWS as readonly string[]).includes(view))
        throw new ConfigError(`view ${JSON.stringify(view)}: expected one of ${VIEWS.join(', ')}`);
      const dump = await fetchDump(await adminFromFlags(flags));
      process.stdout.write(render(dump, view as View, flags.output));
    });
}
