// The address vocabulary (lib/address.ts): one canonical spelling per address, IPv6
// bracketed in text, and the two socket-derived kinds: a peer address, and an original
// destination that is never the listener itself, whatever the spelling (a dual-stack
// listener reports `::ffff:a.b.c.d` for an IPv4 connection).
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import {
  canonical,
  formatAddr,
  originalDst,
  parseSocketAddr,
  peerAddr,
  sameAddr,
  socketAddr,
} from '../../lib/address.js';

t.test('one canonical spelling, bracketed IPv6 in text', async (t) => {
  const rows: [string, string | undefined][] = [
    ['10.0.0.5', '10.0.0.5'],
    ['::ffff:10.0.0.5', '10.0.0.5'],
    ['0:0:0:0:0:ffff:a00:5', '10.0.0.5'],
    ['::FFFF:10.0.0.5', '10.0.0.5'],
    ['FD00:0:0::5', 'fd00::5'],
    ['fe80::1%eth0', undefined],
    ['reviews.shop', undefined],
    ['010.0.0.5', undefined],
  ];
  for (const [text, want] of rows) t.equal(canonical(text), want, text);
  t.equal(formatAddr(socketAddr('::ffff:10.0.0.5', 80)), '10.0.0.5:80');
  t.equal(formatAddr(socketAddr('FD00::5', 80)), '[fd00::5]:80');
  t.equal(formatAddr({ host: '::', port: 15001 }), '[::]:15001', 'listen addresses too');
  t.ok(sameAddr(socketAddr('::ffff:10.0.0.5', 80), socketAddr('10.0.0.5', 80)));
  t.same(parseSocketAddr('[::ffff:10.0.0.5]:80'), { ip: '10.0.0.5', port: 80 });
  t.equal(parseSocketAddr('fd00::5:80'), undefined, 'IPv6 must be bracketed');
  t.equal(parseSocketAddr('10.0.0.5:0'), undefined, 'port 0 is no address');
  t.throws(() => socketAddr('reviews', 80), TypeError);
  t.throws(() => socketAddr('10.0.0.5', 70000), TypeError);
});

/** A dual-stack listener on [::] and one IPv4 connection to it: the server's socket. */
async function dualStackPair(t: Test): Promise<Socket> {
  const server = createServer();
  server.listen(0, '::');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection');
  const client = connect({ host: '127.0.0.1', port });
  const [socket] = (await accepted) as [Socket];
  t.teardown(() => {
    client.destroy();
    socket.destroy();
    server.close();
  });
  return socket;
}

t.test('socket addresses are canonical; the listener itself is no destination', async (t) => {
  const socket = await dualStackPair(t);
  t.match(socket.localAddress, /^::ffff:127\.0\.0\.1$/, 'the kernel spells it mapped');
  const peer = peerAddr(socket);
  t.equal(peer?.ip, '127.0.0.1', 'the peer, canonical');
  t.equal(peer?.port, socket.remotePort);
  const port = socket.localPort!;
  t.equal(
    originalDst({ ip: '127.0.0.1', port }, socket),
    undefined,
    'the kernel says 127.0.0.1, the socket ::ffff:127.0.0.1: the same address, a loop',
  );
  t.equal(originalDst({ ip: '::ffff:127.0.0.1', port }, socket), undefined, 'any spelling');
  t.same(originalDst({ ip: '::ffff:10.0.0.5', port: 9080 }, socket), {
    ip: '10.0.0.5',
    port: 9080,
  });
  t.equal(originalDst(undefined, socket), undefined, 'not redirected');
  t.equal(originalDst({ ip: 'not-an-ip', port: 1 }, socket), undefined);
});
