import t from 'tap';
import { parseGreeting, parseRequest, REPLY } from '../../agent/proxy/socks5-protocol.js';

const b = (...bytes: number[]) => Buffer.from(bytes);

t.test('greeting', async (t) => {
  t.same(parseGreeting(b(5)), { need: 'more' });
  t.same(parseGreeting(b(5, 2, 0)), { need: 'more' }, 'waits for all methods');
  const ok = parseGreeting(b(5, 2, 2, 0));
  t.same(ok, { need: 'reply', reply: b(5, 0), consumed: 4 });
  const noAuthMissing = parseGreeting(b(5, 1, 2));
  t.same((noAuthMissing as { reply: Buffer }).reply, b(5, 0xff));
  t.match((noAuthMissing as { fail: string }).fail, /no authentication/);
  t.match((parseGreeting(b(4, 1, 0)) as { fail: string }).fail, /not SOCKS5/);
});

t.test('requests', async (t) => {
  t.same(parseRequest(b(5, 1, 0, 1, 127, 0, 0, 1, 0x1f)), { need: 'more' });
  t.same(parseRequest(b(5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90)), {
    need: 'connect',
    target: { host: '127.0.0.1', port: 8080, kind: 'ipv4' },
    consumed: 10,
  });
  const v6 = Buffer.concat([
    b(5, 1, 0, 4),
    Buffer.from('fd000000000000000000000000000001', 'hex'),
    b(0, 80),
  ]);
  t.same(parseRequest(v6), {
    need: 'connect',
    target: { host: 'fd00::1', port: 80, kind: 'ipv6' },
    consumed: 22,
  });
  // Issue 12, item 5: an IPv4-mapped IPv6 address is its IPv4 address (canonical form).
  const mapped = Buffer.concat([
    b(5, 1, 0, 4),
    Buffer.from('00000000000000000000ffff0a000005', 'hex'),
    b(0, 80),
  ]);
  t.same(parseRequest(mapped), {
    need: 'connect',
    target: { host: '10.0.0.5', port: 80, kind: 'ipv6' },
    consumed: 22,
  });
  const name = Buffer.from('reviews.shop.svc.cluster.local');
  const dom = Buffer.concat([b(5, 1, 0, 3, name.length), name, b(0, 80)]);
  t.same(parseRequest(dom), {
    need: 'connect',
    target: { host: 'reviews.shop.svc.cluster.local', port: 80, kind: 'domain' },
    consumed: dom.length,
  });
  t.same(parseRequest(dom.subarray(0, dom.length - 1)), { need: 'more' });
  const cases: [Buffer, number, RegExp][] = [
    [b(5, 2, 0, 1, 1, 2, 3, 4, 0, 80), REPLY.commandNotSupported, /CONNECT only/],
    [b(5, 3, 0, 1, 1, 2, 3, 4, 0, 80), REPLY.commandNotSupported, /CONNECT only/],
    [b(5, 1, 0, 9, 1, 2, 3, 4, 0, 80), REPLY.addressTypeNotSupported, /address type 9/],
    [b(5, 1, 0, 1, 1, 2, 3, 4, 0, 0), REPLY.hostUnreachable, /port 0/],
    [
      Buffer.concat([b(5, 1, 0, 3, 3), Buffer.from('a b'), b(0, 80)]),
      REPLY.hostUnreachable,
      /bad domain/,
    ],
    [b(4, 1, 0, 1, 1, 2, 3, 4, 0, 80), REPLY.generalFailure, /version/],
  ];
  for (const [buf, code, why] of cases) {
    const r = parseRequest(buf) as { need: string; reply: Buffer; fail: string };
    t.equal(r.need, 'reply');
    t.equal(r.reply[1], code);
    t.match(r.fail, why);
  }
});
