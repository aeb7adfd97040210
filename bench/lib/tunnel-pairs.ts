// A child process that runs one "proxy pair" between a load generator and a target, so the
// pair gets its own core (the load runs in the parent): a plain Node TCP relay pair (TCP in
// -> TCP -> TCP out: two hops with nothing but Node's sockets, the floor of any Node proxy
// pair's cost per connection), a plain Node TLS pair (TCP in -> mTLS 1.3 -> TCP out, one TLS
// connection per TCP connection) or an HBONE pair (TCP in -> HboneClient tunnel ->
// HboneServer -> TCP out). Both sides of a pair live in this one process, its malloc tuned
// as the agents' is. IPC messages: a PairRequest -> {port}; 'close' -> exits.
import { once } from 'node:events';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import {
  createSecureContext,
  createServer as createTlsServer,
  connect as tlsConnect,
} from 'node:tls';
import { tuneMalloc } from '../../agent/malloc-tune.js';
import { createRoot, issueKeyAndLeaf } from '../../ca/pki.js';
import { socketAddr } from '../../hbone/address.js';
import { StaticCertificateSource } from '../../hbone/certificates.js';
import { HboneClient } from '../../hbone/client/client.js';
import { forwardTunnel } from '../../hbone/server/forward.js';
import { HboneServer } from '../../hbone/server/server.js';
import type { Http2Tuning } from '../../hbone/settings.js';
import { splice } from '../../hbone/splice.js';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { silentLogger } from '../../lib/logger.js';

export interface PairRequest {
  readonly kind: 'tcp' | 'tls' | 'hbone';
  readonly tuning?: Partial<Http2Tuning>;
  readonly targetPort: number;
  /** Where the target listens; 127.0.0.1 unless given. */
  readonly targetIp?: string;
}

const HOST = '127.0.0.1';
const CLIENT = SpiffeId.of('cluster.local', 'bench', 'client');
const SERVER = SpiffeId.of('cluster.local', 'bench', 'server');

async function listen(server: Server): Promise<number> {
  server.listen(0, HOST);
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** A pair's entry listening, and the close of both its servers. */
async function listenPair(entry: Server, exit: Server) {
  const port = await listen(entry);
  return {
    port,
    close: async () => {
      entry.close();
      exit.close();
    },
  };
}

function pipeBoth(a: Socket, b: Socket): void {
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.pipe(b).pipe(a);
}

async function start(req: PairRequest): Promise<{ port: number; close: () => Promise<void> }> {
  const root = await createRoot({ trustDomain: 'cluster.local' });
  const bundle = [root.cert.toString('pem')];
  const issue = async (id: SpiffeId) => {
    const { keyPem, certPem, chainPem } = await issueKeyAndLeaf(root, id);
    return { identity: id, keyPem, certChainPem: [certPem, ...chainPem] };
  };
  const [clientCert, serverCert] = await Promise.all([issue(CLIENT), issue(SERVER)]);
  const target = socketAddr(req.targetIp ?? HOST, req.targetPort);
  const entry = createServer({ allowHalfOpen: true, noDelay: true });
  const dial = (port: number, host = HOST) =>
    netConnect({ host, port, allowHalfOpen: true, noDelay: true });
  if (req.kind === 'tcp') {
    const exit = createServer({ allowHalfOpen: true, noDelay: true }, (s) =>
      pipeBoth(s, dial(target.port, target.ip)),
    );
    const exitPort = await listen(exit);
    entry.on('connection', (s) => pipeBoth(s, dial(exitPort)));
    return listenPair(entry, exit);
  }
  if (req.kind === 'tls') {
    const tls = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;
    const exit = createTlsServer(
      {
        ...tls,
        key: serverCert.keyPem,
        cert: serverCert.certChainPem.join('\n'),
        ca: bundle,
        requestCert: true,
        allowHalfOpen: true,
      },
      (s) => pipeBoth(s, dial(target.port, target.ip)),
    );
    const exitPort = await listen(exit);
    // One secure context for all connections, as the HBONE client does.
    const ctx = createSecureContext({
      ...tls,
      key: clientCert.keyPem,
      cert: clientCert.certChainPem.join('\n'),
      ca: bundle,
    });
    entry.on('connection', (s) =>
      pipeBoth(
        s,
        tlsConnect({
          host: HOST,
          port: exitPort,
          secureContext: ctx,
          checkServerIdentity: () => undefined,
        }),
      ),
    );
    return listenPair(entry, exit);
  }
  const certs = new StaticCertificateSource(bundle, [clientCert, serverCert]);
  const server = await HboneServer.listen(
    {
      certificates: certs,
      selectIdentity: () => ({ identity: SERVER }),
      onTunnel: (tunnel) => void forwardTunnel(tunnel, { upstream: target }),
      logger: silentLogger(),
      ...(req.tuning ? { http2: req.tuning } : {}),
    },
    { host: HOST, port: 0 },
  );
  const client = new HboneClient({
    certificates: certs,
    logger: silentLogger(),
    ...(req.tuning ? { http2: req.tuning } : {}),
  });
  entry.on('connection', (s) => {
    s.on('error', () => {});
    client
      .open({
        sourceIdentity: CLIENT,
        destination: target,
        expectedIdentities: [SERVER],
        via: server.address(),
      })
      .then(
        (tunnel) => splice(s, tunnel.stream),
        () => s.destroy(),
      );
  });
  const port = await listen(entry);
  return {
    port,
    close: async () => {
      entry.close();
      client.close();
      await server.close(0);
    },
  };
}

if (process.send) {
  // The same glibc malloc tuning as an agent (agent/malloc-tune.ts): a ceiling measured
  // without it is the untuned allocator's, and moves with it from run to run.
  tuneMalloc();
  process.on('disconnect', () => process.exit(0)); // the parent went away
  let running: { close: () => Promise<void> } | undefined;
  process.on('message', async (msg: PairRequest | 'close') => {
    if (msg === 'close') {
      await running?.close();
      process.exit(0);
    }
    const pair = await start(msg);
    running = pair;
    process.send?.({ port: pair.port });
  });
}
