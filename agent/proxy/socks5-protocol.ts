// SOCKS5 (RFC 1928) server side, CONNECT without authentication only: an incremental,
// bounded parser over the bytes received so far. Pure: no sockets here.
import { isIP, isIPv4 } from 'node:net';
import { canonicalIp } from '../../lib/ip.js';

export type Socks5Target = {
  /** A canonical IP literal (lib/ip.ts) or a host name. */
  readonly host: string;
  readonly port: number;
  readonly kind: 'ipv4' | 'ipv6' | 'domain';
};

export type Socks5Step =
  | { readonly need: 'more' }
  | {
      readonly need: 'reply';
      readonly reply: Buffer;
      readonly consumed: number;
      readonly fail?: string;
    }
  | { readonly need: 'connect'; readonly target: Socks5Target; readonly consumed: number };

export const REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** Parses the greeting: returns the method-selection reply (0x00 no auth, or 0xff). */
export function parseGreeting(buf: Buffer): Socks5Step {
  if (buf.length < 2) return { need: 'more' };
  if (buf[0] !== 0x05)
    return {
      need: 'reply',
      reply: Buffer.from([0x05, 0xff]),
      consumed: buf.length,
      fail: `not SOCKS5 (version ${buf[0]})`,
    };
  const n = buf[1]!;
  if (buf.length < 2 + n) return { need: 'more' };
  const methods = buf.subarray(2, 2 + n);
  if (!methods.includes(0x00)) {
    return {
      need: 'reply',
      reply: Buffer.from([0x05, 0xff]),
      consumed: 2 + n,
      fail: 'client offers no "no authentication" method',
    };
  }
  return { need: 'reply', reply: Buffer.from([0x05, 0x00]), consumed: 2 + n };
}

/** Parses the request: a CONNECT target, or the failure reply to send. */
export function parseRequest(buf: Buffer): Socks5Step {
  if (buf.length < 5) return { need: 'more' };
  const fail = (code: number, why: string, consumed = buf.length): Socks5Step => ({
    need: 'reply',
    reply: reply(code),
    consumed,
    fail: why,
  });
  if (buf[0] !== 0x05) return fail(REPLY.generalFailure, 'bad request version');
  if (buf[1] !== 0x01)
    return fail(REPLY.commandNotSupported, `command ${buf[1]} not supported (CONNECT only)`);
  const atyp = buf[3];
  let host: string;
  let off: number;
  let kind: Socks5Target['kind'];
  if (atyp === 0x01) {
    if (buf.length < 10) return { need: 'more' };
    host = [...buf.subarray(4, 8)].join('.');
    off = 8;
    kind = 'ipv4';
  } else if (atyp === 0x04) {
    if (buf.length < 22) return { need: 'more' };
    const parts: string[] = [];
    for (let i = 0; i < 8; i++) parts.push(buf.readUInt16BE(4 + 2 * i).toString(16));
    // Canonical (lib/ip.ts): `::ffff:a.b.c.d` is the IPv4 pod it reaches, not a non-mesh
    // address to pass through in plaintext (issue 12, item 5).
    host = canonicalIp(parts.join(':')) ?? '';
    off = 20;
    kind = 'ipv6';
  } else if (atyp === 0x03) {
    const len = buf[4]!;
    if (buf.length < 5 + len + 2) return { need: 'more' };
    host = buf.subarray(5, 5 + len).toString('latin1');
    off = 5 + len;
    kind = 'domain';
    if (len === 0 || !/^[A-Za-z0-9.-]+$/.test(host))
      return fail(REPLY.hostUnreachable, `bad domain name ${JSON.stringify(host)}`);
  } else {
    return fail(REPLY.addressTypeNotSupported, `address type ${atyp} not supported`);
  }
  const port = buf.readUInt16BE(off);
  if (port === 0) return fail(REPLY.hostUnreachable, 'port 0');
  if ((kind === 'ipv4' && !isIPv4(host)) || (kind === 'ipv6' && isIP(host) === 0))
    return fail(REPLY.addressTypeNotSupported, 'bad address');
  return { need: 'connect', target: { host, port, kind }, consumed: off + 2 };
}

/** A reply with a zero bound address (clients ignore it for CONNECT). */
export function reply(code: number): Buffer {
  return Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}
