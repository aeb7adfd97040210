// Transparent capture, as `mtun agent` wires it: the original-destination seam from the
// native addon, and the iptables rule manager for `--redirect iptables`. Fail closed: asking
// for iptables redirection without the addon is an error at start, because rules without
// an agent that can read original destinations would break every pod's connections.
import type { Logger } from '../../lib/logger.js';
import type { MeshSource } from '../../mesh/source.js';
import type { AgentConfig } from '../config.js';
import type { OriginalDestination } from '../context.js';
import { AgentState } from '../state.js';
import { CaptureUnavailableError } from './errors.js';
import { IptablesRedirect, type LocalPods } from './iptables.js';
import { type CaptureSupport, loadCapture } from './native.js';
import type { CapturePorts } from './rules.js';

export { CaptureUnavailableError, RedirectRulesError } from './errors.js';
export { IptablesRedirect } from './iptables.js';
export { type CaptureSupport, loadCapture } from './native.js';

export const REDIRECT_MODES = ['none', 'iptables'] as const;
export type RedirectMode = (typeof REDIRECT_MODES)[number];

/** The seam for Agent.create. Says clearly (warn) when capture is unavailable; throws
 *  CaptureUnavailableError when `--redirect iptables` was asked for without it. */
export function originalDestinationFor(
  mode: RedirectMode,
  logger: Logger,
  support: CaptureSupport = loadCapture(),
): OriginalDestination | undefined {
  if (support.available) {
    logger.debug({ addon: support.addonPath }, 'transparent capture available');
    return support.originalDestination;
  }
  if (mode === 'iptables') throw new CaptureUnavailableError(support.reason);
  logger.warn(
    { reason: support.reason },
    `transparent capture unavailable: ${support.reason}; only SOCKS5 and HBONE inbound are served`,
  );
  return undefined;
}

function capturePorts(config: AgentConfig): CapturePorts {
  return {
    outbound: config.outboundPort,
    inboundHbone: config.inboundPort,
    inboundPlaintext: config.inboundPlaintextPort,
  };
}

export interface RunningRedirect {
  close(): Promise<void>;
}

/** Starts the rule manager `config.redirect` names over the agent's own state (undefined for
 *  none). */
export async function startRedirect(
  pods: LocalPods,
  config: AgentConfig,
  logger: Logger,
): Promise<RunningRedirect | undefined> {
  if (config.redirect === 'none') return undefined;
  return IptablesRedirect.start({
    pods,
    ports: capturePorts(config),
    logger: logger.child({ module: 'capture' }),
  });
}

/** For `--workers N`: the primary process keeps the rules (they must outlive a worker's
 *  restart), following the mesh on its own, from the source the workers use (`openMesh`:
 *  files or the Kubernetes API; it opened the file source always, and with
 *  `--mesh-source kubernetes` failed for want of a file, issue 15). */
export async function startNodeRedirect(
  config: AgentConfig,
  logger: Logger,
  openMesh: () => Promise<MeshSource>,
): Promise<RunningRedirect | undefined> {
  if (config.redirect === 'none') return undefined;
  const mesh = await openMesh();
  const state = new AgentState(mesh, config.node, config.rootNamespace);
  try {
    const rules = await startRedirect(state, config, logger);
    return {
      close: async () => {
        await rules?.close();
        state.close();
        await mesh.close();
      },
    };
  } catch (err) {
    state.close();
    await mesh.close();
    throw err;
  }
}
