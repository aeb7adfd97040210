// Parsing of flag values shared by the subcommands; errors name the flag.
import { isIP } from 'node:net';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { type KubeAccess, kubeAccessFrom } from '../mesh/kube/config.js';

export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !(port >= 0 && port <= 65535) || (m[1] && isIP(m[1]) !== 6)) {
    throw new ConfigError(
      `${flag}: expected HOST:PORT or [IPv6]:PORT, got ${JSON.stringify(text)}`,
    );
  }
  return { host, port };
}

/** Collects every problem of a set of flags, so that one run reports all of them. */
export class Problems {
  readonly list: string[] = [];

  add(message: string): void {
    this.list.push(message);
  }

  /** Runs a parser; on failure records its message and returns undefined. */
  attempt<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.list.push(errorMessage(err));
      return undefined;
    }
  }

  /** Throws one ConfigError listing them all, if there are any. */
  throwIfAny(): void {
    if (this.list.length > 0) throw new ConfigError(this.list.join('\n'));
  }
}

/** The Kubernetes API access that `--kubeconfig`/`--kube-*` name. The in-cluster address comes
 *  from the service environment, read here and nowhere else. */
export function kubeAccessFromFlags(flags: Parameters<typeof kubeAccessFrom>[0]): KubeAccess {
  return kubeAccessFrom(flags, {
    host: process.env['KUBERNETES_SERVICE_HOST'],
    port: process.env['KUBERNETES_SERVICE_PORT'],
  });
}
