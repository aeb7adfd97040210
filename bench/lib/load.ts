// The benchmarks' one load library: the target server and the workloads, each bounded in
// bytes or count and in time, run through a Connector (a connected socket: direct, or
// through a proxy such as an agent's SOCKS5 listener): bulk throughput, 64-byte round trips
// on a kept-open connection, new connections (connect, 64-byte request, reply, close) and
// many concurrently open idle connections. Latencies are kept as raw samples (µs) and
// summarized by exact percentiles of them.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

export type Connector = () => Promise<Socket>;

/** Plain TCP to `host:port`, from `localAddress` when given (binding a source address makes
 *  the kernel search for a free port per connection: see bench/suite/mtun-pair.ts). */
export function tcpConnector(host: string, port: number, localAddress?: string): Connector {
  return () =>
    new Promise<Socket>((resolve, reject) => {
      const s = netConnect(
        {
          host,
          port,
          allowHalfOpen: true,
          noDelay: true,
          ...(localAddress ? { localAddress } : {}),
        },
        () => resolve(s),
      );
      s.once('error', reject);
    });
}

/** A server that echoes (round trips) or swallows (bulk), on `ip:port`. */
export async function startTarget(ip: string, port: number): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => {});
    s.once('data', (first) => {
      if (first[0] === 0x42) {
        // 'B': bulk sink; answer the byte count at the end
        let n = first.length - 1;
        s.on('data', (d) => (n += d.length));
        s.on('end', () => s.end(`${n}\n`));
      } else {
        s.write(first);
        s.pipe(s);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return server;
}

/** What a bulk transfer moved: its rate and the bytes the target counted. */
export interface Bulk {
  readonly gbps: number;
  readonly bytes: number;
}

/** Sends `bytes` (or for `seconds`) through one connection, which the target must count in
 *  full; the rate runs from the first byte to the target's count. */
export async function bulk(connect: Connector, bytes: number, seconds: number): Promise<Bulk> {
  const s = await connect();
  s.setNoDelay(true);
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let sent = 0;
  s.write(Buffer.from('B'));
  await new Promise<void>((resolve, reject) => {
    s.on('error', reject);
    const pump = () => {
      while (sent < bytes && performance.now() < deadline) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
      resolve();
    };
    pump();
  });
  const got = await new Promise<number>((resolve, reject) => {
    let text = '';
    s.on('data', (d) => (text += d));
    s.on('end', () => resolve(Number(text.trim())));
    s.on('error', reject);
  });
  const secs = (performance.now() - started) / 1000;
  if (got !== sent) throw new Error(`bulk: sent ${sent} bytes, the target counted ${got}`);
  return { gbps: (sent * 8) / secs / 1e9, bytes: sent };
}

/** `streams` bulk transfers at once, `bytesEach` at most each; their rates summed. */
export async function bulkStreams(
  connect: Connector,
  streams: number,
  bytesEach: number,
  seconds: number,
): Promise<Bulk> {
  const each = await Promise.all(
    Array.from({ length: streams }, () => bulk(connect, bytesEach, seconds)),
  );
  return {
    gbps: each.reduce((a, b) => a + b.gbps, 0),
    bytes: each.reduce((a, b) => a + b.bytes, 0),
  };
}

export interface Latency {
  readonly count: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly samplesUs: number[];
}

/** The middle value of `xs` (the upper middle one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

/** The value at `p` percent of `sorted` (ascending), NaN when there is none. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(samplesUs: number[]): Latency {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  return {
    count: samplesUs.length,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    samplesUs,
  };
}

/** 64-byte ping-pong on one kept-open connection, `count` times or for `seconds`. */
export async function roundTrips(
  connect: Connector,
  count: number,
  seconds: number,
): Promise<Latency & { perSec: number }> {
  const s = await connect();
  const started = performance.now();
  try {
    const samples = await pingPong(s, count, seconds);
    return {
      ...summarize(samples),
      perSec: samples.length / ((performance.now() - started) / 1000),
    };
  } finally {
    s.destroy();
  }
}

/** 64-byte ping-pong on a connected socket, `count` times or for `seconds`, then ends it;
 *  returns the latencies in microseconds. A peer that stops answering (without closing)
 *  fails it 10 s after the deadline, rather than hanging the run. */
async function pingPong(s: Socket, count: number, seconds: number): Promise<number[]> {
  s.setNoDelay(true);
  const msg = Buffer.alloc(64, 0x62);
  const lat: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    let t0 = 0;
    const stuck = setTimeout(
      () => reject(new Error(`round trips: no answer for ${seconds + 10} s (${lat.length} done)`)),
      (seconds + 10) * 1000,
    );
    s.once('close', () => clearTimeout(stuck));
    s.on('error', reject);
    const send = () => {
      if (lat.length >= count || performance.now() > deadline) {
        clearTimeout(stuck);
        s.end();
        return resolve();
      }
      got = 0;
      t0 = performance.now();
      s.write(msg);
    };
    s.on('data', (d) => {
      got += d.length;
      if (got >= 64) {
        lat.push((performance.now() - t0) * 1000);
        send();
      }
    });
    send();
  });
  return lat;
}

/** Waits until round trips go through (the agents are up and have their certificates),
 *  trying every 200 ms for at most `ms`; the last failure once time is up. */
export async function untilAnswering(connect: Connector, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await roundTrips(connect, 20, 2);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** New connections by `clients` concurrent loops: connect, 64-byte request, reply, close.
 *  The latency recorded is connect → reply (what an application waits before its first
 *  answer, through every handshake the proxies do). */
export async function newConnections(
  connect: Connector,
  clients: number,
  count: number,
  seconds: number,
): Promise<Latency & { perSec: number; failed: number }> {
  const samples: number[] = [];
  const msg = Buffer.alloc(64, 0x63);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let begun = 0;
  let failed = 0;
  const one = async () => {
    const t0 = performance.now();
    const s = await connect();
    s.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      const timer = setTimeout(() => reject(new Error('no reply in 10 s')), 10_000);
      s.on('error', reject);
      s.on('data', (d) => {
        got += d.length;
        if (got >= 64) {
          clearTimeout(timer);
          samples.push((performance.now() - t0) * 1000);
          s.end();
        }
      });
      s.on('close', () => (got >= 64 ? resolve() : reject(new Error('closed before reply'))));
      s.write(msg);
    });
  };
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (begun < count && performance.now() < deadline) {
        begun++;
        await one().catch(() => failed++);
      }
    }),
  );
  return {
    ...summarize(samples),
    perSec: samples.length / ((performance.now() - started) / 1000),
    failed,
  };
}

/** Opens `n` connections (64 at a time, for at most `seconds`), each answering one round
 *  trip; `measure` runs while all are open and idle; then every one must answer again. */
export async function idleConnections(
  connect: Connector,
  n: number,
  seconds: number,
  measure: () => Promise<void>,
): Promise<{ opened: number; answered: number; failed: number }> {
  const open: Socket[] = [];
  const deadline = performance.now() + seconds * 1000;
  let failed = 0;
  const ping = (s: Socket) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      s.once('data', () => {
        clearTimeout(timer);
        resolve(true);
      });
      s.write('p');
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n && performance.now() < deadline) {
        next++;
        try {
          const s = await connect();
          s.on('error', () => {});
          open.push(s);
          if (!(await ping(s))) failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 1000));
  await measure();
  const answers = await Promise.all(open.map(ping));
  for (const s of open) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return { opened: open.length, answered: answers.filter(Boolean).length, failed };
}
