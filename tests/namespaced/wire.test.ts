// The mesh on the wire and across agent restarts, on the namespaced two-node cluster:
// tcpdump on node-1's link during a transfer of a known marker shows only TLS to 15008 and
// never the marker; iperf3 pod-to-pod across nodes through the mesh; then, with both agents
// stopped (their rules removed on exit), the same capture shows the marker and the same
// iperf3 runs without the mesh; agents restarted restore the rules, follow pods that come
// and go, clean up after a SIGKILL; and nothing of ours is left in any iptables-save.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { run } from '../../testkit/exec.js';
import { savedRules } from '../../testkit/netns.js';
import { NODE_IP } from '../../testkit/topology.js';
import { accessAfter, type Cluster, clusterCannotRun, startCluster, waitUntil } from './cluster.js';
import { parsePcap, startsLikeTls } from './pcap.js';
import { podByName } from './pods.js';
import { tcpdumpOnNode1 } from './tcpdump.js';

const why = clusterCannotRun(['tcpdump', 'iperf3']);
if (why) t.comment(`namespaced wire tests skipped: ${why}`);

const web = podByName('web-2');
const client = podByName('client-1');

/** Captures node-1's link to node-2 (node-2 and its pods; not the CA or the outside host)
 *  while `during` runs. */
function capture(c: Cluster, file: string, during: () => Promise<void>): Promise<Buffer> {
  return tcpdumpOnNode1(c, 'tcp and (host 198.18.0.2 or net 198.18.2.0/24)', file, during);
}

async function fetchMarker(c: Cluster): Promise<void> {
  const res = await c.curl(client.tag, `http://${web.ip}:8080/marker.bin`);
  if (res.code !== 0 || !res.body.includes(c.marker))
    throw new Error(`marker transfer failed: ${res.stderr}`);
}

/** iperf3 client-1 -> web-2 for 3 s; the received rate in Mbit/s. */
async function iperf(c: Cluster, port: number): Promise<number> {
  c.ns.spawn(web.tag, 'iperf3', ['-s', '-1', '-B', web.ip, '-p', String(port)]);
  await waitUntil(
    async () =>
      (await c.ns.exec(web.tag, 'ss', ['-Htln', `sport = :${port}`])).stdout.includes(`:${port}`),
    'iperf3 server',
    10_000,
  );
  const res = await c.ns.exec(
    client.tag,
    'iperf3',
    ['-c', web.ip, '-p', String(port), '-t', '3', '-J'],
    { timeoutMs: 30_000 },
  );
  if (res.code !== 0)
    throw new Error(`iperf3 failed (${res.code}): ${res.stdout.slice(-500)} ${res.stderr}`);
  const report = JSON.parse(res.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return Math.round(report.end.sum_received.bits_per_second / 1e6);
}

function ours(rules: string): string[] {
  return rules.split('\n').filter((l) => l.includes('MTUN'));
}

t.test(
  'on the wire and across restarts',
  { skip: why ? `skipped: ${why}` : false, timeout: 120_000 },
  async (t) => {
    const rootBefore = savedRules((await run('iptables-save', [])).stdout).join('\n');
    const c = await startCluster(t);
    const figures: Record<string, number> = {};
    const installed = { n1: ours(await c.rules('n1')), n2: ours(await c.rules('n2')) };

    await t.test(
      'with the mesh, the link carries only TLS to 15008, never the marker',
      async (t) => {
        const pcap = await capture(c, join(c.dir, 'mesh.pcap'), () => fetchMarker(c));
        const packets = parsePcap(pcap);
        t.ok(packets.length > 0, `captured ${packets.length} packets`);
        const other = packets.filter((p) => p.sport !== 15008 && p.dport !== 15008);
        t.same(
          other.map((p) => `${p.src}:${p.sport}>${p.dst}:${p.dport}`),
          [],
          'every packet is to or from port 15008',
        );
        const data = packets.filter((p) => p.payload.length > 0);
        t.ok(
          data.length > 0 && data.some((p) => startsLikeTls(p.payload)),
          'payloads are TLS records',
        );
        t.notOk(pcap.includes(c.marker), 'the marker never appears on the wire');
        t.ok(
          packets.every((p) => p.src === NODE_IP.n1 || p.dst === NODE_IP.n1),
          'node-1 agent <-> node-2 pod:15008',
        );
        // ztunnel's dial (DESIGN.md §6): the pod's own IP at 15008, captured by node-2's
        // rules, and no SNI in the ClientHello (a ztunnel node answers only that).
        t.ok(
          packets.some((p) => p.dst === web.ip && p.dport === 15008),
          `dialed at the pod, ${web.ip}:15008, not at node-2's address`,
        );
        t.notOk(pcap.includes('hbone.mtun.invalid'), 'no SNI naming the destination');
      },
    );

    await t.test('iperf3 across nodes through the mesh', async (t) => {
      figures['meshMbps'] = await iperf(c, 5201);
      t.ok(figures['meshMbps']! > 0, `through the mesh: ${figures['meshMbps']} Mbit/s`);
      const seen = await accessAfter(
        c,
        'n2',
        { direction: 'inbound', 'dst.hbone_addr': `${web.ip}:5201` },
        2,
      );
      t.ok(seen.length >= 2, 'control and data connections crossed HBONE');
      t.equal(seen.at(-1)?.['src.identity'], 'spiffe://cluster.local/ns/apps/sa/client');
    });

    await t.test('agents stopped: exit 0, every rule they installed is gone', async (t) => {
      t.ok(installed.n1.length > 0 && installed.n2.length > 0, 'rules were installed');
      t.equal(await c.stopAgent('n1'), 0);
      t.equal(await c.stopAgent('n2'), 0);
      t.same(ours(await c.rules('n1')), [], 'node-1 clean');
      t.same(ours(await c.rules('n2')), [], 'node-2 clean');
    });

    await t.test(
      'without the mesh the same capture shows the marker (the check can fail)',
      async (t) => {
        const pcap = await capture(c, join(c.dir, 'plain.pcap'), () => fetchMarker(c));
        t.ok(pcap.includes(c.marker), 'the marker is on the wire');
        t.ok(
          parsePcap(pcap).some((p) => p.sport === 8080 || p.dport === 8080),
          'straight to port 8080',
        );
      },
    );

    await t.test('iperf3 across nodes without the mesh', async (t) => {
      figures['plainMbps'] = await iperf(c, 5202);
      t.ok(figures['plainMbps']! > 0, `without the mesh: ${figures['plainMbps']} Mbit/s`);
      t.comment(
        `iperf3 client-1 -> web-2 (3 s): mesh ${figures['meshMbps']} Mbit/s, plain ${figures['plainMbps']} Mbit/s`,
      );
    });

    await t.test(
      'agents started again: the same rules are back, traffic is meshed again',
      async (t) => {
        await Promise.all([c.startAgent('n1'), c.startAgent('n2')]);
        t.same(ours(await c.rules('n1')), installed.n1);
        t.same(ours(await c.rules('n2')), installed.n2);
        const res = await c.curl(client.tag, `http://${web.ip}:8080/hello.txt`);
        t.equal(res.code, 0, res.stderr);
        const lines = await accessAfter(c, 'n2', {
          direction: 'inbound',
          'dst.hbone_addr': `${web.ip}:8080`,
        });
        t.ok(lines.length > 0, 'through the restarted agents');
      },
    );

    await t.test('pods that come and go get and lose their rules', async (t) => {
      const file = join(c.dir, 'mesh', 'late.yaml');
      await writeFile(
        file,
        `apiVersion: v1
kind: Pod
metadata: {name: late-1, namespace: apps, labels: {app: late}}
spec: {serviceAccountName: late, nodeName: node-1}
status: {phase: Running, podIP: 198.18.1.14}
`,
      );
      await waitUntil(
        async () => (await c.rules('n1')).includes('-s 198.18.1.14/32'),
        'rules for the new pod',
        15_000,
      );
      t.notMatch(await c.rules('n2'), /198\.18\.1\.14/, 'only on its own node');
      await rm(file);
      await waitUntil(
        async () => !(await c.rules('n1')).includes('198.18.1.14'),
        'rules of the gone pod removed',
        15_000,
      );
      t.same(ours(await c.rules('n1')), installed.n1, 'back to the original rules');
    });

    await t.test(
      'after a SIGKILL the next agent removes the stale rules and reinstalls',
      async (t) => {
        const old = c.agents.get('n1')!;
        const exited = new Promise((r) => old.child.once('exit', r));
        old.child.kill('SIGKILL');
        await exited;
        t.same(
          ours(await c.rules('n1')),
          installed.n1,
          'a killed agent leaves its rules (nothing could remove them)',
        );
        const next = await c.startAgent('n1');
        t.match(next.output(), /removed capture rules left by an earlier run/);
        t.same(ours(await c.rules('n1')), installed.n1, 'exactly one set again: no duplicates');
      },
    );

    await t.test('no rule leaks: after the last stop nothing of ours is anywhere', async (t) => {
      t.equal(await c.stopAgent('n1'), 0);
      t.equal(await c.stopAgent('n2'), 0);
      for (const tag of ['n1', 'n2', 'ext', 'ctl', client.tag, web.tag])
        t.same(ours(await c.rules(tag)), [], `${tag}: iptables-save clean`);
      const rootAfter = savedRules((await run('iptables-save', [])).stdout).join('\n');
      t.equal(rootAfter, rootBefore, "the host's own rules were never touched");
    });
  },
);
