// The matcher below the converter: ztunnel's rbac.rs unit cases (empty policies, groups and
// clauses; string matching) and the address parsing policy relies on.
import t from 'tap';
import { canonicalIp, cidrContains, parseCidr, parseIp } from '../../policy/ip.js';
import {
  type CompiledPolicy,
  compileStringMatch,
  firstMatchingRule,
  type MatchGroup,
  type MatchInput,
  matchGroup,
} from '../../policy/match.js';

const plaintext: MatchInput = {
  principal: undefined,
  namespace: '',
  serviceAccount: undefined,
  sourceIp: parseIp('127.0.0.1')!,
  destinationIp: parseIp('127.0.0.2')!,
  port: 8080,
};

const policy = (rules: (readonly MatchGroup[])[][]): CompiledPolicy => ({
  key: 'ns/p',
  kind: 'AuthorizationPolicy',
  namespace: 'ns',
  action: 'ALLOW',
  dryRun: false,
  rules: rules.map((clauses, index) => ({ index, clauses, summary: '' })),
  l7: [],
});

t.test('ztunnel rbac_empty_policy: what empty means at each level', async (t) => {
  t.equal(
    firstMatchingRule(policy([[[matchGroup({})]]]), plaintext),
    -1,
    'a clause of only empty groups never matches',
  );
  t.equal(firstMatchingRule(policy([[[]]]), plaintext), 0, 'an empty clause matches');
  t.equal(firstMatchingRule(policy([[]]), plaintext), 0, 'a rule without clauses matches');
  t.equal(firstMatchingRule(policy([]), plaintext), -1, 'a policy without rules never matches');
});

t.test('ztunnel string_match table', async (t) => {
  const rows: [string, string, boolean][] = [
    ['foo', 'foo', true],
    ['foo', 'not', false],
    ['foo', '', false],
    ['foo*', 'foobar', true],
    ['foo*', 'notfoo', false],
    ['foo*', '', false],
    ['*foo', 'barfoo', true],
    ['*foo', 'foonot', false],
    ['*foo', '', false],
    ['*', 'foo', true],
    ['*', '', false],
  ];
  for (const [pattern, value, want] of rows) {
    const g = matchGroup({ namespaces: [compileStringMatch(pattern)] });
    const got = firstMatchingRule(policy([[[g]]]), { ...plaintext, namespace: value }) === 0;
    t.equal(got, want, `${JSON.stringify(pattern)} vs ${JSON.stringify(value)}`);
  }
});

t.test('IP and CIDR parsing follows Go net/netip', async (t) => {
  const ok = [
    '10.0.0.1',
    '0.0.0.0',
    '::',
    '::1',
    'fd00::1:1',
    '2001:db8:0:0:0:0:0:1',
    '::ffff:10.1.2.3',
    'fe80::1%eth0',
  ];
  for (const ip of ok) t.ok(parseIp(ip), `parses ${ip}`);
  const bad = [
    '010.0.0.1',
    '10.0.0',
    '10.0.0.256',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    'g::1',
    '',
    '10.0.0.1 ',
  ];
  for (const ip of bad) t.equal(parseIp(ip), undefined, `refuses ${JSON.stringify(ip)}`);
  t.equal(parseCidr('10.0.0.0/33'), undefined, 'prefix longer than the address');
  t.equal(parseCidr('10.0.0.0/08'), undefined, 'leading zero in the prefix length');
  t.equal(parseCidr('fe80::/10%eth0'), undefined, 'zone in a prefix');
  t.ok(cidrContains(parseCidr('10.0.0.0/8')!, parseIp('10.255.1.1')!));
  t.notOk(cidrContains(parseCidr('10.0.0.0/8')!, parseIp('11.0.0.0')!));
  t.ok(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('255.255.255.255')!));
  t.ok(cidrContains(parseCidr('::/0')!, parseIp('fd00::1')!));
  t.notOk(cidrContains(parseCidr('::/0')!, parseIp('10.0.0.1')!), 'families never mix');
  t.ok(cidrContains(parseCidr('2001:db8::/32')!, parseIp('2001:db8:ffff::1')!));
  t.same(canonicalIp('::ffff:10.1.2.3'), parseIp('10.1.2.3'), 'IPv4-mapped becomes IPv4');
  t.same(canonicalIp('::1'), parseIp('::1'), 'other IPv6 stays');
});
