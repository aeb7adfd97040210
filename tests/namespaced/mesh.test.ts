// Transparent interception with unmodified programs on a two-node cluster in network
// namespaces (testkit/topology.ts, pods.ts): curl by pod IP and by a Service VIP only the
// agents know, the caller's verified identity in the server side's access log,
// AuthorizationPolicy DENY, STRICT and PERMISSIVE against plaintext from a non-mesh pod and
// a host outside the mesh, passthrough to a non-mesh pod, and same-node traffic through the
// agent with policy.
// Root only (CI runs it); elsewhere it skips and says what it needs.
import t from 'tap';
import { EXT_IP } from '../../testkit/topology.js';
import {
  accessAfter,
  CLIENT_ID,
  CLOSED,
  type Cluster,
  clusterCannotRun,
  hello,
  podToPodThroughHbone,
  serviceVipThroughHbone,
  startCluster,
} from './cluster.js';
import { podByName, SERVICE_VIP } from './pods.js';

const why = clusterCannotRun();
if (why) t.comment(`namespaced mesh tests skipped: ${why}`);

const ip = (name: string) => podByName(name).ip;

t.test(
  'two-node mesh in namespaces',
  { skip: why ? `skipped: ${why}` : false, timeout: 90_000 },
  async (t) => {
    const c: Cluster = await startCluster(t);

    await t.test(
      'curl pod(node-1) -> pod(node-2) by pod IP: through HBONE, identity verified',
      (t) => podToPodThroughHbone(t, c),
    );

    await t.test('curl by a Service VIP that only the agents know', async (t) => {
      await serviceVipThroughHbone(t, c);
      const plain = await c.curl('legacy-1', `http://${SERVICE_VIP}/hello.txt`, 3);
      t.not(plain.code, 0, 'a non-mesh pod cannot use the VIP: nothing else routes it');
    });

    await t.test('AuthorizationPolicy DENY: the client is closed without data', async (t) => {
      const res = await c.curl('client-1', `http://${ip('web-2')}:9090/hello.txt`);
      t.ok(CLOSED.includes(res.code), `curl: empty reply or reset (exit ${res.code})`);
      t.equal(res.body, '', 'no data');
      const server = await accessAfter(c, 'n2', {
        direction: 'inbound',
        'dst.hbone_addr': `${ip('web-2')}:9090`,
      });
      t.equal(server.at(-1)?.verdict, 'deny');
      t.equal(server.at(-1)?.policy, 'strict/deny-9090');
      t.equal(server.at(-1)?.['src.identity'], CLIENT_ID);
      // ztunnel's access log: a failed connection at error level, the error text in `error`.
      t.equal(server.at(-1)?.['level'], 'error', 'logged at error level');
      t.equal(server.at(-1)?.['msg'], 'connection complete');
      t.equal(server.at(-1)?.['response_flags'], 'DENY');
      t.type(server.at(-1)?.['error'], 'string');
    });

    await t.test(
      'STRICT: neither a non-mesh pod nor a host outside the mesh gets in',
      async (t) => {
        for (const from of ['legacy-1', 'legacy-2', 'ext']) {
          const res = await c.curl(from, `http://${ip('web-2')}:8080/hello.txt`, 5);
          t.not(res.code, 0, `${from} refused (curl exit ${res.code})`);
          t.equal(res.body, '', `${from} got no data`);
        }
        const denied = await accessAfter(
          c,
          'n2',
          {
            direction: 'inbound',
            security: 'none',
            'dst.addr': `${ip('web-2')}:8080`,
            verdict: 'deny',
          },
          3,
        );
        const sources = denied.map((l) => String(l['src.addr']).split(':')[0]);
        t.ok(sources.includes(ip('legacy-1')), 'the non-mesh pod, by its own IP');
        t.ok(sources.includes(EXT_IP), 'the outside host');
      },
    );

    await t.test(
      'PERMISSIVE: the non-mesh pod and the outside host get in, as plaintext',
      async (t) => {
        for (const from of ['legacy-1', 'ext']) {
          await hello(t, c, from, `http://${ip('open-2')}:8080/hello.txt`);
        }
        const allowed = await accessAfter(
          c,
          'n2',
          {
            direction: 'inbound',
            security: 'none',
            'dst.addr': `${ip('open-2')}:8080`,
            verdict: 'allow',
          },
          2,
        );
        t.ok(allowed.length >= 2, 'both went through the inbound plaintext capture');
        t.equal(allowed.at(-1)?.security, 'none');
      },
    );

    await t.test('mesh pod -> non-mesh pod: passthrough', async (t) => {
      await hello(t, c, 'client-1', `http://${ip('legacy-2')}:8080/hello.txt`);
      const out = await accessAfter(c, 'n1', {
        direction: 'outbound',
        'dst.addr': `${ip('legacy-2')}:8080`,
      });
      t.equal(out.at(-1)?.security, 'none', 'plain TCP, no tunnel');
      t.equal(out.at(-1)?.['dst.workload'], 'legacy-2');
      t.equal(out.at(-1)?.['dst.hbone_addr'], undefined);
    });

    await t.test('same node: through the agent, with policy', async (t) => {
      await hello(t, c, 'client-1', `http://${ip('peer-1')}:8080/hello.txt`);
      const allowed = await accessAfter(c, 'n1', {
        direction: 'outbound',
        'dst.addr': `${ip('peer-1')}:8080`,
      });
      t.equal(allowed.at(-1)?.verdict, 'allow', 'the inbound decision was made');
      t.equal(allowed.at(-1)?.['src.identity'], CLIENT_ID);
      const denied = await c.curl('client-1', `http://${ip('peer-1')}:9090/hello.txt`);
      t.ok(CLOSED.includes(denied.code), `denied on the same node (curl exit ${denied.code})`);
      t.equal(denied.body, '');
      const line = (
        await accessAfter(c, 'n1', { direction: 'outbound', 'dst.addr': `${ip('peer-1')}:9090` })
      ).at(-1);
      t.equal(line?.verdict, 'deny');
      t.equal(line?.policy, 'strict/deny-9090');
      const strict = await c.curl('legacy-1', `http://${ip('peer-1')}:8080/hello.txt`, 5);
      t.not(strict.code, 0, 'and STRICT holds against the non-mesh pod next door');
    });
  },
);
