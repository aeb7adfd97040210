// `mtun authz check` run as a real process: exit 0 allow, 1 deny, 2 bad input (error on
// stderr naming file, document, object and field), and the --json shape.
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { run } from '../../testkit/exec.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const MESH = 'tests/policy/fixtures/mesh';
const API = 'spiffe://cluster.local/ns/bar/sa/api';

const mtun = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'authz', 'check', ...args], {
    cwd: root,
  });

/** `mtun authz check` against foo/web of the fixture mesh. */
const toWeb = (port: string, ...args: string[]) =>
  mtun('--mesh', MESH, '--to', 'foo/web', '--port', port, ...args);

t.test('allow: exit 0, with the deciding policy and rule', async (t) => {
  const r = await toWeb('8080', '--from-principal', API, '--from-ip', '10.0.2.1');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^allow\n/);
  t.match(r.stdout, /policy: {2}foo\/allow-bar \(AuthorizationPolicy\)/);
  t.match(r.stdout, /rule: {4}1\n/);
  t.match(r.stdout, /dry-run: matched foo\/trial \(DENY rule 0\); would deny/);
});

t.test('--json prints exactly verdict, policy, rule, reason and status', async (t) => {
  const r = await toWeb('8080', '--from-principal', API, '--json');
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.same(Object.keys(out), ['verdict', 'policy', 'rule', 'reason', 'status']);
  t.same(out.status, [], 'every policy in scope is enforced as written');
  t.same(
    { ...out, reason: undefined },
    { verdict: 'allow', policy: 'foo/allow-bar', rule: 1, reason: undefined, status: [] },
  );
  t.match(out.reason, /ALLOW policy foo\/allow-bar matched rule 1/);
});

t.test('deny by PeerAuthentication STRICT: exit 1', async (t) => {
  const r = await toWeb('8080', '--from-ip', '10.0.2.1', '--json');
  t.equal(r.code, 1, r.stderr);
  t.same(JSON.parse(r.stdout), {
    verdict: 'deny',
    policy: 'foo/web-health',
    rule: null,
    reason:
      'plaintext connection rejected: PeerAuthentication foo/web-health requires mTLS (STRICT) on port 8080',
    status: [],
  });
});

t.test('deny by a DENY policy in the root namespace: exit 1', async (t) => {
  const r = await toWeb('8080', '--from-principal', 'spiffe://cluster.local/ns/ops/sa/x', '--json');
  t.equal(r.code, 1, r.stderr);
  t.match(JSON.parse(r.stdout), { verdict: 'deny', policy: 'istio-system/deny-ops', rule: 0 });
});

t.test('plaintext on the PERMISSIVE port, allowed by ipBlocks', async (t) => {
  const r = await toWeb('9000', '--from-ip', '10.0.9.5');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /mTLS: {4}port 9000 is PERMISSIVE/);
  t.match(r.stdout, /source: {2}plaintext \(no identity\) from 10\.0\.9\.5/);
});

t.test('--root-namespace moves the mesh-wide scope', async (t) => {
  const r = await toWeb('9000', '--from-ip', '10.0.9.5', '--root-namespace', 'elsewhere', '--json');
  // istio-system is now an ordinary namespace: its STRICT and DENY no longer reach foo/web.
  t.equal(r.code, 0, r.stderr);
});

t.test('bad YAML: exit 2, the file and document on stderr', async (t) => {
  const r = await mtun(
    '--mesh',
    MESH,
    'tests/policy/fixtures/bad/syntax.yaml',
    '--to',
    'foo/web',
    '--port',
    '8080',
  );
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.match(
    r.stderr,
    /tests\/policy\/fixtures\/bad\/syntax\.yaml, document 1: \(document\): YAML syntax/,
  );
});

t.test(
  'invalid policies: exit 2, every problem with file, document, object and field',
  async (t) => {
    const r = await mtun(
      '--mesh',
      'tests/policy/fixtures/bad/invalid-policy.yaml',
      '--to',
      'foo/web',
      '--port',
      '8080',
    );
    t.equal(r.code, 2);
    t.match(
      r.stderr,
      'invalid-policy.yaml, document 0 (AuthorizationPolicy foo/custom-nothing): spec.rules: CUSTOM action without `rules`',
    );
    t.match(
      r.stderr,
      'invalid-policy.yaml, document 1 (AuthorizationPolicy foo/bad-cidr): spec.rules[0].from[0].source.ipBlocks[0]: bad IP address or CIDR range "10.0.0.0/33"',
    );
  },
);

t.test('bad arguments: exit 2 with the reason', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--to', 'foo/nope', '--port', '8080'], /pod foo\/nope not found/],
    [['--to', 'web', '--port', '8080'], /--to "web": expected NAMESPACE\/POD/],
    [['--to', 'foo/web', '--port', '70000'], /--port "70000": expected a port number/],
    [
      ['--to', 'foo/web', '--port', '8080', '--from-principal', 'cluster.local/ns/a/sa/b'],
      /--from-principal: .*spiffe:\/\//,
    ],
    [['--to', 'foo/web', '--port', '8080', '--from-ip', '10.0.0.300'], /--from-ip "10\.0\.0\.300"/],
    [['--to', 'foo/web'], /required option '--port <n>' not specified/],
  ];
  const runs = await Promise.all(cases.map(([args]) => mtun('--mesh', MESH, ...args)));
  runs.forEach((r, i) => {
    const [args, why] = cases[i]!;
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, why);
  });
  const missing = await mtun(
    '--mesh',
    'tests/policy/fixtures/none',
    '--to',
    'foo/web',
    '--port',
    '1',
  );
  t.equal(missing.code, 2);
  t.match(missing.stderr, /mesh path tests\/policy\/fixtures\/none: does not exist/);
});

t.test('a pod outside the mesh is still evaluated, with a note on stderr', async (t) => {
  const r = await mtun(
    '--mesh',
    MESH,
    '--to',
    'legacy/old',
    '--port',
    '80',
    '--from-principal',
    API,
    '--json',
  );
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /note: pod legacy\/old is not in the mesh/);
});
