// `mtun agent` flags → the one config tree, parsed by the real command definition: log level,
// redirect mode and mesh source inside it, frozen all the way down, a worker's
// derived from it; every problem reported in one go, the Kubernetes access among them.
import { Command } from 'commander';
import t from 'tap';
import { type AgentFlags, agentConfigFromFlags, registerAgent } from '../../cli/agent.js';
import { workerConfig } from '../../cli/workers.js';

const REQUIRED = [
  '--node',
  'node-a',
  '--ca',
  'https://127.0.0.1:15012',
  '--ca-token-file',
  'token',
  '--ca-bundle',
  'bundle.pem',
];

/** The flags commander hands the action for `mtun agent ARGS` (defaults filled in). */
function flagsFor(args: readonly string[]): AgentFlags {
  const program = new Command().exitOverride();
  registerAgent(program);
  let flags: AgentFlags | undefined;
  program.commands
    .find((c) => c.name() === 'agent')!
    .exitOverride()
    .action((f: AgentFlags) => {
      flags = f;
    });
  program.parse(['agent', ...REQUIRED, ...args], { from: 'user' });
  return flags!;
}

const configFor = (args: readonly string[]) => agentConfigFromFlags(flagsFor(args));

t.test('log level, redirect mode and mesh source are in the config', async (t) => {
  const files = configFor(['--mesh', 'a.yaml', 'b/']);
  t.same(files.mesh, { kind: 'files', paths: ['a.yaml', 'b/'] });
  t.equal(files.logLevel, 'info');
  t.equal(files.redirect, 'none');
  t.equal(files.hboneDial, 'node');
  t.equal(files.clusterDomain, 'cluster.local');

  const kube = configFor([
    '--mesh-source',
    'kubernetes',
    '--kubeconfig',
    'kc.yaml',
    '--kube-context',
    'kind-mtun',
    '--cluster-domain',
    'corp.example',
    '--log-level',
    'debug',
    '--redirect',
    'iptables',
  ]);
  t.same(kube.mesh, {
    kind: 'kubernetes',
    access: { kind: 'kubeconfig', file: 'kc.yaml', context: 'kind-mtun' },
  });
  t.equal(kube.logLevel, 'debug');
  t.equal(kube.redirect, 'iptables');
  t.equal(kube.hboneDial, 'pod', 'the default with --redirect iptables');
  t.equal(kube.clusterDomain, 'corp.example');
});

t.test('frozen all the way down: assignments throw, nothing changes', async (t) => {
  const config = configFor(['--mesh', 'a.yaml', '--socks5', '127.0.0.1:1080']);
  // Casts past `readonly`: what a careless (or plain JS) caller could write.
  const loose = config as unknown as {
    node: string;
    ca: { url: string };
    socks5: { port: number };
    mesh: { paths: string[] };
  };
  t.throws(() => {
    loose.node = 'node-b';
  }, TypeError);
  t.throws(() => {
    loose.ca.url = 'https://evil:15012';
  }, TypeError);
  t.throws(() => {
    loose.socks5.port = 1;
  }, TypeError);
  t.throws(() => loose.mesh.paths.push('extra.yaml'), TypeError);
  t.equal(config.node, 'node-a');
  t.equal(config.ca.url, 'https://127.0.0.1:15012');
  t.equal(config.socks5?.port, 1080);
  t.same(config.mesh, { kind: 'files', paths: ['a.yaml'] });
});

t.test("a worker's config: the primary's without its HTTP endpoints, frozen too", async (t) => {
  const config = configFor(['--mesh-source', 'kubernetes', '--kubeconfig', 'kc.yaml']);
  const worker = workerConfig(config);
  t.equal(worker.admin, undefined);
  t.equal(worker.metrics, undefined);
  t.equal(worker.readiness, undefined);
  t.not(config.admin, undefined, "the primary's keeps them");
  t.equal(worker.mesh, config.mesh, 'the same mesh source as the primary');
  t.equal(worker.logLevel, config.logLevel);
  t.equal(worker.redirect, config.redirect);
  t.ok(Object.isFrozen(worker));
  t.ok(Object.isFrozen(worker.mesh));
  t.throws(() => {
    (worker as unknown as { socks5: { port: number } }).socks5.port = 1;
  }, TypeError);
});

t.test('Kubernetes access problems are reported with the others', async (t) => {
  const saved = {
    host: process.env['KUBERNETES_SERVICE_HOST'],
    port: process.env['KUBERNETES_SERVICE_PORT'],
  };
  delete process.env['KUBERNETES_SERVICE_HOST'];
  delete process.env['KUBERNETES_SERVICE_PORT'];
  t.teardown(() => {
    if (saved.host !== undefined) process.env['KUBERNETES_SERVICE_HOST'] = saved.host;
    if (saved.port !== undefined) process.env['KUBERNETES_SERVICE_PORT'] = saved.port;
  });
  t.throws(() => configFor(['--mesh-source', 'kubernetes', '--workers', '0']), {
    name: 'ConfigError',
    message:
      /--workers: expected 1-64[\s\S]*not in a cluster \(KUBERNETES_SERVICE_HOST\/PORT unset\); pass --kubeconfig FILE/,
  });
  t.throws(() => configFor(['--workers', '2']), {
    name: 'ConfigError',
    message: /required option '--mesh <path\.\.\.>' not specified/,
  });
});
