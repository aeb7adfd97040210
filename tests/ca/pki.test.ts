import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { createIntermediate, createRoot, issueKeyAndLeaf } from '../../ca/pki.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { checkLeafSvid, SvidError } from '../../identity/svid.js';

const id = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/reviews');

t.test('a root-issued leaf is a valid X.509-SVID that verifies against the root', async (t) => {
  const root = await createRoot({ trustDomain: 'cluster.local' });
  const { certPem, chainPem } = await issueKeyAndLeaf(root, id);
  t.same(chainPem, [], 'a root-issued leaf needs no intermediates');
  t.ok(checkLeafSvid(certPem).equals(id));
  const leaf = new X509Certificate(certPem);
  t.ok(leaf.verify(new X509Certificate(root.cert.toString('pem')).publicKey));
  t.equal(leaf.subject, undefined, 'empty subject');
  t.equal(leaf.ca, false);
});

t.test('an intermediate-issued leaf carries the intermediate in its chain', async (t) => {
  const root = await createRoot({ trustDomain: 'cluster.local' });
  const inter = await createIntermediate(root, { trustDomain: 'cluster.local' });
  const { certPem, chainPem } = await issueKeyAndLeaf(inter, id);
  t.equal(chainPem.length, 1);
  const leaf = new X509Certificate(certPem);
  const ic = new X509Certificate(chainPem[0]!);
  t.ok(leaf.verify(ic.publicKey));
  t.ok(ic.verify(new X509Certificate(root.cert.toString('pem')).publicKey));
});

t.test('checkLeafSvid refuses a CA certificate', async (t) => {
  const root = await createRoot({ trustDomain: 'cluster.local' });
  t.throws(() => checkLeafSvid(root.cert), SvidError);
});
