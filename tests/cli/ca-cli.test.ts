// `mtun ca` as a real process: honest --help, bad flags exit 2 naming the flag, and a
// started CA that answers on its port and stops on SIGTERM.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { run } from '../../testkit/exec.js';
import { MTUN_CLI, startMtun, terminate } from '../../testkit/process.js';
import { meshYaml } from '../helpers/ca.js';
import { tempDir } from '../helpers/tmp.js';

/** A temporary directory with a one-pod mesh.yaml and a tokens.yaml for node n. */
async function setup(t: Test): Promise<string> {
  const dir = await tempDir(t);
  await writeFile(
    join(dir, 'mesh.yaml'),
    meshYaml([{ name: 'a', sa: 'a', node: 'n', ip: '198.18.0.5' }]),
  );
  await writeFile(join(dir, 'tokens.yaml'), '- {node: n, token: 0123456789abcdef0123}\n');
  return dir;
}

t.test('--help lists the subcommands and the CA flags', async (t) => {
  const top = await run(process.execPath, [...MTUN_CLI, '--help']);
  t.equal(top.code, 0);
  t.match(top.stdout, /ca \[options\]/);
  const ca = await run(process.execPath, [...MTUN_CLI, 'ca', '--help']);
  t.equal(ca.code, 0);
  for (const flag of [
    '--state-dir',
    '--mesh',
    '--tokens',
    '--listen',
    '--trust-domain',
    '--cacerts',
    '--max-ttl',
  ]) {
    t.match(ca.stdout, flag, `help mentions ${flag}`);
  }
  t.match(ca.stdout.replace(/\s+/g, ' '), /default: "127\.0\.0\.1:15012"/);
});

t.test('bad input exits 2 and says what is wrong', async (t) => {
  const dir = await setup(t);
  const base = [
    'ca',
    '--state-dir',
    join(dir, 's'),
    '--mesh',
    join(dir, 'mesh.yaml'),
    '--tokens',
    join(dir, 'tokens.yaml'),
  ];
  const cases: [string[], RegExp][] = [
    [['ca'], /required option '--mesh/],
    [[...base, '--listen', 'nonsense'], /--listen: expected HOST:PORT/],
    [[...base, '--max-ttl', '10 years'], /--max-ttl: expected a positive duration/],
    [[...base, '--trust-domain', 'Bad Domain'], /--trust-domain/],
    [
      [
        'ca',
        '--mesh',
        join(dir, 'nope.yaml'),
        '--tokens',
        join(dir, 'tokens.yaml'),
        '--state-dir',
        join(dir, 's'),
      ],
      /mesh path .*nope\.yaml: does not exist/,
    ],
    [
      [
        'ca',
        '--mesh',
        join(dir, 'mesh.yaml'),
        '--tokens',
        join(dir, 'missing.yaml'),
        '--state-dir',
        join(dir, 's'),
      ],
      /tokens file .*missing\.yaml/,
    ],
  ];
  for (const [args, why] of cases) {
    const res = await run(process.execPath, [...MTUN_CLI, ...args]);
    t.not(res.code, 0, args.join(' '));
    t.match(res.stderr, why, args.join(' '));
  }
});

t.test('a started CA serves and stops on SIGTERM', async (t) => {
  const dir = await setup(t);
  const ca = startMtun(t, [
    'ca',
    '--state-dir',
    join(dir, 's'),
    '--mesh',
    join(dir, 'mesh.yaml'),
    '--tokens',
    join(dir, 'tokens.yaml'),
    '--listen',
    '127.0.0.1:0',
  ]);
  const url = (await ca.waitFor(/"url":"(https:\/\/[^"]+)"/, 20_000))[1]!;
  const health = await run('curl', [
    '-sS',
    '--cacert',
    join(dir, 's', 'root-cert.pem'),
    `${url}/healthz`,
  ]);
  t.equal(health.stdout, 'ok\n');
  const metrics = await run('curl', [
    '-sS',
    '--cacert',
    join(dir, 's', 'root-cert.pem'),
    `${url}/metrics`,
  ]);
  t.match(metrics.stdout, /mtun_ca_certificates_issued_total 0/);
  t.equal(await terminate(ca.child), 0, 'clean exit on SIGTERM');
  t.match(ca.output(), /"msg":"shutting down"/);
});
