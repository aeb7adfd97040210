// Pure pieces of HBONE, as tables: addresses in :authority, the SNI encoding, metadata
// headers, the one error/status table, the connection state machine, the reset budget.
import t from 'tap';
import { formatSocketAddr, parseSocketAddr, socketAddr } from '../../hbone/address.js';
import {
  BadRequestError,
  errorForStatus,
  HBONE_ERRORS,
  MethodNotAllowedError,
  responseFlagOf,
  statusOf,
  TimeoutError,
  TunnelDeniedError,
  UnexpectedStatusError,
  UpstreamFailedError,
} from '../../hbone/errors.js';
import { metadataHeaders, parseMetadata } from '../../hbone/headers.js';
import { ResetBudget } from '../../hbone/server/reset-budget.js';
import { destinationFromSni, sniForDestination } from '../../hbone/sni.js';
import { StateMachine } from '../../hbone/state-machine.js';

t.test(':authority parsing accepts ip:port only', async (t) => {
  const ok: Array<[string, string, number]> = [
    ['10.0.0.5:8080', '10.0.0.5', 8080],
    ['[fd00::5]:80', 'fd00::5', 80],
    ['[fd00:0:0::5]:80', 'fd00::5', 80], // canonical form, so comparisons are string equality
    ['[::ffff:10.0.0.1]:443', '10.0.0.1', 443], // IPv4-mapped is the IPv4 address (lib/ip.ts)
    ['127.0.0.1:65535', '127.0.0.1', 65535],
  ];
  for (const [text, ip, port] of ok) t.same(parseSocketAddr(text), { ip, port }, text);
  const bad = [
    'example.com:80', // a name
    '10.0.0.5', // no port
    '10.0.0.5:0',
    '10.0.0.5:65536',
    '10.0.0.5:080',
    '010.0.0.5:80',
    'fd00::5:80', // IPv6 without brackets
    '[10.0.0.5]:80',
    '[fd00::5%eth0]:80',
    '[fd00::5]80',
    '',
  ];
  for (const text of bad) t.equal(parseSocketAddr(text), undefined, JSON.stringify(text));
  t.equal(formatSocketAddr(socketAddr('fd00::5', 80)), '[fd00::5]:80');
  t.throws(() => socketAddr('nope', 1), TypeError);
});

t.test('SNI names the destination IP and decodes back', async (t) => {
  const cases: Array<[string, string]> = [
    ['10.0.0.5', '10-0-0-5.ip4.hbone.mtun.invalid'],
    ['fd00::5', 'fd00-0000-0000-0000-0000-0000-0000-0005.ip6.hbone.mtun.invalid'],
    ['::1', '0000-0000-0000-0000-0000-0000-0000-0001.ip6.hbone.mtun.invalid'],
    ['::ffff:10.0.0.1', '10-0-0-1.ip4.hbone.mtun.invalid'], // canonical: the IPv4 address
  ];
  for (const [ip, sni] of cases) {
    t.equal(sniForDestination(ip), sni, ip);
    t.ok(sni.split('.').every((label) => label.length <= 63 && !label.startsWith('-')));
  }
  t.equal(destinationFromSni('10-0-0-5.ip4.hbone.mtun.invalid'), '10.0.0.5');
  t.equal(destinationFromSni('10-0-0-5.IP4.HBONE.MTUN.INVALID'), '10.0.0.5', 'case-insensitive');
  t.equal(destinationFromSni(cases[1]![1]), 'fd00::5');
  t.equal(destinationFromSni(cases[3]![1]), '10.0.0.1');
  t.equal(
    destinationFromSni('0000-0000-0000-0000-0000-ffff-0a00-0001.ip6.hbone.mtun.invalid'),
    '10.0.0.1',
    'an IPv4-mapped label decodes to the IPv4 address',
  );
  for (const bad of [
    'example.com',
    '10-0-0-256.ip4.hbone.mtun.invalid',
    'a.10-0-0-5.ip4.hbone.mtun.invalid',
    'fd00--5.ip6.hbone.mtun.invalid',
  ]) {
    t.equal(destinationFromSni(bad), undefined, bad);
  }
});

t.test('metadata headers: strict to build, lenient to read', async (t) => {
  const meta = {
    forwardedFor: socketAddr('fd00::7', 5000),
    forwardedHost: 'reviews.default.svc.cluster.local',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    baggage: { 'k8s.namespace.name': 'default', 'service.version': 'v1, "beta"' },
  };
  const headers = metadataHeaders(meta);
  t.equal(headers['forwarded'], 'for="[fd00::7]:5000";host=reviews.default.svc.cluster.local');
  t.same(parseMetadata(headers), meta, 'round trip');
  t.match(
    metadataHeaders({})['traceparent'],
    /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/,
    'a new one per connection',
  );
  // Ids come from a pool refilled every 256 connections: never repeated across refills.
  const ids = new Set(Array.from({ length: 1000 }, () => metadataHeaders({})['traceparent']));
  t.equal(ids.size, 1000, '1,000 connections, 1,000 different traceparents');
  t.throws(() => metadataHeaders({ traceparent: 'junk' }), TypeError);
  t.throws(() => metadataHeaders({ baggage: { 'bad key': 'x' } }), TypeError);
  t.same(
    parseMetadata({ forwarded: 'for=unknown', traceparent: 'junk', baggage: 'a=%zz,b=ok;prop=1' }),
    { baggage: { b: 'ok' } },
    'malformed parts are dropped, not fatal',
  );
});

t.test('one table maps failures to statuses and back', async (t) => {
  const rows: Array<[Error, number, string]> = [
    [new TunnelDeniedError('x'), 401, 'DENY'],
    [new UpstreamFailedError('x'), 503, 'CONNECT'],
    [new BadRequestError('x'), 400, 'CONNECT'],
    [new MethodNotAllowedError('x'), 405, 'CONNECT'],
    [new TimeoutError('x'), 500, 'CONNECT'],
    [new Error('plain'), 500, 'CONNECT'],
  ];
  for (const [err, status, flag] of rows) {
    t.equal(statusOf(err), status, err.constructor.name);
    t.equal(responseFlagOf(err), flag);
  }
  for (const [code, row] of Object.entries(HBONE_ERRORS)) {
    if (row.status === undefined) continue;
    t.equal(
      (errorForStatus(row.status, 'x') as { code: string }).code,
      code,
      `${row.status} -> ${code}`,
    );
  }
  t.type(errorForStatus(418, 'x'), UnexpectedStatusError);
});

t.test('the state machine refuses transitions it was not told about', async (t) => {
  const seen: string[] = [];
  const sm = new StateMachine<'a' | 'b' | 'c'>('a', 'test', (from, to) =>
    seen.push(`${from}->${to}`),
  );
  sm.transition(['a'], 'b');
  t.throws(() => sm.transition(['a'], 'c'), /unexpected transition b -> c/);
  t.equal(sm.state, 'b');
  t.same(seen, ['a->b']);
});

t.test('the reset budget allows a burst, then a rate', async (t) => {
  const budget = new ResetBudget(3, 0);
  t.same([budget.take(), budget.take(), budget.take(), budget.take()], [true, true, true, false]);
});
