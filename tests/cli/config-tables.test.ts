// `mtun config` prints what `istioctl ztunnel-config` prints: fed istio/istio's own test dump
// (tests/fixtures/istioctl-configdump/testdata: istioctl/pkg/writer/ztunnel/configdump/
// testdata at commit 86c9f01, a real ztunnel's dump with workloads and services as maps), our
// tables must equal istioctl's expected outputs byte for byte. An mtun dump adds RENEWAL.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import type { ConfigDump } from '../../cli/admin-client.js';
import {
  certificatesTable,
  policiesTable,
  servicesTable,
  workloadsTable,
} from '../../cli/config.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'istioctl-configdump', 'testdata');
const read = (f: string) => readFile(join(dir, f), 'utf8');

/** As cli/admin-client.ts fetchDump normalizes it (istioctl's unmarshalListOrMap). */
async function istioDump(): Promise<ConfigDump> {
  const raw = JSON.parse(await read('dump.json')) as Record<string, unknown>;
  const list = (v: unknown) => (Array.isArray(v) ? v : Object.values(v as object));
  return {
    ...(raw as unknown as ConfigDump),
    workloads: list(raw.workloads),
    services: list(raw.services),
    policies: list(raw.policies),
    certificates: list(raw.certificates),
  };
}

t.test("istioctl's expected tables, from istioctl's test dump", async (t) => {
  const d = await istioDump();
  t.equal(workloadsTable(d), await read('workloadsummary.txt'), 'workloads');
  t.equal(policiesTable(d), await read('policies.txt'), 'policies');
  // allsummary.txt: "\n" workloads "\n" services "\n" policies "\n" certificates.
  const all = (await read('allsummary.txt')).split('\n\n');
  t.equal(servicesTable(d), `${all[1]}\n`, "services (allsummary.txt's second table)");
  t.equal(
    certificatesTable(d, new Date('2026-12-01T00:00:00Z')),
    await read('secretsummary.txt'),
    'certificates',
  );
});

t.test('an mtun dump: the certificates view says when each leaf is renewed', async (t) => {
  const d: ConfigDump = {
    workloads: [],
    services: [],
    policies: [],
    certificates: [
      {
        identity: 'spiffe://cluster.local/ns/a/sa/b',
        state: 'Available',
        certChain: [
          {
            pem: '',
            serialNumber: '255',
            validFrom: '2026-12-01T00:00:00Z',
            expirationTime: '2026-12-02T00:00:00Z',
          },
        ],
        rootCerts: [],
      },
      {
        identity: 'spiffe://cluster.local/ns/a/sa/c',
        state: 'Unavailable: CA down',
        certChain: [],
        rootCerts: [],
      },
    ],
    mtun: {
      node: 'n',
      ready: 'ready',
      hardened: false,
      refuseBypassedPlaintext: false,
      localWorkloads: [],
      certificates: [
        {
          identity: 'spiffe://cluster.local/ns/a/sa/b',
          state: 'valid',
          nextAttemptAt: '2026-12-01T12:01:02.345Z',
          failures: 0,
        },
        {
          identity: 'spiffe://cluster.local/ns/a/sa/c',
          state: 'backoff',
          nextAttemptAt: '2026-12-01T00:00:03.000Z',
          failures: 2,
        },
      ],
      captureBypass: { total: 0, pairs: [] },
      recentConnections: [],
    },
  };
  const out = certificatesTable(d, new Date('2026-12-01T06:00:00Z'));
  t.match(
    out,
    /^CERTIFICATE NAME\s+TYPE\s+STATUS\s+VALID CERT\s+SERIAL NUMBER\s+NOT AFTER\s+NOT BEFORE\s+RENEWAL\n/,
  );
  t.match(
    out,
    /sa\/b\s+Leaf\s+Available\s+true\s+ff\s+2026-12-02T00:00:00Z\s+2026-12-01T00:00:00Z\s+2026-12-01T12:01:02Z\n/,
    'the leaf, with its renewal',
  );
  t.match(
    out,
    /sa\/c\s+NA\s+Unavailable\s+false\s+NA\s+NA\s+NA\s+2026-12-01T00:00:03Z \(retry 2\)\n/,
  );
});

t.test('--workers: one ztunnel-shaped dump for the node, bypass pairs merged', async (t) => {
  const { mergeDumps } = await import('../../cli/workers.js');
  const worker = (n: number, at: string) => ({
    workloads: [{ name: 'w' }],
    certificates: [{ identity: `id-${n}` }],
    mtun: {
      node: 'n',
      recentConnections: [{ at, src: `10.0.0.${n}:1` }],
      captureBypass: {
        total: n,
        pairs: [{ source: 'a/x', destination: 'b/y', count: n, firstSeen: at, lastSeen: at }],
      },
    },
  });
  const merged = mergeDumps([
    worker(2, '2026-01-01T00:00:02Z'),
    worker(1, '2026-01-01T00:00:01Z'),
  ]) as {
    workloads: unknown[];
    certificates: { identity: string }[];
    workers: unknown[];
    mtun: {
      recentConnections: { at: string }[];
      captureBypass: { total: number; pairs: { count: number; firstSeen: string }[] };
    };
  };
  t.equal(merged.workloads.length, 1, 'the first worker describes the mesh');
  t.equal(merged.certificates[0]!.identity, 'id-2');
  t.equal(merged.workers.length, 2, 'each worker still there');
  t.same(
    merged.mtun.recentConnections.map((c) => c.at),
    ['2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z'],
  );
  t.equal(merged.mtun.captureBypass.total, 3);
  t.match(merged.mtun.captureBypass.pairs, [{ count: 3, firstSeen: '2026-01-01T00:00:01Z' }]);
  t.same(mergeDumps([undefined]), { workers: [undefined] }, 'no worker answered');
});
