// The outbound edges under a hostile local process (issue 12, item 5): another spelling of a
// mesh pod's address (`::ffff:a.b.c.d`), asked through SOCKS5 or reported as a captured
// original destination, must reach the pod over HBONE under its policy, never around it in
// plaintext; and a process whose address is no pod of the node gets no SOCKS5 relay.
import { connect } from 'node:net';
import t from 'tap';
import { socks5Source } from '../../agent/proxy/socks5.js';
import { MeshView } from '../../agent/state.js';
import { Socks5Refused, socks5Connect } from '../../lib/socks5-client.js';
import { converse, startApp, stopApps } from '../helpers/apps.js';
import { snapshotFromYaml } from '../helpers/snapshot.js';
import { RATINGS_DENY_WEB, startWorld } from '../helpers/world.js';

t.test('a DENY holds for the IPv4-mapped IPv6 form of the pod address', async (t) => {
  const w = await startWorld(t, { files: { 'deny.yaml': RATINGS_DENY_WEB } });
  const attempt = (host: string) =>
    socks5Connect(w.socks('node-a'), { host, port: 9080 }, { localAddress: w.ip('10.1') }).then(
      (s) => converse(s, ['secret']),
      (e: Error) => (e instanceof Socks5Refused ? `refused ${e.replyCode}` : e.message),
    );
  t.equal(await attempt(w.ip('20.3')), 'refused 2', 'the pod address: denied');
  for (const spelled of [`::ffff:${w.ip('20.3')}`, `0:0:0:0:0:ffff:${w.ip('20.3')}`]) {
    t.equal(await attempt(spelled), 'refused 2', `${spelled}: denied too`);
  }
  const inbound = w.access.get('node-b')!.filter((l) => l['dst.workload'] === 'ratings-1');
  t.equal(inbound.length, 3, 'each attempt reached the receiving agent over HBONE');
  t.ok(
    inbound.every((l) => l['verdict'] === 'deny' && l['policy'] === 'shop/ratings-deny-web'),
    'and was denied by the policy',
  );
  t.notOk(
    w.access.get('node-a')!.some((l) => l['security'] === 'none' && !l['error']),
    'nothing went out in plaintext',
  );
  // The mapped form of an allowed pod works, as the pod (mTLS).
  const ok = await attempt(`::ffff:${w.ip('20.1')}`);
  t.match(ok, /^reviews-1 secret\n/, 'an allowed pod by its mapped address: reached');
  t.ok(
    w.access
      .get('node-b')!
      .some((l) => l['dst.workload'] === 'reviews-1' && l['security'] === 'mutual_tls'),
  );
});

t.test(
  'a captured original destination in IPv4-mapped form is the pod, under its DENY',
  async (t) => {
    // The kernel's answer is the seam (no iptables here); attempts are one at a time, so
    // "the destination the next connection was redirected from" is one variable.
    let redirectedFrom = '';
    const world = await startWorld(t, {
      files: { 'deny.yaml': RATINGS_DENY_WEB },
      originalDestination: () => ({ ip: redirectedFrom, port: 9080 }),
    });
    const capture = world.mesh.agents.get('node-a')!.addresses().outbound!;
    const attempt = (ip: string) =>
      new Promise<string>((resolve) => {
        redirectedFrom = ip;
        const s = connect({
          host: capture.host,
          port: capture.port,
          localAddress: world.ip('10.1'),
        });
        let out = '';
        s.on('data', (d) => (out += d));
        s.on('error', () => {});
        s.on('close', () => resolve(out === '' ? 'closed' : out));
        s.write('secret\n');
        s.end();
      });
    t.equal(await attempt(`::ffff:${world.ip('20.3')}`), 'closed', 'denied: closed without data');
    const line = world.access.get('node-b')!.find((l) => l['dst.workload'] === 'ratings-1');
    t.equal(line?.['verdict'], 'deny', 'by the receiving agent, over HBONE');
    t.match(await attempt(`::ffff:${world.ip('20.1')}`), /^reviews-1 secret\n/, 'allowed pod');
  },
);

t.test('a local process that is no pod gets no plain-TCP relay', async (t) => {
  const w = await startWorld(t);
  // A non-mesh service on this host (as the CA, or another agent's admin port, would be).
  const target = await startApp('private', w.ip('99.1'), 9080);
  t.teardown(() => stopApps([target]));
  const fromNoPod = await socks5Connect(
    w.socks('node-a'),
    { host: w.ip('99.1'), port: 9080 },
    { localAddress: w.ip('98.1') },
  ).then(
    (s) => converse(s, ['x']),
    (e: Error) => (e instanceof Socks5Refused ? `refused ${e.replyCode}` : e.message),
  );
  t.equal(fromNoPod, 'refused 2', 'refused: connection not allowed by ruleset');
  const line = w.access.get('node-a')!.find((l) => l['error_code'] === 'UNKNOWN_SOURCE');
  t.match(line?.['error'], /source 127\.\d+\.98\.1 is no pod of node node-a/);
  t.equal(target.sockets.size, 0, 'the private service never saw a connection');
  // A pod of the node still reaches non-mesh addresses (passthrough, as with capture).
  const fromPod = await socks5Connect(
    w.socks('node-a'),
    { host: w.ip('99.1'), port: 9080 },
    { localAddress: w.ip('10.1') },
  ).then((s) => converse(s, ['x']));
  t.match(fromPod, /^private x\n/, 'a pod of the node: passed through');
});

const YAML = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
spec: {serviceAccountName: web, nodeName: node-a}
status: {podIP: 198.18.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy-1, namespace: shop, labels: {istio.io/dataplane-mode: none}}
spec: {nodeName: node-a}
status: {podIP: 198.18.1.9}
---
apiVersion: v1
kind: Pod
metadata: {name: far-1, namespace: shop}
spec: {serviceAccountName: far, nodeName: node-b}
status: {podIP: 198.18.2.1}
`;
const view = new MeshView(snapshotFromYaml(YAML), 'node-a', 'istio-system');
const base = { node: 'node-a', socks5Workload: undefined, socks5AllowNonPodClients: false };
const cases: [string, string, Partial<typeof base> | { socks5Workload: string }, string][] = [
  // name, source IP, config, expected: 'mesh <pod>' | 'no identity' | 'refused'
  ['mesh pod of this node: its identity', '198.18.1.1', {}, 'mesh web-1'],
  ['non-mesh pod of this node: relayed, no identity', '198.18.1.9', {}, 'no identity'],
  ['pod of another node: refused', '198.18.2.1', {}, 'refused'],
  ['no pod at all: refused', '127.0.0.1', {}, 'refused'],
  [
    'no pod, --socks5-workload names a local mesh pod',
    '127.0.0.1',
    { socks5Workload: 'shop/web-1' },
    'mesh web-1',
  ],
  [
    'no pod, --socks5-workload names a pod elsewhere: refused',
    '127.0.0.1',
    { socks5Workload: 'shop/far-1' },
    'refused',
  ],
  [
    'no pod, --socks5-allow-non-pod-clients: relayed, no identity',
    '127.0.0.1',
    { socks5AllowNonPodClients: true },
    'no identity',
  ],
];
for (const [name, ip, config, want] of cases) {
  t.test(`socks5Source: ${name}`, async (t) => {
    const got = socks5Source(ip, view, { ...base, ...config });
    const summary = !got.allowed
      ? 'refused'
      : got.workload
        ? `mesh ${got.workload.meta.name}`
        : 'no identity';
    t.equal(summary, want);
    if (!got.allowed) t.match(got.reason, /no pod of node node-a/);
  });
}
