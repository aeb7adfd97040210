// The SNI a client sends when it dials an agent's own address instead of the captured
// destination, so that the server can pick the certificate of the destination workload
// before the handshake ends. SNI must be a DNS host name (RFC 6066 §3: no IP literals),
// so the destination IP is encoded as one label under a reserved suffix:
//
//   IPv4 10.0.0.5          -> 10-0-0-5.ip4.hbone.mtun.invalid
//   IPv6 fd00::5           -> fd00-0000-0000-0000-0000-0000-0000-0005.ip6.hbone.mtun.invalid
//
// IPv6 is written out in full (8 groups of 4 lowercase hex digits) so that the label has
// no `--` (reserved for IDNA at positions 3-4) and decoding is unambiguous; 39 characters
// stay under the 63-character label limit. `.invalid` (RFC 6761 §6.4) never resolves, so
// the name cannot be mistaken for a real host. Only the IP is encoded: the certificate
// depends on the workload, not on the port, and the port travels in `:authority`.
// The name selects a certificate; it is not trusted for anything else (the client still
// checks the server's SPIFFE ID against the identities it expects).
import { canonicalIp } from './address.js';

const SNI_SUFFIX_V4 = '.ip4.hbone.mtun.invalid';
const SNI_SUFFIX_V6 = '.ip6.hbone.mtun.invalid';

export function sniForDestination(ip: string): string {
  const canonical = canonicalIp(ip);
  if (canonical === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`);
  if (!canonical.includes(':')) return canonical.replaceAll('.', '-') + SNI_SUFFIX_V4;
  return expandIpv6(canonical).join('-') + SNI_SUFFIX_V6;
}

/** The destination IP named by an SNI, or undefined if it is not one of ours. */
export function destinationFromSni(servername: string): string | undefined {
  const name = servername.toLowerCase();
  if (name.endsWith(SNI_SUFFIX_V4)) {
    const label = name.slice(0, -SNI_SUFFIX_V4.length);
    if (!/^[0-9]{1,3}(-[0-9]{1,3}){3}$/.test(label)) return undefined;
    return canonicalIp(label.replaceAll('-', '.'));
  }
  if (name.endsWith(SNI_SUFFIX_V6)) {
    const label = name.slice(0, -SNI_SUFFIX_V6.length);
    if (!/^[0-9a-f]{4}(-[0-9a-f]{4}){7}$/.test(label)) return undefined;
    return canonicalIp(label.replaceAll('-', ':'));
  }
  return undefined;
}

function expandIpv6(ip: string): string[] {
  // Node's canonical form may end in dotted IPv4 (`::ffff:1.2.3.4`): make that two groups.
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    const hi = ((a << 8) | b).toString(16);
    const lo = ((c << 8) | d).toString(16);
    text = `${text.slice(0, dotted.index)}${hi}:${lo}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...(tail === undefined ? [] : zeros), ...right].map((g) => g.padStart(4, '0'));
}
