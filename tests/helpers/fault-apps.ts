// The application side of the fault tests with real agent processes: the pod app-1
// (endless downloads, checked transfers, echo) and its clients through node-a's SOCKS5,
// each watched for how it ends (a reset or a clean end of data). The endless downloads are
// read by a Python client (downloads.py), whose recv(2) reports a reset as the kernel does.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { endedByReset } from '../../lib/socket-reset.js';
import { socks5Connect } from '../../lib/socks5-client.js';
import type { AgentPair } from './agent-procs.js';
import { eventually } from './eventually.js';

/** The pod app-1 on node-b: `down\n` streams bytes for ever; `sum N\n` sends N bytes of a
 *  known pattern and ends; anything else is echoed. */
export async function startPod(
  t: Test,
  ip: string,
): Promise<{ server: Server; open: Set<Socket> }> {
  const open = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => {});
    // A client that ends before it asked for anything is answered with our end (an idle
    // tunnel closed by its client).
    const idleEnd = () => s.end();
    s.once('end', idleEnd);
    s.once('data', (first: Buffer) => {
      s.off('end', idleEnd);
      const line = String(first);
      if (line.startsWith('down')) {
        const chunk = Buffer.alloc(64 * 1024, 1);
        const pump = () => {
          while (!s.destroyed && s.write(chunk));
        };
        s.on('drain', pump);
        pump();
      } else if (line.startsWith('sum ')) {
        s.end(pattern(Number(line.slice(4))));
      } else {
        s.write(first);
        s.on('data', (d: Buffer) => s.write(d));
        s.on('end', () => s.end());
      }
    });
  });
  server.listen({ host: ip, port: 9080, backlog: 2048 });
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of open) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { server, open };
}

export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 255;
  return b;
}

export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function client(p: AgentPair): Promise<Socket> {
  return socks5Connect(p.socks, { host: p.ip('20.1'), port: 9080 }, { localAddress: p.ip('10.1') });
}

/** How a socket ends, watched from now: a reset (error) or a clean end of data. */
export function ending(s: Socket): Promise<'reset' | 'fin'> {
  return new Promise((resolve) => {
    let how: 'reset' | 'fin' | undefined;
    s.on('error', () => {
      how ??= 'reset';
    });
    s.on('end', () => {
      // The kernel's word, not libuv's: a reset behind unread data reads as an end in Node
      // 20 (lib/socket-reset.ts).
      how ??= endedByReset(s) ? 'reset' : 'fin';
      s.destroy();
    });
    s.on('close', () => resolve(how ?? 'reset'));
  });
}

/**
 * `n` endless downloads from app-1 through node-a's SOCKS5, by an application that reads with
 * plain recv(2) (tests/helpers/downloads.py: a Node reader takes a reset behind unread data
 * for an end of data, see there). Resolves once all are under way, with how each will end.
 */
export async function downloads(
  t: Test,
  p: AgentPair,
  n: number,
  deadlineMs = 90_000,
): Promise<Promise<'reset' | 'fin' | 'open'>[]> {
  const child = spawn(
    'python3',
    [
      fileURLToPath(new URL('./downloads.py', import.meta.url)),
      p.socks.host,
      String(p.socks.port),
      p.ip('10.1'),
      p.ip('20.1'),
      '9080',
      String(n),
      String(deadlineMs / 1000),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => {
    child.kill();
  });
  const settle = new Map<number, (how: 'reset' | 'fin' | 'open') => void>();
  const ends = Array.from(
    { length: n },
    (_, i) => new Promise<'reset' | 'fin' | 'open'>((resolve) => settle.set(i, resolve)),
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  let ready = false;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    const m = JSON.parse(line) as { ready?: true; i?: number; end?: 'reset' | 'fin' };
    if (m.ready) ready = true;
    if (m.i !== undefined && m.end) {
      settle.get(m.i)?.(m.end);
      settle.delete(m.i);
    }
  });
  const exited = once(child, 'exit');
  await Promise.race([
    eventually(() => ready, 'downloads under way', 20_000),
    exited.then(() => {
      throw new Error(`downloads.py ended before the downloads were under way: ${stderr}`);
    }),
  ]);
  // Those still open when it exits (its deadline) end as 'open'.
  void exited.then(() => {
    for (const resolve of settle.values()) resolve('open');
  });
  return ends;
}
