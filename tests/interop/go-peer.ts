// The ztunnel-convention HBONE peer (hbone-peer/, Go with Debian's golang.org/x/net/http2)
// for tests: built offline in GOPATH mode into a temporary directory named after the hash
// of its sources and the Go version (a rebuild only when they change), given a workload
// certificate from the mesh's own root, and started inside a node's namespace.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateRoot } from '../../ca/material.js';
import { issueKeyAndLeaf } from '../../ca/pki.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { run } from '../../testkit/exec.js';
import { type Netns, which } from '../../testkit/netns.js';
import { type Tracked, track } from '../../testkit/process.js';

const SRC = join(import.meta.dirname, 'hbone-peer');
const GOPATH = '/usr/share/gocode';
const X_NET = join(GOPATH, 'src/golang.org/x/net/http2');

/** Why the Go peer cannot be built here, or undefined. */
export function goPeerCannotRun(): string | undefined {
  if (!which('go')) return 'needs go on PATH (Debian: golang-go)';
  if (!existsSync(X_NET)) return `needs ${X_NET} (Debian: golang-golang-x-net-dev)`;
  return undefined;
}

const goEnv = (cache: string) => ({
  ...process.env,
  GOPATH,
  GO111MODULE: 'off',
  GOFLAGS: '',
  GOCACHE: cache,
  CGO_ENABLED: '0',
});

/** The binary's path; builds it unless a build of the same sources exists. */
export async function buildGoPeer(): Promise<string> {
  const version = await run('go', ['version']);
  const hash = createHash('sha256').update(version.stdout);
  for (const f of (await readdir(SRC)).filter((n) => n.endsWith('.go')).sort())
    hash.update(f).update(await readFile(join(SRC, f)));
  const dir = join(tmpdir(), `mtun-hbone-peer-${hash.digest('hex').slice(0, 16)}`);
  const bin = join(dir, 'hbone-peer');
  if (existsSync(bin)) return bin;
  await mkdir(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  await new Promise<void>((resolve, reject) =>
    execFile(
      'go',
      ['build', '-o', tmp, '.'],
      { cwd: SRC, env: goEnv(join(tmpdir(), 'mtun-go-cache')), timeout: 110_000 },
      (err, _out, stderr) =>
        err ? reject(new Error(`go build in ${SRC}: ${stderr || err.message}`)) : resolve(),
    ),
  );
  await rename(tmp, bin); // atomic: a parallel build never sees half a binary
  return bin;
}

export interface PeerFiles {
  readonly cert: string;
  readonly key: string;
  readonly roots: string;
}

/** A workload certificate for `id` from the CA's root in `caStateDir` (what `mtun ca`
 *  would issue), written under `dir` for the peer. */
export async function peerCertificate(
  caStateDir: string,
  id: string,
  dir: string,
): Promise<PeerFiles> {
  const { authority } = await loadOrCreateRoot(caStateDir, 'cluster.local');
  const issued = await issueKeyAndLeaf(authority, SpiffeId.parse(id));
  await mkdir(dir, { recursive: true });
  const files = {
    cert: join(dir, 'cert-chain.pem'),
    key: join(dir, 'key.pem'),
    roots: join(caStateDir, 'root-cert.pem'),
  };
  await writeFile(files.cert, [issued.certPem, ...issued.chainPem].join('\n'));
  await writeFile(files.key, issued.keyPem, { mode: 0o600 });
  return files;
}

export interface GoPeer {
  readonly proc: Tracked;
  /** Its "tunnel" log lines (one per tunnel, when it ended). */
  tunnels(): Record<string, unknown>[];
}

/** Starts the peer in `tag`'s namespace (killed with the namespaces) and waits until bound. */
export async function startGoPeer(
  ns: Netns,
  tag: string,
  bin: string,
  files: PeerFiles,
  args: readonly string[],
): Promise<GoPeer> {
  const proc = track(
    ns.spawn(tag, bin, ['-cert', files.cert, '-key', files.key, '-roots', files.roots, ...args]),
    `hbone-peer ${tag}`,
  );
  await proc.waitFor(/"msg":"listening"/, 10_000);
  return {
    proc,
    tunnels: () =>
      proc
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"tunnel"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
