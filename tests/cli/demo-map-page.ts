// The mesh map as a person uses it: `mtun demo` prints the map's URL first; a real headless
// browser (Debian's chromium driven by playwright-core) opens it and sees the Bookinfo-like
// scenario (allowed productpage→details with its SPIFFE identity, the denied
// productpage→ratings, the refused non-mesh batch caller), with no console errors, and the
// page updates when new traffic flows. Skips only when chromium is not installed (CI has it).
// Run from tests/cli/demo.test.ts, not as a file of its own: both start the demo's apps on the
// same pod addresses (127.0.10.1:9080, ...), so they must never run side by side (tap --jobs).
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Test } from 'tap';
import { getVia } from '../../cli/demo/apps.js';
import { startMtun, terminate } from '../../testkit/process.js';
import { eventually } from '../helpers/eventually.js';

const CHROMIUM = process.env['MTUN_CHROMIUM'] ?? '/usr/bin/chromium';
const OFFSET = 2500; // tests/cli/demo.test.ts uses 1000
const PRODUCTPAGE = 'spiffe://cluster.local/ns/frontend/sa/productpage';

/** The little of cytoscape's API the test reads (it runs in the page). */
interface CyElement {
  id(): string;
  data(field: string): string;
  renderedBoundingBox(): { w: number };
}
interface CyCollection {
  map<T>(f: (e: CyElement) => T): T[];
  every(f: (e: CyElement) => boolean): boolean;
}
interface Cy {
  nodes(selector: string): CyCollection;
  edges(): CyCollection;
}

interface Row {
  readonly cls: string;
  readonly cells: string[];
}

/** Why the browser test cannot run here, or false when it can. */
export const noBrowser: string | false = existsSync(CHROMIUM)
  ? false
  : `chromium not found at ${CHROMIUM} (apt-get install chromium, or set MTUN_CHROMIUM); CI installs it`;

export async function demoMapPage(t: Test): Promise<void> {
  const demo = startMtun(t, ['demo', '--port-offset', String(OFFSET)]);
  t.teardown(() => terminate(demo.child));
  const [, url] = await demo.waitFor(/^Mesh map: (http:\/\/\S+)/, 90_000);
  await demo.waitFor(/Ctrl-C stops the demo/, 90_000);
  t.match(demo.output(), /^Mesh map: http:\/\/127\.0\.0\.1:22501\//, 'the URL comes first');
  t.match(demo.output(), /4 of 4 expectations met/);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  // Only the map server is ever asked: the page works offline.
  page.on('request', (r) => {
    if (!r.url().startsWith(url!)) problems.push(`outside request: ${r.url()}`);
  });

  await page.goto(url!);
  const rows = (): Promise<Row[]> =>
    page.$$eval('#edges tbody tr', (trs) =>
      trs.map((tr) => ({
        cls: tr.className,
        cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''),
      })),
    );
  const row = (list: Row[], from: string, to: string) =>
    list.find((r) => r.cells[0] === from && r.cells[1] === to);
  await eventually(
    async () => row(await rows(), 'frontend/productpage-1', 'shop/details-1') !== undefined,
    'the connections table',
    30_000,
    200,
  );

  const list = await rows();
  const details = row(list, 'frontend/productpage-1', 'shop/details-1')!;
  t.equal(details.cls, 'mtls', 'productpage → details is mTLS and allowed');
  t.equal(details.cells[2], 'mTLS');
  t.equal(details.cells[3], PRODUCTPAGE, 'with the verified SPIFFE identity');
  t.ok(Number(details.cells[4]) >= 1, 'allowed count');
  t.match(details.cells[7], /allow by shop\/details-from-frontend/);

  const ratings = row(list, 'frontend/productpage-1', 'shop/ratings-1');
  t.equal(ratings?.cls, 'denied', 'productpage → ratings is denied');
  t.equal(ratings?.cells[5], '1');
  t.match(ratings?.cells[7], /deny by shop\/deny-frontend-to-ratings/);

  const batch = row(list, 'legacy/batch-1', 'shop/details-1');
  t.equal(batch?.cls, 'refused', 'the non-mesh batch caller is refused');
  t.match(batch?.cells[2], /none/);
  t.equal(batch?.cells[3], 'none', 'no identity');

  // The graph itself: the same edges, the batch workload marked as outside the mesh.
  const graph = await page.evaluate(() => {
    const cy = (globalThis as unknown as { mtunMap: { cy: Cy } }).mtunMap.cy;
    return {
      nodes: cy.nodes('[kind != "namespace"]').map((n) => `${n.id()}:${n.data('mesh')}`),
      edges: cy.edges().map((e) => `${e.data('source')}>${e.data('target')}:${e.data('status')}`),
      rendered: cy.edges().every((e) => e.renderedBoundingBox().w > 0),
    };
  });
  t.ok(graph.nodes.includes('legacy/batch-1:nonmesh'), `batch is not in the mesh: ${graph.nodes}`);
  t.ok(graph.nodes.includes('frontend/productpage-1:mesh'));
  for (const e of [
    'frontend/productpage-1>shop/details-1:mtls',
    'frontend/productpage-1>shop/ratings-1:denied',
    'legacy/batch-1>shop/details-1:refused',
  ])
    t.ok(graph.edges.includes(e), `graph edge ${e}`);
  t.ok(graph.rendered, 'every edge is drawn');

  // Click the row: the detail panel names identities, policy and bytes.
  await page.click('#edges tbody tr.mtls >> text=shop/details-1');
  const detail = await page.textContent('#detail');
  t.match(detail, /source identity/);
  t.match(detail, PRODUCTPAGE);
  t.match(detail, /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/details/);
  t.match(detail, /tunnel set-up\s*[\d.]+ ms mean/);

  // New traffic: productpage calls details twice more; the page shows it without a reload.
  const before = Number(details.cells[4]);
  for (let i = 0; i < 2; i++) {
    const r = await getVia(
      { host: '127.0.0.1', port: 15080 + OFFSET },
      '127.0.10.1',
      'details.shop.svc.cluster.local',
      80,
      '/details',
    );
    t.equal(r.status, 200);
  }
  await eventually(
    async () =>
      Number(row(await rows(), 'frontend/productpage-1', 'shop/details-1')?.cells[4]) >= before + 2,
    `allowed productpage → details to reach ${before + 2} on the page`,
    30_000,
    200,
  );
  t.match(await page.textContent('#status'), /agents 2\/2 answering/);
  t.same(problems, [], 'no console errors, failed or outside requests');
}
