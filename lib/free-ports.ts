// Free TCP ports for processes that must be told a fixed port (a CLI flag, a port shared by
// two addresses, a port an agent restarted on must find again): checked free, not reserved.
// Chosen below the kernel's ephemeral range (32768-60999 by default): a port the kernel
// handed out once is soon some other connection's local port, and an agent restarted on it
// then fails to listen (EADDRINUSE) while that connection lives. A port chosen is claimed
// for 15 minutes in a directory every picker on the machine shares (a file created with
// O_EXCL), so two test files running side by side never choose the same port in the
// seconds between the check and their agent's listen.
import { closeSync, mkdirSync, openSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOW = 20_000;
const CLAIMS = join(tmpdir(), 'mtun-port-claims');
const CLAIM_MS = 15 * 60_000;

/** Claims `port` for this run unless another picker holds a claim younger than CLAIM_MS. */
function claim(port: number): boolean {
  const file = join(CLAIMS, String(port));
  try {
    mkdirSync(CLAIMS, { recursive: true });
    closeSync(openSync(file, 'wx'));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return true; // no registry: check only
    try {
      if (Date.now() - statSync(file).mtimeMs < CLAIM_MS) return false;
      const now = new Date();
      utimesSync(file, now, now); // a stale claim is taken over
      return true;
    } catch {
      return false;
    }
  }
}

/** Where the kernel's ephemeral range starts (ports at or above it are left alone). */
function ephemeralStart(): number {
  try {
    const first = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    return Number.isInteger(first) && first > LOW + 1000 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
      .once('error', () => resolve(false))
      .listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** `count` consecutive ports, each free on every one of `hosts` and claimed (up to 50
 *  tries; a try that claimed part of a block leaves those claims to expire). */
export async function freePortBlock(
  count: number,
  hosts: readonly string[] = ['127.0.0.1'],
): Promise<number> {
  const high = ephemeralStart() - count;
  for (let i = 0; i < 50; i++) {
    const base = LOW + Math.floor(Math.random() * (high - LOW));
    let ok = true;
    for (let p = base; ok && p < base + count; p++)
      for (const host of hosts) if (ok && !(await isFree(p, host))) ok = false;
    for (let p = base; ok && p < base + count; p++) if (!claim(p)) ok = false;
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports in ${LOW}-${high + count - 1}`);
}

/** A port free on every one of `hosts`. */
export function freePort(hosts: readonly string[] = ['127.0.0.1']): Promise<number> {
  return freePortBlock(1, hosts);
}
