// The C mutual-TLS 1.3 proxy pairs: stunnel, HAProxy and nginx stream, each as two
// processes (loopback: client side on 127.0.0.1, server side on 127.0.0.2, like two nodes;
// netns: on the two node namespaces' addresses), forwarding one or more routes, with the
// P-256 SPIFFE certificates of certs.ts, every peer verified. Each runs in the foreground
// with its own defaults for threads/workers except where noted in the config.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Proc, spawnProc } from '../lib/procs.js';
import { type CertFiles, SERVER_NAME } from './certs.js';
import type { RunContext } from './runner.js';

export type PeerKind = 'stunnel' | 'haproxy' | 'nginx';
export const PEERS: readonly PeerKind[] = ['stunnel', 'haproxy', 'nginx'];

/** One forwarded service: the client-side listener's port, the server-side listener's port,
 *  and where the server side connects. */
export interface Route {
  readonly client: number;
  readonly server: number;
  readonly target: { host: string; port: number };
}

/** Where the two sides run: their listening addresses and, in netns mode, namespaces. */
export interface Placement {
  readonly clientHost: string;
  readonly serverHost: string;
  readonly clientNetns?: string;
  readonly serverNetns?: string;
}

/** Loopback: two "nodes" on 127.0.0.1 and 127.0.0.2. */
export const LOOPBACK: Placement = { clientHost: '127.0.0.1', serverHost: '127.0.0.2' };

export interface ProxyPair {
  /** Where the load client connects for each route (the client-side proxy's listeners). */
  readonly entries: readonly { host: string; port: number }[];
  readonly procs: readonly Proc[];
}

const BIN: Record<PeerKind, string> = {
  stunnel: '/usr/bin/stunnel4',
  haproxy: '/usr/sbin/haproxy',
  nginx: '/usr/sbin/nginx',
};

/** Why a peer cannot run here, or undefined. */
export function missing(kind: PeerKind): string | undefined {
  if (!existsSync(BIN[kind])) return `${BIN[kind]} not installed (run bench/setup.sh)`;
  if (kind === 'nginx' && !existsSync('/usr/lib/nginx/modules/ngx_stream_module.so'))
    return 'libnginx-mod-stream not installed (run bench/setup.sh)';
  return undefined;
}

/** Starts every wanted peer with `start`; one not installed or failing to start goes into
 *  the results' `missing` with the reason (reported, never silently skipped). */
export async function startPeers(
  ctx: Pick<RunContext, 'want' | 'result' | 'progress'>,
  start: (kind: PeerKind, index: number) => Promise<ProxyPair>,
): Promise<{ kind: PeerKind; pair: ProxyPair }[]> {
  const { want, progress } = ctx;
  const missingOut = ctx.result.missing;
  const started: { kind: PeerKind; pair: ProxyPair }[] = [];
  for (const [i, kind] of PEERS.entries()) {
    if (!want(kind)) continue;
    const why = missing(kind);
    if (why) {
      missingOut[kind] = why;
      console.error(`\n${kind}: MISSING, ${why}`);
      continue;
    }
    progress(`starting ${kind}`);
    try {
      started.push({ kind, pair: await start(kind, i) });
    } catch (err) {
      missingOut[kind] = `failed to start: ${String(err).slice(0, 400)}`;
      console.error(`\n${kind}: FAILED TO START, ${err}`);
    }
  }
  return started;
}

export async function startPeer(
  kind: PeerKind,
  dir: string,
  c: CertFiles,
  routes: readonly Route[],
  place: Placement = LOOPBACK,
): Promise<ProxyPair> {
  const hops = routes.map((r) => ({
    cIn: `${place.clientHost}:${r.client}`,
    sIn: `${place.serverHost}:${r.server}`,
    tgt: `${r.target.host}:${r.target.port}`,
  }));
  const confs = CONFIG[kind](hops, c, dir);
  const procs: Proc[] = [];
  for (const [side, text] of Object.entries(confs)) {
    const file = join(dir, `${kind}-${side}.conf`);
    await writeFile(file, text);
    const args =
      kind === 'stunnel'
        ? [file]
        : kind === 'haproxy'
          ? ['-db', '-f', file]
          : ['-c', file, '-p', dir, '-e', join(dir, `nginx-${side}.log`)];
    const netns = side === 'client' ? place.clientNetns : place.serverNetns;
    procs.push(spawnProc(BIN[kind], args, netns ? { netns } : {}));
  }
  await Promise.all(
    routes.flatMap((r) => [
      waitListening(place.clientHost, r.client, procs[0]!, place.clientNetns),
      waitListening(place.serverHost, r.server, procs[1]!, place.serverNetns),
    ]),
  );
  return { entries: routes.map((r) => ({ host: place.clientHost, port: r.client })), procs };
}

/** Polls `ss` (in the process's namespace) until `host:port` listens; throws if `proc` exits
 *  or after 15 s, with its output. */
export async function waitListening(
  host: string,
  port: number,
  proc: Proc,
  netns?: string,
): Promise<void> {
  const ss = ['ss', '-Hltn', `sport = :${port}`];
  const argv = netns ? ['ip', 'netns', 'exec', netns, ...ss] : ss;
  const end = Date.now() + 15_000;
  for (;;) {
    const out = await new Promise<string>((resolve) =>
      execFile(argv[0]!, argv.slice(1), (_err, stdout) => resolve(String(stdout))),
    );
    if (out.includes(`${host}:${port}`)) return;
    if (Date.now() > end || proc.child.exitCode !== null)
      throw new Error(`not listening on ${host}:${port}: ${proc.output().slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Hop {
  readonly cIn: string;
  readonly sIn: string;
  readonly tgt: string;
}
type Conf = (hops: readonly Hop[], c: CertFiles, dir: string) => Record<string, string>;

const CONFIG: Record<PeerKind, Conf> = {
  stunnel: (hops, c) => {
    const common = 'foreground = yes\npid =\ndebug = 3\nsyslog = no\n';
    const tls = `sslVersionMin = TLSv1.3\nCAfile = ${c.root}\nverifyChain = yes\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n`;
    const each = (f: (h: Hop, i: number) => string) => hops.map(f).join('');
    return {
      client: `${common}${each((h, i) => `[c${i}]\nclient = yes\naccept = ${h.cIn}\nconnect = ${h.sIn}\ncert = ${c.clientCert}\nkey = ${c.clientKey}\n${tls}`)}`,
      server: `${common}${each((h, i) => `[s${i}]\naccept = ${h.sIn}\nconnect = ${h.tgt}\ncert = ${c.serverCert}\nkey = ${c.serverKey}\nrequireCert = yes\n${tls}`)}`,
    };
  },
  haproxy: (hops, c) => {
    const head = `global\n  maxconn 9900\n  log stderr format raw local0 err\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 600s\n  timeout server 600s\n`;
    const each = (f: (h: Hop, i: number) => string) => hops.map(f).join('');
    return {
      client: `${head}${each((h, i) => `frontend cin${i}\n  bind ${h.cIn}\n  default_backend cout${i}\nbackend cout${i}\n  server s ${h.sIn} ssl verify required ca-file ${c.root} crt ${c.clientCombined} ssl-min-ver TLSv1.3\n`)}`,
      server: `${head}${each((h, i) => `frontend sin${i}\n  bind ${h.sIn} ssl crt ${c.serverCombined} ca-file ${c.root} verify required ssl-min-ver TLSv1.3\n  default_backend sout${i}\nbackend sout${i}\n  server t ${h.tgt}\n`)}`,
    };
  },
  nginx: (hops, c, dir) => {
    // One process (no master), like one agent process; 1 worker is nginx's own default.
    const head = `load_module /usr/lib/nginx/modules/ngx_stream_module.so;\ndaemon off;\nmaster_process off;\nuser root;\nworker_rlimit_nofile 20000;\nevents { worker_connections 20000; }\n`;
    const each = (f: (h: Hop) => string) => hops.map(f).join('');
    return {
      client: `${head}pid ${join(dir, 'nginx-client.pid')};\nstream {\n${each((h) => ` server {\n  listen ${h.cIn};\n  proxy_pass ${h.sIn};\n  proxy_half_close on;\n  proxy_ssl on;\n  proxy_ssl_protocols TLSv1.3;\n  proxy_ssl_certificate ${c.clientCert};\n  proxy_ssl_certificate_key ${c.clientKey};\n  proxy_ssl_trusted_certificate ${c.root};\n  proxy_ssl_verify on;\n  proxy_ssl_name ${SERVER_NAME};\n  proxy_ssl_server_name on;\n  proxy_ssl_session_reuse on;\n }\n`)}}\n`,
      server: `${head}pid ${join(dir, 'nginx-server.pid')};\nstream {\n${each((h) => ` server {\n  listen ${h.sIn} ssl;\n  ssl_protocols TLSv1.3;\n  ssl_certificate ${c.serverCert};\n  ssl_certificate_key ${c.serverKey};\n  ssl_client_certificate ${c.root};\n  ssl_verify_client on;\n  proxy_pass ${h.tgt};\n  proxy_half_close on;\n }\n`)}}\n`,
    };
  },
};
