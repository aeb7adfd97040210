// The config dump against the schema `istioctl ztunnel-config` decodes. Two checks on a live
// agent's /config_dump: (1) field by field against a transcription of istio/istio's
// istioctl/pkg/writer/ztunnel/configdump/api.go (ZtunnelWorkload, ZtunnelService,
// ZtunnelEndpoint, ZtunnelPolicy, PolicyMatch, StringMatch, CertsDump, Cert, WorkloadState;
// the field names and Go types below are that file's, and ztunnel's serde shapes are
// src/state/workload.rs `Workload`, src/state/service.rs `Service`/`Endpoint`, src/rbac.rs
// `Authorization`/`RbacMatch`, src/admin.rs `CertsDump`/`CertDump`, WorkloadState from
// api.go); (2) istioctl's own
// decoder (tests/fixtures/istioctl-configdump: api.go verbatim plus Prime), run with Go,
// must decode it with the facts intact; and the shape mtun had before issue 17 must fail it.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from '../helpers/tmp.js';
import { RATINGS_ONLY_FROM_REVIEWS, startWorld } from '../helpers/world.js';

type GoType =
  | 'string'
  | 'bool'
  | 'uint'
  | '[]string'
  | '[]uint'
  | 'map[string]int'
  | { map: Schema }
  | { list: Schema }
  | { ptr: Schema }
  | Schema;
interface Schema {
  readonly [field: string]: { readonly type: GoType; readonly omitempty?: boolean };
}

// api.go, field by field (json tag: type). Unlisted JSON keys are ignored by Go's decoder.
const STRING_MATCH: Schema = {
  Exact: { type: 'string', omitempty: true },
  Suffix: { type: 'string', omitempty: true },
  Prefix: { type: 'string', omitempty: true },
  // `Presence any`: anything decodes.
};
const SA_MATCH: Schema = { namespace: { type: 'string' }, serviceAccount: { type: 'string' } };
const POLICY_MATCH: Schema = {
  namespaces: { type: { list: STRING_MATCH }, omitempty: true },
  notNamespaces: { type: { list: STRING_MATCH }, omitempty: true },
  principals: { type: { list: STRING_MATCH }, omitempty: true },
  notPrincipals: { type: { list: STRING_MATCH }, omitempty: true },
  sourceIps: { type: '[]string', omitempty: true },
  notSourceIps: { type: '[]string', omitempty: true },
  destinationIps: { type: '[]string', omitempty: true },
  notDestinationIps: { type: '[]string', omitempty: true },
  destinationPorts: { type: '[]uint', omitempty: true },
  notDestinationPorts: { type: '[]uint', omitempty: true },
  serviceAccounts: { type: { list: SA_MATCH }, omitempty: true },
  notServiceAccounts: { type: { list: SA_MATCH }, omitempty: true },
};
const GATEWAY: Schema = { destination: { type: 'string' } };
const WORKLOAD: Schema = {
  uid: { type: 'string' },
  workloadIps: { type: '[]string' },
  waypoint: { type: { ptr: GATEWAY }, omitempty: true },
  networkGateway: { type: { ptr: GATEWAY }, omitempty: true },
  protocol: { type: 'string' },
  name: { type: 'string' },
  namespace: { type: 'string' },
  serviceAccount: { type: 'string' },
  workloadName: { type: 'string' },
  workloadType: { type: 'string' },
  canonicalName: { type: 'string' },
  canonicalRevision: { type: 'string' },
  clusterId: { type: 'string' },
  trustDomain: { type: 'string', omitempty: true },
  node: { type: 'string' },
  network: { type: 'string', omitempty: true },
  status: { type: 'string' },
  // ztunnel skips an empty hostname (workload.rs: skip_serializing_if is_default).
  hostname: { type: 'string', omitempty: true },
  capacity: { type: 'uint' },
  authorizationPolicies: { type: '[]string', omitempty: true },
};
const ENDPOINT: Schema = {
  workloadUid: { type: 'string' },
  service: { type: 'string' },
  address: { type: 'string', omitempty: true },
  port: { type: 'map[string]int' },
};
const SERVICE: Schema = {
  name: { type: 'string' },
  namespace: { type: 'string' },
  hostname: { type: 'string' },
  vips: { type: '[]string' },
  ports: { type: 'map[string]int' },
  endpoints: { type: { map: ENDPOINT } },
  subjectAltNames: { type: '[]string', omitempty: true },
  ipFamilies: { type: 'string' },
  canonical: { type: 'bool', omitempty: true },
};
const POLICY: Schema = {
  name: { type: 'string' },
  namespace: { type: 'string' },
  scope: { type: 'string' },
  action: { type: 'string' },
  rules: {
    type: { list: { '[]': { type: { list: { '[]': { type: { list: POLICY_MATCH } } } } } } },
  },
};
const CERT: Schema = {
  pem: { type: 'string' },
  serialNumber: { type: 'string' },
  validFrom: { type: 'string' },
  expirationTime: { type: 'string' },
};
const CERTS: Schema = {
  identity: { type: 'string' },
  state: { type: 'string' },
  certChain: { type: { list: CERT } },
  rootCerts: { type: { list: CERT } },
};

const CONNECTION: Schema = {
  src: { type: 'string' },
  originalDst: { type: 'string' },
  actualDst: { type: 'string' },
  protocol: { type: 'string' },
};
const WORKLOAD_STATE: Schema = {
  state: { type: 'string', omitempty: true },
  connections: {
    type: { inbound: { type: { list: CONNECTION } }, outbound: { type: { list: CONNECTION } } },
    omitempty: true,
  },
  info: {
    type: {
      name: { type: 'string' },
      namespace: { type: 'string' },
      trustDomain: { type: 'string' },
      serviceAccount: { type: 'string' },
    },
  },
};

/** Where `value` does not fit `type` as Go's encoding/json would decode it. */
function mismatches(path: string, type: GoType, value: unknown): string[] {
  if (value === null) return []; // Go decodes null into anything
  const bad = (what: string) => [`${path}: expected ${what}, got ${JSON.stringify(value)}`];
  if (type === 'string') return typeof value === 'string' ? [] : bad('a string');
  if (type === 'bool') return typeof value === 'boolean' ? [] : bad('a bool');
  if (type === 'uint')
    return Number.isInteger(value) && (value as number) >= 0 ? [] : bad('an unsigned integer');
  if (type === '[]string' || type === '[]uint') {
    if (!Array.isArray(value)) return bad('a list');
    return value.flatMap((v, i) =>
      mismatches(`${path}[${i}]`, type === '[]string' ? 'string' : 'uint', v),
    );
  }
  if (type === 'map[string]int') {
    if (typeof value !== 'object' || Array.isArray(value)) return bad('a map');
    return Object.entries(value as object).flatMap(([k, v]) =>
      Number.isInteger(v) ? [] : [`${path}.${k}: expected an integer`],
    );
  }
  if ('list' in type && typeof type.list === 'object' && !('type' in type.list)) {
    if (!Array.isArray(value)) return bad('a list');
    const inner = type.list as Schema;
    const [only] = Object.keys(inner);
    if (only === '[]')
      return value.flatMap((v, i) => mismatches(`${path}[${i}]`, inner['[]']!.type, v));
    return value.flatMap((v, i) => mismatches(`${path}[${i}]`, inner, v));
  }
  if ('map' in type && typeof type.map === 'object' && !('type' in type.map)) {
    if (typeof value !== 'object' || Array.isArray(value)) return bad('a map');
    return Object.entries(value as object).flatMap(([k, v]) =>
      mismatches(`${path}.${k}`, type.map as Schema, v),
    );
  }
  if ('ptr' in type && typeof type.ptr === 'object' && !('type' in type.ptr))
    return mismatches(path, type.ptr as Schema, value);
  // A struct.
  if (typeof value !== 'object' || Array.isArray(value)) return bad('an object');
  const obj = value as Record<string, unknown>;
  return Object.entries(type as Schema).flatMap(([field, spec]) => {
    if (!(field in obj))
      return spec.omitempty ? [] : [`${path}.${field}: missing (api.go has no omitempty)`];
    return mismatches(`${path}.${field}`, spec.type, obj[field]);
  });
}

function decodeWithGo(
  bin: string,
  input: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(bin, [], { timeout: 30_000, maxBuffer: 16 << 20 }, (err, out, e) =>
      resolve({
        code: err ? Number((err as { code?: number }).code ?? 1) : 0,
        stdout: out,
        stderr: e,
      }),
    );
    child.stdin?.end(input);
  });
}

async function buildDecoder(dir: string): Promise<string | undefined> {
  const bin = join(dir, 'decode');
  return new Promise((resolve) => {
    execFile(
      'go',
      ['build', '-o', bin, '.'],
      {
        cwd: join(import.meta.dirname, '..', 'fixtures', 'istioctl-configdump'),
        timeout: 60_000,
        env: {
          ...process.env,
          GOCACHE: join(dir, 'gocache'),
          GOPATH: join(dir, 'gopath'),
          GO111MODULE: 'off',
          GOFLAGS: '',
        },
      },
      (err, _out, stderr) => {
        if (err) t.comment(`go build failed: ${stderr}`);
        resolve(err ? undefined : bin);
      },
    );
  });
}

const DENY_PORTS = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: shop}
spec:
  action: DENY
  rules: [{from: [{source: {ipBlocks: [10.0.0.0/8], namespaces: ["dev*"]}}], to: [{operation: {ports: ["9999"]}}]}]
`;

t.test('the config dump decodes as istioctl ztunnel-config decodes it', async (t) => {
  const w = await startWorld(t, {
    files: { '10-allow.yaml': RATINGS_ONLY_FROM_REVIEWS, '11-deny.yaml': DENY_PORTS },
  });
  const agent = w.mesh.agents.get('node-b')!;
  // The agent's HTTP servers are metrics, readiness and admin: the one that has the dump.
  let text = '';
  for (const a of agent.addresses().admin) {
    const res = await fetch(`http://${a.host}:${a.port}/config_dump`);
    if (res.status === 200) text = await res.text();
  }
  const dump = JSON.parse(text) as Record<string, unknown[]>;

  t.test('field by field against api.go', async (t) => {
    const problems = [
      ...mismatches('workloads', { list: WORKLOAD }, dump.workloads),
      ...mismatches('services', { list: SERVICE }, dump.services),
      ...mismatches('policies', { list: POLICY }, dump.policies),
      ...mismatches('certificates', { list: CERTS }, dump.certificates),
      ...mismatches('workloadState', { map: WORKLOAD_STATE }, dump.workloadState),
    ];
    t.same(problems, [], 'no field of ours contradicts api.go');
    // The check can fail: the shape of before issue 17 does not pass it.
    t.match(
      mismatches('services', { list: SERVICE }, [
        { name: 'shop/reviews', hostname: 'h', vips: [], ports: [{ port: 80 }], endpoints: {} },
      ]),
      [
        /namespace: missing/,
        'services[0].ports: expected a map, got [{"port":80}]',
        /ipFamilies: missing/,
      ],
    );
    t.match(mismatches('workloads', { list: WORKLOAD }, [{ name: 'shop/web-1', ips: [] }]), [
      /uid: missing/,
      /workloadIps: missing/,
    ]);
    t.equal(dump.workloads!.length, 5, 'every pod');
    t.equal(dump.services!.length, 1);
    t.equal(dump.policies!.length, 2);
  });

  t.test('what ztunnel would say, for one of each', async (t) => {
    const ratings = (dump.workloads as Record<string, unknown>[]).find(
      (x) => x.name === 'ratings-1',
    )!;
    t.match(ratings, {
      uid: 'Kubernetes//Pod/shop/ratings-1',
      workloadIps: [w.ip('20.3')],
      protocol: 'HBONE',
      namespace: 'shop',
      serviceAccount: 'ratings',
      trustDomain: 'cluster.local',
      node: 'node-b',
      status: 'Healthy',
      authorizationPolicies: ['shop/deny-admin', 'shop/ratings-from-reviews'],
    });
    const reviews = (dump.services as Record<string, unknown>[])[0]!;
    t.match(reviews, {
      name: 'reviews',
      namespace: 'shop',
      hostname: 'reviews.shop.svc.cluster.local',
      vips: [`/${w.ip('30.1')}`],
      ports: { '80': 9080 },
    });
    t.equal(Object.keys(reviews.endpoints as object).length, 2, 'two endpoints');
    const allow = (dump.policies as Record<string, unknown>[]).find(
      (p) => p.name === 'ratings-from-reviews',
    );
    t.same(allow, {
      name: 'ratings-from-reviews',
      namespace: 'shop',
      scope: 'WorkloadSelector',
      action: 'Allow',
      rules: [[[{ principals: [{ Exact: 'cluster.local/ns/shop/sa/reviews' }] }]]],
      dryRun: false,
    });
    const deny = (dump.policies as Record<string, unknown>[]).find((p) => p.name === 'deny-admin');
    t.same(deny, {
      name: 'deny-admin',
      namespace: 'shop',
      scope: 'Namespace',
      action: 'Deny',
      // Clauses in istiod's order (handleRule: to, then from), as policy/compile-authz.ts.
      rules: [
        [
          [{ destinationPorts: [9999] }],
          [{ namespaces: [{ Prefix: 'dev' }], sourceIps: ['10.0.0.0/8'] }],
        ],
      ],
      dryRun: false,
    });
    const certs = dump.certificates as {
      identity: string;
      state: string;
      certChain: { pem: string; serialNumber: string; validFrom: string; expirationTime: string }[];
      rootCerts: unknown[];
    }[];
    t.same(
      certs.map((c) => c.identity),
      ['spiffe://cluster.local/ns/shop/sa/ratings', 'spiffe://cluster.local/ns/shop/sa/reviews'],
      "node-b's identities, sorted as ztunnel sorts them",
    );
    for (const c of certs) {
      t.equal(c.state, 'Available');
      t.equal(c.certChain.length, 1, 'the leaf (the CA signs from its root: no intermediate)');
      t.equal(c.rootCerts.length, 1, 'the root');
      const leaf = c.certChain[0]!;
      const x = new X509Certificate(Buffer.from(leaf.pem, 'base64').toString());
      t.equal(leaf.serialNumber, BigInt(`0x${x.serialNumber}`).toString(), 'serial in decimal');
      t.match(leaf.expirationTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339, seconds');
      t.equal(Date.parse(leaf.expirationTime), Date.parse(x.validTo));
    }
    const extra = (dump as unknown as { mtun: Record<string, unknown> }).mtun;
    t.equal(extra.node, 'node-b');
    t.equal(extra.ready, 'ready');
    t.match(extra.certificates, [{ nextAttemptAt: String }, { nextAttemptAt: String }]);
  });

  const goWhy = await new Promise<string | undefined>((resolve) =>
    execFile('go', ['version'], (err) => resolve(err ? 'go is not installed' : undefined)),
  );
  t.test("istioctl's decoder (Go)", { skip: goWhy ?? false }, async (t) => {
    const bin = await buildDecoder(await tempDir(t, 'mtun-go-'));
    if (!bin) return t.fail('the decoder builds');
    const out = await decodeWithGo(bin, text);
    t.equal(out.code, 0, `decoded (${out.stderr.trim()})`);
    const decoded = JSON.parse(out.stdout) as {
      workloads: { name: string; namespace: string; workloadIps: string[] }[];
      services: { ports: Record<string, number>; endpoints: Record<string, unknown> }[];
      policies: { rules: unknown[] }[];
      certificates: { certChain: { serialNumber: string }[] }[];
    };
    t.equal(decoded.workloads.length, 5);
    t.ok(
      decoded.workloads.every((x) => x.name && x.namespace && x.workloadIps.length === 1),
      'every workload decoded with its name, namespace and IP',
    );
    t.same(decoded.services[0]!.ports, { '80': 9080 });
    t.equal(Object.keys(decoded.services[0]!.endpoints).length, 2);
    t.equal(decoded.policies.length, 2);
    t.ok(
      decoded.certificates.every((c) => c.certChain.length === 1 && c.certChain[0]!.serialNumber),
    );

    // The shape before issue 17, as the issue measured it: the decoder refuses it.
    const old = JSON.stringify({
      services: [{ name: 'shop/reviews', ports: [{ port: 80, targetPort: 9080 }] }],
      policies: { authorizationPolicies: [], peerAuthentications: [] },
    });
    const refused = await decodeWithGo(bin, old);
    t.equal(refused.code, 1, 'the old shape does not decode');
    t.match(refused.stderr, /ports of type map\[string\]int/);
  });
});
