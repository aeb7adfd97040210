// The operator's questions on the two-node namespaced mesh (issue 17): `mtun config` and
// `mtun check` against the live agents, for an mTLS link, a denied link and a bypassed one.
// The bypass is made as a kernel load balancer makes it: a rule in node-1 ahead of the
// capture lets client-1's traffic to open-2 leave the node untouched, so node-2's agent
// gets it as plaintext on 15006 from a mesh pod's address. It must notice within seconds
// (metric, one warning), `mtun check` must say so, and --refuse-bypassed-plaintext must
// refuse it even under PERMISSIVE. The agents' admin endpoints listen on the fabric so that
// the CLI runs from the control namespace, as an operator's laptop would. Root only.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { MTUN_CLI } from '../../testkit/process.js';
import { NODE_IP, NODE_NAME } from '../../testkit/topology.js';
import {
  accessAfter,
  CLOSED,
  type Cluster,
  clusterCannotRun,
  hello,
  startCluster,
  waitUntil,
} from './cluster.js';
import { podByName } from './pods.js';

const why = clusterCannotRun();
if (why) t.comment(`namespaced operator tests skipped: ${why}`);

const ip = (name: string) => podByName(name).ip;
const admin = (node: 'n1' | 'n2') => `http://${NODE_IP[node]}:15000`;

t.test(
  'mtun config and mtun check on the namespaced mesh; capture bypass detected and refused',
  { skip: why ? `skipped: ${why}` : false, timeout: 150_000 },
  async (t) => {
    let refuse = false;
    let hardened = false;
    const c: Cluster = await startCluster(t, {
      extraAgentArgs: (node) => [
        '--admin',
        `${NODE_IP[node]}:15000`,
        ...(refuse && node === 'n2' ? ['--refuse-bypassed-plaintext'] : []),
        ...(hardened ? ['--hardened'] : []),
      ],
    });
    const mtun = async (args: string[]) => {
      const r = await c.ns.exec('ctl', process.execPath, [...MTUN_CLI, ...args], {
        timeoutMs: 60_000,
      });
      t.comment(`$ mtun ${args.join(' ')}\n${r.stdout}${r.stderr}(exit ${r.code})`);
      return r;
    };
    const check = (src: string, dst: string) =>
      mtun([
        'check',
        src,
        dst,
        '--mesh',
        join(c.dir, 'mesh'),
        '--admin-for',
        `${NODE_NAME.n1}=${admin('n1')}`,
        `${NODE_NAME.n2}=${admin('n2')}`,
      ]);

    await t.test('mtun config: the tables of a live agent', async (t) => {
      const w = await mtun(['config', 'workloads', '--admin', admin('n2')]);
      t.equal(w.code, 0);
      t.match(w.stdout, /^NAMESPACE\s+POD NAME\s+ADDRESS\s+NODE\s+WAYPOINT\s+PROTOCOL$/m);
      t.match(
        w.stdout,
        new RegExp(`^strict\\s+web-2\\s+${ip('web-2')}\\s+node-2\\s+None\\s+HBONE$`, 'm'),
      );
      t.match(
        w.stdout,
        new RegExp(`^legacy\\s+legacy-1\\s+${ip('legacy-1')}\\s+node-1\\s+None\\s+TCP$`, 'm'),
      );
      const s = await mtun(['config', 'services', '--admin', admin('n2')]);
      t.match(s.stdout, /^strict\s+web\s+198\.19\.0\.10\s+None\s+1\/1$/m);
      const p = await mtun(['config', 'policies', '--admin', admin('n2')]);
      t.match(p.stdout, /^strict\s+deny-9090\s+Deny\s+Namespace$/m);
      const certs = await mtun(['config', 'certificates', '--admin', admin('n2')]);
      t.match(
        certs.stdout,
        /^spiffe:\/\/cluster\.local\/ns\/strict\/sa\/web\s+Leaf\s+Available\s+true\s+[0-9a-f]+\s+\S+Z\s+\S+Z\s+\d{4}-\S+Z$/m,
        'the leaf, valid, with its next renewal',
      );
      t.match(
        certs.stdout,
        /^spiffe:\/\/cluster\.local\/ns\/strict\/sa\/web\s+Root\s+Available\s+true/m,
      );
      const json = await mtun(['config', 'policies', '--admin', admin('n2'), '-o', 'json']);
      t.same(
        (JSON.parse(json.stdout) as { name: string }[]).map((x) => x.name),
        ['deny-9090'],
      );
      const yaml = await mtun(['config', 'workloads', '--admin', admin('n1'), '-o', 'yaml']);
      t.match(yaml.stdout, /^- uid: Kubernetes\/\/Pod\//m);
    });

    await t.test("an mTLS link: exit 0, with both agents' evidence", async (t) => {
      await hello(t, c, 'client-1', `http://${ip('web-2')}:8080/hello.txt`);
      await accessAfter(c, 'n2', { direction: 'inbound', 'dst.hbone_addr': `${ip('web-2')}:8080` });
      const r = await check('apps/client-1', 'strict/web-2:8080');
      t.equal(r.code, 0, 'exit 0');
      t.match(r.stdout, /^OK: apps\/client-1 -> strict\/web-2:8080 is mTLS/m);
      t.match(
        r.stdout,
        /mTLS mode:\s+STRICT on strict\/web-2 port 8080, set by PeerAuthentication strict\/default/,
      );
      t.match(r.stdout, /spiffe:\/\/cluster\.local\/ns\/strict\/sa\/web on node-2: Available/);
      t.match(r.stdout, /node-1\s+outbound .* mTLS/, 'the source side recorded it as mTLS');
      t.match(r.stdout, /node-2\s+inbound .* mTLS allow/);
      const svc = await check('apps/client-1', 'web.strict:80');
      t.equal(svc.code, 0, 'by service name too');
    });

    await t.test('a denied link: exit 1, the deciding policy named', async (t) => {
      const res = await c.curl('client-1', `http://${ip('web-2')}:9090/hello.txt`);
      t.ok(CLOSED.includes(res.code), `curl refused (exit ${res.code})`);
      const r = await check('apps/client-1', 'strict/web-2:9090');
      t.equal(r.code, 1, 'exit 1');
      t.match(r.stdout, /^DENIED: /m);
      t.match(r.stdout, /authorization:\s+✗ deny by AuthorizationPolicy strict\/deny-9090 rule 0/);
      t.match(r.stdout, /node-2\s+inbound .* mTLS deny \(strict\/deny-9090\) DENY/);
      const bad = await mtun([
        'check',
        'apps/client-1',
        'nowhere/none:80',
        '--mesh',
        join(c.dir, 'mesh'),
      ]);
      t.equal(bad.code, 2, 'bad input: exit 2');
    });

    const skip = ['-s', ip('client-1'), '-d', ip('open-2'), '-p', 'tcp', '-j', 'RETURN'];
    // Removed at the end (the namespaces go anyway); kept for the refusal test below.
    t.teardown(() => c.ns.exec('n1', 'iptables', ['-t', 'nat', '-D', 'PREROUTING', ...skip]));
    await t.test('a bypassed link: detected at node-2 within seconds', async (t) => {
      // What Cilium's socket LB does to the pod's traffic: netfilter on node-1 never sees
      // it, so it leaves the node as the pod sent it.
      await c.ns.must('ip', [
        'netns',
        'exec',
        c.ns.name('n1'),
        'iptables',
        '-t',
        'nat',
        '-I',
        'PREROUTING',
        '1',
        ...skip,
      ]);
      const started = Date.now();
      await hello(t, c, 'client-1', `http://${ip('open-2')}:8080/hello.txt`);
      let metric = '';
      await waitUntil(
        async () => {
          const m = await c.ns.exec('n2', 'curl', ['-sS', 'http://127.0.0.1:15020/metrics']);
          metric =
            m.stdout.split('\n').find((l) => l.startsWith('mtun_capture_bypass_total{')) ?? '';
          return metric !== '';
        },
        'the bypass counted',
        10_000,
      );
      t.comment(`detected in ${Date.now() - started} ms: ${metric}`);
      t.match(
        metric,
        'mtun_capture_bypass_total{source_workload="client-1",source_workload_namespace="apps",destination_workload="open-2",destination_workload_namespace="open",outcome="allowed"} 1',
      );
      await hello(t, c, 'client-1', `http://${ip('open-2')}:8080/hello.txt`);
      const warnings = c.agents
        .get('n2')!
        .output()
        .split('\n')
        .filter((l) => l.includes('capture was bypassed'));
      t.equal(warnings.length, 1, 'one warning for the pair, however many connections');
      t.match(warnings[0], /Cilium socket LB/);
      const line = (
        await accessAfter(c, 'n2', { 'dst.addr': `${ip('open-2')}:8080`, capture_bypass: true })
      ).at(-1);
      t.equal(line?.security, 'none');
      t.equal(line?.verdict, 'allow', 'PERMISSIVE: accepted (Istio semantics), but flagged');
      const r = await check('apps/client-1', 'open/open-2:8080');
      t.equal(r.code, 1, 'exit 1: not mTLS');
      t.match(r.stdout, /^NOT mTLS: /m);
      t.match(
        r.stdout,
        /bypass:\s+✗ CAPTURE BYPASSED: 2 plaintext connection\(s\) from apps\/client-1/,
      );
      t.match(r.stdout, /node-2\s+inbound .* PLAINTEXT allow .*BYPASS/);
      const conns = await mtun(['config', 'connections', '--admin', admin('n2')]);
      t.match(
        conns.stdout,
        /apps\/client-1 \S+\s+open\/open-2 \S+:8080\s+plaintext\s+allow\s+-\s+-\s+BYPASS/,
      );
    });

    await t.test('--refuse-bypassed-plaintext refuses it, even under PERMISSIVE', async (t) => {
      refuse = true;
      t.equal(await c.stopAgent('n2'), 0);
      await c.startAgent('n2');
      const res = await c.curl('client-1', `http://${ip('open-2')}:8080/hello.txt`, 5);
      t.ok(CLOSED.includes(res.code), `refused (curl exit ${res.code})`);
      t.equal(res.body, '');
      const line = (
        await accessAfter(c, 'n2', { 'dst.addr': `${ip('open-2')}:8080`, verdict: 'deny' })
      ).at(-1);
      t.equal(line?.capture_bypass, true);
      t.equal(line?.response_flags, 'DENY');
      const m = await c.ns.exec('n2', 'curl', ['-sS', 'http://127.0.0.1:15020/metrics']);
      t.match(m.stdout, /mtun_capture_bypass_total\{[^}]*outcome="refused"\} 1/);
      t.comment(
        `curl client-1 -> open-2:8080 with --refuse-bypassed-plaintext: exit ${res.code}; ${line?.reason}; ${m.stdout
          .split('\n')
          .filter((l) => l.startsWith('mtun_capture_bypass_total{'))
          .join(' ')}`,
      );
      await hello(t, c, 'legacy-1', `http://${ip('open-2')}:8080/hello.txt`);
      t.pass('a non-mesh pod still gets in under PERMISSIVE: only mesh pods are refused');
    });

    await t.test(
      'the hardened profile: an unlisted pair refused, a kubelet probe passes',
      async (t) => {
        await c.ns.exec('n1', 'iptables', ['-t', 'nat', '-D', 'PREROUTING', ...skip]);
        hardened = true;
        refuse = false;
        t.equal(await c.stopAgent('n2'), 0);
        await c.startAgent('n2');
        const p = await mtun(['config', 'policies', '--admin', admin('n2')]);
        t.match(p.stdout, /^istio-system\s+mtun-hardened-strict\s+Deny\s+Global$/m);
        t.match(p.stdout, /^istio-system\s+mtun-hardened-allow-nothing\s+Allow\s+Global$/m);
        const unlisted = await c.curl('client-1', `http://${ip('open-2')}:8080/hello.txt`, 5);
        t.ok(
          CLOSED.includes(unlisted.code),
          `client-1 -> open-2 (mTLS, no ALLOW policy) refused (curl exit ${unlisted.code})`,
        );
        const r = await check('apps/client-1', 'open/open-2:8080');
        t.equal(r.code, 1);
        t.match(r.stdout, /^DENIED: /m);
        t.match(
          r.stdout,
          /mTLS mode:\s+STRICT on open\/open-2 port 8080, set by the hardened profile \(istio-system\/mtun-hardened-strict\)/,
        );
        const plain = await c.curl('legacy-1', `http://${ip('open-2')}:8080/hello.txt`, 5);
        t.not(plain.code, 0, 'plaintext refused although open/ is PERMISSIVE');
        // A kubelet probe: opened by the node itself, never captured, so never refused.
        await hello(t, c, 'n2', `http://${ip('open-2')}:8080/hello.txt`);
        await hello(t, c, 'n2', `http://${ip('web-2')}:8080/hello.txt`);
        t.comment(
          `hardened: curl client-1 -> open-2:8080 (mTLS, unlisted) exit ${unlisted.code}; legacy-1 -> open-2 (plaintext) exit ${plain.code}; kubelet-style probe from node-2 -> open-2:8080 and web-2:8080: 200`,
        );
        const offline = await mtun([
          'authz',
          'check',
          '--mesh',
          join(c.dir, 'mesh'),
          '--to',
          'open/open-2',
          '--port',
          '8080',
          '--from-principal',
          'spiffe://cluster.local/ns/apps/sa/client',
          '--hardened',
        ]);
        t.equal(offline.code, 1, 'authz check --hardened: deny');
        // An ALLOW policy opens exactly the pair it names.
        await writeFile(
          join(c.dir, 'mesh', 'allow-client.yaml'),
          `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: open}
spec:
  rules: [{from: [{source: {principals: [cluster.local/ns/apps/sa/client]}}]}]
`,
        );
        await waitUntil(
          async () =>
            (await c.curl('client-1', `http://${ip('open-2')}:8080/hello.txt`, 3)).code === 0,
          'the ALLOW policy took effect',
        );
        const ok = await check('apps/client-1', 'open/open-2:8080');
        t.equal(ok.code, 0, 'listed: mTLS and allowed');
        t.match(ok.stdout, /authorization: allow by AuthorizationPolicy open\/allow-client rule 0/);
      },
    );
  },
);
