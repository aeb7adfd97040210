// IP addresses and CIDR blocks as policy needs them: parsed once at compile time (policy
// side) or once per connection (connection side), compared as integers. Written here rather
// than taken from node:net so that policy/ stays free of runtime modules; the accepted
// syntax follows Go's net/netip, which is what istiod parses `ipBlocks` with.

export interface IpAddr {
  readonly v6: boolean;
  /** The address as an unsigned integer of 32 (v4) or 128 (v6) bits. */
  readonly value: bigint;
}

export interface Cidr {
  readonly v6: boolean;
  readonly bits: number;
  /** Address bits above the prefix length, shifted down (host bits dropped). */
  readonly prefix: bigint;
  readonly shift: bigint;
}

const V4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseV4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const p of parts) {
    // Go's netip rejects leading zeros ("010.0.0.1") as ambiguous octal; so do we.
    if (!V4_OCTET.test(p) || Number(p) > 255) return undefined;
    value = (value << 8n) | BigInt(p);
  }
  return value;
}

function parseV6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string): bigint[] | undefined => {
    if (half === '') return [];
    const out: bigint[] = [];
    const parts = half.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p); // embedded IPv4 in the last 32 bits, e.g. ::ffff:10.0.0.1
        if (v4 === undefined) return undefined;
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else if (V6_GROUP.test(p)) {
        out.push(BigInt(Number.parseInt(p, 16)));
      } else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  let value = 0n;
  for (const g of [...head, ...new Array<bigint>(missing).fill(0n), ...tail])
    value = (value << 16n) | g;
  return value;
}

/** Parses an IPv4 or IPv6 address (a `%zone` suffix is accepted and ignored, as istiod's
 *  `netip.ParseAddr` + `AsSlice()` does). Undefined when it is not an address. */
export function parseIp(text: string): IpAddr | undefined {
  if (text.includes(':')) {
    const value = parseV6(text.split('%')[0]!);
    return value === undefined ? undefined : { v6: true, value };
  }
  const value = parseV4(text);
  return value === undefined ? undefined : { v6: false, value };
}

/** A connection's address as the agent should match it: an IPv4-mapped IPv6 address
 *  (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers) becomes IPv4, as
 *  ztunnel canonicalizes socket addresses before policy sees them. */
export function canonicalIp(text: string): IpAddr | undefined {
  const ip = parseIp(text);
  if (ip?.v6 && ip.value >> 32n === 0xffffn) return { v6: false, value: ip.value & 0xffffffffn };
  return ip;
}

/** Parses `addr/bits` or a bare address (= /32 or /128), as istiod's stringToIP does.
 *  Host bits below the prefix are allowed (Go's ParsePrefix keeps them; matching masks). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip || (slash >= 0 && text.includes('%'))) return undefined;
  const width = ip.v6 ? 128 : 32;
  let bits = width;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(b) || Number(b) > width) return undefined;
    bits = Number(b);
  }
  const shift = BigInt(width - bits);
  return { v6: ip.v6, bits, prefix: ip.value >> shift, shift };
}

/** An IPv4 block never contains an IPv6 address and vice versa (Rust ipnet semantics). */
export function cidrContains(cidr: Cidr, ip: IpAddr): boolean {
  return cidr.v6 === ip.v6 && ip.value >> cidr.shift === cidr.prefix;
}
