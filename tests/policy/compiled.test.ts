// Compilation is done once per snapshot, and the work per connection depends only on the
// policies that can apply to the destination, not on policies elsewhere.
import t from 'tap';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { authorize, CompiledPolicies, compile } from '../../policy/index.js';
import { ap, connection, ID, mesh } from './helpers.js';

t.test('compile() caches per snapshot and root namespace', async (t) => {
  const s = mesh([ap('foo/deny-all', { action: 'DENY', rules: [{}] })]);
  t.equal(compile(s), compile(s), 'same snapshot, same compiled object');
  t.equal(compile(s, { rootNamespace: 'istio-system' }), compile(s), 'explicit default root');
  t.not(compile(s, { rootNamespace: 'other' }), compile(s), 'another root namespace compiles anew');
  t.not(compile(mesh([])), compile(s), 'another snapshot compiles anew');
  t.ok(compile(s) instanceof CompiledPolicies);
});

t.test('applicable() is memoized per workload and holds only what applies', async (t) => {
  const s = mesh([
    ap('foo/deny-all', { action: 'DENY', rules: [{}] }),
    ap('foo/allow-db', { selector: { matchLabels: { app: 'db' } }, rules: [{}] }),
    ap('foo/allow-web', { selector: { matchLabels: { app: 'web' } }, rules: [{}] }),
    ap('bar/allow-all', { rules: [{}] }),
    ap('istio-system/audit', { action: 'AUDIT', rules: [{}] }),
  ]);
  const c = compile(s);
  const web = connection(s, {}).destination.workload;
  const a = c.applicable(web);
  t.equal(c.applicable(web), a, 'memoized');
  t.same(
    a.deny.map((p) => p.key),
    ['foo/deny-all'],
  );
  t.same(
    a.allow.map((p) => p.key),
    ['foo/allow-web'],
  );
  t.same(
    a.ignored.map((p) => [p.key, p.ignoredBecause]),
    [['istio-system/audit', 'ztunnel does not support the AUDIT action']],
  );
});

t.test(
  'policies in other namespaces or selecting other workloads are not candidates',
  async (t) => {
    const docs = [];
    for (let i = 0; i < 300; i++) {
      docs.push(ap(`ns-${i}/deny-all`, { action: 'DENY', rules: [{}] }));
      docs.push(
        ap(`foo/deny-other-${i}`, {
          selector: { matchLabels: { app: `other-${i}` } },
          action: 'DENY',
          rules: [{}],
        }),
      );
    }
    docs.push(ap('foo/allow-api', { rules: [{ from: [{ source: { namespaces: ['bar'] } }] }] }));
    const s = mesh(docs);
    const a = compile(s).applicable(connection(s, {}).destination.workload);
    t.same(a.deny, [], 'none of the 600 DENY policies is a candidate for foo/web');
    t.same(
      a.allow.map((p) => p.key),
      ['foo/allow-api'],
    );
    t.equal(authorize(connection(s, { from: ID.api }), s).verdict, 'allow');
  },
);

t.test('selector candidates come from the label index, not a scan of the namespace', async (t) => {
  const docs = [];
  for (let i = 0; i < 500; i++) {
    docs.push(
      ap(`foo/other-${i}`, {
        selector: { matchLabels: { app: `other-${i}` } },
        action: 'DENY',
        rules: [{}],
      }),
    );
  }
  docs.push(
    ap('foo/deny-web', { selector: { matchLabels: { app: 'web' } }, action: 'DENY', rules: [{}] }),
  );
  const s = mesh(docs);
  const a = compile(s).applicable(connection(s, {}).destination.workload);
  t.same(
    a.deny.map((p) => p.key),
    ['foo/deny-web'],
  );
});

t.test('an unparsable address fails closed with a reason', async (t) => {
  const s = mesh([]);
  const c = connection(s, {});
  const d = authorize({ ...c, source: { identity: SpiffeId.parse(ID.api), ip: 'not-an-ip' } }, s);
  t.equal(d.verdict, 'deny');
  t.match(d.reason, /source IP "not-an-ip" is not an IP address/);
});
