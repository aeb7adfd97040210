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
// process (admin /logging) every descendant must be updated, so they are tracked here, with
// the levels in force: a default and per-scope ones. A scope is a child's `module` binding
// (`access`, `certs`, `hbone`, `mesh`, ...), as ztunnel's scopes are its tracing targets.
interface Family {
  readonly children: Set<WeakRef<Logger>>;
  level: LogLevel;
  readonly scopes: Map<string, LogLevel>;
}
const families = new WeakMap<Logger, Family>();

const scopeOf = (l: Logger): string | undefined => {
  const m = (l.bindings() as { module?: unknown }).module;
  return typeof m === 'string' ? m : undefined;
};

function levelFor(family: Family, logger: Logger): LogLevel {
  const scope = scopeOf(logger);
  return (scope !== undefined ? family.scopes.get(scope) : undefined) ?? family.level;
}

/** Sets the level of a logger made by createLogger and of all loggers derived from it
 *  (per-scope levels set before stay in force). */
export function setLogLevel(root: Logger, level: LogLevel): void {
  applyLogLevels(root, { level, scopes: [] }, false);
}

/** A parsed `/logging?level=` value: ztunnel's `<level>` and `<scope>:<level>` clauses
 *  (also `<scope>=<level>`, tracing's own spelling), comma separated. */
export interface LogLevelSpec {
  readonly level: LogLevel | undefined;
  readonly scopes: readonly (readonly [string, LogLevel])[];
}

const levelName = (text: string): LogLevel | undefined =>
  text === 'off'
    ? 'silent'
    : (LOG_LEVELS as readonly string[]).includes(text)
      ? (text as LogLevel)
      : undefined;

/** Parses a level spec; throws a message naming the bad clause. */
export function parseLogLevels(text: string): LogLevelSpec {
  let level: LogLevel | undefined;
  const scopes: [string, LogLevel][] = [];
  for (const clause of text.split(',').map((c) => c.trim())) {
    const sep = clause.search(/[:=]/);
    if (sep < 0) {
      level = levelName(clause);
      if (!level) throw new Error(`level ${JSON.stringify(clause)} is invalid`);
      continue;
    }
    const scope = clause.slice(0, sep);
    const l = levelName(clause.slice(sep + 1));
    if (!/^[a-z][a-z0-9_-]*$/.test(scope) || !l)
      throw new Error(`clause ${JSON.stringify(clause)} is invalid: expected <scope>:<level>`);
    scopes.push([scope, l]);
  }
  return { level, scopes };
}

/** Applies a level spec to a logger family; `reset` first drops every per-scope level and
 *  returns the default to `info` (ztunnel's `reset`). */
export function applyLogLevels(root: Logger, spec: LogLevelSpec, reset: boolean): void {
  const family = families.get(root);
  if (!family) {
    root.level = spec.level ?? root.level;
    return;
  }
  if (reset) {
    family.scopes.clear();
    family.level = 'info';
  }
  if (spec.level) family.level = spec.level;
  for (const [scope, level] of spec.scopes) family.scopes.set(scope, level);
  root.level = family.level;
  for (const ref of family.children) {
    const child = ref.deref();
    if (child) child.level = levelFor(family, child);
    else family.children.delete(ref);
  }
}

/** The levels in force, as a spec: `info,access:debug`. */
export function describeLogLevels(root: Logger): string {
  const family = families.get(root);
  if (!family) return root.level;
  const off = (l: LogLevel) => (l === 'silent' ? 'off' : l);
  return [off(family.level), ...[...family.scopes].sort().map(([s, l]) => `${s}:${off(l)}`)].join(
    ',',
  );
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const family: Family = { children: new Set(), level: opts.level ?? 'info', scopes: new Map() };
  const options = {
    onChild: (child: Logger) => {
      family.children.add(new WeakRef(child));
      // A child made after a scope's level was set takes that level.
      if (family.scopes.size > 0) child.level = levelFor(family, child);
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
