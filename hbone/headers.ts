// The metadata headers of an HBONE CONNECT (DESIGN.md §6, as ztunnel sends them):
//   forwarded:   for="<original client ip:port>"[;host=<service>]   (RFC 7239)
//   traceparent: 00-<trace id>-<span id>-<flags>, a new one per connection unless the caller
//                continues a trace                                   (W3C Trace Context)
//   baggage:     k8s.namespace.name=…,service.name=…                 (W3C Baggage)
// Building is strict (we never send junk); parsing is lenient: a malformed optional header
// is dropped rather than failing the tunnel, because it carries no security meaning.
import { randomFillSync } from 'node:crypto';
import { formatSocketAddr, parseSocketAddr, type SocketAddr } from './address.js';

export interface TunnelMetadata {
  /** The address of the original client (the pod that opened the TCP connection). */
  readonly forwardedFor?: SocketAddr;
  /** `host=` of `forwarded`: the service the client targeted, if any. */
  readonly forwardedHost?: string;
  readonly traceparent?: string;
  readonly baggage?: Readonly<Record<string, string>>;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 7230 token: baggage keys

// Random bytes for trace and span ids, drawn 256 connections at a time: one CSPRNG call
// per connection showed as 1 % of a busy agent's CPU.
const ID_BYTES = 24;
const pool = Buffer.alloc(256 * ID_BYTES);
let poolAt = pool.length;

export function newTraceparent(): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const hex = pool.toString('hex', poolAt, poolAt + ID_BYTES);
  poolAt += ID_BYTES;
  return `00-${hex.slice(0, 32)}-${hex.slice(32)}-00`;
}

/** Headers for the CONNECT request (without the pseudo-headers). */
export function metadataHeaders(meta: TunnelMetadata): Record<string, string> {
  const headers: Record<string, string> = {};
  if (meta.forwardedFor) {
    let value = `for="${formatSocketAddr(meta.forwardedFor)}"`;
    if (meta.forwardedHost !== undefined) {
      if (!TOKEN.test(meta.forwardedHost)) {
        throw new TypeError(`forwardedHost is not a token: ${JSON.stringify(meta.forwardedHost)}`);
      }
      value += `;host=${meta.forwardedHost}`;
    }
    headers['forwarded'] = value;
  }
  if (meta.traceparent !== undefined && !TRACEPARENT.test(meta.traceparent)) {
    throw new TypeError(`traceparent is malformed: ${JSON.stringify(meta.traceparent)}`);
  }
  headers['traceparent'] = meta.traceparent ?? newTraceparent();
  if (meta.baggage && Object.keys(meta.baggage).length > 0) {
    headers['baggage'] = Object.entries(meta.baggage)
      .map(([k, v]) => {
        if (!TOKEN.test(k)) throw new TypeError(`baggage key is not a token: ${JSON.stringify(k)}`);
        return `${k}=${encodeURIComponent(v)}`;
      })
      .join(',');
  }
  return headers;
}

/** Reads the metadata headers of a received CONNECT (the engine's header map: one string
 *  per name, repeated names joined with ", "); malformed ones are left out. */
export function parseMetadata(headers: Readonly<Record<string, string>>): TunnelMetadata {
  const meta: {
    forwardedFor?: SocketAddr;
    forwardedHost?: string;
    traceparent?: string;
    baggage?: Record<string, string>;
  } = {};
  const forwarded = headers['forwarded'];
  if (forwarded) {
    // Only the first element (the hop that created the tunnel) matters here.
    for (const pair of forwarded.split(',')[0]!.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const key = pair.slice(0, eq).trim().toLowerCase();
      const value = pair
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1');
      if (key === 'for') {
        const addr = parseSocketAddr(value);
        if (addr) meta.forwardedFor = addr;
      } else if (key === 'host' && TOKEN.test(value)) {
        meta.forwardedHost = value;
      }
    }
  }
  const traceparent = headers['traceparent'];
  if (traceparent && TRACEPARENT.test(traceparent)) meta.traceparent = traceparent;
  const baggage = headers['baggage'];
  if (baggage) {
    const entries: Record<string, string> = {};
    for (const member of baggage.split(',')) {
      const [kv = ''] = member.split(';'); // properties after ';' are not used
      const eq = kv.indexOf('=');
      if (eq < 0) continue;
      const key = kv.slice(0, eq).trim();
      if (!TOKEN.test(key)) continue;
      try {
        entries[key] = decodeURIComponent(kv.slice(eq + 1).trim());
      } catch {
        // malformed percent-encoding: leave this member out
      }
    }
    if (Object.keys(entries).length > 0) meta.baggage = entries;
  }
  return meta;
}
