// The capture rules, three ways: the pure renderer (agent/capture/rules.ts) and the
// operator script (deploy/iptables/mtun-redirect.sh) must produce the same text (runs
// anywhere with bash); then, as root in a private namespace, the script and the agent's
// rule manager both install exactly that, idempotently, clean up stale rules, follow pod
// changes, and never touch a rule they do not own.
import t from 'tap';
import { IptablesRedirect, type LocalPods } from '../../agent/capture/iptables.js';
import {
  type CapturePorts,
  jumpsToChain,
  podIps,
  renderRestore,
  splitRule,
} from '../../agent/capture/rules.js';
import type { Xtables } from '../../agent/capture/xtables.js';
import { silentLogger } from '../../lib/logger.js';
import { run } from '../../testkit/exec.js';
import { cannotRun, Netns, savedRules, sweepLeftovers, which } from '../../testkit/netns.js';

const SCRIPT = 'deploy/iptables/mtun-redirect.sh';
const DEFAULT_PORTS: CapturePorts = {
  outbound: 15001,
  inboundHbone: 15008,
  inboundPlaintext: 15006,
};
const IPS = ['198.18.1.12', '198.18.1.11', 'fd00:198:18::b', '198.18.1.11', 'not-an-ip'];

function tsRender(ips: string[], ports: CapturePorts): string {
  const v6 = podIps(ips, 6);
  return renderRestore(podIps(ips, 4), 4, ports) + (v6.length ? renderRestore(v6, 6, ports) : '');
}

t.test(
  'the script renders exactly what the agent renders',
  { skip: which('bash') ? false : 'needs bash' },
  async (t) => {
    const ips = IPS.filter((ip) => ip !== 'not-an-ip');
    const plain = await run('bash', [SCRIPT, 'render', ...ips]);
    t.equal(plain.code, 0, plain.stderr);
    t.equal(plain.stdout, tsRender(ips, DEFAULT_PORTS), 'default ports');
    const ports = { outbound: 25001, inboundHbone: 25008, inboundPlaintext: 25006 };
    const custom = await run('bash', [
      SCRIPT,
      '--outbound-port',
      '25001',
      '--inbound-port',
      '25008',
      '--inbound-plaintext-port',
      '25006',
      'render',
      '198.18.2.11',
    ]);
    t.equal(custom.stdout, tsRender(['198.18.2.11'], ports), 'custom ports');
    const empty = await run('bash', [SCRIPT, 'render']);
    t.equal(empty.stdout, renderRestore([], 4, DEFAULT_PORTS), 'no pods: an empty chain');
    const bad = await run('bash', [SCRIPT, 'sync', 'nope']);
    t.equal(bad.code, 2);
    t.match(bad.stderr, /not an IP address: 'nope'/);
  },
);

t.test('pure helpers', async (t) => {
  t.same(podIps(IPS, 4), ['198.18.1.11', '198.18.1.12'], 'IPv4 sorted, unique');
  t.same(podIps(IPS, 6), ['fd00:198:18::b']);
  t.same(splitRule('-A PREROUTING -m comment --comment "mtun: x \\"y\\"" -j MTUN-PREROUTING'), [
    '-A',
    'PREROUTING',
    '-m',
    'comment',
    '--comment',
    'mtun: x "y"',
    '-j',
    'MTUN-PREROUTING',
  ]);
  t.same(
    jumpsToChain(
      [
        '-P PREROUTING ACCEPT',
        '-A PREROUTING -m comment --comment "mtun: transparent capture" -j MTUN-PREROUTING',
        '-A PREROUTING -j MTUN-PREROUTING',
        '-A PREROUTING -j MTUN-PREROUTING-NOT-OURS',
        '-A PREROUTING -p tcp -j REDIRECT --to-ports 8080',
        '-A OUTPUT -j MTUN-PREROUTING',
      ].join('\n'),
    ),
    [
      ['-m', 'comment', '--comment', 'mtun: transparent capture', '-j', 'MTUN-PREROUTING'],
      ['-j', 'MTUN-PREROUTING'],
    ],
  );
});

/** The rule manager's view of the node's pods, changed by the test. */
function fakePods(initial: { ips: string[] }[]) {
  let pods = initial;
  const listeners = new Set<() => void>();
  const state: LocalPods = {
    get current() {
      return { local: pods };
    },
    onChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  const change = (next: { ips: string[] }[]) => {
    pods = next;
    for (const l of listeners) l();
  };
  return { state, change };
}

const why = cannotRun(['ip6tables', 'ip6tables-save', 'bash', 'xargs']);
const rootOnly = { skip: why ? `skipped: ${why}` : false };

/** iptables-save (both families) of a namespace, without comments and counters. */
async function save(ns: Netns, tag: string): Promise<string> {
  const out: string[] = [];
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    out.push(...savedRules((await ns.exec(tag, tool, [])).stdout));
  }
  return out.join('\n');
}

/** Rules that are not ours, present before and after everything. */
async function foreign(ns: Netns, tag: string): Promise<void> {
  const redirect80 = '-t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080';
  const rules: [string, string][] = [
    ['iptables', redirect80],
    ['iptables', '-t nat -N OTHER'],
    ['iptables', '-t nat -A OTHER -s 198.18.1.11 -j RETURN'],
    ['iptables', '-t nat -A OUTPUT -j OTHER'],
    ['iptables', '-t filter -A INPUT -s 198.18.1.11 -j ACCEPT'],
    ['ip6tables', redirect80],
  ];
  for (const [tool, rule] of rules)
    await ns.must('ip', ['netns', 'exec', ns.name(tag), tool, '-w', ...rule.split(' ')]);
}

t.test(
  'operator script: sync is idempotent, follows the pod list, remove restores',
  rootOnly,
  async (t) => {
    sweepLeftovers();
    const ns = new Netns();
    t.teardown(() => ns.destroy());
    await ns.add('rs');
    await foreign(ns, 'rs');
    const before = await save(ns, 'rs');
    const script = (...args: string[]) => ns.exec('rs', 'bash', [SCRIPT, ...args]);
    t.equal((await script('sync', '198.18.1.11', '198.18.1.12', 'fd00:198:18::b')).code, 0);
    const once = await save(ns, 'rs');
    t.match(
      once,
      /-A PREROUTING -m comment --comment "mtun: transparent capture" -j MTUN-PREROUTING\n-A PREROUTING -p tcp/,
      'jump first, foreign rule kept after it',
    );
    t.equal(
      once.split('\n').filter((l) => l.startsWith('-A MTUN-PREROUTING')).length,
      9,
      '3 rules per pod IP',
    );
    t.equal((await script('sync', '198.18.1.12', '198.18.1.11', 'fd00:198:18::b')).code, 0);
    t.equal(await save(ns, 'rs'), once, 'the same pods again: nothing changes (no duplicate jump)');
    t.equal((await script('sync', '198.18.1.12')).code, 0);
    const fewer = await save(ns, 'rs');
    t.notMatch(fewer, /198\.18\.1\.11\/32 -p tcp -m addrtype/, 'a pod gone: its rules gone');
    t.notMatch(fewer, /fd00/, 'IPv6 pod gone');
    t.match(fewer, /-s 198\.18\.1\.12\/32/);
    t.equal((await script('remove')).code, 0);
    t.equal(await save(ns, 'rs'), before, 'remove: exactly the foreign rules are left');
    t.equal((await script('remove')).code, 0, 'remove again: nothing to do, no error');
  },
);

t.test(
  'agent rule manager: stale cleanup, follows pods, same rules as the script, closes clean',
  rootOnly,
  async (t) => {
    sweepLeftovers();
    const ns = new Netns();
    t.teardown(() => ns.destroy());
    const name = await ns.add('rm');
    await foreign(ns, 'rm');
    const before = await save(ns, 'rm');
    // The manager's one seam, pointed into the namespace.
    const xtables: Xtables = {
      run: (family, args) =>
        run('ip', ['netns', 'exec', name, family === 4 ? 'iptables' : 'ip6tables', '-w', ...args]),
      restore: (family, input) =>
        run(
          'ip',
          [
            'netns',
            'exec',
            name,
            family === 4 ? 'iptables-restore' : 'ip6tables-restore',
            '-w',
            '--noflush',
          ],
          { input },
        ),
    };
    // A crash left rules for a pod that no longer exists, and a second (bare) jump.
    await ns.exec('rm', 'bash', [SCRIPT, 'sync', '198.18.1.99', 'fd00:198:18::99']);
    await ns.must('ip', [
      'netns',
      'exec',
      name,
      'iptables',
      '-w',
      '-t',
      'nat',
      '-A',
      'PREROUTING',
      '-j',
      'MTUN-PREROUTING',
    ]);
    const { state, change } = fakePods([
      { ips: ['198.18.1.11'] },
      { ips: ['198.18.1.12', 'fd00:198:18::b'] },
    ]);
    const mgr = await IptablesRedirect.start({
      pods: state,
      ports: DEFAULT_PORTS,
      logger: silentLogger(),
      xtables,
      retryMs: 100,
    });
    t.teardown(() => mgr.close());
    const byAgent = await save(ns, 'rm');
    t.notMatch(byAgent, /198\.18\.1\.99|fd00:198:18::99/, 'stale rules removed at start');
    t.equal(byAgent.match(/-j MTUN-PREROUTING/g)?.length, 2, 'one jump per family');
    await ns.exec('rm', 'bash', [SCRIPT, 'remove']);
    await ns.exec('rm', 'bash', [SCRIPT, 'sync', '198.18.1.11', '198.18.1.12', 'fd00:198:18::b']);
    t.equal(await save(ns, 'rm'), byAgent, 'the script installs exactly the same rules');
    change([{ ips: ['198.18.1.12'] }, { ips: ['198.18.1.13'] }]);
    change([{ ips: ['198.18.1.13'] }]);
    await mgr.settled();
    t.same(mgr.applied(), { ipv4: ['198.18.1.13'], ipv6: [] }, 'coalesced to the newest pods');
    const now = await save(ns, 'rm');
    t.match(now, /-s 198\.18\.1\.13\/32/);
    t.notMatch(now, /MTUN-PREROUTING -[sd] (198\.18\.1\.1[12]|fd00)/, 'pods gone: rules gone');
    await mgr.close();
    await mgr.close();
    t.equal(await save(ns, 'rm'), before, 'close: exactly the foreign rules are left');
  },
);

t.test('rule manager fails closed at start and retries later failures', async (t) => {
  const calls: string[] = [];
  let failing = true;
  const xtables: Xtables = {
    run: async (family, args) => {
      calls.push(`${family} ${args.join(' ')}`);
      return { code: args.includes('-C') ? 1 : 0, stdout: '', stderr: '' }; // no jump yet
    },
    restore: async () =>
      failing
        ? { code: 4, stdout: '', stderr: 'iptables-restore: line 2 failed' }
        : { code: 0, stdout: '', stderr: '' },
  };
  const { state, change } = fakePods([{ ips: ['198.18.1.11'] }]);
  const opts = { pods: state, ports: DEFAULT_PORTS, logger: silentLogger(), xtables, retryMs: 20 };
  await t.rejects(IptablesRedirect.start(opts), {
    code: 'REDIRECT_RULES_FAILED',
    message: /iptables \(restore\) MTUN-PREROUTING: exit 4: iptables-restore: line 2 failed/,
  });
  failing = false;
  const mgr = await IptablesRedirect.start(opts);
  failing = true;
  change([{ ips: ['198.18.1.12'] }]);
  await mgr.settled();
  t.same(mgr.applied(), { ipv4: ['198.18.1.11'] }, 'the failed update did not count');
  failing = false;
  const end = Date.now() + 2_000;
  while (mgr.applied()['ipv4']?.[0] !== '198.18.1.12' && Date.now() < end)
    await new Promise((r) => setTimeout(r, 10));
  t.same(mgr.applied(), { ipv4: ['198.18.1.12'] }, 'retried until it succeeded');
  await mgr.close();
  t.ok(
    calls.some((c) => c.startsWith('4 -t nat -I PREROUTING 1')),
    'the jump went first',
  );
});
