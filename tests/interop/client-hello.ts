// What a TLS ClientHello says, read from the first payload of a captured connection: the
// extensions a wire test asserts on (server_name present or not, ALPN, versions offered).
// RFC 8446 §4.1.2; only what the tests need, and undefined for anything that is not one.
export interface ClientHello {
  readonly extensions: readonly number[];
  /** The server_name (0) host, or undefined when the extension is absent. */
  readonly sni: string | undefined;
  readonly alpn: readonly string[];
  /** supported_versions (43), e.g. ['TLS1.3']. */
  readonly versions: readonly string[];
}

const EXT_SNI = 0;
const EXT_ALPN = 16;
const EXT_VERSIONS = 43;

/** Parses a TLS record carrying a whole ClientHello (first data segment of a connection). */
export function parseClientHello(payload: Buffer): ClientHello | undefined {
  if (payload.length < 9 || payload[0] !== 22 || payload[5] !== 1) return undefined;
  const end = Math.min(payload.length, 5 + payload.readUInt16BE(3));
  let p = 9 + 2 + 32; // handshake header, legacy_version, random
  const skip = (lenBytes: 1 | 2) => {
    const n = lenBytes === 1 ? payload[p]! : payload.readUInt16BE(p);
    p += lenBytes + n;
  };
  skip(1); // legacy_session_id
  skip(2); // cipher_suites
  skip(1); // legacy_compression_methods
  if (p + 2 > end) return undefined;
  const extEnd = Math.min(end, p + 2 + payload.readUInt16BE(p));
  p += 2;
  const extensions: number[] = [];
  let sni: string | undefined;
  const alpn: string[] = [];
  const versions: string[] = [];
  while (p + 4 <= extEnd) {
    const type = payload.readUInt16BE(p);
    const len = payload.readUInt16BE(p + 2);
    const body = payload.subarray(p + 4, p + 4 + len);
    p += 4 + len;
    extensions.push(type);
    if (type === EXT_SNI && body.length >= 5)
      sni = body.subarray(5, 5 + body.readUInt16BE(3)).toString();
    if (type === EXT_ALPN)
      for (let q = 2; q < body.length; q += 1 + body[q]!)
        alpn.push(body.subarray(q + 1, q + 1 + body[q]!).toString());
    if (type === EXT_VERSIONS)
      for (let q = 1; q + 1 < body.length; q += 2) {
        const v = body.readUInt16BE(q);
        // GREASE values (0x?a?a) are skipped; 0x0304 is TLS 1.3.
        if ((v & 0x0f0f) !== 0x0a0a)
          versions.push(v === 0x0304 ? 'TLS1.3' : v === 0x0303 ? 'TLS1.2' : `0x${v.toString(16)}`);
      }
  }
  return { extensions, sni, alpn, versions };
}
