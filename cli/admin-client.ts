// Reading a live agent's admin endpoint for `mtun config` and `mtun check`: where the
// agent of a node is (--admin URL, or --node N with the address the mesh gives node N), and
// its /config_dump, with a deadline. The dump is only read here, through the fields the
// commands use (ztunnel's shape plus mtun's `mtun` key; agent/admin/config-dump.ts).
import { ConfigError, MtunError } from '../lib/errors.js';
import type { MeshSnapshot } from '../mesh/snapshot.js';

export class AdminUnreachableError extends MtunError {
  constructor(url: string, why: string) {
    super('ADMIN_UNREACHABLE', `cannot read ${url}: ${why}`);
  }
}

export interface DumpWorkload {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly workloadIps: readonly string[];
  readonly node?: string;
  readonly protocol: string;
  readonly serviceAccount: string;
  readonly hostname?: string;
  readonly status: string;
  readonly waypoint?: { readonly destination: string };
}

export interface DumpService {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips: readonly string[];
  readonly endpoints: Readonly<Record<string, { readonly workloadUid: string }>> | null;
  readonly waypoint?: { readonly destination: string };
}

export interface DumpPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly action: string;
  readonly scope: string;
}

export interface DumpCert {
  readonly pem: string;
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly expirationTime: string;
}

export interface DumpCertificates {
  readonly identity: string;
  readonly state: string;
  readonly certChain: readonly DumpCert[];
  readonly rootCerts: readonly DumpCert[];
}

export interface DumpRecent {
  readonly at: string;
  readonly direction: 'inbound' | 'outbound';
  readonly src?: string;
  readonly dst?: string;
  readonly srcWorkload?: string;
  readonly srcNamespace?: string;
  readonly srcIdentity?: string;
  readonly dstWorkload?: string;
  readonly dstNamespace?: string;
  readonly dstIdentity?: string;
  readonly dstService?: string;
  readonly security: 'mutual_tls' | 'none';
  readonly verdict?: 'allow' | 'deny';
  readonly policy?: string;
  readonly reason?: string;
  readonly error?: string;
  readonly captureBypass: boolean;
}

export interface ConfigDump {
  readonly workloads: readonly DumpWorkload[];
  readonly services: readonly DumpService[];
  readonly policies: readonly DumpPolicy[];
  readonly certificates: readonly DumpCertificates[];
  readonly workloadState?: Readonly<
    Record<
      string,
      {
        readonly info: { readonly name: string; readonly namespace: string };
        readonly connections: {
          readonly inbound: readonly {
            src: string;
            originalDst: string;
            actualDst: string;
            protocol: string;
          }[];
          readonly outbound: readonly {
            src: string;
            originalDst: string;
            actualDst: string;
            protocol: string;
          }[];
        };
      }
    >
  >;
  /** mtun's own facts; absent in a ztunnel's dump (which `mtun config` reads too). */
  readonly mtun?: {
    readonly node: string;
    readonly ready: string;
    readonly hardened: boolean;
    readonly refuseBypassedPlaintext: boolean;
    readonly localWorkloads: readonly string[];
    readonly certificates: readonly {
      identity: string;
      state: string;
      expiresAt?: string;
      nextAttemptAt?: string;
      failures: number;
      lastError?: string;
    }[];
    readonly captureBypass: {
      readonly total: number;
      readonly pairs: readonly {
        source: string;
        sourceIp: string;
        destination: string;
        count: number;
        firstSeen: string;
        lastSeen: string;
        lastOutcome: string;
      }[];
    };
    readonly recentConnections: readonly DumpRecent[];
  };
}

/** Where node `node`'s agent answers: the node's first InternalIP in the mesh, at `port`. */
export function adminUrlOfNode(snapshot: MeshSnapshot, node: string, port: number): string {
  const n = snapshot.node(node);
  const ip = n?.addresses.find((a) => a.type === 'InternalIP')?.address ?? n?.addresses[0]?.address;
  if (!ip)
    throw new ConfigError(
      `--node ${node}: the mesh has no Node ${node} with an address (give --admin URL instead)`,
    );
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
}

export function parseAdminUrl(text: string, flag: string): string {
  try {
    const u = new URL(text.includes('://') ? text : `http://${text}`);
    if (u.protocol !== 'http:') throw new Error('not http');
    return u.origin;
  } catch {
    throw new ConfigError(
      `${flag}: expected an admin URL like http://127.0.0.1:15000, got ${JSON.stringify(text)}`,
    );
  }
}

export async function fetchDump(base: string, timeoutMs = 5_000): Promise<ConfigDump> {
  const url = `${base}/config_dump`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new AdminUnreachableError(
      url,
      (err as Error).cause ? String((err as Error).cause) : (err as Error).message,
    );
  }
  if (res.status !== 200) throw new AdminUnreachableError(url, `HTTP ${res.status}`);
  const dump = (await res.json()) as Partial<ConfigDump> & { workers?: ConfigDump[] };
  // --workers N: the primary answers { workers: [dump, ...] }; the first describes the node.
  const one = dump.workers?.[0] ?? dump;
  if (!Array.isArray(one.workloads) && typeof one.workloads !== 'object')
    throw new AdminUnreachableError(url, 'not a ztunnel-shaped config dump (no workloads)');
  const list = <T>(v: unknown): T[] =>
    Array.isArray(v) ? v : v && typeof v === 'object' ? Object.values(v) : [];
  // istioctl's unmarshalListOrMap: ztunnel writes workloads and services as maps.
  return {
    ...(one as ConfigDump),
    workloads: list(one.workloads),
    services: list(one.services),
    policies: list(one.policies),
    certificates: list(one.certificates),
  };
}

/** A dump as `mtun check` needs it: an mtun agent's. */
export function mtunFacts(d: ConfigDump): NonNullable<ConfigDump['mtun']> | undefined {
  return d.mtun;
}
