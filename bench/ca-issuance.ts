// CA issuance throughput: certificates per second from a CA process pinned to one core
// (taskset), with 8 concurrent HTTPS keep-alive clients and CSRs prepared beforehand so
// that the client's key generation is not measured. Baselines from the same run: the same
// CA's /healthz rate (TLS + HTTP cost without signing) and in-process signing alone.
// Bounded: at most REQUESTS requests or SECONDS seconds per phase.
// Usage: node --import tsx bench/ca-issuance.ts --help
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRoot, generateP256, issueLeaf } from '../ca/pki.js';
import { SpiffeId } from '../identity/spiffe-id.js';
import { ECDSA_SHA256, x509 } from '../identity/x509.js';
import { MTUN_CLI } from '../testkit/process.js';
import { scriptArgs } from './lib/args.js';
import { spawnProc } from './lib/procs.js';

const { requests: REQUESTS, seconds: SECONDS } = scriptArgs(
  'usage: node --import tsx bench/ca-issuance.ts [options]\n\nCertificates per second from a CA pinned to one core, against /healthz and in-process signing.',
  {
    requests: {
      default: 600,
      min: 1,
      max: 100_000,
      integer: true,
      help: 'requests per phase at most',
    },
    seconds: { default: 20, min: 0.5, max: 120, help: 'seconds per phase at most' },
  },
);
const CONCURRENCY = 8;
const TOKEN = 'bench-node-token-0123456789';
const ID = SpiffeId.parse('spiffe://cluster.local/ns/bench/sa/load');

async function csrs(n: number): Promise<string[]> {
  const keys = await generateP256();
  const ext = [
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ID.toString() }], true),
  ];
  // One key is enough: the CA verifies and signs each CSR independently.
  const out: string[] = [];
  for (let i = 0; i < Math.min(n, 50); i++) {
    out.push(
      (
        await x509.Pkcs10CertificateRequestGenerator.create({
          keys,
          signingAlgorithm: ECDSA_SHA256,
          extensions: ext,
        })
      ).toString('pem'),
    );
  }
  return out;
}

async function load(url: string, ca: string, path: string, bodies: string[] | undefined) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca });
  const deadline = performance.now() + SECONDS * 1000;
  let done = 0;
  let failed = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const body = bodies ? JSON.stringify({ csr: bodies[i % bodies.length] }) : undefined;
      const req = request(`${url}${path}`, {
        agent,
        method: body ? 'POST' : 'GET',
        headers: body
          ? { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
          : {},
      });
      req.on('response', (res) => {
        if (res.statusCode !== 200) failed++;
        res.resume().on('end', () => resolve());
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end(body);
    });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS && performance.now() < deadline) {
        await one(next++);
        done++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { done, failed, perSecond: done / seconds };
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'mtun-bench-ca-'));
  await writeFile(
    join(dir, 'mesh.yaml'),
    'apiVersion: v1\nkind: Pod\nmetadata: {name: load, namespace: bench}\nspec: {serviceAccountName: load, nodeName: n1}\nstatus: {podIP: 127.0.50.1}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bench, labels: {istio.io/dataplane-mode: ambient}}\n',
  );
  await writeFile(join(dir, 'tokens.yaml'), `- {node: n1, token: ${TOKEN}}\n`);
  // The CA from the sources (tsx), pinned to core 0.
  const caProc = spawnProc('taskset', [
    ...['-c', '0', process.execPath, ...MTUN_CLI, 'ca'],
    ...['--state-dir', join(dir, 's'), '--mesh', join(dir, 'mesh.yaml')],
    ...['--tokens', join(dir, 'tokens.yaml'), '--listen', '127.0.0.1:0', '--log-level', 'info'],
    ...['--node-rate', '100000', '--node-burst', '100000'],
  ]);
  try {
    const url = (await caProc.waitFor(/"url":"(https:[^"]+)"/))[1]!;
    await new Promise((r) => setTimeout(r, 500));
    const ca = await readFile(join(dir, 's', 'root-cert.pem'), 'utf8');
    const bodies = await csrs(REQUESTS);

    const root = await createRoot({ trustDomain: 'cluster.local' });
    const keys = await generateP256();
    let signed = 0;
    const t0 = performance.now();
    while (signed < 300 && performance.now() - t0 < SECONDS * 1000) {
      await issueLeaf(root, {
        id: ID,
        publicKey: keys.publicKey,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 3600_000),
      });
      signed++;
    }
    const signPerSecond = signed / ((performance.now() - t0) / 1000);
    const health = await load(url, ca, '/healthz', undefined);
    const issue = await load(url, ca, '/v1/certificates', bodies);
    const rows = [
      ['in-process issueLeaf (no CSR check, no HTTP)', signPerSecond.toFixed(0), '1.00'],
      [
        'CA GET /healthz (TLS+HTTP only)',
        health.perSecond.toFixed(0),
        (health.perSecond / signPerSecond).toFixed(2),
      ],
      [
        `CA POST /v1/certificates (${issue.done} ok-or-not, ${issue.failed} failed)`,
        issue.perSecond.toFixed(0),
        (issue.perSecond / signPerSecond).toFixed(2),
      ],
    ];
    console.log(`CA issuance, CA pinned to one core, ${CONCURRENCY} concurrent keep-alive clients`);
    for (const [name, rate, ratio] of rows)
      console.log(`${name!.padEnd(62)} ${rate!.padStart(7)}/s  ×${ratio} of in-process signing`);
    console.log(`issued/healthz ratio: ${(issue.perSecond / health.perSecond).toFixed(2)}`);
    if (issue.failed > 0) process.exitCode = 1;
  } finally {
    await caProc.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
