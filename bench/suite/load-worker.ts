// The load client of netns mode, run inside a client pod's network namespace
// (`ip netns exec <pod> node --import tsx bench/suite/load-worker.ts`): it reads one JSON
// request per line on stdin, runs that workload of bench/lib/load.ts against `host:port` and
// prints one JSON line `{id, ok, result | error}`. The idle workload prints `{id, loaded}`
// once its connections are open and waits for `{"op": "continue", "id"}` before it checks
// them, so the suite can read the proxies' RSS in between. Lines on stdout start with '{'.
import { createInterface } from 'node:readline';
import { idleConnections, newConnections, roundTrips, tcpConnector } from '../lib/load.js';

export type WorkerRequest =
  | { id: number; op: 'rr'; host: string; port: number; count: number; seconds: number }
  | {
      id: number;
      op: 'conns';
      host: string;
      port: number;
      clients: number;
      count: number;
      seconds: number;
    }
  | { id: number; op: 'idle'; host: string; port: number; count: number; seconds: number }
  | { id: number; op: 'continue' };

const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const waiting = new Map<number, () => void>();

async function handle(r: WorkerRequest): Promise<unknown> {
  switch (r.op) {
    case 'rr':
      return roundTrips(tcpConnector(r.host, r.port), r.count, r.seconds);
    case 'conns':
      return newConnections(tcpConnector(r.host, r.port), r.clients, r.count, r.seconds);
    case 'idle':
      return idleConnections(tcpConnector(r.host, r.port), r.count, r.seconds, async () => {
        const resumed = new Promise<void>((resolve) => waiting.set(r.id, resolve));
        say({ id: r.id, loaded: true });
        await resumed;
      });
    case 'continue':
      waiting.get(r.id)?.();
      waiting.delete(r.id);
      return undefined;
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const r = JSON.parse(line) as WorkerRequest;
  if (r.op === 'continue') {
    void handle(r);
    continue;
  }
  // Not awaited: the idle workload needs the next line ('continue') while it runs.
  handle(r).then(
    (result) => say({ id: r.id, ok: true, result }),
    (err: unknown) => say({ id: r.id, ok: false, error: String(err) }),
  );
}
