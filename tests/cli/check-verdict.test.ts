// Table: `mtun check`'s verdict (cli/check-verdict.ts) from the mesh model and the agents'
// dumps. Exit 0 only for mTLS and allowed; a bypass, plaintext evidence, a source out of
// the mesh or not served by its node's agent make it "not mTLS"; a policy denial "denied".
import t from 'tap';
import type { ConfigDump, DumpRecent } from '../../cli/admin-client.js';
import { type AgentView, checkLink } from '../../cli/check-verdict.js';
import { compile } from '../../policy/index.js';
import { ap, mesh, pod } from '../policy/helpers.js';

const outside = {
  ...(pod('bar', 'legacy', { app: 'legacy' }, 'legacy', ['10.0.2.9']) as { metadata: object }),
};
(outside.metadata as { labels: Record<string, string> }).labels = { app: 'legacy' };

function dump(
  over: Partial<NonNullable<ConfigDump['mtun']>> = {},
  held: string[] = [],
): ConfigDump {
  return {
    workloads: [],
    services: [],
    policies: [],
    certificates: held.map((identity) => ({
      identity,
      state: 'Available',
      certChain: [
        { pem: '', serialNumber: '1', validFrom: '', expirationTime: '2030-01-01T00:00:00Z' },
      ],
      rootCerts: [],
    })),
    mtun: {
      node: 'x',
      ready: 'ready',
      hardened: false,
      refuseBypassedPlaintext: false,
      localWorkloads: ['bar/api'],
      certificates: [],
      captureBypass: { total: 0, pairs: [] },
      recentConnections: [],
      ...over,
    },
  };
}

const seen = (security: 'mutual_tls' | 'none', direction: 'inbound' | 'outbound'): DumpRecent => ({
  at: '2026-12-03T00:00:00.000Z',
  direction,
  src: '10.0.2.1:40000',
  dst: '10.0.1.1:8080',
  security,
  verdict: 'allow',
  captureBypass: security === 'none',
});

const WEB = 'spiffe://cluster.local/ns/foo/sa/web';
const API = 'spiffe://cluster.local/ns/bar/sa/api';
const view = (d?: ConfigDump): AgentView => ({ node: 'n', dump: d, error: undefined });

const rows: {
  name: string;
  docs?: object[];
  from?: string;
  src?: ConfigDump;
  dst?: ConfigDump;
  verdict: 'mtls-allowed' | 'not-mtls' | 'denied';
  failing?: string[];
}[] = [
  { name: 'offline, both in the mesh, no policy: mTLS and allowed', verdict: 'mtls-allowed' },
  {
    name: 'live, both agents agree and recorded mTLS',
    src: dump({ recentConnections: [seen('mutual_tls', 'outbound')] }, [API]),
    dst: dump({ localWorkloads: ['foo/web'], recentConnections: [seen('mutual_tls', 'inbound')] }, [
      WEB,
    ]),
    verdict: 'mtls-allowed',
  },
  {
    name: 'a DENY policy: denied',
    docs: [
      ap('foo/deny-api', {
        action: 'DENY',
        rules: [{ from: [{ source: { namespaces: ['bar'] } }] }],
      }),
    ],
    verdict: 'denied',
    failing: ['authorization'],
  },
  {
    name: 'the destination agent saw bypassed plaintext from the source: not mTLS',
    dst: dump(
      {
        captureBypass: {
          total: 1,
          pairs: [
            {
              source: 'bar/api',
              sourceIp: '10.0.2.1',
              destination: 'foo/web',
              count: 1,
              firstSeen: '',
              lastSeen: '',
              lastOutcome: 'allowed',
            },
          ],
        },
        recentConnections: [seen('none', 'inbound')],
      },
      [WEB],
    ),
    verdict: 'not-mtls',
    failing: ['bypass', 'evidence'],
  },
  {
    name: "the source's agent does not serve it: not mTLS",
    src: dump({ localWorkloads: [] }, [API]),
    verdict: 'not-mtls',
    failing: ['capture'],
  },
  {
    name: 'the destination agent holds no certificate for the destination: not mTLS',
    dst: dump({}, []),
    verdict: 'not-mtls',
    failing: ['identity'],
  },
  {
    name: 'a source outside the mesh: not mTLS',
    docs: [outside],
    from: 'bar/legacy',
    verdict: 'not-mtls',
    failing: ['capture'],
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const snapshot = mesh(row.docs ?? []);
    const [ns, name] = (row.from ?? 'bar/api').split('/') as [string, string];
    const source = snapshot.workload(ns, name)!;
    const destination = snapshot.workload('foo', 'web')!;
    const report = checkLink(
      { source, destination, ip: '10.0.1.1', port: 8080 },
      compile(snapshot),
      'cluster.local',
      { source: view(row.src), destination: view(row.dst) },
    );
    t.equal(report.verdict, row.verdict, report.summary);
    t.same(
      report.findings.filter((f) => !f.ok).map((f) => f.what),
      row.failing ?? [],
      'the findings that failed',
    );
  });
}
