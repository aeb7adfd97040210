// The independent HTTP/2 CONNECT peers of the h2 interop tests as processes: nghttp2-peer
// (C on libnghttp2 + OpenSSL) and h2-go (Go's golang.org/x/net/http2), built offline into a
// temporary directory named after the hash of their sources and the compiler's version (a
// rebuild only when either changes, as go-peer.ts does), given PEM files, and run with the
// flags both share (nghttp2-peer/peer.h). Every process is killed at its test's teardown.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { SpiffeId } from '../../identity/spiffe-id.js';
import { run } from '../../testkit/exec.js';
import { which } from '../../testkit/netns.js';
import { type Tracked, track } from '../../testkit/process.js';
import type { Pki } from '../hbone/helpers.js';
import { eventually } from '../helpers/eventually.js';
import { goPeerCannotRun } from './go-peer.js';
import type {
  ClientSpec,
  PeerFiles,
  ServerSpec,
  Stack,
  StreamReport,
  TheirClientRun,
  TheirServer,
  TlsReport,
} from './h2-harness.js';

const NGHTTP2_SRC = join(import.meta.dirname, 'nghttp2-peer');
const H2_GO_SRC = join(import.meta.dirname, 'h2-go');
const NGHTTP2_H = '/usr/include/nghttp2/nghttp2.h';
const OPENSSL_H = '/usr/include/openssl/ssl.h';
/** Seconds: each peer process bounds its own waits with it (exit 3). */
const PEER_TIMEOUT_S = 30;

export function nghttp2PeerCannotRun(): string | undefined {
  if (!which('cc')) return 'needs cc on PATH (Debian: gcc)';
  if (!existsSync(NGHTTP2_H)) return `needs ${NGHTTP2_H} (Debian: libnghttp2-dev)`;
  if (!existsSync(OPENSSL_H)) return `needs ${OPENSSL_H} (Debian: libssl-dev)`;
  return undefined;
}

/** Why Debian's nghttp2 tools cannot run here, or undefined. */
export function nghttp2ToolsCannotRun(): string | undefined {
  for (const [tool, pkg] of [
    ['nghttp', 'nghttp2-client'],
    ['h2load', 'nghttp2-client'],
    ['nghttpd', 'nghttp2-server'],
  ] as const)
    if (!which(tool)) return `needs ${tool} on PATH (Debian: ${pkg})`;
  return undefined;
}

export const h2GoCannotRun = goPeerCannotRun;

/** `name` built from the files of `src` ending in `ext` by `compile(out)`, unless a build
 *  of the same sources with the same compiler (`version`) exists. */
async function buildCached(
  name: string,
  src: string,
  ext: string,
  version: string,
  compile: (out: string) => Promise<void>,
): Promise<string> {
  const hash = createHash('sha256').update(version);
  for (const f of (await readdir(src)).filter((n) => n.endsWith(ext)).sort())
    hash.update(f).update(await readFile(join(src, f)));
  const dir = join(tmpdir(), `mtun-${name}-${hash.digest('hex').slice(0, 16)}`);
  const bin = join(dir, name);
  if (existsSync(bin)) return bin;
  await mkdir(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  await compile(tmp);
  await rename(tmp, bin); // atomic: a parallel build never sees half a binary
  return bin;
}

function compileWith(cmd: string, args: string[], cwd: string, env = process.env): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { cwd, env, timeout: 110_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`${cmd} in ${cwd}: ${stderr || err.message}`)) : resolve(),
    ),
  );
}

export async function buildNghttp2Peer(): Promise<string> {
  const cc = await run('cc', ['--version']);
  const lib = await readFile('/usr/include/nghttp2/nghttp2ver.h', 'utf8');
  const sources = (await readdir(NGHTTP2_SRC)).filter((n) => n.endsWith('.c')).sort();
  return buildCached('nghttp2-peer', NGHTTP2_SRC, '', cc.stdout + lib, (out) =>
    compileWith(
      'cc',
      ['-O2', '-Wall', '-Wextra', '-o', out, ...sources, '-lnghttp2', '-lssl', '-lcrypto'],
      NGHTTP2_SRC,
    ),
  );
}

export async function buildH2Go(): Promise<string> {
  const go = await run('go', ['version']);
  return buildCached('h2-go', H2_GO_SRC, '.go', go.stdout, (out) =>
    compileWith('go', ['build', '-o', out, '.'], H2_GO_SRC, {
      ...process.env,
      GOPATH: '/usr/share/gocode',
      GO111MODULE: 'off',
      GOFLAGS: '',
      GOCACHE: join(tmpdir(), 'mtun-go-cache'),
      CGO_ENABLED: '0',
    }),
  );
}

/** `id`'s certificate chain (leaf first), key and the trust bundle as PEM files in `dir`. */
export async function peerFiles(pki: Pki, id: SpiffeId, dir: string): Promise<PeerFiles> {
  const cert = await pki.certs.forIdentity(id);
  const base = join(dir, id.toString().replace(/[^a-z0-9]+/gi, '-'));
  const files = {
    cert: `${base}-chain.pem`,
    key: `${base}-key.pem`,
    roots: join(dir, 'roots.pem'),
  };
  await writeFile(files.cert, cert.certChainPem.join('\n'));
  await writeFile(files.key, cert.keyPem, { mode: 0o600 });
  await writeFile(files.roots, pki.bundle.join('\n'));
  return files;
}

/** Spawns `bin`, killed (and waited for, at most 5 s) at `t`'s teardown. */
export function spawnTracked(t: Test, bin: string, args: string[], label: string): Tracked {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => killAndWait(child));
  return track(child, label);
}

export function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGKILL');
  });
}

/** The JSON lines of a peer's output (anything else it printed is left out). */
export function events(proc: Tracked): Record<string, unknown>[] {
  return proc
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{') && l.endsWith('}'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function streamReport(e: Record<string, unknown>): StreamReport {
  const num = (k: string) => (typeof e[k] === 'number' ? (e[k] as number) : undefined);
  const str = (k: string) => (typeof e[k] === 'string' ? (e[k] as string) : undefined);
  return {
    authority: str('authority') ?? '',
    status: num('status') ?? 0,
    sent: num('sent'),
    sentSha256: str('sent_sha256'),
    received: num('received'),
    receivedSha256: str('received_sha256'),
    peerEnd: typeof e['peer_end'] === 'boolean' ? e['peer_end'] : undefined,
    closeCode: num('close_code'),
    error: str('error'),
  };
}

const streamsOf = (proc: Tracked) =>
  events(proc)
    .filter((e) => e['msg'] === 'stream')
    .map(streamReport);
const tlsOf = (proc: Tracked): TlsReport[] =>
  events(proc)
    .filter((e) => e['msg'] === 'tls')
    .map((e) => ({
      version: String(e['version']),
      alpn: String(e['alpn']),
      peer: String(e['peer']),
    }));

function common(files: PeerFiles, spec: { send: number; afterEof: boolean }): string[] {
  return [
    ...['-cert', files.cert, '-key', files.key, '-roots', files.roots],
    ...['-send', String(spec.send), '-timeout', String(PEER_TIMEOUT_S)],
    ...(spec.afterEof ? ['-after-eof'] : []),
  ];
}

/** A Stack (h2-harness.ts) on one of the peer programs. */
export function processStack(opts: {
  name: string;
  cannotRun: () => string | undefined;
  build: () => Promise<string>;
  serverEndsWithReset?: boolean;
  serverCanCloseAfter?: boolean;
}): Stack {
  let bin: Promise<string> | undefined;
  const binary = () => {
    bin ??= opts.build();
    return bin;
  };
  return {
    name: opts.name,
    cannotRun: opts.cannotRun,
    serverEndsWithReset: opts.serverEndsWithReset ?? false,
    serverCanCloseAfter: opts.serverCanCloseAfter ?? false,
    prepare: async () => void (await binary()),

    async server(t, files: PeerFiles, spec: ServerSpec): Promise<TheirServer> {
      const args = ['server', '-listen', '127.0.0.1', ...common(files, spec)];
      if (spec.denyPort !== undefined) args.push('-deny-port', String(spec.denyPort));
      if (spec.endEarly) args.push('-end-early');
      if (spec.closeAfter) args.push('-close-after');
      const proc = spawnTracked(t, await binary(), args, `${opts.name} server`);
      const [, port] = await proc.waitFor(/"msg":"listening","port":(\d+)/, 10_000);
      return {
        port: Number(port),
        async streams(n: number) {
          await eventually(() => streamsOf(proc).length >= n, `${n} stream reports`, 15_000);
          return streamsOf(proc);
        },
        closed: (n: number) =>
          eventually(
            () => events(proc).filter((e) => e['msg'] === 'closed').length >= n,
            `${n} connections closed`,
            15_000,
          ),
        tls: () => tlsOf(proc),
      };
    },

    async client(t, files: PeerFiles, spec: ClientSpec): Promise<TheirClientRun> {
      const args = ['client', '-connect', `127.0.0.1:${spec.port}`, '-expect', spec.expect];
      for (const a of spec.authorities) args.push('-authority', a);
      args.push('-linger-ms', String(spec.lingerMs));
      const proc = spawnTracked(t, await binary(), [...args, ...common(files, spec)], opts.name);
      // 'close': exited and its output read to the end. The peer ends itself after
      // PEER_TIMEOUT_S; past that it is killed here.
      const child = proc.child;
      const kill = setTimeout(() => child.kill('SIGKILL'), (PEER_TIMEOUT_S + 5) * 1000);
      const exitCode = await new Promise<number | null>((resolve) =>
        child.once('close', (code) => resolve(code)),
      );
      clearTimeout(kill);
      return { exitCode, streams: streamsOf(proc), tls: tlsOf(proc), output: proc.output() };
    },
  };
}
