// Policies ztunnel would not enforce as written are reported as Istio's status does
// (istiod pilot/pkg/serviceregistry/ambient/authorization.go and its test's messages), by
// the engine (a table), by `mtun authz check` in text and --json, and a DENY without rules
// loads and matches nothing.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { authorizationPolicyFromWire } from '../../mesh/convert/istio.js';
import { policyStatus } from '../../policy/index.js';
import { run } from '../../testkit/exec.js';
import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const AP = (name: string, spec: object) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace: 'foo' },
  spec,
});
const statusOf = (spec: object) =>
  policyStatus(authorizationPolicyFromWire(AP('p', spec), { source: 't.yaml' }));

const HTTP = 'In ambient mode you must use a waypoint proxy to enforce HTTP rules.';

t.test("Istio's ZtunnelAccepted condition, per case", async (t) => {
  const rows: [
    string,
    object,
    { reason: string; message: string | RegExp; enforced: string } | undefined,
  ][] = [
    [
      'an L4 ALLOW policy: no condition',
      { rules: [{ from: [{ source: { namespaces: ['a'] } }] }] },
      undefined,
    ],
    [
      'an L4 DENY policy: no condition',
      { action: 'DENY', rules: [{ to: [{ operation: { ports: ['80'] } }] }] },
      undefined,
    ],
    [
      'AUDIT',
      { action: 'AUDIT', rules: [{}] },
      {
        reason: 'UnsupportedValue',
        message: 'ztunnel does not support the AUDIT action',
        enforced: 'none',
      },
    ],
    [
      'CUSTOM',
      { action: 'CUSTOM', provider: { name: 'ext' }, rules: [{}] },
      {
        reason: 'UnsupportedValue',
        message: 'ztunnel does not support the CUSTOM action',
        enforced: 'none',
      },
    ],
    [
      // authorization_test.go: "ALLOW policy with L7 attributes" (the same message).
      'ALLOW with HTTP attributes',
      {
        rules: [
          {
            from: [{ source: { requestPrincipals: ['example.com/sub-1'] } }],
            to: [{ operation: { methods: ['GET'] } }],
            when: [{ key: 'request.auth.presenter', values: ['presenter.example.com'] }],
          },
        ],
      },
      {
        reason: 'UnsupportedValue',
        message: `ztunnel does not support HTTP attributes (found: methods, request.auth.presenter, requestPrincipals). ${HTTP} Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.`,
        enforced: 'partly',
      },
    ],
    [
      'DENY with only HTTP fields: no effect',
      { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] },
      {
        reason: 'UnsupportedValue',
        message: `ztunnel does not support HTTP attributes (found: methods). ${HTTP} After omitting unsupported HTTP attributes, this DENY policy has no enforceable rules at ztunnel and will have no effect. Deploy a waypoint proxy and use a targetRef to enforce this policy.`,
        enforced: 'none',
      },
    ],
    [
      'DENY with HTTP and L4 fields: enforced without the HTTP part',
      {
        action: 'DENY',
        rules: [
          { to: [{ operation: { methods: ['POST'] } }] },
          { from: [{ source: { namespaces: ['x'] } }] },
        ],
      },
      {
        reason: 'UnsupportedValue',
        message: /DENY policy with HTTP attributes is enforced without the HTTP rules/,
        enforced: 'partly',
      },
    ],
    [
      'DENY without rules',
      { action: 'DENY' },
      {
        reason: 'NoRules',
        message: /DENY action without `rules` is meaningless/,
        enforced: 'none',
      },
    ],
    [
      'targetRefs',
      { targetRefs: [{ kind: 'Service', name: 'web' }], rules: [{}] },
      {
        reason: 'NotForZtunnel',
        message: /TargetRef is not intended for ztunnel/,
        enforced: 'none',
      },
    ],
  ];
  for (const [what, spec, want] of rows) {
    const got = statusOf(spec);
    if (!want) t.equal(got, undefined, what);
    else t.match(got, { policy: 'foo/p', condition: 'ZtunnelAccepted', ...want }, what);
  }
});

const MESH = `apiVersion: v1
kind: Namespace
metadata: {name: foo, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: foo, labels: {app: web}}
spec: {serviceAccountName: web}
status: {podIP: 10.0.1.1}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-nothing, namespace: foo}
spec: {action: DENY}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: foo}
spec: {action: AUDIT, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-post, namespace: foo}
spec: {action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: elsewhere, namespace: bar}
spec: {action: AUDIT, rules: [{}]}
`;

t.test(
  'authz check: a DENY without rules loads and denies nothing; statuses in text and --json',
  async (t) => {
    const dir = await tempDir(t);
    await mkdir(join(dir, 'mesh'));
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), MESH);
    const check = (...extra: string[]) =>
      run(
        process.execPath,
        [
          '--import',
          'tsx',
          'cli/main.ts',
          'authz',
          'check',
          '--mesh',
          join(dir, 'mesh'),
          '--to',
          'foo/web',
          '--port',
          '8080',
          '--from-principal',
          'spiffe://cluster.local/ns/bar/sa/api',
          ...extra,
        ],
        { cwd: root },
      );
    const text = await check();
    t.equal(text.code, 0, `allowed: the DENY policies match nothing at L4 (${text.stderr})`);
    t.match(
      text.stdout,
      /status: {2}foo\/audit: ZtunnelAccepted UnsupportedValue \(no L4 effect\): ztunnel does not support the AUDIT action/,
    );
    t.match(
      text.stdout,
      /status: {2}foo\/deny-nothing: ZtunnelAccepted NoRules \(no L4 effect\): DENY action without `rules`/,
    );
    t.match(
      text.stdout,
      /status: {2}foo\/deny-post: ZtunnelAccepted UnsupportedValue \(no L4 effect\): ztunnel does not support HTTP attributes \(found: methods\)/,
    );
    t.notMatch(text.stdout, /elsewhere/, 'only policies in scope of the destination');
    const json = await check('--json');
    t.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as {
      verdict: string;
      status: { policy: string; reason: string }[];
    };
    t.equal(out.verdict, 'allow');
    t.same(
      out.status.map((s) => [s.policy, s.reason]),
      [
        ['foo/audit', 'UnsupportedValue'],
        ['foo/deny-nothing', 'NoRules'],
        ['foo/deny-post', 'UnsupportedValue'],
      ],
    );
  },
);
