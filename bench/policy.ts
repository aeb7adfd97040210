// Policy evaluation throughput: decisions per second with 10, 1,000 and 10,000
// AuthorizationPolicies spread over 100 namespaces. Four policies apply to every destination
// (mesh-wide and root-namespace selector ones); the rest live in the 100 namespaces and select
// workloads other than the destinations, so a flat per-connection cost shows the index works.
// Ratios are against the 10-policy case of the same run; sizes are measured in interleaved
// rounds and the median taken, so machine noise hits all sizes alike. Bounded: SECONDS per size.
// Usage: node --import tsx bench/policy.ts --help
import { SpiffeId } from '../identity/spiffe-id.js';
import { MeshSnapshot } from '../mesh/snapshot.js';
import type {
  AuthorizationPolicy,
  AuthzRule,
  ObjectMeta,
  PeerAuthentication,
  Workload,
} from '../mesh/types.js';
import { authorize, CompiledPolicies, type Connection } from '../policy/index.js';
import { scriptArgs } from './lib/args.js';
import { median } from './lib/load.js';

const { seconds: SECONDS } = scriptArgs(
  'usage: node --import tsx bench/policy.ts [options]\n\nPolicy decisions per second with 10, 1,000 and 10,000 AuthorizationPolicies.',
  { seconds: { default: 3.5, min: 0.2, max: 30, help: 'seconds per policy-set size' } },
);
const NAMESPACES = 100;
const PODS_PER_NAMESPACE = 10;
const SIZES = [10, 1_000, 10_000];

const meta = (namespace: string, name: string): ObjectMeta => ({
  name,
  namespace,
  uid: `${namespace}/${name}`,
  labels: {},
  annotations: {},
  creationTimestamp: undefined,
  origin: { source: 'bench' },
});

function policy(
  ns: string,
  name: string,
  action: 'ALLOW' | 'DENY',
  rules: AuthzRule[],
  selector?: Record<string, string>,
): AuthorizationPolicy {
  return {
    meta: meta(ns, name),
    selector,
    targetRefs: [],
    action,
    provider: undefined,
    rules,
    dryRun: false,
  };
}

function workloads(): Workload[] {
  const out: Workload[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    for (let p = 0; p < PODS_PER_NAMESPACE; p++) {
      out.push({
        meta: { ...meta(`ns-${n}`, `probe-${p}`), labels: { app: `probe-${p}`, tier: 'probe' } },
        serviceAccount: `probe-${p}`,
        node: 'node-0',
        ips: [`10.${n}.${p}.1`],
        inMesh: true,
        ready: true,
        namedPorts: new Map(),
        generateName: undefined,
        ownerReferences: [],
        workloadName: `probe-${p}`,
        workloadKind: 'Pod',
        canonicalName: `probe-${p}`,
        canonicalRevision: 'latest',
      });
    }
  }
  return out;
}

/** The 4 policies every destination sees, plus `n - 4` that select no destination. */
function policies(n: number): AuthorizationPolicy[] {
  const out = [
    policy('istio-system', 'deny-blocked', 'DENY', [
      { from: [{ source: { namespaces: ['blocked'] } }] },
    ]),
    policy('istio-system', 'allow-mesh', 'ALLOW', [
      { from: [{ source: { principals: ['cluster.local/ns/*'] } }] },
    ]),
    policy(
      'istio-system',
      'allow-probe',
      'ALLOW',
      [
        {
          from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }],
          to: [{ operation: { ports: ['8080'] } }],
        },
      ],
      { tier: 'probe' },
    ),
    policy('istio-system', 'deny-ssh', 'DENY', [{ to: [{ operation: { ports: ['22'] } }] }], {
      tier: 'probe',
    }),
  ];
  for (let i = out.length; i < n; i++) {
    const ns = `ns-${i % NAMESPACES}`;
    const rules: AuthzRule[] = [
      {
        from: [
          {
            source: {
              principals: [`cluster.local/ns/${ns}/sa/gen-${i}`],
              ipBlocks: ['10.0.0.0/8'],
            },
          },
        ],
      },
      {
        from: [{ source: { namespaces: ['ns-1', 'ns-2*'] } }],
        to: [{ operation: { ports: ['8080', '9090'] } }],
      },
    ];
    out.push(policy(ns, `gen-${i}`, i % 3 === 0 ? 'DENY' : 'ALLOW', rules, { app: `gen-${i}` }));
  }
  return out;
}

const meshPermissive: PeerAuthentication = {
  meta: meta('istio-system', 'default'),
  selector: undefined,
  mode: 'PERMISSIVE',
  portLevelMtls: new Map(),
};

function connections(ws: readonly Workload[]): Connection[] {
  return ws.map((w, i) => ({
    source: {
      identity:
        i % 4 === 3
          ? undefined
          : SpiffeId.of('cluster.local', `ns-${(i * 7) % NAMESPACES}`, 'client'),
      ip: `10.${(i * 7) % NAMESPACES}.99.${(i % 250) + 1}`,
    },
    destination: { workload: w, ip: w.ips[0]!, port: i % 10 === 9 ? 22 : 8080 },
  }));
}

interface Setup {
  size: number;
  compiled: CompiledPolicies;
  conns: Connection[];
  compileMs: number;
  firstUs: number;
  verdicts: string;
}

function setup(size: number): Setup {
  const ws = workloads();
  const snapshot = new MeshSnapshot(
    {
      workloads: ws,
      services: [],
      nodes: [],
      namespaces: [],
      authorizationPolicies: policies(size),
      peerAuthentications: [meshPermissive],
    },
    size,
  );
  const conns = connections(snapshot.workloads);
  let t0 = performance.now();
  const compiled = new CompiledPolicies(snapshot);
  const compileMs = performance.now() - t0;
  // First connection to each workload: computes (and memoizes) what applies to it.
  t0 = performance.now();
  const verdicts = conns.map((c) => authorize(c, compiled).verdict[0]).join('');
  const firstUs = ((performance.now() - t0) * 1000) / conns.length;
  return { size, compiled, conns, compileMs, firstUs, verdicts };
}

/** Decisions per second over `seconds`, cycling through the connections. */
function rate({ compiled, conns }: Setup, seconds: number): number {
  let done = 0;
  let allowed = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  while (performance.now() < deadline) {
    for (const c of conns) if (authorize(c, compiled).verdict === 'allow') allowed++;
    done += conns.length;
  }
  if (allowed > done) throw new Error('unreachable'); // keeps the loop's result observable
  return done / ((performance.now() - t0) / 1000);
}

function main(): void {
  const rounds = 7;
  console.log(
    `policy evaluation: ${NAMESPACES} namespaces x ${PODS_PER_NAMESPACE} destinations, ` +
      `${rounds} interleaved rounds of ${(SECONDS / rounds).toFixed(2)}s per size, node ${process.version}`,
  );
  rate(setup(SIZES[0]!), 0.3); // warm up the JIT so that the first size is not penalized
  const setups = SIZES.map(setup);
  const samples = setups.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of setups.entries()) samples[i]!.push(rate(s, SECONDS / rounds));
  }
  const perSecond = samples.map(median);
  const base = perSecond[0]!;
  const row = (...cells: string[]) =>
    console.log(cells.map((c, i) => (i === 0 ? c.padEnd(10) : c.padStart(16))).join(''));
  row('policies', 'compile ms', 'first conn us', 'evals/sec', 'vs 10 policies');
  setups.forEach((s, i) => {
    const ps = perSecond[i]!;
    row(
      String(s.size),
      s.compileMs.toFixed(1),
      s.firstUs.toFixed(1),
      Math.round(ps).toLocaleString('en-US'),
      `${(ps / base).toFixed(2)}x`,
    );
  });
  const same = setups.every((s) => s.verdicts === setups[0]!.verdicts);
  const allowed = [...setups[0]!.verdicts].filter((v) => v === 'a').length;
  console.log(
    `verdicts identical across sizes: ${same ? 'yes' : 'NO'} ` +
      `(${allowed} allow, ${setups[0]!.verdicts.length - allowed} deny per pass)`,
  );
  if (!same) process.exitCode = 1;
}

main();
