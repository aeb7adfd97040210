// `mtun agent --redirect iptables`: keeps the capture rules (rules.ts) in step with the mesh
// pods on this node. On start it removes whatever a previous run left behind (a crash, a
// SIGKILL), then installs the rules before the agent is announced; on every mesh change it
// replaces its chain atomically; on close it removes its chain and jump. It owns exactly
// MTUN-PREROUTING and the jumps into it, per address family, and touches nothing else.
// Invariant: at most one iptables operation at a time (a promise queue), each reading the
// newest state, so bursts of changes coalesce and never apply out of order.
import type { Logger } from '../../lib/logger.js';
import { RedirectRulesError } from './errors.js';
import {
  type CapturePorts,
  CHAIN,
  type Family,
  JUMP_SPEC,
  jumpsToChain,
  PARENT,
  podIps,
  renderRestore,
  TABLE,
} from './rules.js';
import { systemXtables, type Xtables, type XtablesResult } from './xtables.js';

/** What the manager reads from AgentState: the mesh pods on this node and their changes. */
export interface LocalPods {
  readonly current: { readonly local: readonly { readonly ips: readonly string[] }[] };
  onChange(listener: () => void): () => void;
}

export interface IptablesRedirectOptions {
  readonly pods: LocalPods;
  readonly ports: CapturePorts;
  readonly logger: Logger;
  readonly xtables?: Xtables;
  /** Delay before retrying a failed update (a pod whose rules failed is not captured). */
  readonly retryMs?: number;
}

export class IptablesRedirect {
  readonly #o: Required<IptablesRedirectOptions>;
  /** The pod IPs applied per family; a family is only touched once it has had pods, so a
   *  node without IPv6 pods needs no ip6tables at all. */
  readonly #applied = new Map<Family, string>();
  #queue: Promise<void> = Promise.resolve();
  #unsubscribe: () => void = () => {};
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(o: IptablesRedirectOptions) {
    this.#o = { xtables: systemXtables, retryMs: 2_000, ...o };
  }

  /** Cleans stale rules, installs the current ones (throwing if that fails: the agent must
   *  not claim to capture what it does not) and follows the mesh from then on. */
  static async start(o: IptablesRedirectOptions): Promise<IptablesRedirect> {
    const r = new IptablesRedirect(o);
    const stale = await r.#removeAll([4, 6], true);
    if (stale > 0)
      r.#o.logger.warn({ removed: stale }, 'removed capture rules left by an earlier run');
    await r.#apply();
    r.#unsubscribe = o.pods.onChange(() => r.#schedule());
    return r;
  }

  /** Pod IPs with rules now, per family (for logs and tests). */
  applied(): Record<string, string[]> {
    return Object.fromEntries(
      [...this.#applied].map(([f, k]) => [`ipv${f}`, k ? k.split(',') : []]),
    );
  }

  /** Waits for queued updates (tests: "the rules now match the mesh"). */
  settled(): Promise<void> {
    return this.#queue;
  }

  /** Stops following the mesh and removes every rule this agent owns. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    clearTimeout(this.#retry);
    await this.#queue;
    await this.#removeAll([4, ...(this.#applied.has(6) ? [6 as const] : [])], false);
    this.#applied.clear();
    this.#o.logger.info('capture rules removed');
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#queue = this.#queue.then(() =>
      this.#apply().catch((err: Error) => {
        this.#o.logger.error(
          { err, retryMs: this.#o.retryMs },
          'capture rules update failed: new pods are not captured until it succeeds',
        );
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => this.#schedule(), this.#o.retryMs);
        this.#retry.unref();
      }),
    );
  }

  async #apply(): Promise<void> {
    if (this.#closed) return;
    const all = this.#o.pods.current.local.flatMap((p) => p.ips);
    for (const family of [4, 6] as const) {
      const ips = podIps(all, family);
      const key = ips.join(',');
      if (this.#applied.get(family) === key) continue;
      // IPv4 is always set up (an empty chain still proves iptables works); IPv6 once needed.
      if (family === 6 && ips.length === 0 && !this.#applied.has(6)) continue;
      const input = renderRestore(ips, family, this.#o.ports);
      checked(family, `(restore) ${CHAIN}`, await this.#o.xtables.restore(family, input));
      await this.#ensureJump(family);
      this.#applied.set(family, key);
      this.#o.logger.info({ family: `ipv${family}`, pods: ips }, 'capture rules installed');
    }
  }

  async #ensureJump(family: Family): Promise<void> {
    const check = await this.#o.xtables.run(family, ['-t', TABLE, '-C', PARENT, ...JUMP_SPEC]);
    if (check.code === 0) return;
    // First in PREROUTING: a service VIP must be captured before any DNAT rewrites it.
    await this.#must(family, ['-t', TABLE, '-I', PARENT, '1', ...JUMP_SPEC]);
  }

  /** Removes every jump into our chain and the chain itself; returns how many rules were
   *  there. `tolerant`: a family whose tools are missing counts as clean. */
  async #removeAll(families: Family[], tolerant: boolean): Promise<number> {
    const x = this.#o.xtables;
    let removed = 0;
    for (const family of families) {
      let listing: XtablesResult;
      try {
        listing = await x.run(family, ['-t', TABLE, '-S', PARENT]);
      } catch (err) {
        if (tolerant && family === 6) continue;
        throw err;
      }
      if (listing.code !== 0) {
        if (tolerant && family === 6) continue; // no ip6tables nat support here
        checked(family, `-S ${PARENT}`, listing);
      }
      for (const spec of jumpsToChain(listing.stdout)) {
        await this.#must(family, ['-t', TABLE, '-D', PARENT, ...spec]);
        removed++;
      }
      const chain = await x.run(family, ['-t', TABLE, '-S', CHAIN]);
      if (chain.code !== 0) continue; // no such chain: nothing of ours
      removed += chain.stdout.split('\n').filter((l) => l.startsWith('-A ')).length;
      await this.#must(family, ['-t', TABLE, '-F', CHAIN]);
      await this.#must(family, ['-t', TABLE, '-X', CHAIN]);
    }
    return removed;
  }

  async #must(family: Family, args: string[]): Promise<XtablesResult> {
    return checked(family, args.join(' '), await this.#o.xtables.run(family, args));
  }
}

/** The result when the command succeeded, else a RedirectRulesError naming it. */
function checked(family: Family, what: string, res: XtablesResult): XtablesResult {
  if (res.code === 0) return res;
  throw new RedirectRulesError(
    `${family === 4 ? 'iptables' : 'ip6tables'} ${what}`,
    `exit ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`,
  );
}
