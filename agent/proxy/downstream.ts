// The client side of a proxied connection, whatever it came in on: an HBONE tunnel waiting
// for its answer (inbound 15008), or a TCP socket (capture 15001, plaintext 15006, SOCKS5
// 15080). The connection's path (inbound.ts, outbound.ts, local-pod.ts) reads the same for
// all of them: it refuses the downstream with a failure, or connects an upstream and lets
// the downstream carry it: answer (200, a SOCKS5 reply, or nothing for a captured socket),
// then bytes both ways until both sides are closed, tracked for draining and published
// while open.
import type { Socket } from 'node:net';
import {
  formatSocketAddr,
  type H2Stream,
  type IncomingTunnel,
  resetTunnel,
  type SpliceResult,
  splice,
} from '../../hbone/index.js';
import type { AgentContext } from '../context.js';
import type { Closable } from '../drain.js';
import {
  type ByteCount,
  type ByteSource,
  type ConnectionRecord,
  HANDED_OFF,
} from '../observe/record.js';
import { ConnectionFailure, tunnelRefusalOf } from '../outcome.js';
import { joinSockets } from './pipe.js';

export interface Downstream {
  /** Aborted when the client goes away before it was answered. */
  readonly signal: AbortSignal;
  /** Answers the failure (an HBONE status, a SOCKS5 reply, or a reset). */
  refuse(failure: ConnectionFailure): void;
  /** Answers success and joins the client to `upstream` until both are closed, then
   *  releases `done`. Throws CONNECTION_RESET (after closing `upstream` and releasing
   *  `done`) when the client has already gone. The join reports the Transfer to the record
   *  itself, so the result is always HANDED_OFF. */
  carry(record: ConnectionRecord, upstream: Socket, done?: Releasable): typeof HANDED_OFF;
}

/** What a connection holds while it is carried, released when the carrying ends. */
export interface Releasable {
  release(): void;
}

/** The signal of a client that was answered: nothing is waiting on it any more. */
const ANSWERED = new AbortController().signal;

const clientGone = (what: string) =>
  new ConnectionFailure('CONNECTION_RESET', `the client closed before the ${what} was attached`);

/** An inbound HBONE tunnel: the upstream is the local pod. A class, not closures: one per
 *  open tunnel, so its methods are shared. */
export class TunnelDownstream implements Downstream {
  readonly #ctx: AgentContext;
  readonly #tunnel: IncomingTunnel;

  constructor(ctx: AgentContext, tunnel: IncomingTunnel) {
    this.#ctx = ctx;
    this.#tunnel = tunnel;
  }

  get signal(): AbortSignal {
    return this.#tunnel.signal;
  }

  refuse(failure: ConnectionFailure): void {
    this.#tunnel.refuse(tunnelRefusalOf(failure, formatSocketAddr(this.#tunnel.target)));
  }

  carry(record: ConnectionRecord, upstream: Socket, done?: Releasable): typeof HANDED_OFF {
    let stream: H2Stream;
    try {
      stream = this.#tunnel.accept();
    } catch (err) {
      upstream.destroy();
      done?.release();
      throw new ConnectionFailure('CONNECTION_RESET', (err as Error).message, { cause: err });
    }
    return answered(
      () => {
        // Live bytes from the pod socket's counters, the ones splice() reports at the end.
        new SplicedTunnel(this.#ctx, record, upstream, done, false, 0, 0).splice(stream);
        return HANDED_OFF;
      },
      () => {
        resetTunnel(stream);
        upstream.resetAndDestroy();
        done?.release();
      },
    );
  }
}

/** What a SOCKS5 client is told: the reply for a failure, and success (after which any early
 *  data read with the request is the application's). */
export interface SocketAnswer {
  refused(failure: ConnectionFailure): void;
  succeeded(): void;
}

/** A client TCP socket, paused until it is carried. `answer` is SOCKS5's; a captured
 *  socket is answered by its data flowing, and refused with a reset (as ztunnel does). */
export class ClientSocket implements Downstream {
  readonly #ctx: AgentContext;
  readonly #socket: Socket;
  /** Dropped once answered: it closes over the SOCKS5 handshake (its buffer and timer). */
  #answer: SocketAnswer | undefined;
  /** Dropped once answered: an open connection keeps no controller. */
  #abort: AbortController | undefined = new AbortController();
  /** Dropped once answered, with the controller. */
  #gone: (() => void) | undefined = () => this.#abort?.abort();

  constructor(ctx: AgentContext, socket: Socket, answer?: SocketAnswer) {
    this.#ctx = ctx;
    this.#socket = socket;
    this.#answer = answer;
    socket.on('close', this.#gone!); // 'close' is emitted once: no once-wrapper
  }

  get signal(): AbortSignal {
    return this.#abort?.signal ?? ANSWERED;
  }

  refuse(failure: ConnectionFailure): void {
    if (this.#gone) this.#socket.off('close', this.#gone);
    this.#gone = undefined;
    this.#abort = undefined;
    const answer = this.#answer;
    this.#answer = undefined;
    if (this.#socket.destroyed) return;
    if (answer) answer.refused(failure);
    else this.#socket.resetAndDestroy();
  }

  /** Joined to a plain TCP upstream (passthrough, a local pod). The join reports to the
   *  record itself (HANDED_OFF): no promise stays pending while the connection is open. */
  carry(record: ConnectionRecord, upstream: Socket, done?: Releasable): typeof HANDED_OFF {
    const client = this.#socket;
    if (!this.#attach()) {
      upstream.resetAndDestroy();
      done?.release();
      throw clientGone('connection');
    }
    return answered(
      () => {
        // Live bytes from the counters joinSockets() reports at the end, less a SOCKS5 reply.
        const written = client.bytesWritten;
        record.watch({
          bytes: () => ({ sent: upstream.bytesWritten, received: client.bytesWritten - written }),
        });
        const untrack = this.#ctx.drain.track({ destroy: () => client.resetAndDestroy() });
        joinSockets(client, upstream, (r) => {
          untrack();
          done?.release();
          record.carried({ sent: r.aToB, received: r.bToA - written, error: r.error });
        });
        client.resume();
        return HANDED_OFF;
      },
      () => {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
        done?.release();
      },
    );
  }

  /** Joined to an HBONE tunnel opened for it. */
  carryTunnel(record: ConnectionRecord, stream: H2Stream): typeof HANDED_OFF {
    const client = this.#socket;
    if (!this.#attach()) {
      resetTunnel(stream);
      throw clientGone('tunnel');
    }
    return answered(
      () => {
        // What the SOCKS5 handshake moved is not the application's; early data read with
        // the request and unshifted back is.
        const read = client.bytesRead - client.readableLength;
        const written = client.bytesWritten;
        new SplicedTunnel(this.#ctx, record, client, undefined, true, read, written).splice(stream);
        client.resume();
        return HANDED_OFF;
      },
      () => {
        resetTunnel(stream);
        client.resetAndDestroy();
      },
    );
  }

  /** Answers success; false when the client has already gone. */
  #attach(): boolean {
    if (this.#gone) this.#socket.off('close', this.#gone);
    this.#gone = undefined;
    const gone = this.#socket.destroyed || this.#abort?.signal.aborted !== false;
    const answer = this.#answer;
    this.#abort = undefined;
    this.#answer = undefined;
    if (gone) return false;
    answer?.succeeded();
    return true;
  }
}

/** Sets up the carrying of an answered connection. Once answered, a failure can no longer
 *  be told to the client: if the set-up throws (a bug), both sides are reset before the
 *  error goes on to the record, so nothing is left open. */
function answered<T>(setUp: () => T, resetBoth: () => void): T {
  try {
    return setUp();
  } catch (err) {
    resetBoth();
    throw err;
  }
}

/** One socket joined to a tunnel, while it is open: the record's live byte counts, the
 *  drain's reset on shutdown, and splice()'s end as the record's Transfer; one object per
 *  tunnel instead of four closures, their scopes and a pending promise (bench/tunnel-heap.ts
 *  --closures 1). `fromSocket`: the socket is the client (its reads go towards the
 *  destination), less what it moved before it was joined (`baseRead`, `baseWritten`); else
 *  the socket is the pod. */
class SplicedTunnel implements ByteSource, Closable {
  constructor(
    readonly ctx: AgentContext,
    readonly record: ConnectionRecord,
    readonly socket: Socket,
    readonly done: Releasable | undefined,
    readonly fromSocket: boolean,
    readonly baseRead: number,
    readonly baseWritten: number,
  ) {}

  splice(stream: H2Stream): void {
    this.record.watch(this);
    this.ctx.drain.add(this);
    splice(this.socket, stream, this);
  }

  bytes(): ByteCount {
    const s = this.socket;
    return this.fromSocket
      ? { sent: s.bytesRead - this.baseRead, received: s.bytesWritten - this.baseWritten }
      : { sent: s.bytesWritten, received: s.bytesRead };
  }

  /** Shutdown after the drain period: the connection is reset. */
  destroy(): void {
    this.socket.resetAndDestroy();
  }

  spliced(r: SpliceResult): void {
    this.ctx.drain.delete(this);
    this.done?.release();
    const toStream = r.bytesSocketToStream - this.baseRead;
    const toSocket = r.bytesStreamToSocket - this.baseWritten;
    this.record.carried(
      this.fromSocket
        ? { sent: toStream, received: toSocket, error: r.error }
        : { sent: toSocket, received: toStream, error: r.error },
    );
  }
}
