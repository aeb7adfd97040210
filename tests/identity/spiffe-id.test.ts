import t from 'tap';
import { InvalidSpiffeIdError, SpiffeId } from '../../identity/spiffe-id.js';

t.test('parses and formats a workload SPIFFE ID', async (t) => {
  const id = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/reviews');
  t.equal(id.trustDomain, 'cluster.local');
  t.equal(id.namespace, 'default');
  t.equal(id.serviceAccount, 'reviews');
  t.equal(id.toString(), 'spiffe://cluster.local/ns/default/sa/reviews');
  t.equal(id.principal(), 'cluster.local/ns/default/sa/reviews');
  t.ok(id.equals(SpiffeId.of('cluster.local', 'default', 'reviews')));
  t.notOk(id.equals(SpiffeId.of('cluster.local', 'default', 'ratings')));
  t.equal(JSON.stringify({ id }), '{"id":"spiffe://cluster.local/ns/default/sa/reviews"}');
});

const bad: [string, RegExp][] = [
  ['', /spiffe:\/\//],
  ['https://cluster.local/ns/a/sa/b', /spiffe:\/\//],
  ['SPIFFE://cluster.local/ns/a/sa/b', /spiffe:\/\//],
  ['spiffe://cluster.local/ns/a/sa/b/extra', /\/ns\/<namespace>\/sa/],
  ['spiffe://cluster.local/ns/a', /\/ns\/<namespace>\/sa/],
  ['spiffe://cluster.local/sa/b/ns/a', /\/ns\/<namespace>\/sa/],
  ['spiffe://cluster.local/ns/a/sa/b?x=1', /query/],
  ['spiffe://cluster.local:443/ns/a/sa/b', /port/],
  ['spiffe://user@cluster.local/ns/a/sa/b', /userinfo/],
  ['spiffe://cluster.local/ns/a%2F/sa/b', /percent/],
  ['spiffe://Cluster.Local/ns/a/sa/b', /trust domain/],
  ['spiffe:///ns/a/sa/b', /trust domain/],
  ['spiffe://cluster.local/ns//sa/b', /namespace/],
  ['spiffe://cluster.local/ns/A/sa/b', /namespace/],
  ['spiffe://cluster.local/ns/a/sa/-b', /service account/],
];
for (const [text, why] of bad) {
  t.test(`rejects ${JSON.stringify(text)}`, async (t) => {
    const err = t.throws(() => SpiffeId.parse(text), InvalidSpiffeIdError) as InvalidSpiffeIdError;
    t.match(err.message, why);
    t.equal(err.code, 'SPIFFE_ID_INVALID');
    t.equal(SpiffeId.tryParse(text), undefined);
  });
}
