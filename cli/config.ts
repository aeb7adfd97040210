// `mtun config workloads|services|policies|certificates|connections|all`: a live agent's
// view, as `istioctl ztunnel-config` prints ztunnel's (istioctl/pkg/writer/ztunnel/
// configdump/*.go: the same columns), from its /config_dump. The certificates view adds when
// each one is renewed next; connections adds the recent ones the agent recorded (mTLS or
// plaintext, verdict, capture bypass). `-o json|yaml` prints that part of the dump as is.
import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { ConfigError } from '../lib/errors.js';
import { adminUrlOfNode, type ConfigDump, fetchDump, parseAdminUrl } from './admin-client.js';
import { addMeshOptions, type MeshFlags, readMeshSnapshot } from './mesh-flags.js';

export const VIEWS = [
  'workloads',
  'services',
  'policies',
  'certificates',
  'connections',
  'all',
] as const;
type View = (typeof VIEWS)[number];

interface ConfigFlags extends MeshFlags {
  readonly admin?: string;
  readonly node?: string;
  readonly adminPort: string;
  readonly output: 'short' | 'json' | 'yaml';
}

/** Columns padded like Go's tabwriter (minwidth 0, padding `pad`, spaces): every cell but
 *  the last of a line is padded to its column's width. */
export function table(rows: readonly (readonly string[])[], pad = 1): string {
  const widths: number[] = [];
  for (const r of rows)
    for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + pad))).join(''))
    .map((l) => `${l}\n`)
    .join('');
}

const stripNet = (a: string) => a.slice(a.indexOf('/') + 1); // "network/ip" -> ip
/** Go's cmp.Compare on strings: bytewise, not locale order. */
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** istioctl waypointName/serviceWaypointName: the service whose `ns/hostname` or VIP is the
 *  waypoint's destination. */
function waypointName(w: { destination: string } | undefined, d: ConfigDump): string {
  if (!w) return 'None';
  const svc = d.services.find(
    (s) => `${s.namespace}/${s.hostname}` === w.destination || s.vips.includes(w.destination),
  );
  return svc ? svc.name : 'NA';
}

/** istioctl PrintWorkloadSummary: sorted by namespace.name, then node. */
export function workloadsTable(d: ConfigDump): string {
  const rows = [...d.workloads]
    .sort(
      (a, b) =>
        cmp(`${a.namespace}.${a.name}`, `${b.namespace}.${b.name}`) ||
        cmp(a.node ?? '', b.node ?? ''),
    )
    .map((w) => [
      w.namespace,
      w.name,
      w.workloadIps.join(',') || (w.hostname ?? ''),
      w.node ?? '',
      waypointName(w.waypoint, d),
      w.protocol,
    ]);
  return table([['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'], ...rows]);
}

/** istioctl PrintServiceSummary: healthy endpoints are those whose workload is Healthy. */
export function servicesTable(d: ConfigDump): string {
  const status = new Map(d.workloads.map((w) => [w.uid, w.status]));
  const rows = [...d.services]
    .sort(
      (a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name) || cmp(a.hostname, b.hostname),
    )
    .map((s) => {
      const eps = Object.values(s.endpoints ?? {});
      const healthy = eps.filter((e) => status.get(e.workloadUid) === 'Healthy').length;
      return [
        s.namespace,
        s.name,
        s.vips.map(stripNet).join(','),
        waypointName(s.waypoint, d),
        `${healthy}/${eps.length}`,
      ];
    });
  return table([['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'WAYPOINT', 'ENDPOINTS'], ...rows]);
}

/** istioctl PrintPolicySummary. */
export function policiesTable(d: ConfigDump): string {
  const rows = [...d.policies]
    .sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name))
    .map((p) => [p.namespace, p.name, p.action, p.scope]);
  return table([['NAMESPACE', 'POLICY NAME', 'ACTION', 'SCOPE'], ...rows]);
}

/** istioctl PrintSecretSummary (serial in hex, as it prints it), plus mtun's RENEWAL column
 *  (when the leaf is renewed next, or the next retry) when the dump is an mtun agent's. */
export function certificatesTable(d: ConfigDump, now = new Date()): string {
  const schedule = d.mtun && new Map(d.mtun.certificates.map((c) => [c.identity, c]));
  const rows: string[][] = [];
  const row = (cells: string[], renewal: string) =>
    rows.push(schedule ? [...cells, renewal] : cells);
  const valid = (x: { validFrom: string; expirationTime: string }) =>
    String(Date.parse(x.validFrom) < now.getTime() && now.getTime() < Date.parse(x.expirationTime));
  const hex = (n: string) => BigInt(n).toString(16);
  for (const c of d.certificates) {
    const state = c.state.includes('Unavailable') ? 'Unavailable' : c.state;
    const s = schedule?.get(c.identity);
    const renewal = s?.nextAttemptAt
      ? `${s.nextAttemptAt.replace(/\.\d{3}Z$/, 'Z')}${s.failures > 0 ? ` (retry ${s.failures})` : ''}`
      : 'NA';
    if (!c.certChain?.length) {
      row([c.identity, 'NA', state, 'false', 'NA', 'NA', 'NA'], renewal);
      continue;
    }
    // "Before, the root was part of the certChain" (istioctl certificates.go).
    const roots = c.rootCerts ?? [];
    const legacy = roots.length === 0;
    for (const [i, x] of c.certChain.entries()) {
      const type =
        i === 0 ? 'Leaf' : i === c.certChain.length - 1 && legacy ? 'Root' : 'Intermediate';
      row(
        [
          c.identity,
          type,
          state,
          valid(x),
          hex(x.serialNumber),
          x.expirationTime || 'NA',
          x.validFrom || 'NA',
        ],
        i === 0 ? renewal : '',
      );
    }
    for (const x of roots)
      row(
        [
          c.identity,
          'Root',
          state,
          valid(x),
          hex(x.serialNumber),
          x.expirationTime || 'NA',
          x.validFrom || 'NA',
        ],
        '',
      );
  }
  const header = [
    'CERTIFICATE NAME',
    'TYPE',
    'STATUS',
    'VALID CERT',
    'SERIAL NUMBER',
    'NOT AFTER',
    'NOT BEFORE',
  ];
  return table([schedule ? [...header, 'RENEWAL'] : header, ...rows], 5);
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
  const recent = (d.mtun?.recentConnections ?? []).map((c) => [
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
    `\nrecent connections on ${d.mtun?.node ?? 'this node'} (newest last):\n` +
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
      return { workloadState: d.workloadState, recentConnections: d.mtun?.recentConnections };
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

/** The admin URL the flags point at (--admin, or --node with the mesh's Node objects). */
export async function adminFromFlags(f: ConfigFlags): Promise<string> {
  if (f.admin && f.node) throw new ConfigError('give --admin or --node, not both');
  if (f.node) {
    const port = Number(f.adminPort);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new ConfigError(`--admin-port: expected a port, got ${JSON.stringify(f.adminPort)}`);
    return adminUrlOfNode(await readMeshSnapshot(f, '--node'), f.node, port);
  }
  return parseAdminUrl(f.admin ?? 'http://127.0.0.1:15000', '--admin');
}

export function registerConfig(program: Command): void {
  const cmd = program
    .command('config')
    .description(
      "a live agent's workloads, services, policies, certificates (with renewal) and connections, as istioctl ztunnel-config prints ztunnel's",
    )
    .argument('<view>', VIEWS.join('|'))
    .option('--admin <url>', "the agent's admin endpoint (default http://127.0.0.1:15000)")
    .option('--node <name>', 'the agent of this node: its InternalIP in the mesh, at --admin-port')
    .option('--admin-port <port>', 'admin port of the agents (with --node)', '15000')
    .addOption(
      new Option('-o, --output <format>', 'short (tables), json or yaml')
        .choices(['short', 'json', 'yaml'])
        .default('short'),
    );
  addMeshOptions(cmd, 'mesh YAML with the Node objects (for --node)');
  cmd.action(async (view: string, flags: ConfigFlags) => {
    if (!(VIEWS as readonly string[]).includes(view))
      throw new ConfigError(`view ${JSON.stringify(view)}: expected one of ${VIEWS.join(', ')}`);
    const dump = await fetchDump(await adminFromFlags(flags));
    process.stdout.write(render(dump, view as View, flags.output));
  });
}
