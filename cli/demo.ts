// `mtun demo` (what `npm start` runs): the embedded local mesh of deploy/local/mesh with a
// fresh state directory and fresh node tokens. Today it runs the CA and shows how to get a
// certificate from it; the agents join it as they are built.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { startCa } from '../ca/service.js';
import { createLogger } from '../lib/logger.js';
import { parseHostPort } from './args.js';
import { runUntilSignal } from './signals.js';

/** deploy/local/mesh, found from this file whether it runs from source or from dist/. */
export function embeddedMeshDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = here.includes(`${join('dist', 'cli')}`) ? '../..' : '..';
  return resolve(here, up, 'deploy', 'local', 'mesh');
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run the local demo on the embedded mesh (deploy/local/mesh) with a fresh state directory',
    )
    .option('--listen <host:port>', 'CA address', '127.0.0.1:15012')
    .option('--keep', 'keep the temporary state directory on exit')
    .action(async (flags: { listen: string; keep?: boolean }) => {
      const dir = await mkdtemp(join(tmpdir(), 'mtun-demo-'));
      const tokens = {
        'node-1': randomBytes(24).toString('hex'),
        'node-2': randomBytes(24).toString('hex'),
      };
      const tokensFile = join(dir, 'tokens.yaml');
      await writeFile(
        tokensFile,
        Object.entries(tokens)
          .map(([node, token]) => `- {node: ${node}, token: ${token}}\n`)
          .join(''),
        { mode: 0o600 },
      );
      const { host, port } = parseHostPort(flags.listen, '--listen');
      const logger = createLogger({ name: 'demo', level: 'warn' });
      const ca = await startCa(
        {
          stateDir: join(dir, 'ca'),
          meshPaths: [embeddedMeshDir()],
          tokensFile,
          host,
          port,
          trustDomain: 'cluster.local',
          cacertsDir: undefined,
          maxTtlMs: 86_400_000,
        },
        logger,
      );
      const root = join(dir, 'ca', 'root-cert.pem');
      process.stdout.write(
        [
          `mtun demo: CA listening on ${ca.url}, mesh ${embeddedMeshDir()}, state ${dir}`,
          '',
          "Ask for the identity of reviews (it runs on node-2) with node-2's token:",
          `  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${dir}/key.pem -subj / \\`,
          `    -addext subjectAltName=URI:spiffe://cluster.local/ns/shop/sa/reviews -out ${dir}/csr.pem`,
          `  jq -n --rawfile csr ${dir}/csr.pem '{csr: $csr}' | curl -sS --cacert ${root} \\`,
          `    -H 'Authorization: Bearer ${tokens['node-2']}' --data @- ${ca.url}/v1/certificates`,
          `With node-1's token (${tokens['node-1']}) the same request is refused with 403.`,
          'Ctrl-C stops the demo.',
          '',
        ].join('\n'),
      );
      await runUntilSignal(logger, async () => {
        await ca.close();
        if (!flags.keep) await rm(dir, { recursive: true, force: true });
      });
    });
}
