// The socket join (agent/proxy/pipe.ts) on real loopback sockets: bytes both ways intact
// (checksums), a FIN passed on as a FIN with the other direction still open, a reset passed
// on as a reset, `done` once with the byte counts, and no socket left open.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { joinSockets, type PipeResult } from '../../agent/proxy/pipe.js';

/** A joined pair: client ⇄ [a ⇄ b] ⇄ server, where a and b are the proxy's two sockets. */
async function joined(t: Test) {
  const servers: Server[] = [];
  const listen = async (onSocket: (s: Socket) => void) => {
    const srv = createServer({ allowHalfOpen: true }, onSocket);
    servers.push(srv);
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    return (srv.address() as { port: number }).port;
  };
  let serverSide!: Socket;
  let accepted!: () => void;
  const serverReady = new Promise<void>((r) => {
    accepted = r;
  });
  const serverPort = await listen((s) => {
    serverSide = s;
    accepted();
  });
  const results: PipeResult[] = [];
  let resolveDone!: (r: PipeResult) => void;
  const done = new Promise<PipeResult>((r) => {
    resolveDone = r;
  });
  const proxyPort = await listen((a) => {
    const b = connect({ host: '127.0.0.1', port: serverPort, allowHalfOpen: true });
    joinSockets(a, b, (r) => {
      results.push(r);
      resolveDone(r);
    });
  });
  const client = connect({ host: '127.0.0.1', port: proxyPort, allowHalfOpen: true });
  await once(client, 'connect');
  await serverReady;
  client.on('error', () => {});
  serverSide.on('error', () => {});
  t.teardown(() => {
    client.destroy();
    serverSide.destroy();
    for (const s of servers) s.close();
  });
  return { client, server: serverSide, done, results };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function collect(s: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

t.test('bytes both ways, intact; FIN as FIN with the other way still open', async (t) => {
  const { client, server, done, results } = await joined(t);
  const up = randomBytes(3 * 1024 * 1024);
  const down = randomBytes(2 * 1024 * 1024);
  const atServer = collect(server);
  const atClient = collect(client);
  client.end(up);
  t.equal(sha(await atServer), sha(up), 'client → server intact, then its FIN');
  t.notOk(server.writableEnded, 'the server can still send after the client half-closed');
  server.end(down);
  t.equal(sha(await atClient), sha(down), 'server → client intact, then its FIN');
  const r = await done;
  t.equal(r.aToB, up.length, 'bytes towards the server');
  t.equal(r.bToA, down.length, 'bytes back');
  t.equal(r.error, undefined, 'a clean close');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(results.length, 1, 'done once');
});

t.test('a reset on one side is a reset on the other', async (t) => {
  const { client, server, done } = await joined(t);
  client.write('hello');
  await once(server, 'data');
  const serverErr = new Promise<string>((resolve) => {
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    server.once('end', () => resolve('clean end'));
  });
  client.resetAndDestroy();
  t.equal(await serverErr, 'ECONNRESET', 'the server sees a reset, not an end of data');
  const r = await done;
  t.ok(r.error, `the join reports the error (${r.error?.message})`);
});

t.test('the server resetting mid-transfer resets the client', async (t) => {
  const { client, server, done } = await joined(t);
  const clientErr = new Promise<string>((resolve) => {
    client.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    client.once('end', () => resolve('clean end'));
  });
  client.resume();
  server.write(randomBytes(64 * 1024));
  server.resetAndDestroy();
  t.equal(await clientErr, 'ECONNRESET');
  await done;
  t.ok(client.destroyed || (await once(client, 'close')), 'the client socket is closed');
});
