// Table: attributes ztunnel cannot see at L4 (hosts, methods, paths, requestPrincipals,
// remoteIpBlocks, non-L4 `when` keys). ALLOW: the whole rule is dropped (fail closed).
// DENY: the L7 parts are stripped; a clause left empty never matches (istiod handleRule,
// ztunnel `mg.is_empty()`), which the API reference describes differently.
import t from 'tap';
import { allow, type Case, deny, ID, runTable } from './helpers.js';

const cases: Case[] = [
  {
    rule: 'ALLOW whose every rule is L7 denies everything it selects (fail closed) [L4 docs; istiod "unsupported HTTP methods"]',
    docs: allow({ to: [{ operation: { methods: ['GET'] } }] }),
    conn: { from: ID.api },
    verdict: 'deny',
    reason: /HTTP attributes.*methods/,
  },
  {
    rule: 'ALLOW: an L7 rule is dropped whole, its L4 parts included (ports do not save it)',
    docs: allow({ to: [{ operation: { methods: ['GET'], ports: ['8080'] } }] }),
    conn: { from: ID.api, port: 8080 },
    verdict: 'deny',
  },
  {
    rule: 'ALLOW: other, pure L4 rules of the same policy still allow',
    docs: allow(
      { to: [{ operation: { paths: ['/admin'] } }] },
      { from: [{ source: { namespaces: ['bar'] } }] },
    ),
    conn: { from: ID.api },
    verdict: 'allow',
    ruleIndex: 1,
  },
  {
    rule: 'ALLOW: remoteIpBlocks is L7 to ztunnel, so the rule is dropped',
    docs: allow({ from: [{ source: { remoteIpBlocks: ['10.0.0.0/8'] } }] }),
    conn: { ip: '10.0.2.1' },
    verdict: 'deny',
  },
  {
    rule: 'ALLOW: requestPrincipals next to principals drops the rule',
    docs: allow({ from: [{ source: { principals: ['*'], requestPrincipals: ['*'] } }] }),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'ALLOW: a `when` on connection.sni (L7 for ztunnel, though [COND] lists it for TCP) drops the rule',
    docs: allow({ when: [{ key: 'connection.sni', values: ['web.foo'] }] }),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'DENY: methods + ports is enforced on the port alone (more restrictive)',
    docs: deny({ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }),
    conn: { from: ID.api, port: 8080 },
    verdict: 'deny',
    policy: 'foo/p',
  },
  {
    rule: 'DENY: methods + ports does not deny other ports',
    docs: deny({ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }),
    conn: { from: ID.api, port: 9090 },
    verdict: 'allow',
  },
  {
    rule: 'DENY: a `to` with only methods is a no-op, not "deny all TCP" as the API reference says [istiod "L7-only To methods is a no-op"]',
    docs: deny({ to: [{ operation: { methods: ['POST'] } }] }),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'DENY: L4 `from` AND an L7 `when` is a no-op (the empty clause never matches) [istiod "L4 From and L7 When is a no-op"]',
    docs: deny({
      from: [{ source: { principals: ['cluster.local/ns/bar/sa/api'] } }],
      when: [{ key: 'request.headers[x-token]', values: ['secret'] }],
    }),
    conn: { from: ID.api },
    verdict: 'allow',
  },
  {
    rule: 'DENY: a rule whose only source is notRequestPrincipals is a no-op',
    docs: deny({ from: [{ source: { notRequestPrincipals: ['*'] } }] }),
    conn: {},
    verdict: 'allow',
  },
  {
    rule: 'DENY: remote.ip in `when` is L7 to ztunnel: no-op',
    docs: deny({ when: [{ key: 'remote.ip', values: ['10.0.0.0/8'] }] }),
    conn: { ip: '10.0.2.1' },
    verdict: 'allow',
  },
  {
    rule: 'DENY: an L7-only entry in `from` is skipped, an L4 entry beside it still matches',
    docs: deny({
      from: [
        { source: { requestPrincipals: ['issuer/sub'] } },
        { source: { namespaces: ['bar'] } },
      ],
    }),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'DENY: an L7 field stripped from an entry leaves its L4 fields enforced',
    docs: deny({ from: [{ source: { namespaces: ['bar'], requestPrincipals: ['issuer/sub'] } }] }),
    conn: { from: ID.api },
    verdict: 'deny',
  },
  {
    rule: 'DENY: an added empty rule `{}` still denies everything next to an L7-only rule',
    docs: deny({}, { to: [{ operation: { paths: ['/admin'] } }] }),
    conn: { from: ID.api },
    verdict: 'deny',
    ruleIndex: 0,
  },
];

t.test('L7 attributes at L4', async (t) => runTable(t, cases));
