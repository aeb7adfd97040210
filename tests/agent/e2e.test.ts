// Two agents, the CA and apps in one process on loopback: the mesh end to end.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Socks5Refused, socks5Connect } from '../../lib/socks5-client.js';
import { converse, readUntil } from '../helpers/apps.js';
import { eventually } from '../helpers/eventually.js';
import { RATINGS_ONLY_FROM_REVIEWS, startWorld, type World } from '../helpers/world.js';

const web = (w: World) => ({ localAddress: w.ip('10.1') });

t.test(
  'SOCKS5 → HBONE → pod: the right pod answers, the caller identity is verified',
  async (t) => {
    const w = await startWorld(t, { files: { 'policy.yaml': RATINGS_ONLY_FROM_REVIEWS } });
    const s = await socks5Connect(
      w.socks('node-a'),
      { host: w.ip('20.3'), port: 9080 },
      { localAddress: w.ip('20.1') },
    ).catch((e) => e);
    t.type(s, Socks5Refused, 'reviews-1 does not run on node-a, so node-a cannot speak for it');

    const conn = await socks5Connect(w.socks('node-a'), { host: w.ip('20.1'), port: 9080 }, web(w));
    const localPort = conn.localPort;
    const answer = await converse(conn, ['hello']);
    t.equal(answer, 'reviews-1 hello\nreviews-1 bye\n', 'data both ways and the half-close answer');
    await eventually(() => w.access.get('node-b')!.length > 0, 'inbound access log');
    const inbound = w.access.get('node-b')!.find((l) => l['direction'] === 'inbound')!;
    t.equal(
      inbound['src.identity'],
      'spiffe://cluster.local/ns/shop/sa/web',
      'the server side saw the verified caller',
    );
    t.equal(inbound['dst.workload'], 'reviews-1');
    t.equal(inbound['verdict'], 'allow');
    t.equal(
      inbound['src.addr'],
      `${w.ip('10.1')}:${localPort}`,
      'the pod address came through forwarded-for',
    );
    // ztunnel's meanings: an inbound line counts from the server's side.
    t.equal(inbound['bytes_recv'], 'hello\n'.length, 'inbound: bytes received from the client');
    t.equal(inbound['bytes_sent'], answer.length, 'inbound: bytes sent back to the client');
    t.equal(inbound['dst.hbone_addr'], `${w.ip('20.1')}:9080`, 'the CONNECT target');
    t.match(inbound['duration'], /^\d+ms$/, "ztunnel's duration form");
    await eventually(
      () =>
        w.access
          .get('node-a')!
          .some((l) => l['direction'] === 'outbound' && l['dst.workload'] === 'reviews-1'),
      'outbound access log',
    );
    const outbound = w.access.get('node-a')!.find((l) => l['dst.workload'] === 'reviews-1')!;
    t.equal(outbound['dst.identity'], 'spiffe://cluster.local/ns/shop/sa/reviews');
    t.equal(outbound['dst.addr'], `127.0.0.2:${w.hbonePort}`, 'the address dialed (L4)');
    t.equal(outbound['dst.hbone_addr'], `${w.ip('20.1')}:9080`, 'the CONNECT target');
    t.equal(outbound['bytes_sent'], 'hello\n'.length, 'outbound: bytes the client sent');
    t.equal(outbound['bytes_recv'], answer.length, 'outbound: bytes back to the client');
    t.equal(outbound['src.cluster'], 'Kubernetes');
    t.equal(outbound['dst.cluster'], 'Kubernetes');
  },
);

t.test('a policy deny closes the connection without data, and is logged and counted', async (t) => {
  const w = await startWorld(t, { files: { 'policy.yaml': RATINGS_ONLY_FROM_REVIEWS } });
  const err = await socks5Connect(
    w.socks('node-a'),
    { host: w.ip('20.3'), port: 9080 },
    web(w),
  ).catch((e) => e);
  t.type(err, Socks5Refused);
  t.equal((err as Socks5Refused).replyCode, 2, 'SOCKS5 "not allowed by ruleset"');
  await eventually(
    () => w.access.get('node-b')!.some((l) => l['verdict'] === 'deny'),
    'deny logged',
  );
  const line = w.access.get('node-b')!.find((l) => l['verdict'] === 'deny')!;
  t.equal(line['policy'], undefined, 'no policy denied it: no ALLOW policy matched');
  t.match(line['reason'], /no ALLOW policy matched.*shop\/ratings-from-reviews/);
  t.equal(line['response_flags'], 'DENY');
  t.match(line['error'], /no ALLOW policy matched/, "ztunnel's error field: the error text");
  t.equal(line['bytes_sent'], 0);
  const admin = w.mesh.agents.get('node-b')!.addresses().admin[0]!;
  const metrics = await fetch(`http://${admin.host}:${admin.port}/metrics`).then((r) => r.text());
  t.match(metrics, /mtun_policy_decisions_total\{verdict="deny"\} 1/);
  t.match(
    metrics,
    /istio_tcp_connections_closed_total\{reporter="destination",source_workload="web-1",.*response_flags="DENY".*\} 1/,
  );
  t.match(
    metrics,
    /istio_tcp_connections_failed_total\{reporter="destination",source_workload="web-1",.*response_flags="DENY".*\} 1/,
  );
  const outbound = w.access.get('node-a')!.find((l) => l['dst.workload'] === 'ratings-1')!;
  t.equal(outbound['response_flags'], 'DENY', 'the source side records the refusal too');
});

t.test('a service host name balances across its ready endpoints', async (t) => {
  const w = await startWorld(t);
  const seen = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const conn = await socks5Connect(
      w.socks('node-a'),
      { host: 'reviews.shop.svc.cluster.local', port: 80 },
      web(w),
    );
    const answer = await converse(conn, ['hi']);
    const pod = answer.split(' ')[0]!;
    seen.set(pod, (seen.get(pod) ?? 0) + 1);
  }
  t.same([...seen.keys()].sort(), ['reviews-1', 'reviews-2']);
  t.ok(
    Math.min(...seen.values()) >= 8,
    `both endpoints get a fair share: ${JSON.stringify([...seen])}`,
  );
  const viaIp = await converse(
    await socks5Connect(w.socks('node-a'), { host: w.ip('30.1'), port: 80 }, web(w)),
    ['x'],
  );
  t.match(viaIp, /^reviews-[12] x\n/, 'the cluster IP works too');
  const none = await socks5Connect(
    w.socks('node-a'),
    { host: 'nothing.shop', port: 80 },
    web(w),
  ).catch((e) => e);
  t.type(none, Socks5Refused, 'unknown service refused quickly');
});

t.test('same-node traffic takes the short cut but still passes the inbound decision', async (t) => {
  const deny = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-deny-web, namespace: shop}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}]
`;
  const w = await startWorld(t, { files: { 'deny.yaml': deny } });
  const err = await socks5Connect(
    w.socks('node-a'),
    { host: w.ip('10.2'), port: 9080 },
    web(w),
  ).catch((e) => e);
  t.type(err, Socks5Refused, 'denied on the same node');
  await writeFile(join(w.meshDir, 'deny.yaml'), '# mtun: empty\n'); // emptied on purpose
  await eventually(async () => {
    try {
      await converse(
        await socks5Connect(w.socks('node-a'), { host: w.ip('10.2'), port: 9080 }, web(w)),
        ['x'],
      );
      return true;
    } catch {
      return false;
    }
  }, 'allowed once the policy is gone');
  t.ok(
    w.access
      .get('node-a')!
      .some((l) => l['dst.workload'] === 'details-1' && l['verdict'] === 'allow'),
  );
});

t.test('editing a policy file closes a now-denied open connection', async (t) => {
  const w = await startWorld(t);
  const conn = await socks5Connect(w.socks('node-a'), { host: w.ip('20.1'), port: 9080 }, web(w));
  conn.write('one\n');
  t.match(await readUntil(conn, /one\n/), /reviews-1 one/);
  const closed = new Promise<void>((r) => conn.once('close', () => r()));
  conn.on('error', () => {});
  await writeFile(
    join(w.meshDir, 'deny.yaml'),
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: no-web, namespace: shop}\nspec:\n  action: DENY\n  rules: [{from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}]}]\n`,
  );
  await closed;
  t.pass('the open connection was closed');
  await eventually(
    () =>
      w.access
        .get('node-b')!
        .some((l) => String(l['error'] ?? '').includes('closed by a policy change')),
    'logged',
  );
});

t.test(
  'a service with no ready endpoint is refused quickly, with a clear access-log error',
  async (t) => {
    const empty = (net: string) =>
      `apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: shop}\nspec: {clusterIP: ${net}, selector: {app: nothing}, ports: [{port: 80}]}\n`;
    const w = await startWorld(t);
    await writeFile(join(w.meshDir, 'empty.yaml'), empty(w.ip('30.9')));
    await eventually(
      () =>
        w.mesh.agents.get('node-a')!.ctx.state.current.snapshot.serviceByIp(w.ip('30.9')) !==
        undefined,
      'service loaded',
    );
    const started = Date.now();
    const err = await socks5Connect(
      w.socks('node-a'),
      { host: 'empty.shop', port: 80 },
      web(w),
    ).catch((e) => e);
    t.type(err, Socks5Refused);
    t.ok(Date.now() - started < 1_000, 'refused at once, not after a timeout');
    const line = w.access.get('node-a')!.find((l) => l['error_code'] === 'NO_HEALTHY_UPSTREAM');
    t.match(line?.['error'], /service shop\/empty has no ready endpoint for port 80/);
    t.equal(line?.['response_flags'], 'CONNECT', "ztunnel's flag for a connection failure");
  },
);
