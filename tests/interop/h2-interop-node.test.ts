// Interop with node:http2 used directly (issue 16): a CONNECT client (http2.connect over
// tls.connect with our client certificate, no SNI) and server (http2.createSecureServer,
// requestCert, TLS 1.3 only) written here the way a Node user would, with none of hbone's
// code, run the cases of h2-suite.ts: nghttp2 inside Node, an independent stack.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import {
  type ClientHttp2Stream,
  createSecureServer,
  connect as h2connect,
  type ServerHttp2Session,
} from 'node:http2';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Test } from 'tap';
import t from 'tap';
import { CLIENT_ID, LOOPBACK, makePki, SERVER_ID, TD } from '../hbone/helpers.js';
import { eventually } from '../helpers/eventually.js';
import {
  type ClientSpec,
  exchange,
  type PeerFiles,
  type ServerSpec,
  type Stack,
  type StreamReport,
  type TheirClientRun,
  type TheirServer,
  type TlsReport,
  within,
} from './h2-harness.js';
import { interopSuite } from './h2-suite.js';

t.setTimeout(120_000);
const pki = await makePki([CLIENT_ID, SERVER_ID]);

async function material(files: PeerFiles) {
  const [key, cert, ca] = await Promise.all(
    [files.key, files.cert, files.roots].map((f) => readFile(f, 'utf8')),
  );
  return { key, cert, ca, minVersion: 'TLSv1.3' as const, maxVersion: 'TLSv1.3' as const };
}

/** The leaf's spiffe:// URI SAN, read the way a Node user would. */
function spiffeOf(raw: Buffer | undefined): string {
  if (!raw) return '';
  const san = new X509Certificate(raw).subjectAltName ?? '';
  return /URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1] ?? '';
}

function tlsReport(socket: TLSSocket): TlsReport {
  return {
    version: String(socket.getProtocol()),
    alpn: String(socket.alpnProtocol),
    peer: spiffeOf(socket.getPeerX509Certificate()?.raw),
  };
}

/** After `stream` closed: its close code. */
const closeOf = (stream: {
  closed: boolean;
  rstCode?: number;
  once(event: 'close', fn: () => void): unknown;
}) =>
  stream.closed
    ? Promise.resolve(stream.rstCode)
    : new Promise<number | undefined>((r) => stream.once('close', () => r(stream.rstCode)));

async function server(t: Test, files: PeerFiles, spec: ServerSpec): Promise<TheirServer> {
  const reports: StreamReport[] = [];
  const tls: TlsReport[] = [];
  const sessions = new Set<ServerHttp2Session>();
  let closed = 0;
  const srv = createSecureServer({
    ...(await material(files)),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
  });
  srv.on('secureConnection', (socket: TLSSocket) => {
    const r = tlsReport(socket);
    if (!r.peer.startsWith(`spiffe://${TD}/`)) socket.destroy();
    else tls.push(r);
    // Closed at our end: our FIN sent (session.close() ends the socket; its 'close' then
    // waits for the client's FIN).
    socket.once('finish', () => closed++);
  });
  srv.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  srv.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const authority = String(headers[':authority'] ?? '');
    const m = /^(.+):(\d+)$/.exec(authority);
    const status =
      headers[':method'] !== 'CONNECT'
        ? 405
        : !m || m[1] !== stream.session?.socket.localAddress || Number(m[2]) <= 0
          ? 400
          : Number(m[2]) === spec.denyPort
            ? 401
            : 200;
    const report = (x: Partial<StreamReport>) =>
      void closeOf(stream).then((closeCode) =>
        reports.push({ authority, status, closeCode, ...x }),
      );
    const session = stream.session; // a closed stream no longer has it
    if (spec.closeAfter) stream.once('close', () => session?.close());
    if (status !== 200) {
      stream.respond({ ':status': status }, { endStream: true });
      stream.resume();
      return report({});
    }
    stream.respond({ ':status': 200 });
    exchange(stream, spec.send, spec.afterEof).then(
      (x) => report({ ...x, peerEnd: true }),
      (err: unknown) => report({ error: String(err) }),
    );
  });
  srv.listen(0, LOOPBACK);
  await once(srv, 'listening');
  t.teardown(() => {
    for (const s of sessions) s.destroy();
    return new Promise((r) => srv.close(r));
  });
  const wait = (cond: () => boolean, what: string) => eventually(cond, what, 15_000, 10);
  return {
    port: (srv.address() as { port: number }).port,
    streams: async (n) => {
      await wait(() => reports.length >= n, `${n} stream reports`);
      return reports;
    },
    closed: (n) => wait(() => closed >= n, `${n} sessions closed`),
    tls: () => tls,
  };
}

async function client(t: Test, files: PeerFiles, spec: ClientSpec): Promise<TheirClientRun> {
  const opts = await material(files);
  const tls: TlsReport[] = [];
  const session = h2connect(`https://${LOOPBACK}:${spec.port}`, {
    createConnection: () => {
      const socket = tlsConnect({
        ...opts,
        host: LOOPBACK,
        port: spec.port,
        ALPNProtocols: ['h2'],
        checkServerIdentity: (_host, cert) =>
          spiffeOf(cert.raw) === spec.expect ? undefined : new Error(`not ${spec.expect}`),
      });
      socket.once('secureConnect', () => tls.push(tlsReport(socket)));
      return socket;
    },
  });
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const errors: string[] = [];
  const one = async (authority: string): Promise<StreamReport> => {
    const req: ClientHttp2Stream = session.request(
      { ':method': 'CONNECT', ':authority': authority },
      { endStream: false },
    );
    req.on('error', (e) => errors.push(e.message));
    const [headers] = (await within(10_000, once(req, 'response'), 'response')) as [
      Record<string, unknown>,
    ];
    const status = Number(headers[':status']);
    if (status !== 200) {
      req.end();
      req.resume();
      return { authority, status, closeCode: await closeOf(req) };
    }
    const x = await exchange(req, spec.send, spec.afterEof);
    return { authority, status, ...x, peerEnd: true, closeCode: await closeOf(req) };
  };
  const streams = await Promise.all(
    spec.authorities.map((a) =>
      one(a).catch(
        (err: unknown): StreamReport => ({ authority: a, status: 0, error: String(err) }),
      ),
    ),
  );
  // Wait for the server to close (up to lingerMs), then close as node:http2 users do.
  const gone = new Promise((r) => session.once('close', r));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, spec.lingerMs)))]);
  clearTimeout(timer);
  session.close();
  await within(5_000, gone, 'session close');
  const ok = streams.every((s) => !s.error && s.closeCode === 0) && errors.length === 0;
  return { exitCode: ok ? 0 : 1, streams, tls, output: JSON.stringify({ streams, errors }) };
}

const nodeStack: Stack = {
  name: 'node:http2',
  cannotRun: () => undefined,
  serverEndsWithReset: false,
  serverCanCloseAfter: true,
  prepare: async () => {},
  server,
  client,
};

await interopSuite(t, pki, nodeStack);
