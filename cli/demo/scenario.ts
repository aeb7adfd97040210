// The demo's scenario: real requests through the agents, each with what we expect, and a
// report a newcomer can read (who called whom, with which verified identity, which policy
// decided, bytes). The facts come from the receiving agent's access log, not from guesses.
import { getVia } from './apps.js';

export type AccessLine = Record<string, unknown>;

export interface ScenarioEnv {
  socks(node: 'node-a' | 'node-b'): { host: string; port: number };
  /** Inbound access-log lines of all agents so far. */
  inbound(): AccessLine[];
}

export interface StepResult {
  readonly ok: boolean;
  readonly lines: string[];
}

const PRODUCTPAGE = '127.0.10.1';

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 150)); // access lines are written as connections close
}

function describe(l: AccessLine | undefined): string {
  if (!l) return 'no inbound record';
  const policy = l['policy'] ? `policy ${l['policy']}` : 'no policy named';
  // ztunnel's inbound line counts from the server's side: received from the caller, sent back.
  const bytes = `${l['bytes_recv']} B in, ${l['bytes_sent']} B out`;
  return `${l['verdict']} (${policy}); caller verified as ${l['src.identity'] ?? 'none'}; ${bytes}`;
}

export async function runScenario(env: ScenarioEnv): Promise<StepResult[]> {
  const results: StepResult[] = [];
  const seen = () => env.inbound().length;

  // 1. productpage → details: allowed by namespace.
  let mark = seen();
  const details = await getVia(
    env.socks('node-a'),
    PRODUCTPAGE,
    'details.shop.svc.cluster.local',
    80,
    '/details',
  ).catch((e: Error) => ({ status: 0, body: e.message }));
  await settle();
  let line = env
    .inbound()
    .slice(mark)
    .find((l) => l['dst.workload'] === 'details-1');
  results.push({
    ok:
      details.status === 200 &&
      line?.['verdict'] === 'allow' &&
      line['src.identity'] === 'spiffe://cluster.local/ns/frontend/sa/productpage',
    lines: [
      `productpage (frontend, node-a) → details.shop:80 (node-b): HTTP ${details.status}`,
      `    ${describe(line)}`,
    ],
  });

  // 2. productpage → reviews: two versions on two nodes share the load; reviews → ratings.
  mark = seen();
  const served = new Map<string, number>();
  let allOk = true;
  for (let i = 0; i < 6; i++) {
    const r = await getVia(
      env.socks('node-a'),
      PRODUCTPAGE,
      'reviews.shop.svc.cluster.local',
      80,
      '/reviews',
    ).catch((e: Error) => ({ status: 0, body: e.message }));
    if (r.status !== 200) allOk = false;
    const body =
      r.status === 200
        ? (JSON.parse(r.body) as { pod: string; ratings: { stars?: number } })
        : undefined;
    if (body?.ratings.stars !== 4) allOk = false;
    if (body) served.set(body.pod, (served.get(body.pod) ?? 0) + 1);
  }
  await settle();
  const ratingsLines = env
    .inbound()
    .slice(mark)
    .filter((l) => l['dst.workload'] === 'ratings-1');
  results.push({
    ok:
      allOk &&
      served.size === 2 &&
      ratingsLines.length > 0 &&
      ratingsLines.every((l) => l['verdict'] === 'allow'),
    lines: [
      `productpage → reviews.shop:80 ×6: served by ${[...served].map(([p, n]) => `${p} ×${n}`).join(', ') || 'nobody'} (both versions expected)`,
      `    each reviews pod called ratings.shop:80 itself: ${describe(ratingsLines[0])}`,
    ],
  });

  // 3. productpage → ratings: the explicit DENY wins.
  mark = seen();
  const denied = await getVia(
    env.socks('node-a'),
    PRODUCTPAGE,
    'ratings.shop.svc.cluster.local',
    80,
    '/ratings',
  ).then(
    (r) => `HTTP ${r.status} (expected a refusal)`,
    (e: Error) => `refused before any data (${e.message})`,
  );
  await settle();
  line = env
    .inbound()
    .slice(mark)
    .find((l) => l['dst.workload'] === 'ratings-1');
  results.push({
    ok:
      denied.startsWith('refused') &&
      line?.['verdict'] === 'deny' &&
      line['policy'] === 'shop/deny-frontend-to-ratings',
    lines: [
      `productpage → ratings.shop:80: ${denied}`,
      `    ${describe(line)}; reason: ${line?.['reason'] ?? '-'}`,
    ],
  });

  // 4. A pod outside the mesh has no identity: the agent will not tunnel for it.
  const legacy = await getVia(
    env.socks('node-a'),
    '127.0.10.9',
    'details.shop.svc.cluster.local',
    80,
    '/details',
  ).then(
    (r) => `HTTP ${r.status} (expected a refusal)`,
    (e: Error) => `refused (${e.message})`,
  );
  results.push({
    ok: legacy.startsWith('refused'),
    lines: [
      `batch (legacy, not in the mesh) → details.shop:80: ${legacy}`,
      '    no identity to present, and shop requires mTLS (STRICT)',
    ],
  });
  return results;
}
