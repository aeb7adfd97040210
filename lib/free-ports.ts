// Free TCP ports for processes that must be told a fixed port (a CLI flag, a port shared by
// two addresses, a port an agent restarted on must find again): checked free, not reserved.
// Chosen below the kernel's ephemeral range (32768-60999 by default): a port the kernel
// handed out once is soon some other connection's local port, and an agent restarted on it
// then fails to listen (EADDRINUSE) while that connection lives.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOW = 20_000;

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

/** `count` consecutive ports, each free on every one of `hosts` (up to 50 tries). */
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
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports in ${LOW}-${high + count - 1}`);
}

/** A port free on every one of `hosts`. */
export function freePort(hosts: readonly string[] = ['127.0.0.1']): Promise<number> {
  return freePortBlock(1, hosts);
}
