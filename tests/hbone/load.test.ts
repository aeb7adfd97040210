// 1,000 concurrent tunnels over pooled connections, each carrying 1 MiB each way, checked
// end to end with SHA-256. Each direction is verified on its own: the client's first 16
// bytes are a seed from which both sides derive their payloads (AES-128-CTR keystreams, so
// every tunnel carries different bytes and cross-talk between tunnels would show), and the
// backend records the digests of what it received and sent under that seed.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import t, { type Test } from 'tap';
import {
  CLIENT_ID,
  closeServer,
  makeClient,
  makePki,
  SERVER_ID,
  startBackend,
  startServer,
  waitFor,
} from './helpers.js';

const CHUNK = 64 * 1024;
const SEED = 16;

t.setTimeout(150_000);
const pki = await makePki();

/** Writes `total` bytes (the seed first, then the keystream for `iv`) with backpressure. */
async function send(
  out: Duplex,
  total: number,
  seed: Buffer,
  iv: number,
  withSeed: boolean,
): Promise<string> {
  const hash = createHash('sha256');
  const cipher = createCipheriv('aes-128-ctr', seed, Buffer.alloc(16, iv));
  const zeros = Buffer.alloc(CHUNK);
  let left = total;
  if (withSeed) {
    hash.update(seed);
    out.write(seed);
    left -= SEED;
  }
  while (left > 0) {
    const chunk = cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left));
    left -= chunk.length;
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
  }
  out.end();
  return hash.digest('hex');
}

/** Reads to the end without destroying the stream (a for-await loop would destroy it when
 *  the data ends, cutting off our own direction while it is still sending). */
function receive(from: Duplex): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Promise((resolve, reject) => {
    from.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    from.once('end', () => resolve({ digest: hash.digest('hex'), bytes }));
    from.once('error', reject);
  });
}

interface Seen {
  received?: string;
  receivedBytes?: number;
  sent?: string;
}

/** Opens `TUNNELS` tunnels at once, pushes `BYTES` each way through each, and checks both
 *  directions of every tunnel against what the backend saw. */
async function exchange(t: Test, TUNNELS: number, BYTES: number): Promise<void> {
  const seen = new Map<string, Seen>();
  const backend = await startBackend((s: Socket) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let record: Seen | undefined;
    const head: Buffer[] = [];
    s.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      if (!record) head.push(c);
      if (!record && bytes >= SEED) {
        // The seed comes first, possibly split over several reads.
        const seed = Buffer.concat(head).subarray(0, SEED);
        record = {};
        seen.set(seed.toString('hex'), record);
        void send(s, BYTES, seed, 2, false).then((d) => {
          record!.sent = d;
        });
      }
    });
    s.on('end', () => {
      if (!record) return;
      record.received = hash.digest('hex');
      record.receivedBytes = bytes;
    });
  });
  const { server, via } = await startServer(pki);
  const client = makeClient(pki);
  t.teardown(async () => {
    client.close();
    await server.close(0);
    await closeServer(backend.server);
  });

  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: TUNNELS }, async () => {
      const seed = randomBytes(SEED);
      const tunnel = await client.open({
        sourceIdentity: CLIENT_ID,
        destination: backend.addr,
        expectedIdentities: [SERVER_ID],
        via,
      });
      const [sent, got] = await Promise.all([
        send(tunnel.stream, BYTES, seed, 1, true),
        receive(tunnel.stream),
      ]);
      return { seed: seed.toString('hex'), sent, got };
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  t.comment(
    `${TUNNELS} tunnels, ${((2 * TUNNELS * BYTES) / 2 ** 30).toFixed(2)} GiB in ${seconds.toFixed(1)} s ` +
      `(${((2 * TUNNELS * BYTES * 8) / seconds / 1e9).toFixed(2)} Gb/s through client+server in one process)`,
  );

  // The backend may still be reading the client's last bytes when the client has its FIN.
  await waitFor(
    () => seen.size === TUNNELS && [...seen.values()].every((r) => r.received && r.sent),
    10_000,
    'the backend to finish',
  );
  const stats = client.stats();
  t.equal(stats.dialed, Math.ceil(TUNNELS / 100), 'one connection per 100 streams');
  let bad = 0;
  for (const r of results) {
    const b = seen.get(r.seed);
    const ok =
      b !== undefined &&
      b.received === r.sent &&
      b.receivedBytes === BYTES &&
      b.sent === r.got.digest &&
      r.got.bytes === BYTES;
    if (!ok) bad++;
  }
  t.equal(seen.size, TUNNELS, 'the backend saw every tunnel');
  t.equal(bad, 0, 'every tunnel carried exactly its bytes, both ways');
  await waitFor(
    () =>
      server.stats().tunnels === 0 && backend.sockets.size === 0 && client.stats().streams === 0,
    5000,
    'everything closed',
  );
}

// Regression: a node:http2 session stops reading while its own write is pending, so with
// large windows two ends busy in both directions used to deadlock; our engine never stops
// reading while its writes wait (hbone/h2/session.ts, "output").
t.test(
  '10 tunnels x 4 MiB each way at full windows finish (no mutual-write deadlock)',
  { timeout: 20_000 },
  (t) => exchange(t, 10, 4 << 20),
);

t.test('1000 concurrent tunnels x 1 MiB each way over pooled connections, SHA-256 verified', (t) =>
  exchange(t, 1000, 1 << 20),
);
