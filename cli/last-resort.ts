// The agent's last line of defence against its own bugs: an exception nothing caught, or
// a rejected promise nothing awaited. Each is logged with its stack and counted
// (`mtun_uncaught_errors_total{kind}`); the agent keeps serving, as ztunnel does when one
// connection's task panics (tokio contains the panic to that task; the proxy goes on).
// Past a bound (5 within a minute), the process is taken to be in a state it cannot
// trust: readiness turns false with the reason, the agent drains and exits 1, and the
// DaemonSet restarts it. One crash path of a single connection never takes every
// connection of the node with it; a broken process does not limp on for ever either.
import { Counter, type Registry } from 'prom-client';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export interface LastResortOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  /** Called once when the bound is passed: drain and exit. */
  readonly giveUp: (reason: string) => void;
  readonly maxPerWindow?: number;
  readonly windowMs?: number;
}

export interface LastResort {
  /** Why the agent is no longer fit to serve, once it gave up. */
  readonly failed: () => string | undefined;
  readonly uninstall: () => void;
}

export function installLastResort(opts: LastResortOptions): LastResort {
  const counter = new Counter({
    name: 'mtun_uncaught_errors_total',
    help: 'Exceptions and promise rejections nothing handled (each is a bug; see the log)',
    labelNames: ['kind'],
    registers: [opts.registry],
  });
  const max = opts.maxPerWindow ?? 5;
  const windowMs = opts.windowMs ?? 60_000;
  const recent: number[] = [];
  let failed: string | undefined;
  const seen = (kind: 'exception' | 'rejection', err: unknown) => {
    counter.inc({ kind });
    opts.logger.error(
      { kind, err: errorMessage(err), stack: err instanceof Error ? err.stack : undefined },
      `uncaught ${kind}: the agent keeps serving (a bug: please report it)`,
    );
    const now = Date.now();
    recent.push(now);
    while (recent.length > 0 && recent[0]! < now - windowMs) recent.shift();
    if (recent.length >= max && !failed) {
      failed = `${recent.length} uncaught errors within ${windowMs / 1000} s`;
      opts.logger.fatal(
        { reason: failed },
        'the agent cannot trust its state: draining and exiting',
      );
      opts.giveUp(failed);
    }
  };
  const onException = (err: unknown) => seen('exception', err);
  const onRejection = (err: unknown) => seen('rejection', err);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return {
    failed: () => failed,
    uninstall: () => {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}
