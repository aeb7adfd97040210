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

// pino children copy their parent's level when created; to change the level of a running
// process (admin /logging) every descendant must be updated, so they are tracked here.
const families = new WeakMap<Logger, Set<WeakRef<Logger>>>();

/** Sets the level of a logger made by createLogger and of all loggers derived from it. */
export function setLogLevel(root: Logger, level: LogLevel): void {
  root.level = level;
  for (const ref of families.get(root) ?? []) {
    const child = ref.deref();
    if (child) child.level = level;
  }
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const family = new Set<WeakRef<Logger>>();
  const options = {
    onChild: (child: Logger) => {
      family.add(new WeakRef(child));
    },
    level: opts.level ?? 'info',
    base: { component: opts.name ?? 'mtun' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      paths: ['token', '*.token', 'authorization', '*.authorization', 'key', '*.key', 'privateKey'],
      censor: '[redacted]',
    },
  };
  const root = opts.destination ? pino(options, opts.destination) : pino(options);
  families.set(root, family);
  return root;
}

/** A logger that drops everything, for unit tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
