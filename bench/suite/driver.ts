// What the runner asks of a configuration's load client, whatever runs it: in this process
// through a Connector (loopback mode), or in a pod's network namespace (netns mode:
// bench/suite/netns-driver.ts). Every workload is bounded in count and time.
import {
  type Bulk,
  bulkStreams,
  type Connector,
  idleConnections,
  type Latency,
  newConnections,
  roundTrips,
} from '../lib/load.js';

export type Rate = Latency & { perSec: number };
export type Conns = Rate & { failed: number };
export interface Idle {
  readonly opened: number;
  readonly answered: number;
  readonly failed: number;
}

export interface Driver {
  bulk(streams: number, seconds: number): Promise<Bulk>;
  roundTrips(count: number, seconds: number): Promise<Rate>;
  newConnections(clients: number, count: number, seconds: number): Promise<Conns>;
  /** Opens `n` connections; `measure` runs while all are open and idle; then each must answer. */
  idle(n: number, seconds: number, measure: () => Promise<void>): Promise<Idle>;
}

/** The loopback driver: the workloads of bench/lib/load.ts in this process (bulk: 8 GiB per
 *  stream at most, so time bounds it). */
export function inProcess(connect: Connector): Driver {
  return {
    bulk: (streams, seconds) => bulkStreams(connect, streams, 8 * 2 ** 30, seconds),
    roundTrips: (count, seconds) => roundTrips(connect, count, seconds),
    newConnections: (clients, count, seconds) => newConnections(connect, clients, count, seconds),
    idle: (n, seconds, measure) => idleConnections(connect, n, seconds, measure),
  };
}
