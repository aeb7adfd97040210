// checkLeafSvid against certificates that break one SPIFFE X509-SVID rule each.
import t from 'tap';
import { createRoot, generateP256, randomSerial } from '../../ca/pki.js';
import { checkLeafSvid, SvidError, spiffeIdOf, uriSans } from '../../identity/svid.js';
import { ECDSA_SHA256, x509 } from '../../identity/x509.js';

const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const { KeyUsageFlags: KU } = x509;

interface Spec {
  subject?: string;
  sans?: { type: 'url' | 'dns'; value: string }[];
  sanCritical?: boolean;
  ca?: boolean | 'absent';
  ku?: number | 'absent';
  kuCritical?: boolean;
  eku?: string[] | 'absent';
}

// One issuer and one subject key serve every case: only the extensions differ.
const root = await createRoot({ trustDomain: 'cluster.local' });
const keys = await generateP256();

async function make(spec: Spec) {
  const ext: x509.Extension[] = [];
  if (spec.ca !== 'absent')
    ext.push(new x509.BasicConstraintsExtension(spec.ca ?? false, undefined, true));
  if (spec.ku !== 'absent')
    ext.push(new x509.KeyUsagesExtension(spec.ku ?? KU.digitalSignature, spec.kuCritical ?? true));
  if (spec.eku !== 'absent')
    ext.push(
      new x509.ExtendedKeyUsageExtension(
        spec.eku ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
      ),
    );
  const sans = spec.sans ?? [{ type: 'url', value: ID }];
  if (sans.length)
    ext.push(new x509.SubjectAlternativeNameExtension(sans, spec.sanCritical ?? true));
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: spec.subject ?? '',
    issuer: root.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    publicKey: keys.publicKey,
    signingKey: root.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: ext,
  });
}

const cases: { name: string; spec: Spec; error?: RegExp }[] = [
  { name: 'a well-formed SVID', spec: {} },
  {
    name: 'a subject, non-critical SAN (allowed when the subject is not empty)',
    spec: { subject: 'CN=reviews', sanCritical: false },
  },
  { name: 'no EKU extension (EKU is a SHOULD)', spec: { eku: 'absent' } },
  {
    name: 'keyEncipherment besides digitalSignature',
    spec: { ku: KU.digitalSignature | KU.keyEncipherment },
  },
  { name: 'no SAN', spec: { sans: [] }, error: /exactly one URI SAN, found 0/ },
  {
    name: 'two URI SANs',
    spec: {
      sans: [
        { type: 'url', value: ID },
        { type: 'url', value: `${ID}x` },
      ],
    },
    error: /found 2/,
  },
  {
    name: 'a DNS SAN besides the URI',
    spec: {
      sans: [
        { type: 'url', value: ID },
        { type: 'dns', value: 'reviews' },
      ],
    },
    error: /non-URI SANs: dns/,
  },
  {
    name: 'a non-workload SPIFFE ID',
    spec: { sans: [{ type: 'url', value: 'spiffe://cluster.local' }] },
    error: /not a workload SPIFFE ID/,
  },
  {
    name: 'empty subject with a non-critical SAN',
    spec: { sanCritical: false },
    error: /must be critical/,
  },
  { name: 'CA:true', spec: { ca: true }, error: /CA:false/ },
  { name: 'no basicConstraints', spec: { ca: 'absent' }, error: /basicConstraints/ },
  { name: 'no keyUsage', spec: { ku: 'absent' }, error: /critical keyUsage/ },
  { name: 'non-critical keyUsage', spec: { kuCritical: false }, error: /critical keyUsage/ },
  {
    name: 'keyUsage without digitalSignature',
    spec: { ku: KU.keyEncipherment },
    error: /digitalSignature/,
  },
  {
    name: 'keyCertSign on a leaf',
    spec: { ku: KU.digitalSignature | KU.keyCertSign },
    error: /keyCertSign/,
  },
  {
    name: 'EKU without clientAuth',
    spec: { eku: [x509.ExtendedKeyUsage.serverAuth] },
    error: /serverAuth and clientAuth/,
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const cert = await make(c.spec);
    if (!c.error) {
      t.equal(checkLeafSvid(cert.rawData).toString(), ID, 'accepted (from DER)');
      t.equal(checkLeafSvid(cert.toString('pem')).toString(), ID, 'accepted (from PEM)');
      return;
    }
    t.throws(() => checkLeafSvid(cert.rawData), SvidError);
    t.throws(() => checkLeafSvid(cert.rawData), c.error);
  });
}

t.test('uriSans reads DER, not a display string', async (t) => {
  const odd = 'spiffe://cluster.local/ns/default/sa/a,URI:b';
  const cert = await make({ sans: [{ type: 'url', value: odd }] });
  t.same(uriSans(Buffer.from(cert.rawData)), [odd]);
  t.throws(() => spiffeIdOf(cert), /not a workload SPIFFE ID/);
  t.throws(
    () => checkLeafSvid(Buffer.from('not a certificate')),
    /not a parsable X.509 certificate/,
  );
});
