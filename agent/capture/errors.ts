// Failures of transparent capture, each with a stable code: the native addon missing or
// unusable (CAPTURE_UNAVAILABLE), and an iptables command that failed
// (REDIRECT_RULES_FAILED, with the command and what it printed).
import { MtunError } from '../../lib/errors.js';

export class CaptureUnavailableError extends MtunError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(
      'CAPTURE_UNAVAILABLE',
      `transparent capture unavailable: ${reason} (SOCKS5 and HBONE inbound still work without --redirect iptables)`,
      options,
    );
  }
}

export class RedirectRulesError extends MtunError {
  readonly command: string;
  constructor(command: string, detail: string, options?: { cause?: unknown }) {
    super('REDIRECT_RULES_FAILED', `${command}: ${detail}`, options);
    this.command = command;
  }
}
