// Table: the hardened profile (policy/hardened.ts). STRICT mesh-wide that no PeerAuthentication
// weakens, deny-by-default that ALLOW policies open (Charmed Istio's global allow-nothing, not a
// DENY-all), explicit DENY still first, and kubelet probes from istio-cni's probe SNAT address
// exempt; the same table without the profile shows what it changes.
import t from 'tap';
import { authorize, compile, peerAuthentication } from '../../policy/index.js';
import { ap, type Case, connection, ID, mesh, pa } from './helpers.js';

const allowApi = ap('foo/allow-api', {
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/bar/sa/api'] } }] }],
});
const permissive = pa('foo/open', { mtls: { mode: 'PERMISSIVE' } });

const rows: (Case & { plain: 'allow' | 'deny' })[] = [
  {
    rule: 'mTLS, no ALLOW policy for the workload: deny (deny-by-default)',
    docs: [],
    conn: { from: ID.api },
    verdict: 'deny',
    plain: 'allow',
    policy: null,
    reason: /istio-system\/mtun-hardened-allow-nothing \(the hardened profile/,
  },
  {
    rule: 'mTLS named by an ALLOW policy: allow, decided by that policy',
    docs: [allowApi],
    conn: { from: ID.api },
    verdict: 'allow',
    plain: 'allow',
    policy: 'foo/allow-api',
  },
  {
    rule: 'mTLS from another caller than the ALLOW policy names: deny',
    docs: [allowApi],
    conn: { from: ID.admin },
    verdict: 'deny',
    plain: 'deny',
  },
  {
    rule: 'an explicit DENY still wins over the ALLOW policy',
    docs: [
      allowApi,
      ap('foo/deny-api', {
        action: 'DENY',
        rules: [{ from: [{ source: { namespaces: ['bar'] } }] }],
      }),
    ],
    conn: { from: ID.api },
    verdict: 'deny',
    plain: 'deny',
    policy: 'foo/deny-api',
  },
  {
    rule: 'plaintext under PERMISSIVE: deny (STRICT mesh-wide, the PeerAuthentication not consulted)',
    docs: [permissive, ap('foo/allow-all', { rules: [{}] })],
    conn: {},
    verdict: 'deny',
    plain: 'allow',
    policy: 'istio-system/mtun-hardened-strict',
    reason: /hardened profile requires mTLS/,
  },
  {
    rule: "plaintext from the node's own address (kube-proxy SNAT looks the same): deny",
    docs: [permissive],
    conn: { ip: '10.0.0.1' },
    verdict: 'deny',
    plain: 'allow',
  },
  {
    rule: "a kubelet probe SNATed to istio-cni's 169.254.7.127: allow, no policy needed",
    docs: [],
    conn: { ip: '169.254.7.127' },
    verdict: 'allow',
    plain: 'allow',
    policy: 'istio-system/mtun-hardened-allow-nothing',
  },
];

for (const row of rows) {
  t.test(row.rule, async (t) => {
    const snapshot = mesh(row.docs);
    const conn = connection(snapshot, row.conn);
    const hard = authorize(conn, compile(snapshot, { hardened: true }));
    t.equal(hard.verdict, row.verdict, `hardened: ${hard.reason}`);
    if (row.policy !== undefined) t.equal(hard.policy, row.policy, 'deciding policy');
    if (row.reason) t.match(hard.reason, row.reason);
    t.equal(authorize(conn, compile(snapshot)).verdict, row.plain, 'without the profile');
  });
}

t.test(
  'the mTLS mode reported: STRICT, by the profile, whatever the PeerAuthentication',
  async (t) => {
    const snapshot = mesh([permissive]);
    const web = snapshot.workload('foo', 'web')!;
    t.match(peerAuthentication(web, 8080, compile(snapshot, { hardened: true })), {
      mode: 'STRICT',
      policy: 'istio-system/mtun-hardened-strict',
    });
    t.match(peerAuthentication(web, 8080, compile(snapshot)), {
      mode: 'PERMISSIVE',
      policy: 'foo/open',
    });
  },
);
