// The netns mode's Driver: round trips, new connections and idle connections by a load
// worker (load-worker.ts) living in the client pod's namespace; bulk by iperf3 (client in
// the client pod, server in the server pod, `-J`), which capture makes transparent.
import { execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Bulk } from '../lib/load.js';
import { type Proc, spawnProc } from '../lib/procs.js';
import type { Conns, Driver, Idle, Rate } from './driver.js';
import type { WorkerRequest } from './load-worker.js';

type Reply = { id: number; ok?: boolean; loaded?: boolean; result?: unknown; error?: string };
type Body<R> = R extends WorkerRequest ? Omit<R, 'id'> : never;

/** One long-lived load worker in a pod's namespace; requests may overlap. */
export class LoadWorker {
  readonly proc: Proc;
  #next = 1;
  readonly #pending = new Map<number, (r: Reply) => void>();

  private constructor(proc: Proc) {
    this.proc = proc;
    const lines = createInterface({ input: proc.child.stdout! });
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      // NaN (no samples) travels as null.
      const r = JSON.parse(line, (_k, v) => (v === null ? Number.NaN : v)) as Reply;
      this.#pending.get(r.id)?.(r);
    });
    proc.child.once('exit', () => {
      for (const f of this.#pending.values())
        f({ id: 0, ok: false, error: `load worker exited: ${proc.output().slice(-800)}` });
    });
  }

  /** In `netns`, with this process's open-file limit (20,000 here: 10,000 idle connections). */
  static start(netns: string): LoadWorker {
    const proc = spawnProc(process.execPath, ['--import', 'tsx', 'bench/suite/load-worker.ts'], {
      netns,
      stdin: true,
    });
    return new LoadWorker(proc);
  }

  /** Sends a request; `onLoaded` answers the idle workload's pause. */
  request<T>(body: Body<WorkerRequest>, onLoaded?: () => Promise<void>): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, (r) => {
        if (r.loaded) {
          void (onLoaded ?? (async () => {}))().then(() => this.#send({ id, op: 'continue' }));
          return;
        }
        this.#pending.delete(id);
        if (r.ok) resolve(r.result as T);
        else reject(new Error(r.error ?? 'load worker failed'));
      });
      this.#send({ ...body, id } as WorkerRequest);
    });
  }

  #send(r: WorkerRequest): void {
    this.proc.child.stdin!.write(`${JSON.stringify(r)}\n`);
  }
}

/** Where iperf3's client runs (a pod's namespace) and the server it sends to. */
export interface IperfPath {
  readonly netns: string;
  readonly host: string;
  readonly port: number;
}

/** Runs iperf3 along `path` with `streams` streams for `seconds` (whole seconds, at least 1). */
export function iperf3(path: IperfPath, streams: number, seconds: number): Promise<Bulk> {
  const t = Math.max(1, Math.round(seconds));
  const { netns, host, port } = path;
  const args = ['netns', 'exec', netns, 'iperf3', '-c', host, '-p', String(port)];
  args.push('-t', String(t), '-P', String(streams), '-J', '--connect-timeout', '5000');
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: (t + 20) * 1000, maxBuffer: 16 << 20 }, (err, stdout) => {
      let j: {
        error?: string;
        end?: { sum_received?: { bits_per_second: number; bytes: number } };
      };
      try {
        j = JSON.parse(String(stdout));
      } catch {
        return reject(new Error(`iperf3: ${err?.message ?? 'no JSON'}: ${String(stdout)}`));
      }
      const sum = j.end?.sum_received;
      if (j.error || !sum) return reject(new Error(`iperf3: ${j.error ?? 'no end.sum_received'}`));
      resolve({ gbps: sum.bits_per_second / 1e9, bytes: sum.bytes });
    });
  });
}

/** A Driver whose connections go to `target` from `worker`'s pod, and whose bulk runs iperf3
 *  from `bulk.netns` to `bulk.host:port`. */
export function podDriver(
  worker: LoadWorker,
  target: { host: string; port: number },
  bulk: IperfPath,
): Driver {
  return {
    bulk: (streams, seconds) => iperf3(bulk, streams, seconds),
    roundTrips: (count, seconds) => worker.request<Rate>({ op: 'rr', ...target, count, seconds }),
    newConnections: (clients, count, seconds) =>
      worker.request<Conns>({ op: 'conns', ...target, clients, count, seconds }),
    idle: (count, seconds, measure) =>
      worker.request<Idle>({ op: 'idle', ...target, count, seconds }, measure),
  };
}
