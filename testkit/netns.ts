// Network namespaces for the root-only tests and the benchmark's netns mode: unique names
// per process (`mtunt-<pid>-<tag>`), processes started inside them tracked by pid, and a
// teardown that runs in t.teardown, on process exit and on SIGTERM/SIGINT (tap's timeout,
// the benchmark's time limit), so nothing is left behind even when a run crashes. Leftovers
// of dead processes (SIGKILL) are swept by the next run. Only loopback and 198.18.0.0/15
// inside these namespaces are used.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { run } from './exec.js';

const PREFIX = 'mtunt-';
const TOOLS = ['ip', 'iptables', 'iptables-save', 'iptables-restore'];

/** Why namespaces cannot be used here, or undefined when they can (root, Linux, tools). */
export function cannotRun(extraTools: readonly string[] = []): string | undefined {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0)
    return 'needs root (network namespaces and iptables); CI runs as root';
  const missing = [...TOOLS, ...extraTools].filter((t) => !which(t));
  if (missing.length > 0) return `needs ${missing.join(', ')} on PATH`;
  const probe = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (probe.status !== 0) return `cannot use ip netns: ${probe.stderr.trim()}`;
  return undefined;
}

export function which(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d !== '' && existsSync(`${d}/${cmd}`));
}

/** iptables-save output as rules to compare: its lines without comments, blank lines and
 *  packet counters (which change with every packet). */
export function savedRules(save: string): string[] {
  return save
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''));
}

/** Deletes namespaces left by processes that no longer run, and the processes in them. */
export function sweepLeftovers(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^mtunt-(\d+)-/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    destroyNamespace(name);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function destroyNamespace(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
  for (const p of pids.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {}
  }
  spawnSync('ip', ['netns', 'del', name]);
}

export class Netns {
  readonly #names = new Set<string>();
  readonly #children = new Set<ChildProcess>();
  readonly #onExit = () => this.destroySync();
  readonly #onSignal = (signal: NodeJS.Signals) => {
    this.destroySync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor() {
    process.on('exit', this.#onExit);
    process.once('SIGTERM', this.#onSignal);
    process.once('SIGINT', this.#onSignal);
  }

  /** The namespace name of a tag ("n1", "client-1"). */
  name(tag: string): string {
    return `${PREFIX}${process.pid}-${tag}`;
  }

  async add(tag: string): Promise<string> {
    const name = this.name(tag);
    this.#names.add(name);
    await this.must('ip', ['netns', 'add', name]);
    await this.must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Runs a program in a namespace and waits for it. */
  exec(
    tag: string,
    cmd: string,
    args: string[],
    opts: { input?: string; timeoutMs?: number } = {},
  ) {
    return run('ip', ['netns', 'exec', this.name(tag), cmd, ...args], opts);
  }

  /** Like exec, but a non-zero exit is an error naming the command and its output. */
  async must(cmd: string, args: string[], opts: { input?: string } = {}): Promise<string> {
    const res = await run(cmd, args, opts);
    if (res.code !== 0)
      throw new Error(`${cmd} ${args.join(' ')}: exit ${res.code}: ${res.stderr || res.stdout}`);
    return res.stdout;
  }

  /** Starts a long-running program in a namespace; it is killed at teardown. */
  spawn(tag: string, cmd: string, args: string[], opts: { cwd?: string } = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name(tag), cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: opts.cwd,
    });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Kills what we started, waits for it, and deletes our namespaces. */
  async destroy(): Promise<void> {
    const waits = [...this.#children].map(
      (c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r()))),
    );
    for (const c of this.#children) c.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(waits),
      new Promise((r) => {
        timer = setTimeout(r, 5_000);
      }),
    ]);
    clearTimeout(timer);
    this.destroySync();
  }

  destroySync(): void {
    for (const c of this.#children) c.kill('SIGKILL');
    for (const name of this.#names) destroyNamespace(name);
    this.#names.clear();
    process.off('exit', this.#onExit);
    process.off('SIGTERM', this.#onSignal);
    process.off('SIGINT', this.#onSignal);
  }
}
