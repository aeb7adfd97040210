// What every listener of the agent is given: explicit inputs, no singletons.
import type { HboneClient } from '../hbone/index.js';
import type { Logger } from '../lib/logger.js';
import type { CertManager } from './certs/cert-manager.js';
import type { AgentConfig } from './config.js';
import type { Drain } from './drain.js';
import type { BypassDetector } from './observe/bypass.js';
import type { AgentMetrics } from './observe/metrics.js';
import type { RecentConnections } from './observe/recent.js';
import type { AccessLogSink } from './observe/record.js';
import type { LiveInbound } from './proxy/live.js';
import type { RouteSettings } from './proxy/route.js';
import type { AgentState } from './state.js';

/** The kernel's answer to "where was this connection going?" (SO_ORIGINAL_DST). Undefined
 *  when the connection was not redirected. An I/O seam: the real one is the native addon. */
export type OriginalDestination = (
  socket: import('node:net').Socket,
) => { ip: string; port: number } | undefined;

export interface AgentContext {
  readonly config: AgentConfig;
  readonly state: AgentState;
  readonly certs: CertManager;
  readonly hbone: HboneClient;
  readonly metrics: AgentMetrics;
  readonly accessLog: AccessLogSink;
  readonly logger: Logger;
  readonly drain: Drain;
  readonly live: LiveInbound;
  /** Plaintext from mesh pods (their node's capture bypassed), counted and remembered. */
  readonly bypass: BypassDetector;
  /** The last connections recorded, as evidence for `mtun check`. */
  readonly recent: RecentConnections;
  readonly routeSettings: RouteSettings;
  readonly originalDestination: OriginalDestination | undefined;
  /** Endpoint choice for a service: an index in [0, n), spreading evenly per key. */
  readonly spread: (key: string, n: number) => number;
}
