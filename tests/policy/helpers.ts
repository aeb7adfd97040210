// Shared fixtures for the policy tables: a small mesh built through the real converters (so
// every policy in a table also passes mtun's Istio validation), and a runner that turns one
// table row into a connection and checks the decision.
import type { Test } from 'tap';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { convertDocuments } from '../../mesh/convert/index.js';
import { MeshSnapshot } from '../../mesh/snapshot.js';
import { authorize, type Connection, compile, type Decision } from '../../policy/index.js';

const origin = (i: number) => ({ source: 'test.yaml', document: i });

export function pod(
  namespace: string,
  name: string,
  labels: Record<string, string>,
  serviceAccount: string,
  ips: string[],
): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { 'istio.io/dataplane-mode': 'ambient', ...labels } },
    spec: { serviceAccountName: serviceAccount },
    status: { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
  };
}

/** The pods every table shares. */
export const PODS = [
  pod('foo', 'web', { app: 'web', version: 'v1' }, 'web', ['10.0.1.1', 'fd00::1:1']),
  pod('foo', 'db', { app: 'db' }, 'db', ['10.0.1.2']),
  pod('bar', 'api', { app: 'api' }, 'api', ['10.0.2.1']),
  pod('istio-system', 'gw', { app: 'gw' }, 'gw', ['10.0.9.1']),
];

interface Meta {
  readonly name: string;
  readonly namespace: string;
  readonly annotations?: Record<string, string>;
  readonly creationTimestamp?: string;
}

const meta = (m: Meta | string): Meta => {
  if (typeof m !== 'string') return m;
  const [namespace, name] = m.split('/') as [string, string];
  return { namespace, name };
};

/** An AuthorizationPolicy document; `m` is `ns/name` or full metadata. */
export function ap(m: Meta | string, spec: object | undefined): object {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: meta(m),
    spec,
  };
}

/** `foo/p` as an ALLOW or DENY policy with exactly these rules: the usual table document. */
export const allow = (...rules: object[]): object[] => [ap('foo/p', { rules })];
export const deny = (...rules: object[]): object[] => [ap('foo/p', { action: 'DENY', rules })];

export function pa(m: Meta | string, spec: object | undefined): object {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: meta(m),
    spec,
  };
}

export function mesh(docs: readonly object[]): MeshSnapshot {
  const objects = convertDocuments(
    [...PODS, ...docs].map((doc, i) => ({ doc, origin: origin(i) })),
    { clusterDomain: 'cluster.local' },
  );
  return new MeshSnapshot(objects, 1);
}

export interface Conn {
  /** `ns/pod` (default foo/web). */
  readonly to?: string;
  readonly port?: number;
  /** A SPIFFE ID; absent = plaintext. */
  readonly from?: string;
  /** Source IP (default 10.0.2.1, the IP of bar/api). */
  readonly ip?: string;
  /** Destination IP (default: the pod's first IP). */
  readonly dstIp?: string;
}

export function connection(snapshot: MeshSnapshot, c: Conn): Connection {
  const [ns, name] = (c.to ?? 'foo/web').split('/') as [string, string];
  const workload = snapshot.workload(ns, name);
  if (!workload) throw new Error(`no pod ${c.to}`);
  return {
    source: { identity: c.from ? SpiffeId.parse(c.from) : undefined, ip: c.ip ?? '10.0.2.1' },
    destination: { workload, ip: c.dstIp ?? workload.ips[0]!, port: c.port ?? 8080 },
  };
}

export interface Case {
  /** The rule of Istio/ztunnel semantics this row proves (and where it comes from). */
  readonly rule: string;
  readonly docs: readonly object[];
  readonly conn: Conn;
  readonly verdict: 'allow' | 'deny';
  /** Expected deciding policy (`ns/name`), null for a default decision; unchecked if absent. */
  readonly policy?: string | null;
  readonly ruleIndex?: number | null;
  readonly reason?: RegExp;
  readonly rootNamespace?: string;
}

export function decide(c: Case): Decision {
  const snapshot = mesh(c.docs);
  const policies = c.rootNamespace
    ? compile(snapshot, { rootNamespace: c.rootNamespace })
    : snapshot;
  return authorize(connection(snapshot, c.conn), policies);
}

/** Runs a table: one subtest per row, named after the rule it proves. */
export function runTable(t: Test, cases: readonly Case[]): void {
  for (const c of cases) {
    t.test(c.rule, async (t) => {
      const d = decide(c);
      t.equal(d.verdict, c.verdict, `verdict (${d.reason})`);
      if (c.policy !== undefined) t.equal(d.policy, c.policy, 'deciding policy');
      if (c.ruleIndex !== undefined) t.equal(d.rule, c.ruleIndex, 'deciding rule');
      if (c.reason) t.match(d.reason, c.reason, 'reason');
    });
  }
}

export const ID = {
  api: 'spiffe://cluster.local/ns/bar/sa/api',
  web: 'spiffe://cluster.local/ns/foo/sa/web',
  admin: 'spiffe://cluster.local/ns/ops/sa/admin',
  otherTd: 'spiffe://other.td/ns/bar/sa/api',
} as const;
