// Typed errors with stable codes. Every failure that crosses a module boundary is one of
// these; `code` is stable (logs, metrics, JSON answers) and the cause is chained.
// Mapping of codes to HTTP statuses lives in exactly one table per protocol (ca/errors.ts,
// hbone/errors.ts), never at throw sites.

export class MtunError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad input in a file or flag: names where (file, document, field) and what was expected. */
export class ConfigError extends MtunError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
