// The one I/O seam of the rule manager: running iptables/ip6tables (and their -restore
// twins) in this process's network namespace. Always with -w, so that we wait for the
// xtables lock instead of failing when another tool (kube-proxy, a CNI) holds it.
import { spawn } from 'node:child_process';
import { RedirectRulesError } from './errors.js';
import type { Family } from './rules.js';

export interface XtablesResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Xtables {
  /** `iptables -w ARGS` (ip6tables for family 6). Resolves with any exit code; rejects
   *  only when the program cannot be run at all. */
  run(family: Family, args: readonly string[]): Promise<XtablesResult>;
  /** `iptables-restore -w --noflush` with `input` on stdin. */
  restore(family: Family, input: string): Promise<XtablesResult>;
}

export const systemXtables: Xtables = {
  run: (family, args) => exec(family === 4 ? 'iptables' : 'ip6tables', ['-w', ...args]),
  restore: (family, input) =>
    exec(family === 4 ? 'iptables-restore' : 'ip6tables-restore', ['-w', '--noflush'], input),
};

const TIMEOUT_MS = 30_000;

function exec(cmd: string, args: string[], input?: string): Promise<XtablesResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.on('error', () => {}); // exits before reading stdin: its code says why
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(
        new RedirectRulesError(
          `${cmd} ${args.join(' ')}`,
          (err as NodeJS.ErrnoException).code === 'ENOENT'
            ? `${cmd} is not installed (apt-get install iptables)`
            : err.message,
          { cause: err },
        ),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
