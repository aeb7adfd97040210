// The ClientHello reader the wire tests rely on to say "no SNI": real ClientHellos from
// node:tls, captured by a plain TCP server on loopback, with and without a server name, so
// that "absent" cannot pass because the reader misses the extension.
import { createServer } from 'node:net';
import { connect } from 'node:tls';
import t from 'tap';
import { parseClientHello } from './client-hello.js';

/** The first bytes a TLS client sends to a loopback server that never answers. */
async function helloOf(opts: { servername?: string; alpn: string[] }): Promise<Buffer> {
  let resolve!: (b: Buffer) => void;
  const got = new Promise<Buffer>((r) => {
    resolve = r;
  });
  const server = createServer((s) => {
    s.once('data', (d: Buffer) => {
      resolve(d);
      s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const c = connect({
    host: '127.0.0.1',
    port,
    ALPNProtocols: opts.alpn,
    minVersion: 'TLSv1.3',
    ...(opts.servername === undefined ? {} : { servername: opts.servername }),
  });
  c.on('error', () => {});
  try {
    return await got;
  } finally {
    c.destroy();
    server.close();
  }
}

t.test('a server name is read when present', async (t) => {
  const hello = parseClientHello(await helloOf({ servername: 'web.example', alpn: ['h2'] }));
  t.equal(hello?.sni, 'web.example');
  t.ok(hello?.extensions.includes(0));
  t.same(hello?.alpn, ['h2']);
  t.same(hello?.versions, ['TLS1.3']);
});

t.test('absent when none is sent (an IP host: node:tls sends no SNI)', async (t) => {
  const hello = parseClientHello(await helloOf({ alpn: ['h2', 'http/1.1'] }));
  t.ok(hello, 'parsed');
  t.equal(hello?.sni, undefined);
  t.notOk(hello?.extensions.includes(0));
  t.same(hello?.alpn, ['h2', 'http/1.1']);
});

t.test('not a ClientHello: undefined', async (t) => {
  t.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), undefined);
  t.equal(parseClientHello(Buffer.from([23, 3, 3, 0, 5, 1, 2, 3, 4, 5])), undefined);
});
