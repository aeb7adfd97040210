// The one canonical spelling of an IP address, used at every edge where an address enters
// (SOCKS5 requests, captured original destinations, peer addresses, mesh objects, HBONE
// `:authority`), so that comparing two addresses is comparing two strings.
//
// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports for an
// IPv4 peer, and what a client may ask for) is the IPv4 address: the kernel delivers a
// connection to it to a.b.c.d. Left unfolded, a SOCKS5 request for `::ffff:<pod IP>` was
// not recognised as the pod and went out in plaintext around its DENY policy (issue 12,
// item 5). ztunnel folds the same way (`socket::to_canonical`).
import { isIP, SocketAddress } from 'node:net';

/** Canonical form of an IP literal, or undefined if `text` is not one. */
export function canonicalIp(text: string): string | undefined {
  // isIP accepts IPv6 zone ids (`fe80::1%eth0`); they name a local interface, never a
  // workload, and would make two spellings of one address compare unequal.
  if (text.includes('%')) return undefined;
  const family = isIP(text);
  if (family === 0) return undefined;
  if (family === 4) return text; // isIP already refuses leading zeros and out-of-range octets
  const v6 = new SocketAddress({ address: text, family: 'ipv6' }).address;
  // Node spells every form of a mapped address (`0:0:0:0:0:ffff:a00:5`, `::FFFF:10.0.0.5`)
  // `::ffff:10.0.0.5`.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6);
  if (mapped) return mapped[1];
  return v6;
}
