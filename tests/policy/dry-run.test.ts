// Dry-run policies (`istio.io/dry-run`) are evaluated and reported, never enforced; the
// report says what the verdict would be if they were (ztunnel PRs #1659, #1745).
import t from 'tap';
import { authorize } from '../../policy/index.js';
import { ap, connection, ID, mesh } from './helpers.js';

const dry = (name: string, value = 'true') => ({
  namespace: 'foo',
  name,
  annotations: { 'istio.io/dry-run': value },
});

t.test('no dry-run policy: no dry-run report', async (t) => {
  const s = mesh([ap('foo/deny-all', { action: 'DENY', rules: [{}] })]);
  t.equal(authorize(connection(s, { from: ID.api }), s).dryRun, undefined);
});

t.test('a matching dry-run DENY is reported with the verdict it would cause', async (t) => {
  const s = mesh([
    ap(dry('trial-deny'), {
      action: 'DENY',
      rules: [{ from: [{ source: { namespaces: ['bar'] } }] }],
    }),
  ]);
  const d = authorize(connection(s, { from: ID.api }), s);
  t.equal(d.verdict, 'allow');
  t.same(d.dryRun?.matched, [{ policy: 'foo/trial-deny', action: 'DENY', rule: 0 }]);
  t.equal(d.dryRun?.verdict, 'deny');
  t.equal(d.dryRun?.policy, 'foo/trial-deny');
});

t.test(
  'dry-run ALLOW that matches nothing: allowed now, would be denied (ztunnel #1745)',
  async (t) => {
    const s = mesh([
      ap(dry('trial-allow'), { rules: [{ from: [{ source: { namespaces: ['ops'] } }] }] }),
    ]);
    const d = authorize(connection(s, { from: ID.api }), s);
    t.equal(d.verdict, 'allow');
    t.same(d.dryRun?.matched, []);
    t.equal(d.dryRun?.verdict, 'deny');
    t.match(d.dryRun?.reason, /with dry-run policies enforced: no ALLOW policy matched/);
  },
);

t.test(
  'dry-run ALLOW next to a non-matching enforced ALLOW: denied now, would be allowed',
  async (t) => {
    const s = mesh([
      ap('foo/ops-only', { rules: [{ from: [{ source: { namespaces: ['ops'] } }] }] }),
      ap(dry('trial-allow', 'True'), { rules: [{ from: [{ source: { namespaces: ['bar'] } }] }] }),
    ]);
    const d = authorize(connection(s, { from: ID.api }), s);
    t.equal(d.verdict, 'deny');
    t.equal(d.dryRun?.verdict, 'allow');
    t.same(d.dryRun?.matched, [{ policy: 'foo/trial-allow', action: 'ALLOW', rule: 0 }]);
  },
);

t.test(
  'the annotation is parsed like Go ParseBool: "false" and "0" enforce the policy',
  async (t) => {
    for (const v of ['false', '0', 'F']) {
      const s = mesh([ap(dry('p', v), { action: 'DENY', rules: [{}] })]);
      const d = authorize(connection(s, { from: ID.api }), s);
      t.equal(d.verdict, 'deny', `istio.io/dry-run: ${v}`);
      t.equal(d.dryRun, undefined);
    }
  },
);
