// What the runner asks of a configuration's load client, whatever runs it: in this process
// through a Connector (loopback mode), or in a pod's network namespace (netns mode:
// bench/suite/netns-driver.ts). Every workload is bounded in count and time.
import type { Connector } from '../lib/load.js';
import {
  bulkStreams,
  idleConnections,
  type Latency,
  newConnections,
  roundTrips,
} from './workloads.js';

export type Rate = Latency & { perSec: number };
export type Conns = Rate & { failed: number };
export interface Idle {
  readonly opened: number;
  readonly answered: number;
  readonly failed: number;
}

export interface Driver {
  bulk(streams: number, seconds: number): Promise<{ gbps: number; bytes: number }>;
  roundTrips(count: number, seconds: number): Promise<Rate>;
  newConnections(clients: number, count: number, seconds: number): Promise<Conns>;
  /** Opens `n` connections; `measure` runs while all are open and idle; then each must answer. */
  idle(n: number, seconds: number, measure: () => Promise<void>): Promise<Idle>;
}

/** The loopback driver: the workloads of workloads.ts in this process. */
export function inProcess(connect: Connector): Driver {
  return {
    bulk: (streams, seconds) => bulkStreams(connect, streams, seconds),
    roundTrips: (count, seconds) => roundTrips(connect, count, seconds),
    newConnections: (clients, count, seconds) => newConnections(connect, clients, count, seconds),
    idle: (n, seconds, measure) => idleConnections(connect, n, seconds, measure),
  };
}
