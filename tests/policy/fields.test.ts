// Table: the boolean structure of rules (rules OR, clauses AND, entries OR, fields AND,
// values OR, `not` forms) and every L4 field: principals, namespaces, serviceAccounts,
// ipBlocks, ports and the L4 `when` keys, with plaintext (no identity) against each.
import t from 'tap';
import { allow, ap, type Case, deny, ID, runTable } from './helpers.js';

const from = (source: object) => ({ from: [{ source }] });

const structure: Case[] = [
  {
    rule: 'rules are OR-ed: the second rule matching is enough',
    docs: [ap('foo/p', { rules: [from({ namespaces: ['ops'] }), from({ namespaces: ['bar'] })] })],
    conn: { from: ID.api },
    verdict: 'allow',
    ruleIndex: 1,
  },
  {
    rule: 'from and to are AND-ed: matching `from` with a non-matching `to` is no match',
    docs: allow({ ...from({ namespaces: ['bar'] }), to: [{ operation: { ports: ['9090'] } }] }),
    conn: { from: ID.api, port: 8080 },
    verdict: 'deny',
  },
  {
    rule: 'from, to and when all matching: match',
    docs: allow({
      ...from({ namespaces: ['bar'] }),
      to: [{ operation: { ports: ['8080'] } }],
      when: [{ key: 'source.ip', values: ['10.0.2.0/24'] }],
    }),
    conn: { from: ID.api, port: 8080 },
    verdict: 'allow',
  },
  {
    rule: 'entries of `from` are OR-ed',
    docs: allow({
      from: [{ source: { namespaces: ['ops'] } }, { source: { principals: [ID.api.slice(9)] } }],
    }),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'entries of `to` are OR-ed',
    docs: allow({ to: [{ operation: { ports: ['9090'] } }, { operation: { ports: ['8080'] } }] }),
    conn: { from: ID.api, port: 8080 },
    verdict: 'allow',
  },
  {
    rule: 'fields within one source are AND-ed: namespace matches but ipBlocks does not',
    docs: allow(from({ namespaces: ['bar'], ipBlocks: ['192.168.0.0/16'] })),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'values within one field are OR-ed',
    docs: allow(from({ namespaces: ['ops', 'bar', 'baz'] })),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'field + notField: a positive hit is cancelled by a negative hit',
    docs: allow(
      from({
        principals: ['cluster.local/ns/bar/*'],
        notPrincipals: ['cluster.local/ns/bar/sa/api'],
      }),
    ),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'every `when` condition must match (AND): one failing condition fails the rule',
    docs: allow({
      when: [
        { key: 'source.namespace', values: ['bar'] },
        { key: 'destination.port', values: ['9090'] },
      ],
    }),
    conn: { from: ID.api, port: 8080 },
    verdict: 'deny',
  },
  {
    rule: 'a `when` condition needs one of its values and none of its notValues',
    docs: allow({ when: [{ key: 'source.ip', values: ['10.0.0.0/8'], notValues: ['10.0.2.1'] }] }),
    conn: { from: ID.api, ip: '10.0.2.1' },
    verdict: 'deny',
  },
  {
    rule: 'an operation with only notPorts matches every other port',
    docs: allow({ to: [{ operation: { notPorts: ['22'] } }] }),
    conn: { port: 8080 },
    verdict: 'allow',
  },
];

const identity: Case[] = [
  {
    rule: 'principals: exact match against the identity without spiffe://',
    docs: allow(from({ principals: ['cluster.local/ns/bar/sa/api'] })),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'principals compare the trust domain literally (no alias rewriting in ambient)',
    docs: allow(from({ principals: ['cluster.local/ns/bar/sa/api'] })),
    conn: { from: ID.otherTd },
    verdict: 'deny',
  },
  {
    rule: 'principals prefix match `x*`',
    docs: allow(from({ principals: ['cluster.local/ns/bar/*'] })),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'principals suffix match `*x`',
    docs: allow(from({ principals: ['*/sa/api'] })),
    conn: { from: ID.otherTd },
    verdict: 'allow',
  },
  {
    rule: 'principals `*` (presence) matches any mTLS peer',
    docs: allow(from({ principals: ['*'] })),
    conn: { from: ID.admin },
    verdict: 'allow',
  },
  {
    rule: 'principals `*` does not match plaintext: no identity, not even presence [ZT matches_principal]',
    docs: allow(from({ principals: ['*'] })),
    conn: {},
    verdict: 'deny',
    reason: /plaintext/,
  },
  {
    rule: 'an ALLOW on principals denies plaintext from the very pod it names',
    docs: allow(from({ principals: ['cluster.local/ns/bar/sa/api'] })),
    conn: { ip: '10.0.2.1' },
    verdict: 'deny',
  },
  {
    rule: 'notPrincipals admits plaintext (ALLOW with only notPrincipals) [ZT not_principals]',
    docs: allow(from({ notPrincipals: ['cluster.local/ns/ops/sa/admin'] })),
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'DENY notPrincipals ["*"] denies plaintext',
    docs: deny(from({ notPrincipals: ['*'] })),
    conn: {},
    verdict: 'deny',
  },
  {
    rule: 'DENY notPrincipals ["*"] lets any mTLS peer through',
    docs: deny(from({ notPrincipals: ['*'] })),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'namespaces: the namespace of the peer identity',
    docs: allow(from({ namespaces: ['bar'] })),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: "DENY namespaces [x] does not stop plaintext from x's pods (namespace comes only from the identity) [CON]",
    docs: deny(from({ namespaces: ['bar'] })),
    conn: { ip: '10.0.2.1' },
    verdict: 'allow',
  },
  {
    rule: 'DENY notNamespaces [x] denies plaintext (its namespace is "")',
    docs: deny(from({ notNamespaces: ['foo'] })),
    conn: {},
    verdict: 'deny',
  },
  {
    rule: 'ALLOW notNamespaces [x] admits plaintext',
    docs: allow(from({ notNamespaces: ['ops'] })),
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'namespaces prefix match `ba*`',
    docs: allow(from({ namespaces: ['ba*'] })),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'namespaces `*` (presence) matches any mTLS peer but never plaintext',
    docs: allow(from({ namespaces: ['*'] })),
    conn: {},
    verdict: 'deny',
  },
  {
    rule: "serviceAccounts `ns/sa` matches the identity's namespace and service account",
    docs: allow(from({ serviceAccounts: ['bar/api'] })),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'serviceAccounts ignore the trust domain [ZT ServiceAccountMatch]',
    docs: allow(from({ serviceAccounts: ['bar/api'] })),
    conn: { from: ID.otherTd },
    verdict: 'allow',
  },
  {
    rule: "a bare service account means one in the policy's namespace",
    docs: allow(from({ serviceAccounts: ['web'] })),
    conn: { to: 'foo/db', from: ID.web },
    verdict: 'allow',
  },
  {
    rule: 'a bare service account does not match the same name in another namespace',
    docs: allow(from({ serviceAccounts: ['api'] })),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'serviceAccounts never match plaintext',
    docs: allow(from({ serviceAccounts: ['bar/api'] })),
    conn: {},
    verdict: 'deny',
  },
  {
    rule: 'notServiceAccounts admits plaintext',
    docs: allow(from({ notServiceAccounts: ['ops/admin'] })),
    conn: {},
    verdict: 'allow',
  },
];

const addresses: Case[] = [
  {
    rule: 'ipBlocks: the source IP inside the CIDR',
    docs: allow(from({ ipBlocks: ['10.0.2.0/24'] })),
    conn: { from: ID.api, ip: '10.0.2.77' },
    verdict: 'allow',
  },
  {
    rule: 'ipBlocks: a bare IP means /32',
    docs: allow(from({ ipBlocks: ['10.0.2.1'] })),
    conn: { ip: '10.0.2.2' },
    verdict: 'deny',
  },
  {
    rule: 'ipBlocks: host bits below the prefix are ignored (10.0.2.9/24 = 10.0.2.0/24)',
    docs: allow(from({ ipBlocks: ['10.0.2.9/24'] })),
    conn: { ip: '10.0.2.200' },
    verdict: 'allow',
  },
  {
    rule: 'notIpBlocks excludes addresses inside the block',
    docs: deny(from({ notIpBlocks: ['10.0.0.0/8'] })),
    conn: { ip: '192.168.1.1' },
    verdict: 'deny',
  },
  {
    rule: 'ipBlocks work for plaintext connections (the source IP is always known)',
    docs: allow(from({ ipBlocks: ['10.0.2.0/24'] })),
    conn: { ip: '10.0.2.1' },
    verdict: 'allow',
  },
  {
    rule: 'ipBlocks IPv6 CIDR',
    docs: allow(from({ ipBlocks: ['fd00:2::/64'] })),
    conn: { ip: 'fd00:2::abcd' },
    verdict: 'allow',
  },
  {
    rule: 'an IPv4 block never contains an IPv6 source, even 0.0.0.0/0',
    docs: allow(from({ ipBlocks: ['0.0.0.0/0'] })),
    conn: { ip: 'fd00:2::abcd' },
    verdict: 'deny',
  },
  {
    rule: 'an IPv4-mapped IPv6 source (dual-stack socket) is matched as IPv4',
    docs: allow(from({ ipBlocks: ['10.0.2.0/24'] })),
    conn: { ip: '::ffff:10.0.2.1' },
    verdict: 'allow',
  },
  {
    rule: 'ports: the destination (workload) port, exact',
    docs: allow({ to: [{ operation: { ports: ['8080'] } }] }),
    conn: { port: 8080 },
    verdict: 'allow',
  },
  {
    rule: 'ports: another port does not match',
    docs: allow({ to: [{ operation: { ports: ['8080'] } }] }),
    conn: { port: 8081 },
    verdict: 'deny',
  },
  {
    rule: 'notPorts: the listed port is excluded',
    docs: deny({ to: [{ operation: { notPorts: ['8080'] } }] }),
    conn: { port: 8080 },
    verdict: 'allow',
  },
  {
    rule: 'when source.ip with a CIDR',
    docs: allow({ when: [{ key: 'source.ip', values: ['10.0.0.0/16'] }] }),
    conn: { ip: '10.0.2.1' },
    verdict: 'allow',
  },
  {
    rule: 'when source.namespace comes from the identity',
    docs: allow({ when: [{ key: 'source.namespace', values: ['bar'] }] }),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'when source.namespace notValues is satisfied by plaintext',
    docs: deny({ when: [{ key: 'source.namespace', notValues: ['bar'] }] }),
    conn: {},
    verdict: 'deny',
  },
  {
    rule: 'when source.principal is the identity without spiffe://',
    docs: allow({ when: [{ key: 'source.principal', values: ['cluster.local/ns/bar/sa/api'] }] }),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'when destination.ip is the address the connection was sent to (IPv6 of a dual-stack pod)',
    docs: allow({ when: [{ key: 'destination.ip', values: ['fd00::1:0/112'] }] }),
    conn: { dstIp: 'fd00::1:1' },
    verdict: 'allow',
  },
  {
    rule: "when destination.ip does not match the pod's other address",
    docs: allow({ when: [{ key: 'destination.ip', values: ['fd00::1:0/112'] }] }),
    conn: { dstIp: '10.0.1.1' },
    verdict: 'deny',
  },
  {
    rule: 'when destination.port',
    docs: deny({ when: [{ key: 'destination.port', values: ['8080', '8443'] }] }),
    conn: { port: 8443 },
    verdict: 'deny',
  },
];

const values: Case[] = [
  {
    rule: 'wildcards only at the ends: a `*` in the middle is a literal character (exact match)',
    docs: allow(from({ principals: ['cluster.local/ns/*/sa/api'] })),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: '`*x*`: only the leading star is special, so it is a suffix match on "x*"',
    docs: allow(from({ namespaces: ['*ar*'] })),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'exact matching is case-sensitive',
    docs: allow(from({ namespaces: ['Bar'] })),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'a prefix match needs the whole prefix (no partial segment magic)',
    docs: allow(from({ principals: ['cluster.local/ns/ba*'] })),
    conn: { from: ID.api },
    verdict: 'allow',
  },
];

t.test('rule structure', async (t) => runTable(t, structure));
t.test('identity fields', async (t) => runTable(t, identity));
t.test('addresses, ports and when keys', async (t) => runTable(t, addresses));
t.test('value matching', async (t) => runTable(t, values));
