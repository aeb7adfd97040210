// `mtun agent` as a real process next to a real `mtun ca` process: readiness, the reasons
// it gives, bad flags, bind failures and a clean SIGTERM.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createRoot } from '../../ca/pki.js';
import { Socks5Refused, socks5Connect } from '../../lib/socks5-client.js';
import { run } from '../../testkit/exec.js';
import { MTUN_CLI, startMtun, terminate, track } from '../../testkit/process.js';
import { converse, startApp, stopApps } from '../helpers/apps.js';
import { meshYaml } from '../helpers/ca.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'agent-cli-test-token-0123456789';

async function setup(t: Test) {
  const dir = await tempDir(t);
  await writeFile(
    join(dir, 'mesh.yaml'),
    meshYaml([{ name: 'web-1', sa: 'web', node: 'node-a', ip: '127.0.10.1' }]),
  );
  await writeFile(join(dir, 'tokens.yaml'), `- {node: node-a, token: ${TOKEN}}\n`);
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  return dir;
}

/** `mtun agent` arguments for node-a against the CA at `url` (trusting the setup's `ca/`
 *  state unless `bundle` says otherwise), with no fixed capture ports. */
function agentArgs(
  dir: string,
  url: string,
  o: {
    inbound: number;
    metrics: number;
    ready: number;
    admin?: number;
    bundle?: string;
    extra?: string[];
  },
): string[] {
  return [
    'agent',
    '--node',
    'node-a',
    '--mesh',
    join(dir, 'mesh.yaml'),
    '--ca',
    url,
    '--ca-token-file',
    join(dir, 'token'),
    '--ca-bundle',
    o.bundle ?? join(dir, 'ca', 'root-cert.pem'),
    '--listen-ip',
    '127.0.0.1',
    '--inbound',
    String(o.inbound),
    '--socks5',
    '127.0.0.1:0',
    '--outbound',
    '0',
    '--inbound-plaintext',
    '0',
    '--admin',
    o.admin ? `127.0.0.1:${o.admin}` : 'off',
    '--metrics',
    `127.0.0.1:${o.metrics}`,
    '--readiness',
    `127.0.0.1:${o.ready}`,
    ...(o.extra ?? []),
  ];
}

/** An agent process whose CA is not there (a free port, a root of its own in the bundle):
 *  it runs and keeps retrying; its metrics and readiness ports are returned. */
async function agentWithoutCa(t: Test, dir: string) {
  await writeFile(
    join(dir, 'bundle.pem'),
    (await createRoot({ trustDomain: 'cluster.local' })).cert.toString('pem'),
  );
  const [inbound, metrics, ready, caPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const agent = startMtun(
    t,
    agentArgs(dir, `https://127.0.0.1:${caPort}`, {
      inbound,
      metrics,
      ready,
      bundle: join(dir, 'bundle.pem'),
    }),
  );
  return { agent, metrics, ready };
}

t.test('agent flags: --help tells the truth, bad values exit 2 naming the flag', async (t) => {
  const help = await run(process.execPath, [...MTUN_CLI, 'agent', '--help']);
  for (const f of [
    '--node',
    '--mesh',
    '--ca ',
    '--ca-token-file',
    '--ca-bundle',
    '--listen-ip',
    '--outbound',
    '--inbound',
    '--inbound-plaintext',
    '--socks5',
    '--socks5-allow-non-pod-clients',
    '--admin',
    '--metrics',
    '--readiness',
    '--cluster-id',
    '--workers',
    '--drain-period',
  ]) {
    t.match(help.stdout, f, `help mentions ${f}`);
  }
  const bad = await run(process.execPath, [
    ...MTUN_CLI,
    'agent',
    '--node',
    'n',
    '--mesh',
    'x',
    '--ca',
    'http://ca',
    '--ca-token-file',
    't',
    '--ca-bundle',
    'b',
    '--workers',
    '0',
    '--inbound',
    '99999',
    '--socks5',
    'nope',
  ]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--ca: expected an https:\/\/ URL/);
  t.match(bad.stderr, /--workers: expected 1-64/);
  t.match(bad.stderr, /--inbound: expected a port/);
  t.match(bad.stderr, /--socks5: expected HOST:PORT/);
});

t.test(
  'CA unreachable at start: keeps retrying, not ready, says why; SIGTERM exits 0',
  async (t) => {
    const dir = await setup(t);
    const { agent, metrics, ready } = await agentWithoutCa(t, dir);
    await agent.waitFor(/certificate fetch failed; retrying/, 20_000);
    const answer = await fetch(`http://127.0.0.1:${ready}/healthz/ready`);
    t.equal(answer.status, 500, "ztunnel's answer when not ready");
    t.match(
      await answer.text(),
      /^not ready, pending: waiting for certificates: spiffe:\/\/cluster\.local\/ns\/default\/sa\/web \(CA https:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/,
    );
    const onMetrics = await fetch(`http://127.0.0.1:${metrics}/healthz/ready`);
    t.equal(onMetrics.status, 404, 'readiness is on its own port (15021), not on metrics');
    t.equal(await terminate(agent.child), 0);
  },
);

/** A real `mtun ca` process over the setup's mesh and tokens; resolves with its URL. */
async function startCaProcess(t: Test, dir: string): Promise<string> {
  const ca = startMtun(t, [
    'ca',
    '--state-dir',
    join(dir, 'ca'),
    '--mesh',
    join(dir, 'mesh.yaml'),
    '--tokens',
    join(dir, 'tokens.yaml'),
    '--listen',
    '127.0.0.1:0',
  ]);
  return (await ca.waitFor(/"url":"(https:[^"]+)"/, 20_000))[1]!;
}

/** Polls /healthz/ready until 200 or `tries` run out; returns the last status. */
async function pollReady(ready: number, tries: number, everyMs: number): Promise<number> {
  let status = 0;
  for (let i = 0; i < tries && status !== 200; i++) {
    status = await fetch(`http://127.0.0.1:${ready}/healthz/ready`).then(
      (r) => r.status,
      () => 0,
    );
    if (status !== 200) await new Promise((r) => setTimeout(r, everyMs));
  }
  return status;
}

t.test('with the CA up the agent becomes ready; a taken port is named', async (t) => {
  const dir = await setup(t);
  const url = await startCaProcess(t, dir);
  const [inbound, metrics, ready] = [await freePort(), await freePort(), await freePort()];
  const args = agentArgs(dir, url, { inbound, metrics, ready });
  const agent = startMtun(t, args);
  await agent.waitFor(/agent listening/, 20_000);
  // Issue 13: the agent tunes glibc's malloc itself (the addon is built by npm install).
  t.match(agent.output(), /"trimThresholdBytes":67108864.*glibc malloc tuned for the data path/);
  t.equal(await pollReady(ready, 100, 50), 200, 'ready once the certificate is loaded');
  const second = await run(process.execPath, [
    ...MTUN_CLI,
    ...args.map((a) =>
      a === `127.0.0.1:${metrics}` || a === `127.0.0.1:${ready}` ? '127.0.0.1:0' : a,
    ),
  ]);
  t.equal(second.code, 2);
  t.match(second.stderr, new RegExp(`inbound HBONE|cannot listen on 127\\.0\\.0\\.1:${inbound}`));
  t.equal(await terminate(agent.child), 0);
  t.match(agent.output(), /"msg":"agent stopped"/);
});

t.test(
  '--workers 2: one readiness and metrics for both, config_dump of each, clean SIGTERM',
  async (t) => {
    const dir = await setup(t);
    const url = await startCaProcess(t, dir);
    const [inbound, metrics, admin, ready] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const agent = startMtun(
      t,
      agentArgs(dir, url, { inbound, metrics, ready, admin, extra: ['--workers', '2'] }),
    );
    t.equal(
      await pollReady(ready, 200, 100),
      200,
      'ready once both workers have their certificates',
    );
    const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    t.match(
      text,
      /mtun_ca_requests_total\{outcome="issued"\} 2/,
      'one certificate fetched per worker, summed',
    );
    t.match(text, /istio_build\{component="mtun",tag="\d+\.\d+\.\d+"\} 1/, 'istio_build');
    t.match(text, /process_cpu_seconds_total \d/, 'process metrics (prom-client defaults)');
    t.match(text, /process_open_fds \d/, "open file descriptors, as ztunnel's dashboard reads");
    const dump = (await (await fetch(`http://127.0.0.1:${admin}/config_dump`)).json()) as {
      workers: unknown[];
    };
    t.equal(dump.workers.length, 2);
    const started = Date.now();
    t.equal(await terminate(agent.child), 0, 'exit 0');
    t.ok(Date.now() - started < 15_000, 'within the drain period and some');
  },
);

/** `--import` code that, once the agent has installed its last-resort handlers, throws
 *  `count` exceptions from timers `everyMs` apart and rejects one promise (issue 19). */
function injectFaults(count: number, everyMs: number): string {
  const code = `let n = 0;
const tick = () => {
  if (process.listenerCount('uncaughtException') === 0) return void setTimeout(tick, 100);
  if (n === 0) Promise.reject(new Error('injected rejection'));
  if (++n < ${count}) setTimeout(tick, ${everyMs});
  throw new Error('injected fault ' + n);
};
setTimeout(tick, 100);`;
  return `data:text/javascript,${encodeURIComponent(code)}`;
}

t.test(
  'last resort: an uncaught exception is logged and counted and the agent keeps serving; five in a minute drain it and exit 1',
  async (t) => {
    const dir = await setup(t);
    const url = await startCaProcess(t, dir);
    const [inbound, metrics, ready] = [await freePort(), await freePort(), await freePort()];
    const spawnWith = (count: number, everyMs: number) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          injectFaults(count, everyMs),
          ...MTUN_CLI,
          ...agentArgs(dir, url, { inbound, metrics, ready }),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      t.teardown(() => child.kill('SIGKILL'));
      return track(child, 'mtun agent');
    };

    const one = spawnWith(1, 0);
    await one.waitFor(/uncaught exception/, 20_000);
    await one.waitFor(/uncaught rejection/, 5_000);
    t.match(one.output(), /injected fault 1[\s\S]*"stack"/, 'logged with its stack');
    t.equal(await pollReady(ready, 100, 50), 200, 'still ready');
    const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    t.match(text, /mtun_uncaught_errors_total\{kind="exception"\} 1/);
    t.match(text, /mtun_uncaught_errors_total\{kind="rejection"\} 1/);
    t.equal(await terminate(one.child), 0, 'and stops cleanly');

    const five = spawnWith(5, 50);
    const exited = once(five.child, 'exit') as Promise<[number | null]>;
    const [code] = await Promise.race([
      exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no exit: ${five.output().slice(-3000)}`)), 30_000),
      ),
    ]);
    t.equal(code, 1, 'five within a minute: exit 1 for the DaemonSet to restart it');
    t.match(five.output(), /cannot trust its state/);
    t.match(five.output(), /"msg":"agent stopped"/, 'after draining');
  },
);

t.test(
  'SOCKS5 relays for a client that is no pod only with --socks5-allow-non-pod-clients',
  async (t) => {
    // No CA needed: passthrough uses no certificate. The client (127.0.0.1) is no pod.
    const dir = await setup(t);
    await writeFile(
      join(dir, 'bundle.pem'),
      (await createRoot({ trustDomain: 'cluster.local' })).cert.toString('pem'),
    );
    const app = await startApp('plain', '127.0.0.1', 0);
    t.teardown(() => stopApps([app]));
    const appPort = (app.server.address() as { port: number }).port;
    const attempt = async (extra: string[]): Promise<string> => {
      const [inbound, metrics, ready, socks, caPort] = await Promise.all(
        [0, 1, 2, 3, 4].map(() => freePort()),
      );
      const agent = startMtun(
        t,
        agentArgs(dir, `https://127.0.0.1:${caPort}`, {
          inbound: inbound!,
          metrics: metrics!,
          ready: ready!,
          bundle: join(dir, 'bundle.pem'),
          extra: ['--socks5', `127.0.0.1:${socks}`, ...extra],
        }),
      );
      await agent.waitFor(/agent listening/, 30_000);
      const got = await socks5Connect(
        { host: '127.0.0.1', port: socks! },
        { host: '127.0.0.1', port: appPort },
        { localAddress: '127.0.0.1' },
      ).then(
        (s) => converse(s, ['x']),
        (e: Error) => (e instanceof Socks5Refused ? `refused ${e.replyCode}` : e.message),
      );
      await terminate(agent.child);
      return got;
    };
    t.equal(await attempt([]), 'refused 2', 'by default: refused');
    t.match(
      await attempt(['--socks5-allow-non-pod-clients']),
      /^plain x\n/,
      'with the flag: relayed',
    );
  },
);

t.test(
  'policies ztunnel would not enforce as written: said once when loaded, and counted',
  async (t) => {
    const dir = await setup(t);
    const policies = (names: string[]) =>
      names
        .map(
          (n) =>
            `---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${n}, namespace: default}\nspec: ${n === 'deny-nothing' ? '{action: DENY}' : '{action: AUDIT, rules: [{}]}'}\n`,
        )
        .join('');
    const base = meshYaml([{ name: 'web-1', sa: 'web', node: 'node-a', ip: '127.0.10.1' }]);
    await writeFile(join(dir, 'mesh.yaml'), `${base}${policies(['deny-nothing', 'audit'])}`);
    const { agent, metrics } = await agentWithoutCa(t, dir);
    await agent.waitFor(/agent listening/, 20_000);
    const said = (policy: string) =>
      agent
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"AuthorizationPolicy has no effect at L4"'))
        .filter((l) => l.includes(`"policy":"${policy}"`));
    t.equal(said('default/deny-nothing').length, 1, 'the DENY without rules loaded, and said');
    t.match(said('default/deny-nothing')[0], /"reason":"NoRules".*"status":"DENY action without/);
    t.match(said('default/audit')[0], /"status":"ztunnel does not support the AUDIT action"/);
    const scrape = async () => (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    const text = await scrape();
    t.match(
      text,
      /mtun_authorization_policy_status\{policy="default\/deny-nothing",reason="NoRules"\} 1/,
    );
    t.match(
      text,
      /mtun_authorization_policy_status\{policy="default\/audit",reason="UnsupportedValue"\} 1/,
    );
    // A reload that drops one policy and keeps the other: nothing said again.
    await writeFile(join(dir, 'mesh.yaml'), `${base}${policies(['deny-nothing'])}`);
    await eventually(
      async () => !(await scrape()).includes('policy="default/audit"'),
      'the reload dropped default/audit from the metric',
      10_000,
    );
    t.equal(said('default/deny-nothing').length, 1, 'said once, not at every reload');
    t.equal(await terminate(agent.child), 0);
  },
);
