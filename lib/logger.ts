// Structured JSON-line logging (pino). One root logger is created by the entry point and
// passed down explicitly; components take child loggers. Secrets are redacted by path as a
// second line of defence: code must never put tokens or keys into log fields at all.
import { type Logger, pino } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: NodeJS.WritableStream;
  name?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: { component: opts.name ?? 'mtun' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      paths: ['token', '*.token', 'authorization', '*.authorization', 'key', '*.key', 'privateKey'],
      censor: '[redacted]',
    },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that drops everything, for unit tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
