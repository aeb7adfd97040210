// `npm install` step for the native addon (binding.gyp → build/Release/mtun_native.node).
// It never fails the install: without Linux, a C compiler, make, python3 or Node's
// headers the addon is skipped, the reason is printed and written to
// build/mtun-native-status.json, and `mtun agent` later says that transparent capture is
// unavailable and why (SOCKS5 and HBONE inbound still work).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const statusFile = join(root, 'build', 'mtun-native-status.json');

function done(built, reason) {
  mkdirSync(dirname(statusFile), { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify({ built, reason, at: new Date().toISOString() })}\n`);
  if (built) console.log('mtun: native addon built (transparent capture available)');
  else
    console.warn(
      `mtun: native addon NOT built: ${reason}\n` +
        'mtun: transparent capture (mtun agent --redirect iptables) will be unavailable; ' +
        'SOCKS5 still works. Install a C toolchain (e.g. apt-get install build-essential ' +
        'python3) and run `npm run build:native` to enable it.',
    );
  process.exit(0);
}

function onPath(cmd) {
  if (cmd.includes('/')) return existsSync(cmd);
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

// The node-gyp that npm runs install scripts with; else the one bundled with npm.
function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  const npmCli = process.env.npm_execpath;
  if (npmCli) {
    const bundled = join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(bundled)) return [process.execPath, bundled];
  }
  const beside = join(
    dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  );
  if (existsSync(beside)) return [process.execPath, beside];
  return onPath('node-gyp') ? ['node-gyp'] : undefined;
}

if (process.platform !== 'linux')
  done(false, `SO_ORIGINAL_DST is Linux-only (this is ${process.platform})`);
const cc = process.env.CC ?? 'cc';
const missing = [cc, 'make', 'python3'].filter((c) => !onPath(c));
if (missing.length > 0) done(false, `not found on PATH: ${missing.join(', ')}`);
const gyp = nodeGyp();
if (!gyp) done(false, 'node-gyp not found (it ships with npm)');

// Node's own headers when they are installed beside it (Debian's nodejs: /usr/include/node),
// so that node-gyp does not try to download them (there may be no network).
const args = ['rebuild'];
const prefix = resolve(dirname(process.execPath), '..');
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const [cmd, ...pre] = gyp;
const res = spawnSync(cmd, [...pre, ...args], {
  cwd: root,
  encoding: 'utf8',
  timeout: 300_000,
  stdio: ['ignore', 'pipe', 'pipe'],
});
const addon = join(root, 'build', 'Release', 'mtun_native.node');
if (res.status === 0 && existsSync(addon)) done(true, undefined);
const output = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
done(
  false,
  res.error
    ? `node-gyp could not run: ${res.error.message}`
    : `node-gyp rebuild failed (exit ${res.status}):\n${output}`,
);
