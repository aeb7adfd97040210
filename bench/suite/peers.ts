// The C mutual-TLS 1.3 proxy pairs: stunnel, HAProxy and nginx stream, each as two
// processes (client side on 127.0.0.1, server side on 127.0.0.2, like two nodes), with the
// P-256 SPIFFE certificates of certs.ts, every peer verified. Each runs in the foreground
// with its own defaults for threads/workers except where noted in the config.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Proc, spawnProc } from '../lib/procs.js';
import { type CertFiles, SERVER_NAME } from './certs.js';

export type PeerKind = 'stunnel' | 'haproxy' | 'nginx';
export const PEERS: readonly PeerKind[] = ['stunnel', 'haproxy', 'nginx'];

export interface ProxyPair {
  /** Where the load client connects (the client-side proxy's listener). */
  readonly entry: { host: string; port: number };
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

export async function startPeer(
  kind: PeerKind,
  dir: string,
  c: CertFiles,
  ports: { client: number; server: number },
  target: { host: string; port: number },
): Promise<ProxyPair> {
  const cIn = `127.0.0.1:${ports.client}`;
  const sIn = `127.0.0.2:${ports.server}`;
  const tgt = `${target.host}:${target.port}`;
  const confs = CONFIG[kind](cIn, sIn, tgt, c, dir);
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
    procs.push(spawnProc(BIN[kind], args));
  }
  await Promise.all(
    [ports.client, ports.server].map((p, i) =>
      waitListening(i === 0 ? '127.0.0.1' : '127.0.0.2', p, procs[i]!),
    ),
  );
  return { entry: { host: '127.0.0.1', port: ports.client }, procs };
}

async function waitListening(host: string, port: number, proc: Proc): Promise<void> {
  const { connect } = await import('node:net');
  const end = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end || proc.child.exitCode !== null)
      throw new Error(`not listening on ${host}:${port}: ${proc.output().slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Conf = (
  cIn: string,
  sIn: string,
  tgt: string,
  c: CertFiles,
  dir: string,
) => Record<string, string>;

const CONFIG: Record<PeerKind, Conf> = {
  stunnel: (cIn, sIn, tgt, c) => {
    const common = 'foreground = yes\npid =\ndebug = 3\nsyslog = no\n';
    const tls = `sslVersionMin = TLSv1.3\nCAfile = ${c.root}\nverifyChain = yes\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n`;
    return {
      client: `${common}[c]\nclient = yes\naccept = ${cIn}\nconnect = ${sIn}\ncert = ${c.clientCert}\nkey = ${c.clientKey}\n${tls}`,
      server: `${common}[s]\naccept = ${sIn}\nconnect = ${tgt}\ncert = ${c.serverCert}\nkey = ${c.serverKey}\nrequireCert = yes\n${tls}`,
    };
  },
  haproxy: (cIn, sIn, tgt, c) => {
    const head = `global\n  maxconn 9900\n  log stderr format raw local0 err\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 600s\n  timeout server 600s\n`;
    return {
      client: `${head}frontend cin\n  bind ${cIn}\n  default_backend cout\nbackend cout\n  server s ${sIn} ssl verify required ca-file ${c.root} crt ${c.clientCombined} ssl-min-ver TLSv1.3\n`,
      server: `${head}frontend sin\n  bind ${sIn} ssl crt ${c.serverCombined} ca-file ${c.root} verify required ssl-min-ver TLSv1.3\n  default_backend sout\nbackend sout\n  server t ${tgt}\n`,
    };
  },
  nginx: (cIn, sIn, tgt, c, dir) => {
    // One process (no master), like one agent process; 1 worker is nginx's own default.
    const head = `load_module /usr/lib/nginx/modules/ngx_stream_module.so;\ndaemon off;\nmaster_process off;\nuser root;\nworker_rlimit_nofile 20000;\nevents { worker_connections 20000; }\n`;
    return {
      client: `${head}pid ${join(dir, 'nginx-client.pid')};\nstream {\n server {\n  listen ${cIn};\n  proxy_pass ${sIn};\n  proxy_half_close on;\n  proxy_ssl on;\n  proxy_ssl_protocols TLSv1.3;\n  proxy_ssl_certificate ${c.clientCert};\n  proxy_ssl_certificate_key ${c.clientKey};\n  proxy_ssl_trusted_certificate ${c.root};\n  proxy_ssl_verify on;\n  proxy_ssl_name ${SERVER_NAME};\n  proxy_ssl_server_name on;\n  proxy_ssl_session_reuse on;\n }\n}\n`,
      server: `${head}pid ${join(dir, 'nginx-server.pid')};\nstream {\n server {\n  listen ${sIn} ssl;\n  ssl_protocols TLSv1.3;\n  ssl_certificate ${c.serverCert};\n  ssl_certificate_key ${c.serverKey};\n  ssl_client_certificate ${c.root};\n  ssl_verify_client on;\n  proxy_pass ${tgt};\n  proxy_half_close on;\n }\n}\n`,
    };
  },
};
