// IP:port addresses as HBONE carries them in `:authority` (`10.0.0.5:8080`,
// `[fd00::5]:8080`). Only IP literals: HBONE targets are workload addresses, never names,
// so a name is a bad request rather than something to resolve. IPs are kept in canonical
// form (lib/ip.ts: IPv4-mapped IPv6 folded to IPv4) so that comparing two addresses is
// comparing two strings.
import { isIP } from 'node:net';
import { canonicalIp } from '../lib/ip.js';

export { canonicalIp };

export interface SocketAddr {
  /** Canonical IP literal, no brackets (`fd00::5`, not `[fd00:0::5]`). */
  readonly ip: string;
  readonly port: number;
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port > 0 && port <= 65535;
}

/** Builds an address; throws TypeError on a programming error (not an IP, bad port). */
export function socketAddr(ip: string, port: number): SocketAddr {
  const canonical = canonicalIp(ip);
  if (canonical === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`);
  if (!validPort(port)) throw new TypeError(`not a port: ${port}`);
  return Object.freeze({ ip: canonical, port });
}

/** Parses `ip:port` / `[ipv6]:port`; undefined for anything else (names, port 0, zones). */
export function parseSocketAddr(text: string): SocketAddr | undefined {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return undefined;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (isIP(host) !== 6 || host.includes('%')) return undefined;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (isIP(host) !== 4) return undefined;
  }
  if (!/^[1-9][0-9]{0,4}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (!validPort(port)) return undefined;
  return socketAddr(host, port);
}

export function formatSocketAddr(a: SocketAddr): string {
  return a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}
