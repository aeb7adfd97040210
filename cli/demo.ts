// `mtun demo` (what `npm start` runs): the embedded local mesh of deploy/local/mesh on one
// machine, no root: a CA, agents for node-a (127.0.0.1) and node-b (127.0.0.2), a small
// Bookinfo-like app, a scenario of real requests through the agents with what happened,
// then it keeps running (with the metrics and admin URLs) until Ctrl-C. `--once` exits
// after the scenario, non-zero if any expectation failed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
import { createLogger, LOG_LEVELS, type LogLevel } from '../lib/logger.js';
import { startDemoApps, stopDemoApps } from './demo/apps.js';
import { type AccessLine, runScenario } from './demo/scenario.js';
import { startLocalMesh, waitReady } from './local-mesh.js';
import { MapServer } from './map/server.js';
import { runUntilSignal } from './signals.js';

/** deploy/local/mesh, found from this file whether it runs from source or from dist/. */
export function embeddedMeshDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = here.includes(join('dist', 'cli')) ? '../..' : '..';
  return resolve(here, up, 'deploy', 'local', 'mesh');
}

const NODES = [
  { name: 'node-a', ip: '127.0.0.1' },
  { name: 'node-b', ip: '127.0.0.2' },
] as const;

interface DemoFlags {
  once?: boolean;
  keep?: boolean;
  portOffset: string;
  logLevel: LogLevel;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run the local mesh demo on the embedded mesh (deploy/local/mesh): CA, two agents, an app, a scenario',
    )
    .option('--once', 'exit after the scenario (status 1 if an expectation failed)')
    .option('--keep', 'keep the temporary state directory on exit')
    .addOption(
      new Option('--log-level <level>', 'log level of the CA and agents (JSON lines on stdout)')
        .choices(LOG_LEVELS)
        .default('error'),
    )
    .option(
      '--port-offset <n>',
      'add N to every port (CA 15012, HBONE 15008, SOCKS5 15080, admin 15000, metrics 15020)',
      '0',
    )
    .action(async (flags: DemoFlags) => {
      const offset = Number(flags.portOffset);
      if (!Number.isInteger(offset) || offset < 0 || offset > 40_000)
        throw new Error('--port-offset: expected 0-40000');
      const dir = await mkdtemp(join(tmpdir(), 'mtun-demo-'));
      const logger = createLogger({ name: 'demo', level: flags.logLevel });
      const access: AccessLine[] = [];
      let mesh: Awaited<ReturnType<typeof startLocalMesh>> | undefined;
      let apps: Awaited<ReturnType<typeof startDemoApps>> = [];
      let map: MapServer | undefined;
      const cleanup = async () => {
        await map?.close();
        await stopDemoApps(apps);
        await mesh?.close();
        if (!flags.keep) await rm(dir, { recursive: true, force: true });
      };
      try {
        mesh = await startLocalMesh({
          dir,
          meshPaths: [embeddedMeshDir()],
          nodes: NODES,
          hbonePort: 15008 + offset,
          caPort: 15012 + offset,
          socks5Port: 15080 + offset,
          adminPort: 15000 + offset,
          metricsPort: 15020 + offset,
          readinessPort: 15021 + offset,
          drainPeriodMs: 1_000,
          logger,
          accessLog: () => ({ write: (line) => access.push(line) }),
        });
        const m = mesh;
        const socks = (node: string) => m.agents.get(node)!.addresses().socks5!;
        await waitReady(m);
        // The mesh map first: what a newcomer should open (Kiali's port, 20001). Not with
        // --once, which exits before anyone could look.
        if (!flags.once)
          map = await MapServer.create({
            listen: { host: '127.0.0.1', port: 20001 + offset },
            agents: () => NODES.map((n) => `http://${n.ip}:${15000 + offset}/`),
          });
        const out = process.stdout;
        if (map)
          out.write(
            `Mesh map: ${map.url()}  (open it in a browser: who talks to whom, identities, policy verdicts, live)\n\n`,
          );
        apps = await startDemoApps((ip) => socks(ip.startsWith('127.0.10.') ? 'node-a' : 'node-b'));
        out.write(
          `mtun demo: a CA and two node agents on loopback, ${apps.length} app pods (mesh: ${embeddedMeshDir()})\n`,
        );
        out.write(`  CA       ${m.ca.url}\n`);
        for (const n of NODES) {
          const a = m.agents.get(n.name)!.addresses();
          out.write(
            `  ${n.name}   ${n.ip}: HBONE :${a.inbound.port}, SOCKS5 :${a.socks5!.port}, admin http://${n.ip}:${15000 + offset}/config_dump, metrics http://${n.ip}:${15020 + offset}/metrics, ready http://${n.ip}:${15021 + offset}/healthz/ready\n`,
          );
        }
        out.write('\nScenario (requests go through the agents; facts from the receiving agent):\n');
        const results = await runScenario({
          socks: (n) => socks(n),
          inbound: () => access.filter((l) => l['direction'] === 'inbound'),
        });
        for (const r of results) {
          out.write(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.lines[0]}\n`);
          for (const l of r.lines.slice(1)) out.write(`       ${l}\n`);
        }
        const failed = results.filter((r) => !r.ok).length;
        out.write(`\n${results.length - failed} of ${results.length} expectations met.\n`);
        if (flags.once) {
          process.exitCode = failed > 0 ? 1 : 0;
          return;
        }
        out.write(
          [
            '',
            'Try it yourself (curl through node-a as productpage):',
            `  curl --interface 127.0.10.1 --socks5-hostname 127.0.0.1:${15080 + offset} http://details.shop.svc.cluster.local/`,
            `  mtun authz check --mesh ${embeddedMeshDir()} --to shop/ratings-1 --port 9080 --from-principal spiffe://cluster.local/ns/frontend/sa/productpage`,
            `The mesh map shows all of this, live: ${map?.url()}`,
            'Ctrl-C stops the demo.',
            '',
          ].join('\n'),
        );
        await runUntilSignal(logger, async () => {});
      } finally {
        await cleanup();
      }
    });
}
