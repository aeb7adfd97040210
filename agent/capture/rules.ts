// The capture rules (DESIGN.md §7), as pure text: one nat chain that mtun owns,
// MTUN-PREROUTING, reached by a single jump at the top of PREROUTING in the node's network
// namespace. For each mesh pod IP on the node, in this order (first match wins):
//   from the pod, to anything not local to the node  -> outbound capture (15001)
//   to the pod, port 15008                            -> inbound HBONE (15008)
//   to the pod, any other TCP port                    -> inbound plaintext (15006)
// The agent's own connections start in OUTPUT, not PREROUTING, so they are never captured:
// no socket marks are needed. deploy/iptables/mtun-redirect.sh renders exactly the same
// text (tests compare the two), so operators and the agent install identical rules.
import { isIP } from 'node:net';

export const CHAIN = 'MTUN-PREROUTING';
export const TABLE = 'nat';
export const PARENT = 'PREROUTING';

export type Family = 4 | 6;

export interface CapturePorts {
  readonly outbound: number;
  readonly inboundHbone: number;
  readonly inboundPlaintext: number;
}

/** The jump from PREROUTING into our chain: the only rule we own outside it. */
export const JUMP_SPEC: readonly string[] = [
  '-m',
  'comment',
  '--comment',
  'mtun: transparent capture',
  '-j',
  CHAIN,
];

/** The pod IPs of one family, sorted and without duplicates (stable text, cheap diff). */
export function podIps(ips: Iterable<string>, family: Family): string[] {
  return [...new Set([...ips].filter((ip) => isIP(ip) === family))].sort();
}

/** Rules of one pod IP, as iptables-save lines (no quoting needed but the comments'). */
function podRules(ip: string, family: Family, ports: CapturePorts): string[] {
  const host = `${ip}/${family === 4 ? 32 : 128}`;
  return [
    `-A ${CHAIN} -s ${host} -p tcp -m addrtype ! --dst-type LOCAL -m comment --comment "mtun: outbound" -j REDIRECT --to-ports ${ports.outbound}`,
    `-A ${CHAIN} -d ${host} -p tcp -m tcp --dport ${ports.inboundHbone} -m comment --comment "mtun: inbound hbone" -j REDIRECT --to-ports ${ports.inboundHbone}`,
    `-A ${CHAIN} -d ${host} -p tcp -m comment --comment "mtun: inbound plaintext" -j REDIRECT --to-ports ${ports.inboundPlaintext}`,
  ];
}

/** Input for `iptables-restore --noflush`: declaring the chain creates it or, if it
 *  exists, empties it, so the whole chain is replaced atomically and nothing else in the
 *  table is touched. Idempotent: the same pods give the same text and the same result. */
export function renderRestore(ips: readonly string[], family: Family, ports: CapturePorts): string {
  const lines = [`*${TABLE}`, `:${CHAIN} - [0:0]`];
  for (const ip of ips) lines.push(...podRules(ip, family, ports));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Splits one `iptables -S` line into arguments (double quotes with backslash escapes, as
 *  iptables prints comments). */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < line.length) cur += line[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = true;
      has = true;
    } else if (c === ' ' || c === '\t') {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else cur += c;
  }
  if (has || cur) out.push(cur);
  return out;
}

/** The rule specs (after `-A PREROUTING`) of every jump into our chain found in an
 *  `iptables -S PREROUTING` listing, whatever their comment: older or hand-made jumps to
 *  our chain are ours to remove, and nothing else is. */
export function jumpsToChain(listing: string): string[][] {
  const found: string[][] = [];
  for (const line of listing.split('\n')) {
    const args = splitRule(line.trim());
    if (args[0] !== '-A' || args[1] !== PARENT) continue;
    const j = args.indexOf('-j');
    if (j >= 0 && args[j + 1] === CHAIN && j + 2 === args.length) found.push(args.slice(2));
  }
  return found;
}
