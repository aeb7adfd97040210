// The one address vocabulary of mtun. An IP is held in one canonical spelling (lib/ip.ts:
// IPv4-mapped IPv6 folded to IPv4, IPv6 compressed and lower-case), and the types say which
// address a value is, so that a spelling can never be compared with a canonical form and an
// original destination never be mistaken for a peer:
// - `Ip`: a canonical IP literal (the brand is only ever given by `canonical()`);
// - `SocketAddr`: ip:port with a canonical IP, port 1–65535 (HBONE `:authority`, route
//   targets, dials);
// - `OriginalDst`: where a captured connection was going (SO_ORIGINAL_DST), never one of
//   this agent's own listeners (that is a loop, not a destination);
// - `PeerAddr`: the remote end of an accepted socket;
// - `HostPort`: where to listen (a flag's value: an IP or a name, port 0 = any).
// In text, IPv6 is always bracketed: `[fd00::5]:8080` (formatAddr).
import { isIP, type Socket } from 'node:net';
import { canonicalIp } from './ip.js';

declare const CANONICAL: unique symbol;
declare const ORIGINAL: unique symbol;
declare const PEER: unique symbol;

export type Ip = string & { readonly [CANONICAL]: true };

export interface SocketAddr {
  readonly ip: Ip;
  readonly port: number;
}

export type OriginalDst = SocketAddr & { readonly [ORIGINAL]: true };
export type PeerAddr = SocketAddr & { readonly [PEER]: true };

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** The canonical form of an IP literal; undefined for anything else (names, zone ids). */
export function canonical(text: string): Ip | undefined {
  return canonicalIp(text) as Ip | undefined;
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port > 0 && port <= 65535;
}

/** Builds an address; throws TypeError on a programming error (not an IP, bad port). */
export function socketAddr(ip: string, port: number): SocketAddr {
  const c = canonical(ip);
  if (c === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`);
  if (!validPort(port)) throw new TypeError(`not a port: ${port}`);
  return Object.freeze({ ip: c, port });
}

/** Parses `ip:port` / `[ipv6]:port`; undefined for anything else (names, port 0, zones,
 *  unbracketed IPv6). */
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

/** `10.0.0.5:80`, `[fd00::5]:80`: the one text form (logs, keys, `:authority`). */
export function formatAddr(a: SocketAddr | HostPort): string {
  const host = 'ip' in a ? a.ip : a.host;
  return host.includes(':') ? `[${host}]:${a.port}` : `${host}:${a.port}`;
}

export function sameAddr(a: SocketAddr, b: SocketAddr): boolean {
  return a.ip === b.ip && a.port === b.port;
}

/** The remote end of an accepted socket; undefined once it is closed (no address left). */
export function peerAddr(socket: Socket): PeerAddr | undefined {
  const ip = canonical(socket.remoteAddress ?? '');
  const port = socket.remotePort;
  return ip && port ? ({ ip, port } as PeerAddr) : undefined;
}

/** The local end of a socket. */
export function localAddr(socket: Socket): SocketAddr | undefined {
  const ip = canonical(socket.localAddress ?? '');
  const port = socket.localPort;
  return ip && port ? { ip, port } : undefined;
}

/** Where a captured connection was going, from the kernel's answer (`found`), canonical;
 *  undefined when there is none or it is the socket's own local address: the connection
 *  was not redirected (it was made to the listener itself), compared canonically, so no
 *  other spelling of our own address passes for a destination. */
export function originalDst(
  found: { readonly ip: string; readonly port: number } | undefined,
  socket: Socket,
): OriginalDst | undefined {
  if (!found) return undefined;
  const ip = canonical(found.ip);
  if (!ip || !validPort(found.port)) return undefined;
  const orig = { ip, port: found.port } as OriginalDst;
  const local = localAddr(socket);
  return local && sameAddr(orig, local) ? undefined : orig;
}
