// The mesh of netns mode: `mtun ca` in the control namespace and one
// `mtun agent --redirect iptables` per node namespace, run from dist/ (bench/lib/procs.ts),
// logging at warn (no access log, like the C peers). One agent per node at a time (an agent
// owns its node's MTUN-PREROUTING chain), so the mtun and mtun --workers 2 configurations
// take turns: AgentPair.ensure(workers) restarts both agents when the variant changes.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Netns } from '../../tests/namespaced/netns.js';
import { NODE_NAME } from '../../tests/namespaced/topology.js';
import { mtun, type Proc } from '../lib/procs.js';
import { benchMeshYaml, CTL_IP, type Node } from './netns-topology.js';

const NODES = ['n1', 'n2'] as const;

export class AgentPair {
  #workers = 0;
  #agents: Proc[] = [];

  private constructor(
    private readonly ns: Netns,
    private readonly dir: string,
    private readonly opts: { nodeArgs: readonly string[]; root: string | undefined },
  ) {}

  /** Writes the mesh and the node tokens and starts the CA; no agent yet. */
  static async create(
    ns: Netns,
    dir: string,
    all: Proc[],
    opts: { nodeArgs: readonly string[]; root: string | undefined },
  ): Promise<AgentPair> {
    await mkdir(join(dir, 'mesh'), { recursive: true });
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), benchMeshYaml());
    const token = { n1: randomBytes(16).toString('hex'), n2: randomBytes(16).toString('hex') };
    const lines = NODES.map((n) => `- {node: ${NODE_NAME[n]}, token: ${token[n]}}`);
    await writeFile(join(dir, 'tokens.yaml'), `${lines.join('\n')}\n`);
    for (const n of NODES) await writeFile(join(dir, `token-${n}`), token[n]);
    const ca = mtun(
      [
        'ca',
        ...['--state-dir', join(dir, 'ca'), '--mesh', join(dir, 'mesh')],
        ...['--tokens', join(dir, 'tokens.yaml'), '--listen', `${CTL_IP}:15012`],
      ],
      { netns: ns.name('ctl'), root: opts.root },
    );
    all.push(ca);
    await ca.waitFor(/"url":"https:/);
    return new AgentPair(ns, dir, opts);
  }

  /** The running agents (both nodes), measured for CPU and memory. */
  get agents(): readonly Proc[] {
    return this.#agents;
  }

  /** Runs the agents with `workers`; true when it had to (re)start them. */
  async ensure(workers: number): Promise<boolean> {
    if (this.#workers === workers && this.#agents.every((a) => a.child.exitCode === null))
      return false;
    await this.stop();
    this.#agents = NODES.map((n) => this.#start(n, workers));
    this.#workers = workers;
    await Promise.all(NODES.map((n, i) => this.#ready(n, this.#agents[i]!)));
    return true;
  }

  /** SIGTERM both agents (they remove their capture rules) and wait for them. */
  async stop(): Promise<void> {
    await Promise.all(this.#agents.map((a) => a.stop()));
    this.#agents = [];
    this.#workers = 0;
  }

  #start(node: Node, workers: number): Proc {
    const d = this.dir;
    return mtun(
      [
        'agent',
        ...[
          '--node',
          NODE_NAME[node],
          '--mesh',
          join(d, 'mesh'),
          '--ca',
          `https://${CTL_IP}:15012`,
        ],
        ...['--ca-token-file', join(d, `token-${node}`)],
        ...['--ca-bundle', join(d, 'ca', 'root-cert.pem'), '--redirect', 'iptables'],
        ...['--admin', 'off', '--metrics', '127.0.0.1:15020', '--drain-period', '1s'],
        ...['--workers', String(workers), '--log-level', 'warn'],
      ],
      // A profile (--profile) of the single-process variant only, as in loopback mode.
      {
        netns: this.ns.name(node),
        nodeArgs: workers === 1 ? [...this.opts.nodeArgs] : [],
        root: this.opts.root,
      },
    );
  }

  /** Ready = rules installed and every local identity has its certificate (/healthz/ready). */
  async #ready(node: Node, agent: Proc): Promise<void> {
    const end = Date.now() + 45_000;
    let why = '';
    for (;;) {
      const r = await this.ns.exec(node, 'curl', [
        ...['-s', '--max-time', '2', '-w', ' %{http_code}'],
        'http://127.0.0.1:15021/healthz/ready',
      ]);
      why = r.stdout;
      if (r.stdout.endsWith(' 200')) return;
      if (Date.now() > end || agent.child.exitCode !== null)
        throw new Error(`agent ${node} not ready: ${why}\n${agent.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
