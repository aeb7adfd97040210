// The client's connection pool, keyed by {source identity, expected destination identities,
// dial address, SNI} (ztunnel's key; SNI joins it because it selects the certificate the
// server presents).
//
// Invariants:
// - `usable` holds, per key, exactly the connections in `connecting` or `ready`; a
//   connection leaves it on its way to `draining` or `closed` and never comes back;
// - `all` holds every connection not yet `closed` (stats, close());
// - acquire() reserves a slot synchronously (no await between the capacity check and
//   reserve()), so concurrent opens never put more than `capacity` streams on a
//   connection, and opens that find a `connecting` connection with room share its
//   handshake instead of starting their own;
// - connections are filled first-fit, so a new connection is dialed only when every usable
//   one for the key is full, and the spare ones drain by idling;
// - a connection whose certificate or trust bundle is no longer current is drained as soon
//   as an open for its key notices: rotation reaches new connections, old streams finish.
import type { Logger } from '../../lib/logger.js';
import { ClientClosedError } from '../errors.js';
import {
  type ConnectionSettings,
  type ConnectionState,
  type ConnectionTarget,
  PooledConnection,
} from './connection.js';

export interface PoolStats {
  readonly connections: number;
  readonly streams: number;
  readonly byState: Readonly<Record<ConnectionState, number>>;
  /** Connections ever dialed (handshakes started). */
  readonly dialed: number;
}

export class ConnectionPool {
  private readonly usable = new Map<string, PooledConnection[]>();
  private readonly all = new Set<PooledConnection>();
  private dialed = 0;
  private closed = false;

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly log: Logger,
  ) {}

  /** A ready connection with one stream slot reserved for the caller, who must release()
   *  it when the stream ends (or if it never opens one). */
  async acquire(target: ConnectionTarget): Promise<PooledConnection> {
    if (this.closed) throw new ClientClosedError('the HBONE client is closed');
    const list = this.usable.get(target.key) ?? [];
    for (const conn of [...list]) {
      if (conn.target.certificate !== target.certificate || conn.target.bundle !== target.bundle) {
        conn.drain('certificate or trust bundle rotated');
      }
    }
    const conn =
      list.find((c) => c.state === 'ready' && c.hasCapacity()) ??
      list.find((c) => c.hasCapacity()) ??
      this.dial(target);
    conn.reserve();
    try {
      await conn.ready;
    } catch (err) {
      conn.release();
      throw err;
    }
    return conn;
  }

  stats(): PoolStats {
    const byState: Record<ConnectionState, number> = {
      connecting: 0,
      ready: 0,
      draining: 0,
      closed: 0,
    };
    let streams = 0;
    for (const c of this.all) {
      byState[c.state]++;
      streams += c.activeStreams;
    }
    return { connections: this.all.size, streams, byState, dialed: this.dialed };
  }

  /** Destroys every connection (their streams are reset). */
  close(): void {
    this.closed = true;
    for (const c of [...this.all]) c.destroy(new ClientClosedError('the HBONE client is closed'));
  }

  private dial(target: ConnectionTarget): PooledConnection {
    this.dialed++;
    const conn = new PooledConnection(target, this.settings, this.log, (c, _from, to) =>
      this.onStateChange(c, to),
    );
    this.all.add(conn);
    const list = this.usable.get(target.key);
    if (list) list.push(conn);
    else this.usable.set(target.key, [conn]);
    return conn;
  }

  private onStateChange(conn: PooledConnection, to: ConnectionState): void {
    if (to === 'draining' || to === 'closed') {
      const list = this.usable.get(conn.target.key);
      const i = list?.indexOf(conn) ?? -1;
      if (list && i >= 0) {
        list.splice(i, 1);
        if (list.length === 0) this.usable.delete(conn.target.key);
      }
    }
    if (to === 'closed') this.all.delete(conn);
  }
}
