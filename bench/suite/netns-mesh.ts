// The mesh of netns mode (testkit/mesh.ts): `mtun ca` in the control namespace and one
// `mtun agent --redirect iptables` per node namespace, run from dist/ (bench/lib/procs.ts),
// logging at warn (no access log, like the C peers). One agent per node at a time (an agent
// owns its node's MTUN-PREROUTING chain), so the mtun and mtun --workers 2 configurations
// take turns: AgentPair.ensure(workers) restarts both agents when the variant changes.
import {
  agentArgs,
  type ControlPlane,
  caArgs,
  fileControlPlane,
  untilAgentReady,
} from '../../testkit/mesh.js';
import type { Netns } from '../../testkit/netns.js';
import { NODES, type NodeTag } from '../../testkit/topology.js';
import { mtun, type Proc } from '../lib/procs.js';
import { benchMeshYaml } from './netns-topology.js';

interface AgentPairOptions {
  /** Node flags of the single-process agents (a CPU profile). */
  readonly nodeArgs: readonly string[];
  readonly root: string | undefined;
}

export class AgentPair {
  /** The agents' --workers while they run; 0 when none runs. */
  #workers = 0;
  #agents: Proc[] = [];

  private constructor(
    private readonly ns: Netns,
    private readonly dir: string,
    private readonly control: ControlPlane,
    private readonly opts: AgentPairOptions,
  ) {}

  /** Writes the mesh and the node tokens and starts the CA; no agent yet. */
  static async create(
    ns: Netns,
    dir: string,
    all: Proc[],
    opts: AgentPairOptions,
  ): Promise<AgentPair> {
    const control = await fileControlPlane(dir, benchMeshYaml());
    const ca = mtun(caArgs(dir, control), { netns: ns.name('ctl'), root: opts.root });
    all.push(ca);
    await ca.waitFor(/"url":"https:/);
    return new AgentPair(ns, dir, control, opts);
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
    await Promise.all(NODES.map((n, i) => untilAgentReady(this.ns, n, this.#agents[i]!)));
    return true;
  }

  /** SIGTERM both agents (they remove their capture rules) and wait for them. */
  async stop(): Promise<void> {
    await Promise.all(this.#agents.map((a) => a.stop()));
    this.#agents = [];
    this.#workers = 0;
  }

  #start(node: NodeTag, workers: number): Proc {
    return mtun(
      [
        ...agentArgs(node, this.dir, this.control, 'off'),
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
}
