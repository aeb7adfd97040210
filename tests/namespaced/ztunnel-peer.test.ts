// Interop with a node that follows ztunnel's conventions on a stack that is not Node's: on
// the namespaced two-node cluster with real iptables capture, node-1 runs mtun and node-2
// runs tests/interop/hbone-peer (Go, golang.org/x/net/http2) in mtun's place, behind the
// capture rules istio-cni would install. Unmodified programs in the pods move 20 MiB each
// way, with a half-close in each order, both directions of the mesh:
//   client-1 (node-1) -> mtun -> web-2's IP:15008, no SNI -> Go server -> web-2
//   web-2 (node-2) -> Go client -> client-1's IP:15008, no SNI -> mtun inbound -> client-1
// tcpdump on the link shows the SYNs and ClientHellos; mtun's access log and policy see the
// Go peer's SPIFFE identity; a CONNECT naming another pod than the dialed one gets 400; 4
// tunnels each way run at once; Go's stock http2.Server's END_STREAM + RST_STREAM(NO_ERROR)
// is a clean end. Everything runs inside namespaces the test deletes.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import t from 'tap';
import { type Tracked, track } from '../../testkit/process.js';
import { NODE_IP } from '../../testkit/topology.js';
import { eventually } from '../helpers/eventually.js';
import { type ClientHello, parseClientHello } from '../interop/client-hello.js';
import {
  buildGoPeer,
  type GoPeer,
  goPeerCannotRun,
  peerCertificate,
  startGoPeer,
} from '../interop/go-peer.js';
import type { TransferResult } from '../interop/transfer-app.js';
import {
  accessAfter,
  CLIENT_ID,
  CLOSED,
  type Cluster,
  clusterCannotRun,
  startCluster,
} from './cluster.js';
import { parsePcap } from './pcap.js';
import { podByName } from './pods.js';
import { tcpdumpOnNode1 } from './tcpdump.js';

const why = clusterCannotRun(['tcpdump']) ?? goPeerCannotRun();
if (why) t.comment(`ztunnel-peer interop skipped: ${why}`);

const BYTES = 20 << 20;
const client1 = podByName('client-1');
const web2 = podByName('web-2');
const peer1 = podByName('peer-1');
const WEB_ID = 'spiffe://cluster.local/ns/strict/sa/web';
const APP = ['--import', 'tsx', 'tests/interop/transfer-app.ts'];
// ztunnel's baggage for a Deployment's pod (src/baggage.rs baggage_header_val).
const BAGGAGE =
  'k8s.cluster.name=Kubernetes,k8s.namespace.name=strict,k8s.deployment.name=web,service.name=web,service.version=latest';

/** What istio-cni installs for ztunnel on node-2, for web-2 only: its HBONE port to the
 *  peer's 15008, everything it sends to the peer's 15001. */
async function captureForGoPeer(c: Cluster): Promise<void> {
  const rule = (...a: string[]) =>
    c.ns.exec('n2', 'iptables', ['-t', 'nat', '-A', 'PREROUTING', ...a]);
  for (const args of [
    [
      '-d',
      `${web2.ip}/32`,
      '-p',
      'tcp',
      '--dport',
      '15008',
      '-j',
      'REDIRECT',
      '--to-ports',
      '15008',
    ],
    ['-s', `${web2.ip}/32`, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', '15001'],
  ]) {
    const res = await rule(...args);
    if (res.code !== 0) throw new Error(`iptables ${args.join(' ')}: ${res.stderr}`);
  }
}

/** tcpdump on node-1's link, SYNs and TLS handshake records to/from 15008 only: the
 *  SYNs and ClientHellos that node `from` sent while `during` ran. */
async function handshakes(
  c: Cluster,
  from: 'n1' | 'n2',
  file: string,
  during: () => Promise<void>,
) {
  const pcap = await tcpdumpOnNode1(
    c,
    'tcp port 15008 and (tcp[tcpflags] & tcp-syn != 0 or tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x16)',
    file,
    during,
  );
  const packets = parsePcap(pcap).filter((p) => p.src === NODE_IP[from]);
  const syns = packets.filter((p) => p.payload.length === 0 && p.dport === 15008);
  const hellos = packets
    .filter((p) => p.dport === 15008)
    .map((p) => ({ p, hello: parseClientHello(p.payload) }))
    .filter((x): x is { p: (typeof packets)[number]; hello: ClientHello } => x.hello !== undefined);
  return { syns, hellos };
}

async function serveApp(
  c: Cluster,
  tag: string,
  ip: string,
  port: number,
  order: string,
): Promise<Tracked> {
  const app = track(
    c.ns.spawn(tag, process.execPath, [...APP, 'serve', ip, String(port), order, String(BYTES)]),
    `${tag} app`,
  );
  await app.waitFor(/"listening":true/, 30_000);
  return app;
}

async function connectApp(
  c: Cluster,
  from: string,
  ip: string,
  port: number,
  order: string,
): Promise<TransferResult> {
  const res = await c.ns.exec(
    from,
    process.execPath,
    [...APP, 'connect', ip, String(port), order, String(BYTES)],
    {
      timeoutMs: 60_000,
    },
  );
  const line = res.stdout.trim().split('\n').at(-1) ?? '';
  const r = JSON.parse(line || '{"error":"no output"}') as TransferResult;
  if (res.code !== 0 || r.error) {
    // What node-1's agent logged for it says which side gave up, and why.
    const logged = c.access('n1').filter((l) => l['dst.hbone_addr'] === `${ip}:${port}`);
    throw new Error(
      `${from} -> ${ip}:${port} ${order}: ${r.error ?? res.stderr}; node-1: ${JSON.stringify(logged)}`,
    );
  }
  return r;
}

/** The server side's line for the connection (the app prints one per connection). */
async function served(app: Tracked, nth: number): Promise<TransferResult> {
  const lines = () =>
    app
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{"role"'));
  await eventually(() => lines().length >= nth, `server line ${nth}`, 30_000, 50);
  return JSON.parse(lines()[nth - 1]!) as TransferResult;
}

function checkTransfer(
  t: Test,
  client: TransferResult,
  server: TransferResult,
  label: string,
): string {
  t.notOk(server.error, `${label}: the server side ended cleanly`);
  t.equal(client.sent, BYTES, `${label}: the client sent 20 MiB`);
  t.equal(server.received, BYTES, `${label}: the server received 20 MiB`);
  t.equal(server.receivedSha, client.sentSha, `${label}: client -> server sha256 equal`);
  t.equal(client.received, BYTES, `${label}: the client received 20 MiB`);
  t.equal(client.receivedSha, server.sentSha, `${label}: server -> client sha256 equal`);
  const mbps = ((2 * BYTES * 8) / (client.ms / 1000) / 1e6).toFixed(0);
  return `${label}: 2 x 20 MiB in ${client.ms} ms (${mbps} Mbit/s both ways together)`;
}

t.test(
  'a ztunnel-convention Go peer, both ways',
  { skip: why ? `skipped: ${why}` : false, timeout: 115_000 },
  async (t) => {
    const bin = await buildGoPeer();
    const c = await startCluster(t);
    const figures: string[] = [];
    t.teardown(() => {
      for (const f of figures) t.comment(f);
    });

    t.equal(await c.stopAgent('n2'), 0, 'node-2: mtun stopped');
    t.notMatch(await c.rules('n2'), /MTUN/, "node-2: none of mtun's rules left");
    await captureForGoPeer(c);
    const files = await peerCertificate(join(c.dir, 'ca'), WEB_ID, join(c.dir, 'go-peer'));
    const peer: GoPeer = await startGoPeer(c.ns, 'n2', bin, files, [
      '-inbound',
      '0.0.0.0:15008',
      '-outbound',
      '0.0.0.0:15001',
      '-peer',
      `${client1.ip}=${CLIENT_ID}`,
      '-baggage',
      BAGGAGE,
      '-misdirect',
      `${client1.ip}:7400=${peer1.ip}:8080`,
    ]);
    // A policy on node-1 that can only match the Go peer's identity.
    await writeFile(
      join(c.dir, 'mesh', 'deny-web-7001.yaml'),
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-web-7001, namespace: apps}
spec:
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/strict/sa/web"]}}], to: [{operation: {ports: ["7001"]}}]}]
`,
    );
    await c.agents.get('n1')!.waitFor(/"msg":"mesh reloaded"/, 20_000);

    await t.test(
      'mtun node -> Go peer node: 20 MiB each way, half-close both orders',
      async (t) => {
        const apps = {
          'client-first': await serveApp(c, web2.tag, web2.ip, 7000, 'client-first'),
          'server-first': await serveApp(c, web2.tag, web2.ip, 7100, 'server-first'),
        };
        const { syns, hellos } = await handshakes(c, 'n1', join(c.dir, 'to-go.pcap'), async () => {
          for (const [order, port] of [
            ['client-first', 7000],
            ['server-first', 7100],
          ] as const) {
            const client = await connectApp(c, client1.tag, web2.ip, port, order);
            figures.push(
              `mtun -> Go, ${checkTransfer(t, client, await served(apps[order], 1), order)}`,
            );
          }
        });
        t.ok(syns.length >= 1, 'SYNs captured');
        t.ok(
          syns.every((p) => p.dst === web2.ip),
          `node-1 dialed ${web2.ip}:15008 (the pod), never node-2's address`,
        );
        t.ok(hellos.length >= 1, 'ClientHello captured');
        for (const { hello } of hellos) {
          t.equal(hello.sni, undefined, 'no server_name extension');
          t.same(hello.alpn, ['h2'], 'ALPN h2');
          t.same(hello.versions, ['TLS1.3'], 'TLS 1.3 only');
        }
        figures.push(
          `mtun -> Go: ${syns.length} SYN(s) ${syns.map((p) => `${p.src}:${p.sport} > ${p.dst}:${p.dport}`).join(', ')}; ClientHello: ${JSON.stringify(hellos[0]?.hello)}`,
        );

        const tunnels = peer.tunnels().filter((l) => l['direction'] === 'inbound');
        t.equal(tunnels.length, 2, 'the Go server served two tunnels');
        for (const [i, port] of [7000, 7100].entries()) {
          const l = tunnels.find((x) => x['authority'] === `${web2.ip}:${port}`);
          t.ok(l, `Go server: CONNECT ${web2.ip}:${port}`);
          t.equal(l?.['status'], 200);
          t.equal(l?.['sni'], '', 'Go server: no SNI arrived');
          t.equal(l?.['peer'], CLIENT_ID, "Go server: mtun presented client-1's identity");
          t.equal(
            l?.['orig_dst'],
            `${web2.ip}:15008`,
            'Go server: original destination is the pod',
          );
          t.equal(l?.['bytes_from_client'], BYTES);
          t.equal(l?.['bytes_to_client'], BYTES);
          const h = (l?.['headers'] ?? {}) as Record<string, string>;
          t.match(
            h['forwarded'],
            /^for="198\.18\.1\.11:\d+"$/,
            `tunnel ${i}: forwarded names client-1`,
          );
          t.match(h['traceparent'], /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/, 'traceparent');
          t.match(h['baggage'], /k8s\.namespace\.name=apps/, 'baggage');
        }
        const out = await accessAfter(c, 'n1', {
          direction: 'outbound',
          'dst.hbone_addr': `${web2.ip}:7000`,
        });
        t.equal(out.at(-1)?.['dst.addr'], `${web2.ip}:15008`, 'mtun: dialed podIP:15008');
        t.equal(out.at(-1)?.['dst.identity'], WEB_ID, "mtun verified the Go peer's identity");
      },
    );

    await t.test(
      'Go peer node -> mtun node: 20 MiB each way, half-close both orders; identity in policy and log',
      async (t) => {
        const apps = {
          'client-first': await serveApp(c, client1.tag, client1.ip, 7000, 'client-first'),
          'server-first': await serveApp(c, client1.tag, client1.ip, 7100, 'server-first'),
        };
        const { syns, hellos } = await handshakes(
          c,
          'n2',
          join(c.dir, 'from-go.pcap'),
          async () => {
            for (const [order, port] of [
              ['client-first', 7000],
              ['server-first', 7100],
            ] as const) {
              const client = await connectApp(c, web2.tag, client1.ip, port, order);
              figures.push(
                `Go -> mtun, ${checkTransfer(t, client, await served(apps[order], 1), order)}`,
              );
            }
          },
        );
        t.ok(
          syns.length >= 1 && syns.every((p) => p.dst === client1.ip),
          `the Go client dialed ${client1.ip}:15008`,
        );
        t.ok(hellos.length >= 1, 'ClientHello captured');
        for (const { hello } of hellos) {
          t.equal(hello.sni, undefined, 'Go client: no server_name extension');
          t.same(hello.alpn, ['h2'], 'ALPN h2');
          t.same(hello.versions, ['TLS1.3'], 'TLS 1.3 only');
        }
        figures.push(
          `Go -> mtun: ${syns.length} SYN(s) ${syns.map((p) => `${p.src}:${p.sport} > ${p.dst}:${p.dport}`).join(', ')}; ClientHello: ${JSON.stringify(hellos[0]?.hello)}`,
        );

        for (const port of [7000, 7100]) {
          const lines = await accessAfter(c, 'n1', {
            direction: 'inbound',
            'dst.hbone_addr': `${client1.ip}:${port}`,
          });
          const l = lines.at(-1);
          t.equal(
            l?.['src.identity'],
            WEB_ID,
            `mtun inbound :${port}: the Go peer's SPIFFE identity`,
          );
          t.equal(l?.['dst.addr'], `${client1.ip}:15008`);
          t.equal(l?.verdict, 'allow');
          t.equal(l?.bytes_sent, BYTES, 'bytes_sent (from the client) 20 MiB');
          t.equal(l?.bytes_recv, BYTES, 'bytes_recv 20 MiB');
        }
        // The DENY names the Go peer's principal: only its verified identity can match it.
        const denied = await c.curl(web2.tag, `http://${client1.ip}:7001/`, 5);
        t.ok(CLOSED.includes(denied.code), `denied: curl exit ${denied.code} (${denied.stderr})`);
        const deny = await accessAfter(c, 'n1', {
          direction: 'inbound',
          'dst.hbone_addr': `${client1.ip}:7001`,
        });
        t.equal(deny.at(-1)?.verdict, 'deny', 'mtun denied it');
        t.match(String(deny.at(-1)?.policy), /deny-web-7001/, 'by the policy on the principal');
        t.equal(deny.at(-1)?.['src.identity'], WEB_ID);
        await eventually(
          () => peer.tunnels().some((l) => l['authority'] === `${client1.ip}:7001`),
          'Go client logged it',
          10_000,
        );
        t.equal(
          peer.tunnels().find((l) => l['authority'] === `${client1.ip}:7001`)?.['status'],
          401,
          'the Go client got 401',
        );
        // ztunnel inbound.rs validate_destination: a tunnel dialed to client-1's IP that
        // names peer-1 (which serves hello.txt on 8080) is refused with 400, never forwarded.
        const mis = await c.curl(web2.tag, `http://${client1.ip}:7400/hello.txt`, 5);
        t.ok(CLOSED.includes(mis.code), `misdirected CONNECT refused: curl exit ${mis.code}`);
        t.notMatch(mis.body, /hello from a pod/, 'peer-1 was not reached');
        const misLogged = () => peer.tunnels().find((l) => l['authority'] === `${peer1.ip}:8080`);
        await eventually(() => misLogged() !== undefined, 'Go client logged it', 10_000);
        t.equal(misLogged()?.['status'], 400, 'mtun answered the Go client 400');
        const refused = c.agents
          .get('n1')!
          .output()
          .split('\n')
          .find((l) => l.includes('hbone CONNECT refused') && l.includes(`${peer1.ip}:8080`));
        t.comment(refused);
        t.match(refused, /"status":400/, "mtun's log names the refusal and the authority");
      },
    );

    await t.test('at once: 4 tunnels each way, both directions of the mesh together', async (t) => {
      const N = 4;
      const toGo = await serveApp(c, web2.tag, web2.ip, 7300, 'client-first');
      const toMtun = await serveApp(c, client1.tag, client1.ip, 7300, 'client-first');
      const start = performance.now();
      const clients = await Promise.all([
        ...Array.from({ length: N }, () =>
          connectApp(c, client1.tag, web2.ip, 7300, 'client-first'),
        ),
        ...Array.from({ length: N }, () =>
          connectApp(c, web2.tag, client1.ip, 7300, 'client-first'),
        ),
      ]);
      const ms = Math.round(performance.now() - start);
      for (const [app, mine] of [
        [toGo, clients.slice(0, N)],
        [toMtun, clients.slice(N)],
      ] as const) {
        const servers = await Promise.all(Array.from({ length: N }, (_, i) => served(app, i + 1)));
        t.ok(
          servers.every((x) => !x.error),
          'every server side ended cleanly',
        );
        // Each server line pairs with the client whose bytes it got.
        t.same(
          servers.map((x) => x.receivedSha).sort(),
          mine.map((x) => x.sentSha).sort(),
          'client -> server: every sha256 arrived',
        );
        t.same(
          mine.map((x) => x.receivedSha).sort(),
          servers.map((x) => x.sentSha).sort(),
          'server -> client: every sha256 arrived',
        );
      }
      const mbit = ((2 * 2 * N * BYTES * 8) / (ms / 1000) / 1e6).toFixed(0);
      figures.push(
        `at once, ${N} tunnels each way of the mesh: ${2 * 2 * N} x 20 MiB in ${ms} ms (${mbit} Mbit/s)`,
      );
    });

    await t.test(
      "Go's stock http2.Server ends with END_STREAM + RST_STREAM(NO_ERROR): a clean end for mtun",
      async (t) => {
        // A new peer process: mtun's pooled connection to the old one ends with it.
        const exited = new Promise((r) => peer.proc.child.once('exit', r));
        peer.proc.child.kill('SIGTERM');
        await exited;
        const stock = await startGoPeer(c.ns, 'n2', bin, files, [
          '-inbound',
          '0.0.0.0:15008',
          '-inbound-stock',
        ]);
        const app = await serveApp(c, web2.tag, web2.ip, 7200, 'download');
        const client = await connectApp(c, client1.tag, web2.ip, 7200, 'download');
        const server = await served(app, 1);
        t.notOk(server.error, 'the server side ended cleanly');
        t.equal(client.received, BYTES, 'the client received 20 MiB and a clean end (no reset)');
        t.equal(client.receivedSha, server.sentSha, 'sha256 equal');
        await eventually(() => stock.tunnels().length > 0, 'the stock server logged it', 10_000);
        const l = stock.tunnels()[0];
        t.equal(l?.['status'], 200);
        t.equal(
          l?.['returned_before_request_end'],
          true,
          'its handler returned with the request open: Go sent RST_STREAM(NO_ERROR)',
        );
        const out = await accessAfter(c, 'n1', {
          direction: 'outbound',
          'dst.hbone_addr': `${web2.ip}:7200`,
        });
        t.equal(out.at(-1)?.error, undefined, 'mtun logged no error');
        t.equal(out.at(-1)?.bytes_recv, BYTES);
        figures.push(`mtun -> Go stock server, download: 20 MiB in ${client.ms} ms`);
      },
    );
  },
);
