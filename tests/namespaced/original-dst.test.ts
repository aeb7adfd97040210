// The native addon for real: in a private network namespace, iptables/ip6tables REDIRECT
// rules send connections to listeners, and the agent's original-destination seam must
// report where each was going (IPv4, IPv6, IPv4 through a dual-stack socket), and nothing
// for a connection that was not redirected (it would be a loop).

import { Socket } from 'node:net';
import t from 'tap';
import { originalDestinationFor } from '../../agent/capture/index.js';
import { fromAddon, loadCapture } from '../../agent/capture/native.js';
import { silentLogger } from '../../lib/logger.js';
import { run } from '../../testkit/exec.js';
import { cannotRun, Netns, sweepLeftovers } from '../../testkit/netns.js';

t.test('without the addon the loader says why, and never throws', async (t) => {
  const got = loadCapture({ searchFrom: '/' });
  t.equal(got.available, false);
  if (!got.available) t.match(got.reason, /no mtun package root|Linux-only/);
});

t.test('the seam fails closed: no fd, a throwing kernel call or "self" give nothing', async (t) => {
  const answers: (() => { address: string; port: number; family: 4 | 6; self: boolean })[] = [
    () => ({ address: '198.18.2.11', port: 8080, family: 4, self: false }),
    () => ({ address: '198.18.1.1', port: 15001, family: 4, self: true }),
    () => {
      throw Object.assign(new Error('no conntrack entry'), { code: 'ENOENT' });
    },
  ];
  let next = 0;
  const seam = fromAddon({ originalDst: () => answers[next++]!() });
  const socket = new Socket() as Socket & { _handle: unknown };
  t.equal(seam(socket), undefined, 'a socket without a descriptor');
  Object.defineProperty(socket, '_handle', { value: { fd: 42 }, configurable: true });
  t.same(seam(socket), { ip: '198.18.2.11', port: 8080 }, 'redirected');
  t.equal(seam(socket), undefined, 'not redirected: the kernel reports the socket itself');
  t.equal(seam(socket), undefined, 'the kernel has no answer');
});

t.test(
  '--redirect iptables without the addon is an error; without it, a clear warning',
  async (t) => {
    const missing = { available: false as const, reason: 'the native addon was not built (no cc)' };
    t.throws(() => originalDestinationFor('iptables', silentLogger(), missing), {
      code: 'CAPTURE_UNAVAILABLE',
      message: /transparent capture unavailable: the native addon was not built \(no cc\)/,
    });
    t.equal(originalDestinationFor('none', silentLogger(), missing), undefined);
    const bad = await run(process.execPath, [
      ...['--import', 'tsx', 'cli/main.ts', 'agent', '--node', 'n', '--mesh', 'x', '--ca'],
      ...['https://127.0.0.1:1', '--ca-token-file', 't', '--ca-bundle', 'b'],
      ...['--redirect', 'iptables', '--listen-ip', '127.0.0.1'],
    ]);
    t.equal(bad.code, 2);
    t.match(bad.stderr, /--redirect iptables: needs --listen-ip 0\.0\.0\.0 or ::/);
    const help = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'agent', '--help']);
    t.match(help.stdout, /--redirect <mode>/);
  },
);

const why =
  cannotRun(['ip6tables']) ??
  (loadCapture().available ? undefined : 'needs the native addon built (npm run build:native)');
t.test(
  'SO_ORIGINAL_DST through the seam, IPv4 and IPv6',
  { skip: why ? `skipped: ${why}` : false },
  async (t) => {
    sweepLeftovers();
    const ns = new Netns();
    t.teardown(() => ns.destroy());
    const name = await ns.add('od');
    // A route for the 198.18.99.0/24 destinations (a veth pair: no dummy module needed).
    await ns.must('ip', ['-n', name, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
    await ns.must('ip', ['-n', name, 'addr', 'add', '198.18.99.1/24', 'dev', 'va']);
    await ns.must('ip', ['-n', name, 'link', 'set', 'va', 'up']);
    await ns.must('ip', ['-n', name, 'link', 'set', 'vb', 'up']);
    const nat = (tool: string, args: string[]) =>
      ns.must('ip', [
        'netns',
        'exec',
        name,
        tool,
        '-w',
        '-t',
        'nat',
        '-A',
        'OUTPUT',
        '-p',
        'tcp',
        ...args,
      ]);
    await nat('iptables', [
      '-d',
      '198.18.99.77',
      '--dport',
      '8080',
      '-j',
      'REDIRECT',
      '--to-ports',
      '15001',
    ]);
    await nat('iptables', [
      '-d',
      '198.18.99.78',
      '--dport',
      '8082',
      '-j',
      'REDIRECT',
      '--to-ports',
      '15002',
    ]);
    await nat('ip6tables', [
      '-d',
      '::1',
      '--dport',
      '8081',
      '-j',
      'REDIRECT',
      '--to-ports',
      '15001',
    ]);
    const res = await ns.exec(
      'od',
      process.execPath,
      ['--import', 'tsx', 'tests/namespaced/fixtures/origdst-probe.ts'],
      { timeoutMs: 20_000 },
    );
    t.equal(res.code, 0, res.stderr);
    const got = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}');
    t.same(got.mappedV4, { ip: '198.18.99.77', port: 8080 }, 'IPv4 on a dual-stack listener');
    t.same(got.v6, { ip: '::1', port: 8081 }, 'IPv6');
    t.same(got.plainV4, { ip: '198.18.99.78', port: 8082 }, 'IPv4 on an IPv4 listener');
    t.equal(got.direct, null, 'not redirected: no original destination (a loop)');
  },
);
