// `mtun map` against real agents: it gathers their admin /edges, serves the page offline
// (cytoscape from node_modules, a strict CSP) and the merged graph; finds agents from the
// mesh's nodes; lists an agent that does not answer; reports bad flags all at once.
import t from 'tap';
import { agentUrls } from '../../cli/map.js';
import { createLogger } from '../../lib/logger.js';
import { socks5Connect } from '../../lib/socks5-client.js';
import { FileMeshSource } from '../../mesh/file-source.js';
import { run } from '../../testkit/exec.js';
import { MTUN_CLI, startMtun, terminate } from '../../testkit/process.js';
import { converse } from '../helpers/apps.js';
import { freePort } from '../helpers/ports.js';
import { startWorld } from '../helpers/world.js';

t.test('mtun map serves the page and the agents’ merged edges', async (t) => {
  const w = await startWorld(t);
  // web-1 (node-a) → reviews (node-b), through the agents.
  for (let i = 0; i < 3; i++) {
    const s = await socks5Connect(
      w.socks('node-a'),
      { host: w.ip('30.1'), port: 80 },
      { localAddress: w.ip('10.1'), timeoutMs: 5_000 },
    );
    t.match(await converse(s, ['hello']), /reviews-\d hello/);
  }
  // Each agent's admin endpoint: the address of its servers that answers /edges.
  const adminOf = async (node: string) => {
    for (const a of w.mesh.agents.get(node)!.addresses().admin) {
      const url = `http://${a.host}:${a.port}/`;
      const ok = await fetch(`${url}edges`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return url;
    }
    throw new Error(`${node}: no admin /edges`);
  };
  const down = `http://127.0.0.1:${await freePort()}/`; // nobody listens there
  const map = startMtun(t, [
    'map',
    '--listen',
    '127.0.0.1:0',
    '--agent',
    await adminOf('node-a'),
    await adminOf('node-b'),
    down,
  ]);
  t.teardown(() => terminate(map.child));
  const [, url] = await map.waitFor(/Mesh map: (http:\/\/\S+)/, 30_000);

  const page = await fetch(url!, { headers: { 'accept-encoding': 'gzip' } });
  t.equal(page.status, 200);
  t.match(page.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  const html = await page.text();
  t.match(html, /<script src="cytoscape.min.js"><\/script>/);
  t.notMatch(html, /https?:\/\//, 'nothing loaded from elsewhere');
  const cy = await fetch(`${url}cytoscape.min.js`);
  t.equal(cy.status, 200);
  t.ok((await cy.text()).length > 100_000, 'the cytoscape bundle itself');

  const graph = (await (await fetch(`${url}graph.json`)).json()) as {
    agents: { url: string; ok: boolean; node?: string; error?: string }[];
    edges: {
      source: string;
      target: string;
      status: string;
      sourcePrincipal?: string;
      allowed: number;
      reportedBy: string[];
      setupMs?: { count: number };
    }[];
  };
  t.match(graph.agents, [
    { ok: true, node: 'node-a' },
    { ok: true, node: 'node-b' },
    { ok: false, url: down, error: /edges/ },
  ]);
  const toReviews = graph.edges.filter(
    (e) => e.source === 'shop/web-1' && e.target.startsWith('shop/reviews-'),
  );
  t.ok(toReviews.length > 0, JSON.stringify(graph.edges));
  t.equal(
    toReviews.reduce((n, e) => n + e.allowed, 0),
    3,
    'three allowed connections',
  );
  for (const e of toReviews) {
    t.equal(e.status, 'mtls');
    t.equal(e.sourcePrincipal, 'spiffe://cluster.local/ns/shop/sa/web');
    t.same(e.reportedBy, ['node-a (source)', 'node-b (destination)']);
    t.ok((e.setupMs?.count ?? 0) > 0, 'tunnel set-up time from the source side');
  }
});

t.test("the agents are found from the mesh's nodes", async (t) => {
  const w = await startWorld(t);
  const mesh = await FileMeshSource.open({
    paths: [w.meshDir],
    logger: createLogger({ level: 'silent' }),
  });
  t.teardown(() => mesh.close());
  t.same(agentUrls(mesh, 15000), ['http://127.0.0.1:15000/', 'http://127.0.0.2:15000/']);
});

t.test('bad flags are reported together, exit 2', async (t) => {
  const res = await run(
    process.execPath,
    [...MTUN_CLI, 'map', '--listen', 'nowhere', '--admin-port', '99999'],
    { timeoutMs: 30_000 },
  );
  t.equal(res.code, 2);
  t.match(res.stderr, /--listen: expected HOST:PORT/);
  t.match(res.stderr, /--admin-port: expected a port number/);
  t.match(res.stderr, /give the agents: --agent URL\.\.\., or --mesh PATH/);
});
