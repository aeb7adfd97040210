// The benchmark's command line: --help tells what it runs, and bad input is refused with a
// reason before anything starts (no process, namespace or temp dir is made).
import t from 'tap';
import { run } from '../../testkit/exec.js';

const bench = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'bench/main.ts', ...args]);

t.test('--help lists the options and every configuration, exit 0', async (t) => {
  const res = await bench('--help');
  t.equal(res.code, 0);
  for (const opt of ['--full', '--netns', '--configs', '--profile', '--out'])
    t.match(res.stdout, opt);
  for (const c of ['direct', 'mtun', 'mtun-w2', 'stunnel', 'haproxy', 'nginx'])
    t.match(res.stdout, c);
});

t.test('an unknown option is refused with the usage, exit 2', async (t) => {
  const res = await bench('--fast');
  t.equal(res.code, 2);
  t.match(res.stderr, /Unknown option '--fast'/);
  t.match(res.stderr, /usage: npm run bench/);
});

t.test('an unknown configuration is named, exit 2', async (t) => {
  const res = await bench('--configs', 'mtun,envoy,direct');
  t.equal(res.code, 2);
  t.match(res.stderr, /--configs: unknown envoy\b/);
  t.notMatch(res.stderr, /snapshot of the build/, 'nothing started');
});

// The single-purpose scripts share bench/lib/args.ts: --help from the option table, and a
// value outside its range refused before the script starts anything.
const SCRIPTS: Record<string, { option: string; bad: string }> = {
  'agent-pair': { option: '--tunnels', bad: '6000' },
  'ca-issuance': { option: '--requests', bad: '0' },
  hbone: { option: '--rounds', bad: '2.5' },
  policy: { option: '--seconds', bad: 'soon' },
  'tunnel-heap': { option: '--tunnels', bad: '1e9' },
};
for (const [script, { option, bad }] of Object.entries(SCRIPTS)) {
  const runScript = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', `bench/${script}.ts`, ...args]);
  t.test(`bench/${script}.ts: --help, and ${option} ${bad} refused`, async (t) => {
    const help = await runScript('--help');
    t.equal(help.code, 0);
    t.match(help.stdout, `usage: node --import tsx bench/${script}.ts`);
    t.match(help.stdout, option);
    const refused = await runScript(option, bad);
    t.equal(refused.code, 2);
    t.match(refused.stderr, new RegExp(`^${option}: expected .* got '${bad}'`));
  });
}

t.test(
  'bench/profile-summary.ts: --help; no DIR, or a DIR without profiles, refused',
  async (t) => {
    const summary = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'bench/profile-summary.ts', ...args]);
    const help = await summary('--help');
    t.equal(help.code, 0);
    t.match(help.stdout, 'usage: node --import tsx bench/profile-summary.ts DIR [TOP]');
    const none = await summary();
    t.equal(none.code, 2);
    t.match(none.stderr, /^DIR is missing/);
    const empty = await summary('tests/bench');
    t.equal(empty.code, 2);
    t.match(empty.stderr, /^tests\/bench: no \.cpuprofile files/);
  },
);
