// Reads what tcpdump -w wrote (classic pcap, Ethernet, IPv4/TCP) into plain records, so a
// test can say which ports carried the traffic and what the payloads started with.
export interface TcpPacket {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly payload: Buffer;
}

const LINKTYPE_ETHERNET = 1;

export function parsePcap(file: Buffer): TcpPacket[] {
  if (file.length < 24) return [];
  const magic = file.readUInt32LE(0);
  // µs or ns timestamps, written in this machine's byte order (little-endian here).
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d)
    throw new Error(`not a little-endian pcap file (magic ${magic.toString(16)})`);
  const linktype = file.readUInt32LE(20);
  if (linktype !== LINKTYPE_ETHERNET) throw new Error(`unexpected link type ${linktype}`);
  const out: TcpPacket[] = [];
  for (let off = 24; off + 16 <= file.length; ) {
    const caplen = file.readUInt32LE(off + 8);
    const frame = file.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    const p = tcpOf(frame);
    if (p) out.push(p);
  }
  return out;
}

function tcpOf(frame: Buffer): TcpPacket | undefined {
  if (frame.length < 14 + 20 || frame.readUInt16BE(12) !== 0x0800) return undefined;
  const ip = frame.subarray(14);
  const ihl = (ip[0]! & 0x0f) * 4;
  if (ip[9] !== 6) return undefined; // not TCP
  const total = Math.min(ip.readUInt16BE(2), ip.length);
  const tcp = ip.subarray(ihl, total);
  if (tcp.length < 20) return undefined;
  const doff = (tcp[12]! >> 4) * 4;
  return {
    src: [...ip.subarray(12, 16)].join('.'),
    dst: [...ip.subarray(16, 20)].join('.'),
    sport: tcp.readUInt16BE(0),
    dport: tcp.readUInt16BE(2),
    payload: tcp.subarray(doff),
  };
}

/** A TLS record header: handshake (22) or application data (23), version 3.x. */
export function startsLikeTls(payload: Buffer): boolean {
  return payload.length >= 5 && (payload[0] === 22 || payload[0] === 23) && payload[1] === 3;
}
