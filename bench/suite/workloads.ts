// The workloads, each bounded in count and time, run by the load client (this process)
// through a Connector: bulk throughput, 64-byte round trips on a kept-open connection, new
// connections (connect, 64-byte request, reply, close), and many concurrently open idle
// connections. Latencies go into a perf_hooks histogram (nanosecond resolution), and the
// raw samples (µs) are kept for the JSON file.

import type { Socket } from 'node:net';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { bulk, type Connector, pingPong } from '../lib/load.js';

export interface Latency {
  readonly count: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly samplesUs: number[];
}

function summarize(h: RecordableHistogram, samplesUs: number[]): Latency {
  return {
    count: h.count,
    p50Us: h.count ? h.percentile(50) / 1000 : Number.NaN,
    p99Us: h.count ? h.percentile(99) / 1000 : Number.NaN,
    samplesUs,
  };
}

const ns = (t0: number) => Math.max(1, Math.round((performance.now() - t0) * 1e6));

/** `streams` bulk transfers at once; returns Gbit/s and the bytes moved. */
export async function bulkStreams(
  connect: Connector,
  streams: number,
  seconds: number,
): Promise<{ gbps: number; bytes: number }> {
  const t0 = performance.now();
  const rates = await Promise.all(
    Array.from({ length: streams }, () => bulk(connect, 8 * 2 ** 30, seconds)),
  );
  const gbps = rates.reduce((a, b) => a + b, 0);
  return { gbps, bytes: (gbps * 1e9 * ((performance.now() - t0) / 1000)) / 8 };
}

/** 64-byte ping-pong on one kept-open connection. */
export async function roundTrips(
  connect: Connector,
  count: number,
  seconds: number,
): Promise<Latency & { perSec: number }> {
  const s = await connect();
  const started = performance.now();
  const samples = await pingPong(s, count, seconds);
  s.destroy();
  const h = createHistogram();
  for (const us of samples) h.record(Math.max(1, Math.round(us * 1000)));
  return {
    ...summarize(h, samples),
    perSec: samples.length / ((performance.now() - started) / 1000),
  };
}

/** Waits (up to ~30 s) until round trips go through: the agents are up and have their
 *  certificates. */
export async function untilAnswering(connect: Connector): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await roundTrips(connect, 20, 2);
      return;
    } catch (err) {
      if (i > 150) throw err;
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
  const h = createHistogram();
  const samples: number[] = [];
  const msg = Buffer.alloc(64, 0x63);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let started_n = 0;
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
          const n = ns(t0);
          h.record(n);
          samples.push(n / 1000);
          s.end();
        }
      });
      s.on('close', () => (got >= 64 ? resolve() : reject(new Error('closed before reply'))));
      s.write(msg);
    });
  };
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (started_n < count && performance.now() < deadline) {
        started_n++;
        await one().catch(() => failed++);
      }
    }),
  );
  return {
    ...summarize(h, samples),
    perSec: samples.length / ((performance.now() - started) / 1000),
    failed,
  };
}

/** Opens `n` connections (64 at a time), each answering one round trip; `measure` runs
 *  while all are open and idle; then every one must answer again. */
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
