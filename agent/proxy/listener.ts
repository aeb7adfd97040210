// The shape every agent listener shares (ztunnel's): created by binding (a typed error that
// names the address on failure), `address()`, and a close that stops accepting; open
// connections are the shared Drain's business.
import { createServer, type Server, type Socket } from 'node:net';
import { formatAddr, type HostPort, type OriginalDst, originalDst } from '../../lib/address.js';
import { MtunError } from '../../lib/errors.js';
import { ignoreError } from '../../lib/ignore.js';
import type { OriginalDestination } from '../context.js';
import type { Drain } from '../drain.js';

export class BindError extends MtunError {
  constructor(what: string, at: HostPort, cause: Error) {
    super('BIND_FAILED', `${what}: cannot listen on ${formatAddr(at)}: ${cause.message}`, {
      cause,
    });
  }
}

/** Where a captured connection was going (lib/address.ts: canonical, and undefined when it
 *  was not redirected, including when the original destination is the listener itself:
 *  dialed directly, a loop; a dual-stack listener reports `::ffff:a.b.c.d` where the
 *  kernel's answer says a.b.c.d, and both are the same canonical address). */
export function redirectedDestination(
  lookup: OriginalDestination | undefined,
  socket: Socket,
): OriginalDst | undefined {
  return originalDst(lookup?.(socket), socket);
}

async function bindTcp(
  what: string,
  at: HostPort,
  onConnection: (s: Socket) => void,
): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new BindError(what, at, err)));
    server.listen({ host: at.host, port: at.port, backlog: 1024 }, () => resolve());
  });
  server.on('error', () => {}); // accept errors (EMFILE) are per connection; keep listening
  return server;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A plain TCP listener of the agent (outbound capture, inbound plaintext, SOCKS5): bound
 *  at creation, closed by stopping to accept; while the agent drains, new connections are
 *  closed at once. Socket errors are left to the handler's 'close' path and record. */
export class TcpListener {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async create(
    what: string,
    at: HostPort,
    drain: Drain,
    onConnection: (s: Socket) => void,
  ): Promise<TcpListener> {
    return new TcpListener(
      await bindTcp(what, at, (s) => {
        s.on('error', ignoreError);
        if (drain.draining) return void s.destroy();
        onConnection(s);
      }),
    );
  }

  address(): HostPort {
    const a = this.#server.address() as { address: string; port: number };
    return { host: a.address, port: a.port };
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }
}
