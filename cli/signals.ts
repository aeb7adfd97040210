// Runs until SIGTERM/SIGINT, then shuts down once; a second signal exits at once.
import type { Logger } from '../lib/logger.js';

/** `expose` receives a function that triggers the same shutdown (admin /quitquitquit). */
export function runUntilSignal(
  logger: Logger,
  shutdown: () => Promise<void>,
  expose?: (trigger: () => void) => void,
): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals | 'quitquitquit') => {
      if (stopping) {
        if (signal === 'quitquitquit') return;
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      shutdown()
        .catch((err) => logger.error({ err }, 'shutdown failed'))
        .finally(() => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          resolve();
        });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    expose?.(() => onSignal('quitquitquit'));
  });
}
