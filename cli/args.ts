// Parsing of flag values shared by the subcommands; errors name the flag.
import { isIP } from 'node:net';
import { ConfigError } from '../lib/errors.js';

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
