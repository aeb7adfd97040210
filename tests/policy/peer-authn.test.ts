// Table: PeerAuthentication in ambient. STRICT is a DENY "no peer identity" policy; modes
// inherit mesh → namespace → workload (UNSET inherits), port-level overrides, oldest wins
// among equals, DISABLE acts as PERMISSIVE, and istiod's conversion quirks are kept.
import t from 'tap';
import { peerAuthentication } from '../../policy/index.js';
import { ap, type Case, connection, ID, mesh, pa, runTable } from './helpers.js';

const mtls = (mode: string) => ({ mtls: { mode } });
const wl = (mode: string | undefined, ports: Record<string, string>) => ({
  selector: { matchLabels: { app: 'web' } },
  ...(mode ? { mtls: { mode } } : {}),
  portLevelMtls: Object.fromEntries(Object.entries(ports).map(([p, m]) => [p, { mode: m }])),
});
const meshStrict = pa('istio-system/default', mtls('STRICT'));

const cases: Case[] = [
  {
    rule: 'no PeerAuthentication: ambient accepts plaintext [L4]',
    docs: [],
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'mesh-wide STRICT (root namespace, no selector) rejects plaintext',
    docs: [meshStrict],
    conn: {},
    verdict: 'deny',
    policy: 'istio-system/default',
    ruleIndex: null,
    reason: /PeerAuthentication istio-system\/default requires mTLS/,
  },
  {
    rule: 'STRICT accepts mTLS peers',
    docs: [meshStrict],
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'STRICT beats an allow-all ALLOW (it is a DENY policy) [istiod policies.go static STRICT]',
    docs: [meshStrict, ap('foo/allow-all', { rules: [{}] })],
    conn: {},
    verdict: 'deny',
    policy: 'istio-system/default',
  },
  {
    rule: 'PERMISSIVE plaintext still goes through AuthorizationPolicy (an ALLOW on principals denies it)',
    docs: [
      pa('istio-system/default', mtls('PERMISSIVE')),
      ap('foo/p', { rules: [{ from: [{ source: { principals: ['*'] } }] }] }),
    ],
    conn: {},
    verdict: 'deny',
    policy: null,
  },
  {
    rule: 'mesh UNSET means PERMISSIVE',
    docs: [pa('istio-system/default', mtls('UNSET'))],
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'a namespace PERMISSIVE overrides a STRICT mesh',
    docs: [meshStrict, pa('foo/ns', mtls('PERMISSIVE'))],
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'a namespace UNSET inherits the STRICT mesh',
    docs: [meshStrict, pa('foo/ns', mtls('UNSET'))],
    conn: {},
    verdict: 'deny',
    policy: 'istio-system/default',
  },
  {
    rule: 'a namespace STRICT applies only to its namespace',
    docs: [pa('bar/ns', mtls('STRICT'))],
    conn: { to: 'foo/web' },
    verdict: 'allow',
  },
  {
    rule: 'a workload STRICT under a PERMISSIVE mesh',
    docs: [
      pa('istio-system/default', mtls('PERMISSIVE')),
      pa('foo/web', { selector: { matchLabels: { app: 'web' } }, ...mtls('STRICT') }),
    ],
    conn: {},
    verdict: 'deny',
    policy: 'foo/web',
  },
  {
    rule: 'a workload PERMISSIVE overrides a STRICT namespace',
    docs: [
      pa('foo/ns', mtls('STRICT')),
      pa('foo/web', { selector: { matchLabels: { app: 'web' } }, ...mtls('PERMISSIVE') }),
    ],
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'a workload DISABLE acts as PERMISSIVE and overrides STRICT (istiod; the docs call it unsupported)',
    docs: [
      meshStrict,
      pa('foo/web', { selector: { matchLabels: { app: 'web' } }, ...mtls('DISABLE') }),
    ],
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'a workload PeerAuthentication whose selector does not match has no effect',
    docs: [pa('foo/db-strict', { selector: { matchLabels: { app: 'db' } }, ...mtls('STRICT') })],
    conn: { to: 'foo/web' },
    verdict: 'allow',
  },
  {
    rule: 'port-level PERMISSIVE under a STRICT workload: plaintext accepted on that port',
    docs: [pa('foo/web', wl('STRICT', { 8080: 'PERMISSIVE' }))],
    conn: { port: 8080 },
    verdict: 'allow',
  },
  {
    rule: 'port-level PERMISSIVE under a STRICT workload: other ports stay STRICT',
    docs: [pa('foo/web', wl('STRICT', { 8080: 'PERMISSIVE' }))],
    conn: { port: 9090 },
    verdict: 'deny',
    policy: 'foo/web',
  },
  {
    rule: 'port-level STRICT under a PERMISSIVE workload: plaintext rejected on that port only',
    docs: [pa('foo/web', wl('PERMISSIVE', { 9090: 'STRICT' }))],
    conn: { port: 9090 },
    verdict: 'deny',
    policy: 'foo/web',
  },
  {
    rule: 'port-level STRICT under a PERMISSIVE workload: other ports accept plaintext',
    docs: [pa('foo/web', wl('PERMISSIVE', { 9090: 'STRICT' }))],
    conn: { port: 8080 },
    verdict: 'allow',
  },
  {
    rule: 'workload UNSET under a STRICT namespace, port PERMISSIVE: that port accepts plaintext',
    docs: [pa('foo/ns', mtls('STRICT')), pa('foo/web', wl(undefined, { 8080: 'PERMISSIVE' }))],
    conn: { port: 8080 },
    verdict: 'allow',
  },
  {
    rule: 'workload UNSET under a STRICT namespace, port PERMISSIVE: other ports inherit STRICT',
    docs: [pa('foo/ns', mtls('STRICT')), pa('foo/web', wl(undefined, { 8080: 'PERMISSIVE' }))],
    conn: { port: 9090 },
    verdict: 'deny',
  },
  {
    rule: 'workload UNSET under a PERMISSIVE mesh, port STRICT: that port rejects plaintext',
    docs: [
      pa('istio-system/default', mtls('PERMISSIVE')),
      pa('foo/web', wl(undefined, { 9090: 'STRICT' })),
    ],
    conn: { port: 9090 },
    verdict: 'deny',
  },
  {
    rule: 'istiod quirk: STRICT parent, workload UNSET, port DISABLE keeps the port STRICT (only PERMISSIVE is honoured)',
    docs: [meshStrict, pa('foo/web', wl(undefined, { 8080: 'DISABLE' }))],
    conn: { port: 8080 },
    verdict: 'deny',
  },
  {
    rule: 'istiod quirk: PERMISSIVE workload under a STRICT mesh (namespace unset) loses its STRICT port',
    docs: [meshStrict, pa('foo/web', wl('PERMISSIVE', { 9090: 'STRICT' }))],
    conn: { port: 9090 },
    verdict: 'allow',
  },
  {
    rule: 'istiod quirk: an explicit namespace UNSET under a STRICT mesh, workload UNSET with a PERMISSIVE port: nothing is enforced',
    docs: [
      meshStrict,
      pa('foo/ns', mtls('UNSET')),
      pa('foo/web', wl(undefined, { 8080: 'PERMISSIVE' })),
    ],
    conn: { port: 9090 },
    verdict: 'allow',
  },
  {
    rule: 'oldest wins among namespace-level policies (STRICT, older) [CON, istiod]',
    docs: [
      pa(
        { namespace: 'foo', name: 'b-new', creationTimestamp: '2024-02-01T00:00:00Z' },
        mtls('PERMISSIVE'),
      ),
      pa(
        { namespace: 'foo', name: 'a-old', creationTimestamp: '2024-01-01T00:00:00Z' },
        mtls('STRICT'),
      ),
    ],
    conn: {},
    verdict: 'deny',
    policy: 'foo/a-old',
  },
  {
    rule: 'oldest wins among namespace-level policies (PERMISSIVE, older)',
    docs: [
      pa(
        { namespace: 'foo', name: 'a-new', creationTimestamp: '2024-02-01T00:00:00Z' },
        mtls('STRICT'),
      ),
      pa(
        { namespace: 'foo', name: 'b-old', creationTimestamp: '2024-01-01T00:00:00Z' },
        mtls('PERMISSIVE'),
      ),
    ],
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'oldest wins among workload-level policies',
    docs: [
      pa(
        { namespace: 'foo', name: 'new', creationTimestamp: '2024-02-01T00:00:00Z' },
        { selector: { matchLabels: { app: 'web' } }, ...mtls('PERMISSIVE') },
      ),
      pa(
        { namespace: 'foo', name: 'old', creationTimestamp: '2024-01-01T00:00:00Z' },
        { selector: { matchLabels: { version: 'v1' } }, ...mtls('STRICT') },
      ),
    ],
    conn: {},
    verdict: 'deny',
    policy: 'foo/old',
  },
  {
    rule: 'a root-namespace PeerAuthentication with a selector is ignored ([PA] note; istiod)',
    docs: [
      pa('istio-system/web-strict', {
        selector: { matchLabels: { app: 'web' } },
        ...mtls('STRICT'),
      }),
    ],
    conn: {},
    verdict: 'allow',
  },
];

t.test('PeerAuthentication', async (t) => runTable(t, cases));

t.test('peerAuthentication() reports the effective mode per port for the agent', async (t) => {
  const snapshot = mesh([meshStrict, pa('foo/web', wl('STRICT', { 8080: 'PERMISSIVE' }))]);
  const web = connection(snapshot, {}).destination.workload;
  const p8080 = peerAuthentication(web, 8080, snapshot);
  t.equal(p8080.mode, 'PERMISSIVE');
  t.equal(p8080.policy, 'foo/web');
  const p9090 = peerAuthentication(web, 9090, snapshot);
  t.equal(p9090.mode, 'STRICT');
  t.equal(p9090.policy, 'foo/web');
  const db = connection(snapshot, { to: 'foo/db' }).destination.workload;
  t.same(peerAuthentication(db, 5432, snapshot), {
    mode: 'STRICT',
    policy: 'istio-system/default',
    reason: 'PeerAuthentication istio-system/default requires mTLS on port 5432',
  });
  const none = mesh([]);
  const w = connection(none, {}).destination.workload;
  t.equal(peerAuthentication(w, 80, none).policy, null);
  t.equal(peerAuthentication(w, 80, none).mode, 'PERMISSIVE');
});
