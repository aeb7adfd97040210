// The inbound decision (agent/proxy/inbound-decision.ts) as a table: what a connection into
// a pod of this node gets, with and without a verified identity; and live re-checking
// (agent/proxy/live.ts): a policy change closes exactly the open connections it now denies,
// and their records report the denial.
import t from 'tap';
import { AgentMetrics } from '../../agent/observe/metrics.js';
import { ConnectionRecord } from '../../agent/observe/record.js';
import { decideInbound, stillAllowed, verdictFields } from '../../agent/proxy/inbound-decision.js';
import { LiveInbound } from '../../agent/proxy/live.js';
import { MeshView } from '../../agent/state.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { createLogger } from '../../lib/logger.js';
import { snapshotFromYaml } from '../helpers/snapshot.js';

const PODS = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-1, namespace: shop, labels: {app: ratings}}
spec: {serviceAccountName: ratings, nodeName: node-b}
status: {podIP: 10.0.2.3}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {serviceAccountName: web, nodeName: node-a}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: plain-1, namespace: legacy}
spec: {serviceAccountName: default, nodeName: node-b}
status: {podIP: 10.0.2.9}
`;
const ONLY_REVIEWS = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-from-reviews, namespace: shop}
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/reviews]}}]}]
`;
const STRICT = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec: {mtls: {mode: STRICT}}
`;

const view = (...docs: string[]) =>
  new MeshView(snapshotFromYaml([PODS, ...docs].join('\n---\n')), 'node-b', 'istio-system');
const id = (sa: string) => SpiffeId.of('cluster.local', 'shop', sa);
const WEB = id('web');
const REVIEWS = id('reviews');

t.test('the decision, row by row', async (t) => {
  const rows: [string, MeshView, SpiffeId | undefined, string, string][] = [
    ['no policy: mTLS allowed', view(), WEB, '10.0.2.3', 'allow'],
    ['no policy: plaintext allowed (PERMISSIVE)', view(), undefined, '10.0.2.3', 'allow'],
    ['STRICT: plaintext denied', view(STRICT), undefined, '10.0.2.3', 'deny DENY'],
    ['STRICT: mTLS allowed', view(STRICT), WEB, '10.0.2.3', 'allow'],
    ['ALLOW reviews: reviews allowed', view(ONLY_REVIEWS), REVIEWS, '10.0.2.3', 'allow'],
    ['ALLOW reviews: web denied', view(ONLY_REVIEWS), WEB, '10.0.2.3', 'deny DENY'],
    ['a pod of another node: not ours', view(), WEB, '10.0.1.1', 'deny NOT_LOCAL'],
    ['a pod outside the mesh: not ours', view(), WEB, '10.0.2.9', 'deny NOT_LOCAL'],
    ['an unknown address: not ours', view(), WEB, '10.9.9.9', 'deny NOT_LOCAL'],
  ];
  for (const [name, v, peerIdentity, targetIp, want] of rows) {
    const verdict = decideInbound(v, {
      peerIdentity,
      peerIp: '10.0.1.1',
      targetIp,
      targetPort: 9080,
    });
    t.equal(verdict.allow ? 'allow' : `deny ${verdict.code}`, want, name);
    const fields = verdictFields(verdict);
    t.equal(fields.verdict, verdict.allow ? 'allow' : 'deny', `${name}: record field`);
    if (!verdict.allow && verdict.code === 'NOT_LOCAL') t.equal(verdict.workload, undefined);
    else t.equal(verdict.workload?.meta.name, 'ratings-1', `${name}: the pod`);
  }
  const denied = decideInbound(view(ONLY_REVIEWS), {
    peerIdentity: WEB,
    peerIp: '10.0.1.1',
    targetIp: '10.0.2.3',
    targetPort: 9080,
  });
  t.equal(verdictFields(denied).policy, null, 'an ALLOW that does not match names no policy');
  t.match(verdictFields(denied).reason, /ALLOW/, 'and says why');
});

t.test('stillAllowed re-decides an open connection against a new view', async (t) => {
  const verdict = decideInbound(view(), {
    peerIdentity: WEB,
    peerIp: '10.0.1.1',
    targetIp: '10.0.2.3',
    targetPort: 9080,
  });
  if (!verdict.allow) throw new Error('expected allow');
  t.equal(stillAllowed(view(), verdict.connection)?.verdict, 'allow');
  t.equal(stillAllowed(view(ONLY_REVIEWS), verdict.connection)?.verdict, 'deny');
  const gone = new MeshView(snapshotFromYaml(''), 'node-b', 'istio-system');
  t.equal(stillAllowed(gone, verdict.connection), undefined, 'the pod left: nothing to allow');
});

t.test('live re-checking closes what the new policy denies, and records it', async (t) => {
  const live = new LiveInbound();
  const lines: Record<string, unknown>[] = [];
  const metrics = new AgentMetrics();
  t.teardown(() => metrics.close());
  const closed: string[] = [];
  const open = (peer: SpiffeId, name: string) => {
    const verdict = decideInbound(view(), {
      peerIdentity: peer,
      peerIp: '10.0.1.1',
      targetIp: '10.0.2.3',
      targetPort: 9080,
    });
    if (!verdict.allow) throw new Error('expected allow');
    let end!: () => void;
    const ended = new Promise<void>((r) => {
      end = r;
    });
    const done = ConnectionRecord.run(
      {
        direction: 'inbound',
        src: { addr: '10.0.1.1:1000', identity: peer.toString() },
        dst: { addr: '10.0.2.3:9080' },
        security: 'mutual_tls',
        ...verdictFields(verdict),
      },
      metrics,
      { write: (l) => lines.push(l) },
      async (record) => {
        const entry = {
          connection: verdict.connection,
          record,
          close: () => {
            closed.push(name);
            end(); // what closing the pod socket does: the join ends with a reset
          },
        };
        live.add(entry);
        await ended;
        live.delete(entry);
        return { sent: 1, received: 2, error: new Error('read ECONNRESET') };
      },
      { refuse: () => {} },
    );
    return { done, end };
  };
  const web = open(WEB, 'web');
  const reviews = open(REVIEWS, 'reviews');
  t.equal(live.size, 2);
  const { logger } = { logger: createLogger({ level: 'silent' }) };
  t.equal(live.recheck(view(), logger), 0, 'the same policy closes nothing');
  t.equal(live.recheck(view(ONLY_REVIEWS), logger), 1, 'one is now denied');
  t.same(closed, ['web']);
  await web.done;
  t.equal(live.size, 1, 'the denied one is no longer live');
  const line = lines.find((l) => l['src.identity'] === WEB.toString())!;
  t.equal(line['verdict'], 'deny');
  t.equal(line['error_code'], 'DENY', 'recorded as the denial, not as the reset it caused');
  t.equal(line['policy'], undefined, 'no policy matched (ALLOW without a match)');
  t.match(String(line['error']), /closed by a policy change/);
  reviews.end();
  await reviews.done;
  const ok = lines.find((l) => l['src.identity'] === REVIEWS.toString())!;
  t.equal(ok['error_code'], 'CONNECTION_RESET', 'the other one ended on its own');
  t.equal(live.size, 0);
  t.equal(lines.length, 2, 'one line per connection');
});
