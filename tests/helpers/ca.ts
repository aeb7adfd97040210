// Starts a real CA (in-process, HTTPS on 127.0.0.1 port 0) over a temporary state
// directory, a mesh file and a tokens file, and offers a raw POST for refusal tests.
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Test } from 'tap';
import { type RunningCa, startCa } from '../../ca/service.js';
import { createLogger } from '../../lib/logger.js';
import { tempDir } from './tmp.js';

export const TOKEN_A = 'node-a-token-0123456789abcdef';
export const TOKEN_B = 'node-b-token-0123456789abcdef';

export function meshYaml(
  pods: { name: string; sa: string; node: string; ip: string; ns?: string }[],
): string {
  const ns = new Set(pods.map((p) => p.ns ?? 'default'));
  return [
    ...[...ns].map(
      (n) =>
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}, labels: {istio.io/dataplane-mode: ambient}}\n`,
    ),
    ...pods.map(
      (p) =>
        `apiVersion: v1\nkind: Pod\nmetadata: {name: ${p.name}, namespace: ${p.ns ?? 'default'}}\nspec: {serviceAccountName: ${p.sa}, nodeName: ${p.node}}\nstatus: {podIP: ${p.ip}}\n`,
    ),
  ].join('---\n');
}

/** What the CA answers, success or refusal. */
export interface CaJson {
  error?: { code: string; message: string };
  certChain: string[];
  trustBundle: string[];
  expiresAt: string;
}

export interface TestCa {
  readonly ca: RunningCa;
  readonly dir: string;
  readonly meshFile: string;
  readonly logs: string[];
  post(
    body: unknown,
    opts?: { token?: string | null; raw?: string; chunked?: boolean },
  ): Promise<{ status: number; json: CaJson }>;
}

export async function startTestCa(
  t: Test,
  opts: {
    maxTtlMs?: number;
    stateDir?: string;
    cacertsDir?: string;
    rateLimit?: { burst: number; perSecond: number };
  } = {},
): Promise<TestCa> {
  const dir = await tempDir(t, 'mtun-ca-');
  const meshFile = join(dir, 'mesh.yaml');
  const tokensFile = join(dir, 'tokens.yaml');
  await writeFile(
    meshFile,
    meshYaml([{ name: 'reviews-1', sa: 'reviews', node: 'node-a', ip: '198.18.1.10' }]),
  );
  await writeFile(
    tokensFile,
    `- {node: node-a, token: ${TOKEN_A}}\n- {node: node-b, token: ${TOKEN_B}}\n`,
  );
  const logs: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
  const ca = await startCa(
    {
      stateDir: opts.stateDir ?? join(dir, 'state'),
      meshPaths: [meshFile],
      tokensFile,
      host: '127.0.0.1',
      port: 0,
      trustDomain: 'cluster.local',
      cacertsDir: opts.cacertsDir,
      maxTtlMs: opts.maxTtlMs ?? 86_400_000,
      ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
    },
    createLogger({ level: 'debug', destination: sink }),
  );
  t.teardown(() => ca.close());
  const post = (
    body: unknown,
    o: { token?: string | null; raw?: string; chunked?: boolean } = {},
  ) =>
    new Promise<{ status: number; json: CaJson }>((resolve, reject) => {
      const payload = o.raw ?? JSON.stringify(body);
      const token = o.token === undefined ? TOKEN_A : o.token;
      const req = request(`${ca.url}/v1/certificates`, {
        method: 'POST',
        ca: ca.server.trustBundlePem,
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      });
      req.on('error', reject);
      req.on('response', async (res) => {
        let text = '';
        for await (const c of res) text += c;
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined });
      });
      if (o.chunked) {
        // No content-length: the server can only find out by counting.
        for (let i = 0; i < payload.length; i += 4096) req.write(payload.slice(i, i + 4096));
        req.end();
      } else req.end(payload);
    });
  return { ca, dir, meshFile, logs, post };
}
