// What the mesh map page costs a viewer: `mtun demo` from dist/ (what `npm start` runs), the
// page opened in headless chromium (playwright-core), the bytes transferred per resource and
// the time until the graph is drawn, over --runs fresh loads; --screenshot PATH saves the
// page with a connection selected (docs/map.png is taken this way). --workloads N times the
// page at scale instead: a made-up mesh of N workloads and 3N edges (bench/lib/map-synthetic.ts)
// behind the real map server.
// Usage: node --import tsx bench/map-page.ts [--screenshot docs/map.png] --help
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { MapServer } from '../cli/map/server.js';
import { terminate, track } from '../testkit/process.js';
import { scriptArgs } from './lib/args.js';
import { syntheticAgent, syntheticSummary } from './lib/map-synthetic.js';

// --screenshot PATH is the one option that is not a number.
const argv = process.argv.slice(2);
const at = argv.indexOf('--screenshot');
const screenshot = at >= 0 ? argv.splice(at, 2)[1] : undefined;
const {
  runs,
  'port-offset': offset,
  workloads,
} = scriptArgs(
  'usage: node --import tsx bench/map-page.ts [--screenshot PATH] [options]\n\nThe map page of `mtun demo` (dist/) in headless chromium: bytes transferred, load time.',
  {
    runs: { default: 5, min: 1, max: 50, integer: true, help: 'cold page loads' },
    'port-offset': { default: 4000, min: 0, max: 40_000, integer: true, help: 'demo port offset' },
    workloads: {
      default: 0,
      min: 0,
      max: 2_000,
      integer: true,
      help: 'N > 0: a made-up mesh of N workloads instead of the demo',
    },
  },
  argv,
);
const CHROMIUM = process.env['MTUN_CHROMIUM'] ?? '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}`);

/** The page's URL and how to stop what serves it: the demo, or the synthetic mesh. */
async function serve(): Promise<{ url: string; stop(): Promise<unknown> }> {
  if (workloads > 0) {
    const agent = await syntheticAgent(syntheticSummary(workloads));
    const map = await MapServer.create({
      listen: { host: '127.0.0.1', port: 0 },
      agents: () => [agent.url],
    });
    return {
      url: map.url(),
      stop: async () => {
        await map.close();
        agent.server.close();
      },
    };
  }
  const child = spawn(
    process.execPath,
    ['dist/cli/main.js', 'demo', '--port-offset', String(offset)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const demo = track(child, 'mtun demo');
  try {
    const [, url] = await demo.waitFor(/^Mesh map: (http:\/\/\S+)/, 90_000);
    await demo.waitFor(/Ctrl-C stops the demo/, 90_000);
    return { url: url!, stop: () => terminate(child) };
  } catch (err) {
    await terminate(child);
    throw err;
  }
}

const served = await serve();
const url = served.url;
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  const loads: {
    ms: number;
    loadEventMs: number;
    drawMs: number;
    bytes: number;
    byUrl: Map<string, number>;
  }[] = [];
  for (let i = 0; i < runs; i++) {
    // A new context each time: nothing cached, as a first visit.
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    const byUrl = new Map<string, number>();
    page.on('requestfinished', async (r) => {
      const s = await r.sizes();
      byUrl.set(
        new URL(r.url()).pathname,
        (byUrl.get(new URL(r.url()).pathname) ?? 0) + s.responseBodySize + s.responseHeadersSize,
      );
    });
    const start = performance.now();
    await page.goto(url);
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { mtunMap?: { state: { updates: number } } }).mtunMap?.state
          .updates === 1,
    );
    const ms = performance.now() - start;
    const inPage = await page.evaluate(() => ({
      // Runs in the page (DOM types are not in this project's lib).
      loadEventMs: (
        performance as unknown as { getEntriesByType(t: string): { loadEventEnd: number }[] }
      ).getEntriesByType('navigation')[0]!.loadEventEnd,
      drawMs: (globalThis as unknown as { mtunMap: { state: { lastUpdateMs: number } } }).mtunMap
        .state.lastUpdateMs,
    }));
    await page.waitForTimeout(300); // the last requestfinished events
    const bytes = [...byUrl.values()].reduce((a, b) => a + b, 0);
    loads.push({ ms, ...inPage, bytes, byUrl });
    if (screenshot && i === runs - 1) {
      if (workloads === 0) await page.click('#edges tbody tr.mtls >> text=shop/details-1');
      await page.screenshot({ path: screenshot, fullPage: true });
      console.log(`screenshot: ${screenshot}`);
    }
    await ctx.close();
  }
  const median = (f: (l: (typeof loads)[number]) => number) => {
    const v = loads.map(f).sort((a, b) => a - b);
    return `median ${v[Math.floor(v.length / 2)]!.toFixed(0)} ms (${v[0]!.toFixed(0)}-${v.at(-1)!.toFixed(0)})`;
  };
  const last = loads.at(-1)!;
  console.log(
    `page ${url}: ${runs} cold loads (new browser context each), until the graph is drawn`,
  );
  for (const [path, b] of last.byUrl) console.log(`  ${path.padEnd(20)} ${b} B`);
  console.log(`  total transferred ${last.bytes} B (gzip; headers included)`);
  console.log(`  load event:               ${median((l) => l.loadEventMs)}`);
  console.log(`  graph drawn (from goto):  ${median((l) => l.ms)}`);
  console.log(`  of which layout + table:  ${median((l) => l.drawMs)}`);
} finally {
  await browser.close();
  await served.stop();
}
