// endedByReset(): the kernel's word on an 'end' that Node 20's libuv reports for both a FIN
// and a reset behind unread data. Real loopback sockets, the data left unread on purpose.
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import t from 'tap';
import { endedByReset, resetDetection } from '../../lib/socket-reset.js';

/** A server socket that reads nothing until `how` has ended the client's side. */
async function endedAfter(how: 'fin' | 'reset'): Promise<boolean> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  client.on('error', () => {});
  const [s] = await accepted;
  s.pause();
  s.on('error', () => {});
  await new Promise<void>((r) => client.write(Buffer.alloc(200_000, 1), () => r()));
  if (how === 'fin') client.end();
  else client.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 100));
  const ended = new Promise<boolean>((resolve) => {
    s.on('end', () => resolve(endedByReset(s)));
    s.on('error', () => resolve(true)); // a reset libuv did read: fine too
  });
  s.resume();
  const result = await ended;
  s.destroy();
  client.destroy();
  server.close();
  return result;
}

t.test('a FIN is an end, a reset behind unread data is a reset', async (t) => {
  t.ok(resetDetection().available, `the addon answers (${resetDetection().reason ?? ''})`);
  t.equal(await endedAfter('fin'), false, 'FIN after the data: a clean end');
  t.equal(await endedAfter('reset'), true, 'reset behind the unread data: a reset');
});
