// Load generators shared by the benchmarks: bulk throughput over one connection and
// 64-byte request/response round trips, each bounded in bytes/count and time. `connect`
// returns a connected socket (direct, or through a proxy such as an agent's SOCKS5).
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

export type Connector = () => Promise<Socket>;

/** Plain TCP to `host:port` (no source address bound: see bench/suite/mtun-pair.ts). */
export function tcpConnector(host: string, port: number): Connector {
  return () =>
    new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host, port, allowHalfOpen: true, noDelay: true }, () => resolve(s));
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

/** Sends `bytes` (or for `seconds`) through one connection; returns Gbit/s. */
export async function bulk(connect: Connector, bytes: number, seconds: number): Promise<number> {
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
  return (sent * 8) / secs / 1e9;
}

/** 64-byte ping-pong on one kept-open connection; returns latencies in microseconds. */
export async function roundTrips(
  connect: Connector,
  count: number,
  seconds: number,
): Promise<number[]> {
  return pingPong(await connect(), count, seconds);
}

/** 64-byte ping-pong on a connected socket, `count` times or for `seconds`, then ends it;
 *  returns the latencies in microseconds. */
export async function pingPong(s: Socket, count: number, seconds: number): Promise<number[]> {
  s.setNoDelay(true);
  const msg = Buffer.alloc(64, 0x62);
  const lat: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    let t0 = 0;
    s.on('error', reject);
    const send = () => {
      if (lat.length >= count || performance.now() > deadline) {
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

/** The middle value of `xs` (the upper middle one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** `streams` bulk transfers at once; returns the total Gbit/s. */
export async function bulkParallel(
  connect: Connector,
  streams: number,
  bytesEach: number,
  seconds: number,
): Promise<number> {
  const rates = await Promise.all(
    Array.from({ length: streams }, () => bulk(connect, bytesEach, seconds)),
  );
  return rates.reduce((a, b) => a + b, 0);
}
