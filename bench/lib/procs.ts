// Processes for benchmarks: spawn `mtun` subcommands, wait for a log line, read RSS and CPU
// time from /proc, and kill everything on exit, whatever happened.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MTUN_CLI, type Tracked, track } from '../../testkit/process.js';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });
}

export interface Proc extends Tracked {
  stop(): Promise<void>;
}

/** Runs the built `dist/` (what operators run; the TypeScript loader costs memory and
 *  start-up time that would be measured too), or that of `root` (a build-snapshot.ts copy),
 *  falling back to the sources. `nodeArgs` go before the script (e.g. `--cpu-prof`). */
export function mtun(
  args: string[],
  opts: { cpus?: string; nodeArgs?: string[]; netns?: string; root?: string | undefined } = {},
): Proc {
  const entry = opts.root
    ? [join(opts.root, 'dist/cli/main.js')]
    : existsSync('dist/cli/main.js')
      ? ['dist/cli/main.js']
      : MTUN_CLI;
  const cmd = [process.execPath, ...(opts.nodeArgs ?? []), ...entry, ...args];
  const where = opts.netns ? { netns: opts.netns } : {};
  return opts.cpus
    ? spawnProc('taskset', ['-c', opts.cpus, ...cmd], where)
    : spawnProc(cmd[0]!, cmd.slice(1), where);
}

/** Any process, with its output kept (testkit/process.ts) for `waitFor`, killed when we exit.
 *  `nofile` raises its open-file limit (10,000 idle connections need 2 fds each); `netns`
 *  runs it in that network namespace (`ip netns exec` and prlimit exec, so the pid is the
 *  program's own and /proc readings by pid still measure it); `stdin` keeps a pipe open. */
export function spawnProc(
  file: string,
  args: string[],
  opts: { nofile?: number; netns?: string; stdin?: boolean } = {},
): Proc {
  let argv = [file, ...args];
  if (opts.nofile) argv = ['prlimit', `--nofile=${opts.nofile}:${opts.nofile}`, '--', ...argv];
  if (opts.netns) argv = ['ip', 'netns', 'exec', opts.netns, ...argv];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return {
    ...track(child, file),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}

/** The load target (bench/suite/target.ts) on `ip:port` in a process of its own, added to
 *  `procs` at once (so that it is stopped with them even if it never starts); resolves once
 *  it listens. */
export async function startTargetProcess(
  ip: string,
  port: number,
  procs: Proc[],
  opts: { netns?: string } = {},
): Promise<void> {
  const target = spawnProc(
    process.execPath,
    ['--import', 'tsx', 'bench/suite/target.ts', ip, String(port)],
    opts,
  );
  procs.push(target);
  await target.waitFor(/target ready/);
}

/** Peak resident memory (VmHWM) of a process and its descendants, in KiB. */
export function peakRssKiB(pid: number): number {
  return statusKiB(pid, 'VmHWM');
}

/** Resident memory of a process and its descendants' (workers), in KiB. */
export function rssKiB(pid: number): number {
  return statusKiB(pid, 'VmRSS');
}

/** A /proc/PID/status memory field summed over a process and its descendants, in KiB. */
function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const re = new RegExp(`${field}:\\s+(\\d+) kB`);
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      total += Number(re.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {}
  }
  return total;
}

/** User+system CPU seconds of a process and its descendants. */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuSplit(pid);
  return user + system;
}

/** CPU seconds of a process and its descendants, user and kernel apart. */
export function cpuSplit(pid: number): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      user += Number(f[11]);
      system += Number(f[12]);
    } catch {}
  }
  return { user: user / 100, system: system / 100 };
}

function descendants(pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    return kids.flatMap((k) => [k, ...descendants(k)]);
  } catch {
    return [];
  }
}
