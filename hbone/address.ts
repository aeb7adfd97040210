// IP:port addresses as HBONE carries them in `:authority` (`10.0.0.5:8080`,
// `[fd00::5]:8080`). Only IP literals: HBONE targets are workload addresses, never names,
// so a name is a bad request rather than something to resolve. IPs are kept in canonical
// form (net.SocketAddress) so that comparing two addresses is comparing two strings.
import { isIP, SocketAddress } from 'node:net';

export interface SocketAddr {
  /** Canonical IP literal, no brackets (`fd00::5`, not `[fd00:0::5]`). */
  readonly ip: string;
  readonly port: number;
}

/** Canonical form of an IP literal, or undefined if `text` is not one. */
export function canonicalIp(text: string): string | undefined {
  // isIP accepts IPv6 zone ids (`fe80::1%eth0`); they name a local interface, never a
  // workload, and would make two spellings of one address compare unequal.
  if (text.includes('%')) return undefined;
  const family = isIP(text);
  if (family === 0) return undefined;
  if (family === 4) return text; // isIP already refuses leading zeros and out-of-range octets
  return new SocketAddress({ address: text, family: 'ipv6' }).address;
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
