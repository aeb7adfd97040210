// Child processes whose output a test or a benchmark waits on: stdout and stderr kept
// together, bounded, and polled for a line; the CLI run from its sources. No process-wide
// handlers here: bench/lib/procs.ts adds killing every child on exit, which a tap test must
// not inherit.
import { type ChildProcess, spawn } from 'node:child_process';

/** Runs the CLI from its sources, as the tests do: `node ...MTUN_CLI <subcommand> ...`. */
export const MTUN_CLI = ['--import', 'tsx', 'cli/main.ts'];

export interface Tracked {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the first match of `re` in the output; rejects after `ms` or once the
   *  process has ended without it. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpExecArray>;
}

/** Keeps `child`'s output (the last 512 KiB-1 MiB) for `waitFor`; `label` names it in errors. */
export function track(child: ChildProcess, label: string): Tracked {
  let out = '';
  const keep = (d: Buffer) => {
    out += d;
    // Bounded; cut at a line start so that a reader of JSON lines never sees half a line.
    if (out.length > 1 << 20) {
      const from = out.length - (1 << 19);
      const line = out.indexOf('\n', from);
      out = out.slice(line >= 0 ? line + 1 : from);
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => keep(Buffer.from(`spawn ${label}: ${err.message}\n`)));
  return {
    child,
    output: () => out,
    waitFor: (re, ms = 30_000) =>
      new Promise((resolve, reject) => {
        const end = Date.now() + ms;
        const poll = setInterval(() => {
          const m = re.exec(out);
          if (m) {
            clearInterval(poll);
            resolve(m);
          } else if (Date.now() > end || child.exitCode !== null || child.signalCode !== null) {
            clearInterval(poll);
            reject(new Error(`${label}: waiting for ${re}: ${out.slice(-2000)}`));
          }
        }, 50);
      }),
  };
}

/** `mtun <args>` from the sources, killed at the test's teardown. */
export function startMtun(t: { teardown(fn: () => unknown): void }, args: string[]): Tracked {
  const child = spawn(process.execPath, [...MTUN_CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  return track(child, `mtun ${args[0]}`);
}

/** Sends SIGTERM and resolves with the exit code (null when a signal ended it). */
export function terminate(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

/** Polls `url` until it answers 200 (every 100 ms, at most `ms`): an agent's readiness. Fails
 *  at once when `proc` exits (a port it cannot listen on, a refused certificate), and either
 *  failure carries the end of what the process printed. */
export async function untilReady(proc: Tracked, url: string, what: string, ms = 60_000) {
  const ended = () => proc.child.exitCode !== null || proc.child.signalCode !== null;
  const deadline = Date.now() + ms;
  for (;;) {
    if (ended())
      throw new Error(
        `${what} exited (${proc.child.exitCode ?? proc.child.signalCode}) before ready: ${proc.output().slice(-3000)}`,
      );
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what} ready: ${proc.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
