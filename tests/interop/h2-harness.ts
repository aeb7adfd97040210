// What the h2 interop cases (h2-suite.ts) are made of: the Stack an independent HTTP/2
// implementation offers (their CONNECT server and client, each reporting per stream what it
// sent and received as SHA-256), our side (HboneClient; HboneServer with the default
// gateway in front of a TCP backend), and the exchange both sides run on a tunnel. Every
// wait is bounded; everything started is torn down with the test that started it.
import { createHash, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Test } from 'tap';
import { socketAddr } from '../../hbone/address.js';
import { HboneClient } from '../../hbone/client/client.js';
import { TunnelDeniedError } from '../../hbone/errors.js';
import { type ForwardResult, forwardTunnel } from '../../hbone/server/forward.js';
import { HboneServer } from '../../hbone/server/server.js';
import {
  CLIENT_ID,
  captureLogger,
  closeServer,
  LOOPBACK,
  type Pki,
  SERVER_ID,
  startBackend,
  waitFor,
} from '../hbone/helpers.js';

export const MiB = 1 << 20;
/** CONNECTs to this port are refused with 401 by every server here (ours and theirs). */
export const DENY_PORT = 1;
/** Only ever a label in an :authority (never dialed): not the IP the client dialed. */
export const OTHER_IP = '127.0.0.2';

export interface PeerFiles {
  readonly cert: string;
  readonly key: string;
  readonly roots: string;
}

export interface Exchanged {
  readonly sent: number;
  readonly sentSha256: string;
  readonly received: number;
  readonly receivedSha256: string;
}

/** One stream as their side saw it (a field is absent when their stack cannot tell). */
export interface StreamReport {
  readonly authority: string;
  readonly status: number;
  readonly sent?: number;
  readonly sentSha256?: string;
  readonly received?: number;
  readonly receivedSha256?: string;
  /** Our END_STREAM arrived. */
  readonly peerEnd?: boolean;
  /** The HTTP/2 error code the stream closed with (0: NO_ERROR). */
  readonly closeCode?: number;
  readonly error?: string;
}

export interface TlsReport {
  readonly version: string;
  readonly alpn: string;
  /** Our SPIFFE ID as they verified it. */
  readonly peer: string;
}

export interface ServerSpec {
  /** Bytes each stream sends once answered 200, then END_STREAM. */
  readonly send: number;
  /** Send only after our END_STREAM arrived. */
  readonly afterEof: boolean;
  readonly denyPort?: number;
  /** Go only: return from the handler once sent (END_STREAM + RST_STREAM(NO_ERROR)). */
  readonly endEarly?: boolean;
  /** GOAWAY and close the connection once its streams ended (Stack.serverCanCloseAfter). */
  readonly closeAfter?: boolean;
}

export interface ClientSpec {
  readonly port: number;
  /** One CONNECT each, all at once on one connection. */
  readonly authorities: readonly string[];
  readonly expect: string;
  readonly send: number;
  readonly afterEof: boolean;
  /** After its last stream, wait this long for us to close the connection; 0: close it. */
  readonly lingerMs: number;
}

export interface TheirServer {
  readonly port: number;
  /** Waits (bounded) until `n` streams were reported; all reports so far. */
  streams(n: number): Promise<StreamReport[]>;
  /** Waits (bounded) until they closed `n` connections at their end (their FIN sent). */
  closed(n: number): Promise<void>;
  tls(): TlsReport[];
}

export interface TheirClientRun {
  readonly exitCode: number | null;
  readonly streams: StreamReport[];
  readonly tls: TlsReport[];
  readonly output: string;
}

export interface Stack {
  readonly name: string;
  cannotRun(): string | undefined;
  /** Their server can end its side only by ending the stream (Go's http2.Server): the
   *  "their FIN first" case then checks that ending instead (ServerSpec.endEarly). */
  readonly serverEndsWithReset: boolean;
  readonly serverCanCloseAfter: boolean;
  prepare(): Promise<void>;
  server(t: Test, files: PeerFiles, spec: ServerSpec): Promise<TheirServer>;
  /** Runs their client to its end (bounded). */
  client(t: Test, files: PeerFiles, spec: ClientSpec): Promise<TheirClientRun>;
}

export function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Sends `send` random bytes and a FIN on `stream` (at once, or only after the far side's
 *  FIN arrived) while reading to the far side's FIN; the SHA-256 of both directions. Reads
 *  with 'data' (hbone/README.md: `for await` would end our direction with theirs). Our side
 *  counts as written at 'finish' or at 'close' after end(): node:http2 may close a stream
 *  whose END_STREAM went out without ever emitting 'finish' (so stream.finished() reports a
 *  premature close); whether every byte arrived is the far side's report to tell. */
export async function exchange(
  stream: Duplex,
  send: number,
  afterEof: boolean,
  ms = 20_000,
): Promise<Exchanged> {
  const rx = createHash('sha256');
  let received = 0;
  stream.on('data', (c: Buffer) => {
    rx.update(c);
    received += c.length;
  });
  const ended = new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
    stream.once('close', () => reject(new Error("closed before the far side's FIN")));
  });
  const data = randomBytes(send);
  const written = (async () => {
    if (afterEof) await ended;
    await new Promise<void>((resolve, reject) => {
      stream.once('finish', resolve);
      stream.once('close', resolve);
      stream.once('error', reject);
      stream.end(data);
    });
  })();
  const what = `exchange of ${send} bytes${afterEof ? ' after their FIN' : ''}`;
  await within(ms, Promise.all([ended, written]), what);
  return { sent: send, sentSha256: sha256(data), received, receivedSha256: rx.digest('hex') };
}

/** Checks that the report of theirs that received what `ours` sent also sent what we got. */
export function matchExchange(t: Test, ours: Exchanged, theirs: readonly StreamReport[]): void {
  const r = theirs.find((x) => x.receivedSha256 === ours.sentSha256);
  if (!t.ok(r, `they received exactly our ${ours.sent} bytes (SHA-256)`) || !r) return;
  t.equal(r.received, ours.sent);
  t.equal(r.sentSha256, ours.receivedSha256, `we received exactly their ${r.sent} bytes (SHA-256)`);
  t.equal(r.status, 200);
  if (r.peerEnd !== undefined) t.equal(r.peerEnd, true, 'they saw our END_STREAM');
  if (r.closeCode !== undefined) t.equal(r.closeCode, 0, 'their stream closed with NO_ERROR');
}

export function checkTls(t: Test, tls: readonly TlsReport[], peer: string): void {
  t.ok(tls.length > 0, 'they report a TLS session');
  for (const s of tls) t.same(s, { version: 'TLSv1.3', alpn: 'h2', peer }, 'TLS 1.3, h2, verified');
}

export function ourClient(t: Test, pki: Pki): HboneClient {
  const client = new HboneClient({
    certificates: pki.certs,
    logger: captureLogger().logger,
    connectTimeoutMs: 5_000,
    responseTimeoutMs: 5_000,
  });
  t.teardown(() => client.close());
  return client;
}

/** A tunnel to `destination` (default: their server itself) through their server at `port`. */
export function openThrough(
  client: HboneClient,
  port: number,
  destination = LOOPBACK,
  dport = port,
) {
  return within(
    10_000,
    client.open({
      sourceIdentity: CLIENT_ID,
      destination: socketAddr(destination, dport),
      expectedIdentities: [SERVER_ID],
      via: socketAddr(LOOPBACK, port),
    }),
    `open ${destination}:${dport} via ${LOOPBACK}:${port}`,
  );
}

/** A TCP backend on 127.0.0.1 that runs `spec`'s exchange on each connection and keeps the
 *  outcomes; closed with `t`. */
export async function exchangeBackend(t: Test, spec: { send: number; afterEof: boolean }) {
  const done: Exchanged[] = [];
  const failed: string[] = [];
  const be = await startBackend((s) => {
    exchange(s, spec.send, spec.afterEof).then(
      (r) => done.push(r),
      (err: unknown) => failed.push(String(err)),
    );
  });
  t.teardown(() => {
    for (const s of be.sockets) s.destroy();
    return closeServer(be.server);
  });
  /** Once `n` exchanges ended (within `ms`): the clean ones and the errors of the others. */
  const settled = async (n: number, ms = 15_000) => {
    await waitFor(() => done.length + failed.length >= n, ms, `${n} backend exchanges`);
    return { done, failed };
  };
  return {
    port: be.addr.port,
    sockets: be.sockets,
    settled,
    /** The clean exchanges once `n` ended; a failed one fails `t`. */
    async exchanges(n: number) {
      await settled(n);
      t.same(failed, [], 'the backend saw every exchange end cleanly');
      return done;
    },
  };
}

export type OurServer = Awaited<ReturnType<typeof ourServer>>;

/** Our server (the default gateway, forwardTunnel; 401 for DENY_PORT; 400 for any IP but
 *  127.0.0.1) in front of an exchangeBackend. */
export async function ourServer(t: Test, pki: Pki, backend: { send: number; afterEof: boolean }) {
  const be = await exchangeBackend(t, backend);
  const log = captureLogger();
  const forwarded: ForwardResult[] = [];
  const server = await HboneServer.listen(
    {
      certificates: pki.certs,
      logger: log.logger,
      selectIdentity: () => ({ identity: SERVER_ID, destinationIp: LOOPBACK }),
      onTunnel: (tun) =>
        tun.target.port === DENY_PORT
          ? tun.refuse(new TunnelDeniedError('interop: the denied port'))
          : void forwardTunnel(tun).then((r) => forwarded.push(r)),
    },
    { host: LOOPBACK, port: 0 },
  );
  t.teardown(() => server.close(0));
  return {
    server,
    port: server.address().port,
    backendPort: be.port,
    settled: be.settled,
    exchanges: be.exchanges,
    /** How each forwarded tunnel ended, as our splice saw it (in the order they ended): what
     *  our side decided, where the backend's view can mislead (h2-suite.ts, the client that
     *  closes at once). */
    forwarded,
    noLeaks: () =>
      waitFor(
        () => server.stats().tunnels === 0 && be.sockets.size === 0,
        5_000,
        'no tunnel and no backend socket left',
      ),
    /** What the server logged at error level (a bug on our side, never a peer's doing). */
    errorsLogged: () => log.lines.filter((l) => Number(l['level']) >= 50),
  };
}
