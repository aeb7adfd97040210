// The deploy scripts, checked without a cluster: shellcheck and a syntax check for every
// script we ship, executable bits, and the agent entrypoint's choice of iptables backend run
// for real against stand-in iptables-*-save programs.

import { statSync } from 'node:fs';
import { chmod, mkdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { run } from '../../testkit/exec.js';
import { tempDir } from '../helpers/tmp.js';

const SCRIPTS = [
  ['deploy/kind/up.sh', 'bash'],
  ['deploy/kind/down.sh', 'bash'],
  ['deploy/docker/agent-entrypoint.sh', 'sh'],
] as const;

const hasShellcheck = (await run('sh', ['-c', 'command -v shellcheck'])).code === 0;
// CI installs shellcheck (.ci/run); there a missing one is a failure, not a skip.
const skip =
  !hasShellcheck && !process.env['CI']
    ? 'shellcheck is not installed (apt-get install shellcheck)'
    : false;

t.test('shellcheck passes on every script', { skip }, async (t) => {
  const res = await run('shellcheck', ['--severity=style', ...SCRIPTS.map(([f]) => f)]);
  t.equal(res.code, 0, res.stdout + res.stderr);
});

t.test('scripts parse with their shell and are executable', async (t) => {
  for (const [file, shell] of SCRIPTS) {
    const res = await run(shell, ['-n', file]);
    t.equal(res.code, 0, `${shell} -n ${file}: ${res.stderr}`);
    t.ok(statSync(file).mode & 0o100, `${file} is executable`);
  }
});

async function entrypoint(t: Test, legacyRules: number, nftRules: number) {
  const dir = await tempDir(t, 'mtun-entry-');
  const sbin = join(dir, 'sbin');
  const fakeBin = join(dir, 'bin');
  await mkdir(sbin);
  await mkdir(fakeBin);
  const save = async (name: string, n: number) => {
    await writeFile(
      join(sbin, name),
      `#!/bin/sh\necho '*nat'\n${'echo "-A KUBE-SERVICES -j X"\n'.repeat(n)}echo COMMIT\n`,
    );
    await chmod(join(sbin, name), 0o755);
  };
  await save('iptables-legacy-save', legacyRules);
  await save('ip6tables-legacy-save', 0);
  await save('iptables-nft-save', nftRules);
  // no ip6tables-nft-save: a missing program counts as no rules
  // A stand-in `node` prints what it would run and the PATH it got.
  await writeFile(join(fakeBin, 'node'), '#!/bin/sh\necho "node $*"\necho "PATH=$PATH"\n');
  await chmod(join(fakeBin, 'node'), 0o755);
  const xt = join(dir, 'xtables');
  const res = await run('env', [
    `PATH=${fakeBin}:/usr/bin:/bin`,
    `MTUN_XTABLES_DIR=${xt}`,
    `MTUN_SBIN=${sbin}`,
    'MTUN_MAIN=/app/dist/cli/main.js',
    'sh',
    'deploy/docker/agent-entrypoint.sh',
    'agent',
    '--node=n1',
  ]);
  return { res, xt, sbin };
}

t.test('the entrypoint picks the backend that holds the rules and execs the agent', async (t) => {
  const legacy = await entrypoint(t, 5, 1);
  t.equal(legacy.res.code, 0, legacy.res.stderr);
  t.match(legacy.res.stderr, /iptables backend legacy \(rules: legacy 5, nft 1\)/);
  t.equal(
    await readlink(join(legacy.xt, 'iptables-restore')),
    join(legacy.sbin, 'iptables-legacy-restore'),
  );
  t.equal(await readlink(join(legacy.xt, 'ip6tables')), join(legacy.sbin, 'ip6tables-legacy'));
  t.match(legacy.res.stdout, /^node \/app\/dist\/cli\/main\.js agent --node=n1\n/);
  t.match(
    legacy.res.stdout,
    new RegExp(`PATH=${legacy.xt}:`),
    'the chosen backend comes first in PATH',
  );

  const nft = await entrypoint(t, 0, 3);
  t.match(nft.res.stderr, /iptables backend nft \(rules: legacy 0, nft 3\)/);
  t.equal(await readlink(join(nft.xt, 'iptables')), join(nft.sbin, 'iptables-nft'));
  const empty = await entrypoint(t, 0, 0);
  t.match(empty.res.stderr, /iptables backend nft/, 'a fresh node defaults to nft');
});
