// Table: actions and evaluation order (DENY before ALLOW, no ALLOW = allow, AUDIT/CUSTOM and
// dry-run without effect), and scope (root namespace, namespace, selector, targetRefs).
import t from 'tap';
import { ap, type Case, ID, runTable } from './helpers.js';

const allowFromApi = {
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/bar/sa/api'] } }] }],
};
const denyAll = { action: 'DENY', rules: [{}] };

const actions: Case[] = [
  {
    rule: 'no policy at all: allow [AP "If there are no ALLOW policies for the workload, allow"]',
    docs: [],
    conn: { from: ID.api },
    verdict: 'allow',
    policy: null,
    ruleIndex: null,
  },
  {
    rule: 'a matching ALLOW policy allows and is reported with its rule',
    docs: [ap('foo/allow-api', allowFromApi)],
    conn: { from: ID.api },
    verdict: 'allow',
    policy: 'foo/allow-api',
    ruleIndex: 0,
  },
  {
    rule: 'ALLOW policies exist but none matches: deny, decided by no policy',
    docs: [ap('foo/allow-api', allowFromApi)],
    conn: { from: ID.admin },
    verdict: 'deny',
    policy: null,
    ruleIndex: null,
    reason: /no ALLOW policy matched/,
  },
  {
    rule: 'DENY is evaluated before ALLOW: a matching DENY wins over a matching ALLOW',
    docs: [ap('foo/allow-api', allowFromApi), ap('foo/deny-all', denyAll)],
    conn: { from: ID.api },
    verdict: 'deny',
    policy: 'foo/deny-all',
    ruleIndex: 0,
  },
  {
    rule: 'a DENY that does not match and no ALLOW policy: allow',
    docs: [
      ap('foo/deny-admin', {
        action: 'DENY',
        rules: [{ from: [{ source: { namespaces: ['ops'] } }] }],
      }),
    ],
    conn: { from: ID.api },
    verdict: 'allow',
    policy: null,
  },
  {
    rule: 'a DENY that does not match does not stop a matching ALLOW',
    docs: [
      ap('foo/deny-admin', {
        action: 'DENY',
        rules: [{ from: [{ source: { namespaces: ['ops'] } }] }],
      }),
      ap('foo/allow-api', allowFromApi),
    ],
    conn: { from: ID.api },
    verdict: 'allow',
    policy: 'foo/allow-api',
  },
  {
    rule: 'AUDIT never changes the verdict and is not an ALLOW policy [AP; istiod drops it for ztunnel]',
    docs: [ap('foo/audit', { action: 'AUDIT', rules: [{}] })],
    conn: {},
    verdict: 'allow',
    policy: null,
  },
  {
    rule: 'AUDIT next to a non-matching ALLOW: still deny (AUDIT does not allow)',
    docs: [ap('foo/audit', { action: 'AUDIT', rules: [{}] }), ap('foo/allow-api', allowFromApi)],
    conn: { from: ID.admin },
    verdict: 'deny',
  },
  {
    rule: 'CUSTOM has no effect at L4 ["ztunnel does not support the CUSTOM action"]',
    docs: [ap('foo/ext', { action: 'CUSTOM', provider: { name: 'ext-authz' }, rules: [{}] })],
    conn: {},
    verdict: 'allow',
    policy: null,
  },
  {
    rule: 'an ALLOW policy without rules allows nothing (allow-nothing) [AP, CON]',
    docs: [ap('foo/allow-nothing', {})],
    conn: { from: ID.api },
    verdict: 'deny',
    reason: /no rules: allows nothing/,
  },
  {
    rule: 'an ALLOW policy with an empty spec (no spec at all) allows nothing',
    docs: [ap('foo/allow-nothing', undefined)],
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'an ALLOW policy with `rules: []` allows nothing',
    docs: [ap('foo/allow-nothing', { rules: [] })],
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'the empty rule `{}` matches every connection, plaintext included (ALLOW) [AP "An empty rule is always matched"]',
    docs: [ap('foo/allow-all', { rules: [{}] })],
    conn: {},
    verdict: 'allow',
    policy: 'foo/allow-all',
    ruleIndex: 0,
  },
  {
    rule: 'the empty rule `{}` matches every connection (DENY)',
    docs: [ap('foo/deny-all', denyAll)],
    conn: { from: ID.api },
    verdict: 'deny',
    policy: 'foo/deny-all',
  },
  {
    rule: 'several ALLOW policies: any one matching allows (the second here)',
    docs: [
      ap('foo/a-ops', { rules: [{ from: [{ source: { namespaces: ['ops'] } }] }] }),
      ap('foo/b-bar', { rules: [{ from: [{ source: { namespaces: ['bar'] } }] }] }),
    ],
    conn: { from: ID.api },
    verdict: 'allow',
    policy: 'foo/b-bar',
  },
  {
    rule: 'the reported rule is the index in spec.rules of the rule that matched',
    docs: [
      ap('foo/multi', {
        rules: [
          { from: [{ source: { namespaces: ['ops'] } }] },
          { to: [{ operation: { ports: ['9090'] } }] },
          { from: [{ source: { namespaces: ['bar'] } }] },
        ],
      }),
    ],
    conn: { from: ID.api, port: 8080 },
    verdict: 'allow',
    policy: 'foo/multi',
    ruleIndex: 2,
  },
  {
    rule: 'dry-run DENY is evaluated but not enforced [ztunnel #1659]',
    docs: [
      ap(
        { namespace: 'foo', name: 'dry-deny', annotations: { 'istio.io/dry-run': 'true' } },
        denyAll,
      ),
    ],
    conn: { from: ID.api },
    verdict: 'allow',
    policy: null,
  },
  {
    rule: 'a dry-run ALLOW does not count as "an ALLOW policy exists" [ztunnel #1659/#1745]',
    docs: [
      ap(
        { namespace: 'foo', name: 'dry-allow', annotations: { 'istio.io/dry-run': 'true' } },
        allowFromApi,
      ),
    ],
    conn: { from: ID.admin },
    verdict: 'allow',
    policy: null,
  },
];

const scope: Case[] = [
  {
    rule: 'a root-namespace policy without selector applies to every namespace',
    docs: [ap('istio-system/deny-all', denyAll)],
    conn: { to: 'bar/api', from: ID.web },
    verdict: 'deny',
    policy: 'istio-system/deny-all',
  },
  {
    rule: 'a namespace policy without selector applies to every workload in its namespace',
    docs: [ap('foo/deny-all', denyAll)],
    conn: { to: 'foo/db', from: ID.api },
    verdict: 'deny',
    policy: 'foo/deny-all',
  },
  {
    rule: 'a policy in another (non-root) namespace never applies',
    docs: [ap('bar/deny-all', denyAll)],
    conn: { to: 'foo/web', from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'an ALLOW policy in another namespace does not make "an ALLOW policy exists" here',
    docs: [ap('bar/allow-nothing', {})],
    conn: { to: 'foo/web', from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'selector.matchLabels selects a workload whose labels contain all of them',
    docs: [
      ap('foo/deny-web', { selector: { matchLabels: { app: 'web', version: 'v1' } }, ...denyAll }),
    ],
    conn: { to: 'foo/web', from: ID.api },
    verdict: 'deny',
    policy: 'foo/deny-web',
  },
  {
    rule: 'a selector with one label the workload lacks does not select it',
    docs: [
      ap('foo/deny-web-v2', {
        selector: { matchLabels: { app: 'web', version: 'v2' } },
        ...denyAll,
      }),
    ],
    conn: { to: 'foo/web', from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'a selector policy selects only in its own namespace, even if labels match elsewhere',
    docs: [ap('bar/deny-web', { selector: { matchLabels: { app: 'web' } }, ...denyAll })],
    conn: { to: 'foo/web', from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'a selector policy in the root namespace selects matching workloads in every namespace',
    docs: [ap('istio-system/deny-api', { selector: { matchLabels: { app: 'api' } }, ...denyAll })],
    conn: { to: 'bar/api', from: ID.web },
    verdict: 'deny',
    policy: 'istio-system/deny-api',
  },
  {
    rule: 'a selector with no labels (`selector: {}`) selects every workload of the namespace',
    docs: [ap('foo/deny-any', { selector: {}, ...denyAll })],
    conn: { to: 'foo/db', from: ID.api },
    verdict: 'deny',
    policy: 'foo/deny-any',
  },
  {
    rule: 'targetRefs policies are for waypoints: no L4 effect ["TargetRef is not intended for ztunnel"]',
    docs: [
      ap('foo/wp-deny', { targetRefs: [{ kind: 'Service', group: '', name: 'web' }], ...denyAll }),
    ],
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'the singular targetRef is a waypoint policy too: no L4 effect',
    docs: [
      ap('foo/wp-deny', {
        targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'wp' },
        ...denyAll,
      }),
    ],
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'the root namespace is configurable: a policy in it applies mesh-wide',
    docs: [ap('mesh-root/deny-all', denyAll)],
    conn: { to: 'foo/web', from: ID.api },
    rootNamespace: 'mesh-root',
    verdict: 'deny',
    policy: 'mesh-root/deny-all',
  },
  {
    rule: 'with another root namespace configured, istio-system is an ordinary namespace',
    docs: [ap('istio-system/deny-all', denyAll)],
    conn: { to: 'foo/web', from: ID.api },
    rootNamespace: 'mesh-root',
    verdict: 'allow',
  },
  {
    rule: 'a root-namespace policy also applies to workloads in the root namespace itself',
    docs: [ap('istio-system/deny-all', denyAll)],
    conn: { to: 'istio-system/gw', from: ID.api },
    verdict: 'deny',
  },
];

t.test('actions and evaluation order', async (t) => runTable(t, actions));
t.test('scope', async (t) => runTable(t, scope));
