// The map's graph from several agents' answers (cli/map/merge.ts): one edge per workload pair
// and security, verdicts from the deciding (destination) side, set-up time from the dialing
// (source) side, refusals seen only at the source, pods of one workload on several nodes
// summed, agents that did not answer listed.
import t from 'tap';
import type { EdgeSummary } from '../../agent/observe/edges.js';
import type { MapSummary } from '../../agent/observe/map-summary.js';
import { mergeAnswers } from '../../cli/map/merge.js';

const PP = 'spiffe://cluster.local/ns/frontend/sa/productpage';

function edge(over: Partial<EdgeSummary> & Pick<EdgeSummary, 'reporter'>): EdgeSummary {
  return {
    source: { workload: 'productpage', namespace: 'frontend' },
    destination: { workload: 'details', namespace: 'shop' },
    security: 'mutual_tls',
    opened: 1,
    active: 0,
    closed: 1,
    allowed: 1,
    denied: 0,
    failed: 0,
    policies: [],
    bytesFromClient: 10,
    bytesToClient: 20,
    connectionsPerSecond: 0.1,
    bytesPerSecond: 1,
    firstSeen: 1,
    lastSeen: 2,
    ...over,
  };
}

function summary(node: string, edges: EdgeSummary[]): MapSummary {
  return {
    version: 1,
    node,
    at: 0,
    meshVersion: 1,
    windowMs: 300_000,
    maxEdges: 2_000,
    evicted: 0,
    workloads: [
      {
        namespace: 'frontend',
        workload: 'productpage',
        kind: 'Deployment',
        inMesh: true,
        pods: 1,
        serviceAccounts: ['productpage'],
        nodes: ['node-a'],
      },
      {
        namespace: 'shop',
        workload: 'details',
        kind: 'Deployment',
        inMesh: true,
        pods: 2,
        serviceAccounts: ['details'],
        nodes: ['node-b', 'node-c'],
      },
      {
        namespace: 'legacy',
        workload: 'batch',
        kind: 'Deployment',
        inMesh: false,
        pods: 1,
        serviceAccounts: ['batch'],
        nodes: ['node-a'],
      },
    ],
    edges,
  };
}

t.test('both sides of the same connections make one edge', async (t) => {
  const g = mergeAnswers([
    {
      url: 'http://a',
      summary: summary('node-a', [
        edge({
          reporter: 'source',
          opened: 3,
          allowed: 2,
          denied: 1,
          source: { workload: 'productpage', namespace: 'frontend', principal: PP },
          setupMs: { count: 3, mean: 5, max: 9 },
        }),
      ]),
    },
    {
      url: 'http://b',
      summary: summary('node-b', [
        edge({
          reporter: 'destination',
          opened: 2,
          allowed: 1,
          denied: 1,
          policies: [
            { policy: 'shop/allow', verdict: 'allow', count: 1 },
            { policy: 'shop/deny', verdict: 'deny', count: 1 },
          ],
          source: { workload: 'productpage', namespace: 'frontend', principal: PP },
        }),
      ]),
    },
    {
      url: 'http://c',
      summary: summary('node-c', [
        edge({
          reporter: 'destination',
          opened: 1,
          allowed: 1,
          policies: [{ policy: 'shop/allow', verdict: 'allow', count: 1 }],
        }),
      ]),
    },
  ]);
  t.equal(g.edges.length, 1);
  t.match(g.edges[0], {
    source: 'frontend/productpage',
    target: 'shop/details',
    status: 'denied',
    sourcePrincipal: PP,
    opened: 3,
    allowed: 2,
    denied: 1,
    setupMs: { count: 3, mean: 5, max: 9 },
    reportedBy: ['node-a (source)', 'node-b (destination)', 'node-c (destination)'],
  });
  t.same(
    [...g.edges[0]!.policies].sort((x, y) => x.policy.localeCompare(y.policy)),
    [
      { policy: 'shop/allow', verdict: 'allow', count: 2 },
      { policy: 'shop/deny', verdict: 'deny', count: 1 },
    ],
  );
  t.equal(g.nodes.length, 3, 'workloads from the agents, once each');
  t.same(
    g.agents.map((a) => a.node),
    ['node-a', 'node-b', 'node-c'],
  );
});

t.test('a refusal seen only by the source, plaintext, unknown ends, an agent down', async (t) => {
  const g = mergeAnswers([
    {
      url: 'http://a',
      summary: summary('node-a', [
        edge({
          reporter: 'source',
          source: { workload: 'batch', namespace: 'legacy' },
          allowed: 0,
          failed: 1,
          lastError: { code: 'IDENTITY_ERROR', message: 'no identity' },
        }),
        edge({
          reporter: 'destination',
          security: 'none',
          source: { workload: 'unknown', namespace: 'unknown' },
        }),
      ]),
    },
    { url: 'http://b', error: 'http://b/edges: connect ECONNREFUSED' },
  ]);
  const byId = new Map(g.edges.map((e) => [`${e.source}>${e.target}`, e]));
  t.match(byId.get('legacy/batch>shop/details'), {
    status: 'refused',
    failed: 1,
    lastError: { code: 'IDENTITY_ERROR' },
  });
  t.match(byId.get('unknown/unknown>shop/details'), { status: 'plaintext', security: 'none' });
  t.match(
    g.nodes.find((n) => n.id === 'unknown/unknown'),
    { inMesh: undefined, kind: 'unknown' },
  );
  t.match(
    g.nodes.find((n) => n.id === 'legacy/batch'),
    { inMesh: false },
  );
  t.match(g.agents, [
    { url: 'http://a', ok: true, node: 'node-a' },
    { url: 'http://b', ok: false, error: /ECONNREFUSED/ },
  ]);
});
