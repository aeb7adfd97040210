// An ordinary TCP program for a pod (run with `node --import tsx` inside the pod's network
// namespace; it knows nothing of the mesh): moves N random bytes each way over one
// connection with a half-close in a fixed order, and prints one JSON line of what it sent
// and received (byte counts and sha256) per connection.
//
//   serve   IP PORT ORDER BYTES   one line {"listening":true}, then one line per connection
//   connect IP PORT ORDER BYTES   one line, exit 0 (1 when the connection failed)
//
// ORDER client-first: the client sends everything and half-closes (FIN); only after it has
//   seen that FIN does the server send its bytes and close. The client receives all of it
//   with its own side already closed.
// ORDER server-first: the server sends and half-closes at once, without reading; the
//   client reads to the end first and only then sends, through the half-closed connection.
// ORDER download: as server-first, but the client sends nothing (it only half-closes).
import { createHash, type Hash, randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';

type Order = 'client-first' | 'server-first' | 'download';

export interface TransferResult {
  readonly role: 'client' | 'server';
  readonly order: Order;
  readonly sent: number;
  readonly sentSha: string;
  readonly received: number;
  readonly receivedSha: string;
  /** Milliseconds from connect/accept to the connection's close. */
  readonly ms: number;
  readonly error?: string;
}

function fail(s: Socket): Promise<never> {
  return new Promise((_, reject) => {
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed early')));
  });
}

async function send(s: Socket, bytes: number, hash: Hash): Promise<void> {
  for (let left = bytes; left > 0; ) {
    const chunk = randomBytes(Math.min(64 << 10, left));
    hash.update(chunk);
    left -= chunk.length;
    if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
  }
  await new Promise<void>((r) => s.end(r)); // the FIN, after everything was handed over
}

function receive(s: Socket): { done: Promise<number>; hash: Hash } {
  const hash = createHash('sha256');
  let n = 0;
  s.on('data', (d: Buffer) => {
    n += d.length;
    hash.update(d);
  });
  return { hash, done: new Promise((r) => s.once('end', () => r(n))) };
}

async function exchange(
  s: Socket,
  role: 'client' | 'server',
  order: Order,
  bytes: number,
): Promise<TransferResult> {
  const start = performance.now();
  const out = createHash('sha256');
  const inbound = receive(s);
  const closed = new Promise((r) => s.once('close', r));
  const broken = fail(s);
  broken.catch(() => {});
  const sendsFirst = (role === 'client') === (order === 'client-first');
  const sending = order === 'download' && role === 'client' ? 0 : bytes;
  let received: number;
  if (sendsFirst) {
    await Promise.race([send(s, sending, out), broken]);
    received = await Promise.race([inbound.done, broken]);
  } else {
    received = await Promise.race([inbound.done, broken]);
    await Promise.race([send(s, sending, out), broken]);
  }
  await closed;
  return {
    role,
    order,
    sent: sending,
    sentSha: out.digest('hex'),
    received,
    receivedSha: inbound.hash.digest('hex'),
    ms: Math.round(performance.now() - start),
  };
}

async function main(argv: string[]): Promise<number> {
  const [mode, ip, port, order, bytes] = argv;
  if (
    (mode !== 'serve' && mode !== 'connect') ||
    !ip ||
    !port ||
    (order !== 'client-first' && order !== 'server-first' && order !== 'download') ||
    !bytes
  ) {
    process.stderr.write('usage: serve|connect IP PORT client-first|server-first|download BYTES\n');
    return 2;
  }
  const n = Number(bytes);
  if (mode === 'serve') {
    const server = createServer({ allowHalfOpen: true }, (s) => {
      exchange(s, 'server', order, n).then(
        (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
        (err: Error) =>
          process.stdout.write(`${JSON.stringify({ role: 'server', error: err.message })}\n`),
      );
    });
    await new Promise<void>((r) => server.listen(Number(port), ip, r));
    process.stdout.write('{"listening":true}\n');
    return new Promise(() => {}); // until killed
  }
  const s = connect({ host: ip, port: Number(port), allowHalfOpen: true });
  try {
    await Promise.race([new Promise((r) => s.once('connect', r)), fail(s)]);
    process.stdout.write(`${JSON.stringify(await exchange(s, 'client', order, n))}\n`);
    return 0;
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ role: 'client', error: (err as Error).message })}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
