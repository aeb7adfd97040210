// `mtun map --listen ADDR`: the mesh map page for a real mesh. The agents are found as the rest
// of the CLI finds things: every node of the mesh model (files, or the Kubernetes API) at its
// InternalIP on the agents' admin port, asked again at each refresh so that nodes coming and
// going show up; or named one by one with --agent. Read-only: it only GETs admin `/edges`.
import { type Command, Option } from 'commander';
import { createLogger, LOG_LEVELS, type LogLevel } from '../lib/logger.js';
import { openMeshSource } from '../mesh/open.js';
import type { MeshSource } from '../mesh/source.js';
import { Problems, parseHostPort } from './args.js';
import { MapServer } from './map/server.js';
import { addMeshOptions, type MeshFlags, meshChoiceFromFlags } from './mesh-flags.js';
import { runUntilSignal } from './signals.js';

interface MapFlags extends MeshFlags {
  listen: string;
  agent?: string[];
  adminPort: string;
  logLevel: LogLevel;
}

/** The admin base URL of the agent on each node of the mesh (its InternalIP). */
export function agentUrls(mesh: MeshSource, adminPort: number): string[] {
  return mesh
    .current()
    .nodes.map((n) => n.addresses.find((a) => a.type === 'InternalIP')?.address)
    .filter((ip): ip is string => ip !== undefined)
    .map((ip) => `http://${ip.includes(':') ? `[${ip}]` : ip}:${adminPort}/`);
}

export function registerMap(program: Command): void {
  const cmd = program
    .command('map')
    .description(
      "serve the live mesh map page: workloads, who talks to whom, identities, mTLS, policy verdicts (from the agents' admin /edges)",
    )
    .requiredOption('--listen <host:port>', 'address of the page, e.g. 127.0.0.1:20001')
    .option(
      '--agent <url...>',
      'admin URL of an agent, e.g. http://10.0.0.5:15000 (instead of finding them from the mesh)',
    );
  addMeshOptions(
    cmd,
    'mesh YAML file(s) or directory: the nodes whose agents are asked',
    'where the nodes come from: --mesh files, or the Kubernetes API',
  )
    .option(
      '--admin-port <n>',
      "the agents' admin port on their node's InternalIP (agents must listen there: --admin 0.0.0.0:15000)",
      '15000',
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .action(async (f: MapFlags) => {
      const problems = new Problems();
      const listen = problems.attempt(() => parseHostPort(f.listen, '--listen'));
      const adminPort = Number(f.adminPort);
      if (!/^\d{1,5}$/.test(f.adminPort) || adminPort < 1 || adminPort > 65535)
        problems.add(
          `--admin-port: expected a port number 1-65535, got ${JSON.stringify(f.adminPort)}`,
        );
      for (const u of f.agent ?? [])
        if (!/^https?:\/\/[^/]+\/?$/.test(u))
          problems.add(
            `--agent: expected an admin base URL like http://10.0.0.5:15000, got ${JSON.stringify(u)}`,
          );
      const fromMesh = !f.agent?.length;
      if (fromMesh && f.meshSource === 'files' && !f.mesh?.length)
        problems.add(
          'give the agents: --agent URL..., or --mesh PATH (or --mesh-source kubernetes)',
        );
      problems.throwIfAny();
      const logger = createLogger({ level: f.logLevel, name: 'map' });
      let mesh: MeshSource | undefined;
      if (fromMesh) {
        mesh = await openMeshSource(meshChoiceFromFlags(f, ['nodes']), {
          logger: logger.child({ module: 'mesh' }),
          clusterDomain: f.clusterDomain,
        });
      }
      const source = mesh;
      const agents = () => (source ? agentUrls(source, adminPort) : f.agent!);
      const map = await MapServer.create({ listen: listen!, agents }).catch(async (err) => {
        await mesh?.close();
        throw err;
      });
      if (fromMesh && agents().length === 0)
        logger.warn('the mesh names no node with an InternalIP: no agent to ask yet');
      process.stdout.write(`Mesh map: ${map.url()}\n`);
      logger.info({ url: map.url(), agents: agents() }, 'map serving');
      await runUntilSignal(logger, async () => {
        await map.close();
        await mesh?.close();
      });
    });
}
