// HPACK (RFC 7541) for the HBONE engine of issue 16: a strict, bounded decoder and a small
// encoder. Our own, on measured grounds: the only strict npm implementation (hpack.js,
// unchanged since 2016) has no limit on header-list or string size inside its decode loop,
// accepts a table-size update after a field, and its encoder never announces a shrunk
// table (the evaluation is in the closing note of the stop that added this file). Header
// values are octets, kept as latin1 strings so that no byte is lost or replaced.
//
// Limits, each refused with a CompressionError (a connection error, COMPRESSION_ERROR, RFC
// 9113 §4.3): integers above 2^31-1 or longer than 5 continuation octets, strings longer
// than maxStringOctets, a header list above maxHeaderListBytes (§6.5.2 sizes: name + value
// + 32, counted as it is decoded, so a small block that expands is refused early), a table
// size update above our SETTINGS_HEADER_TABLE_SIZE or after the first field, index 0 or out
// of range, truncated input, bad Huffman.
import { HuffmanError, huffmanDecode, huffmanEncodeInto, huffmanLength } from './huffman.js';

export type HeaderField = readonly [name: string, value: string];

/** RFC 7541 Appendix A. */
export const STATIC_TABLE: readonly HeaderField[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** A header block HPACK refuses: the connection ends with COMPRESSION_ERROR. */
export class CompressionError extends Error {
  readonly code = 'COMPRESSION_ERROR';
}

const entrySize = (f: HeaderField) => f[0].length + f[1].length + 32;

/** The dynamic table (§2.3.2, §4): newest first, evicted from the end. */
class DynamicTable {
  readonly entries: HeaderField[] = [];
  size = 0;
  constructor(public maxSize: number) {}

  add(field: HeaderField): void {
    const size = entrySize(field);
    this.#evictTo(this.maxSize - size);
    // An entry larger than the table empties it and is not added (§4.4).
    if (size <= this.maxSize) {
      this.entries.unshift(field);
      this.size += size;
    }
  }

  resize(maxSize: number): void {
    this.maxSize = maxSize;
    this.#evictTo(maxSize);
  }

  #evictTo(limit: number): void {
    while (this.entries.length > 0 && this.size > Math.max(0, limit)) {
      this.size -= entrySize(this.entries.pop()!);
    }
  }
}

export interface DecoderLimits {
  /** Our SETTINGS_HEADER_TABLE_SIZE: the largest table the peer's encoder may use. */
  readonly maxTableBytes?: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2 sizes). */
  readonly maxHeaderListBytes?: number;
  readonly maxStringOctets?: number;
}

export class Decoder {
  readonly #table: DynamicTable;
  readonly #settingsMax: number;
  readonly #maxList: number;
  readonly #maxString: number;
  #buf: Uint8Array = new Uint8Array(0);
  #p = 0;

  constructor(limits: DecoderLimits = {}) {
    this.#settingsMax = limits.maxTableBytes ?? 4096;
    this.#table = new DynamicTable(this.#settingsMax);
    this.#maxList = limits.maxHeaderListBytes ?? 16 * 1024;
    this.#maxString = limits.maxStringOctets ?? 8 * 1024;
  }

  /** The dynamic table, newest first, and its size (for tests and the config dump). */
  get table(): { readonly entries: readonly HeaderField[]; readonly size: number } {
    return { entries: this.#table.entries, size: this.#table.size };
  }

  /** Decodes one complete header block. A refused block leaves the decoder unusable
   *  (its table may be half-updated): the connection must end, as RFC 9113 requires. */
  decode(block: Uint8Array): HeaderField[] {
    this.#buf = block;
    this.#p = 0;
    const out: HeaderField[] = [];
    let listBytes = 0;
    while (this.#p < block.length) {
      const b = block[this.#p]!;
      let field: HeaderField;
      if (b & 0x80) {
        field = this.#indexed(this.#int(7)); // §6.1
      } else if (b & 0x40) {
        field = this.#literal(6); // §6.2.1, with incremental indexing
        this.#table.add(field);
      } else if (b & 0x20) {
        // §6.3: only at the start of a block (§4.2), never above our setting.
        if (out.length > 0) throw new CompressionError('table size update after a header field');
        const size = this.#int(5);
        if (size > this.#settingsMax)
          throw new CompressionError(
            `table size update to ${size} above SETTINGS_HEADER_TABLE_SIZE ${this.#settingsMax}`,
          );
        this.#table.resize(size);
        continue;
      } else {
        field = this.#literal(4); // §6.2.2 without indexing, §6.2.3 never indexed
      }
      listBytes += entrySize(field);
      if (listBytes > this.#maxList)
        throw new CompressionError(`header list larger than ${this.#maxList} bytes`);
      out.push(field);
    }
    this.#buf = new Uint8Array(0);
    return out;
  }

  #indexed(index: number): HeaderField {
    if (index === 0) throw new CompressionError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const field = this.#table.entries[index - STATIC_TABLE.length - 1];
    if (!field) throw new CompressionError(`index ${index} beyond the tables`);
    return field;
  }

  #literal(prefix: number): HeaderField {
    const index = this.#int(prefix);
    const name = index === 0 ? this.#string() : this.#indexed(index)[0];
    return [name, this.#string()];
  }

  /** §5.1: a prefix integer, at most 2^31-1 and 5 continuation octets. */
  #int(prefix: number): number {
    const buf = this.#buf;
    if (this.#p >= buf.length) throw new CompressionError('truncated integer');
    const max = (1 << prefix) - 1;
    let value = buf[this.#p++]! & max;
    if (value < max) return value;
    for (let shift = 0; ; shift += 7) {
      if (shift > 28) throw new CompressionError('integer longer than 5 continuation octets');
      if (this.#p >= buf.length) throw new CompressionError('truncated integer');
      const b = buf[this.#p++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
    }
    if (value > 0x7fffffff) throw new CompressionError('integer above 2^31-1');
    return value;
  }

  /** §5.2: a string literal, raw or Huffman, as octets. */
  #string(): string {
    const buf = this.#buf;
    if (this.#p >= buf.length) throw new CompressionError('truncated string');
    const huffman = (buf[this.#p]! & 0x80) !== 0;
    const length = this.#int(7);
    if (length > buf.length - this.#p) throw new CompressionError('truncated string');
    const start = this.#p;
    this.#p += length;
    if (!huffman) {
      if (length > this.#maxString)
        throw new CompressionError(`string longer than ${this.#maxString} octets`);
      return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString(
        'latin1',
        start,
        start + length,
      );
    }
    try {
      return huffmanDecode(buf, start, start + length, this.#maxString);
    } catch (err) {
      if (err instanceof HuffmanError) throw new CompressionError(err.message);
      throw err;
    }
  }
}

/** §5.1 encoding of `value` after the bits `first` in a `prefix`-bit prefix, at `o`;
 *  returns the offset after it. */
function writeInt(out: Buffer, o: number, first: number, prefix: number, value: number): number {
  const max = (1 << prefix) - 1;
  if (value < max) {
    out[o++] = first | value;
    return o;
  }
  out[o++] = first | max;
  let rest = value - max;
  while (rest >= 128) {
    out[o++] = (rest % 128) | 128;
    rest = Math.floor(rest / 128);
  }
  out[o++] = rest;
  return o;
}

/** §5.2: Huffman only when it is shorter (it usually is for header text). */
function writeString(out: Buffer, o: number, text: string): number {
  const huffman = huffmanLength(text);
  if (huffman < text.length)
    return huffmanEncodeInto(text, out, writeInt(out, o, 0x80, 7, huffman));
  o = writeInt(out, o, 0, 7, text.length);
  return o + out.write(text, o, 'latin1');
}

/** Finds a static entry: the index of the same field, else of the same name, else 0. */
const STATIC_FIELD = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  STATIC_FIELD.set(`${name}\u0000${value}`, i + 1);
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
});

/**
 * The encoder HBONE needs: every field is the static table's entry, or a literal without
 * indexing (§6.2.2) with a static name index where there is one. It keeps no dynamic table,
 * so it never depends on the peer's table size; a peer that lowers
 * SETTINGS_HEADER_TABLE_SIZE is answered with a size update to 0 in the next block, as
 * §4.2 requires of an encoder that acknowledges the change.
 */
export class Encoder {
  #announceZero = false;

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed. */
  peerTableSize(_bytes: number): void {
    this.#announceZero = true;
  }

  encode(fields: readonly HeaderField[]): Buffer {
    // Each field: at most 6 octets of index, and per string 6 of length plus its octets
    // (Huffman is used only when shorter).
    let bound = 1;
    for (const [name, value] of fields) bound += 18 + name.length + value.length;
    const out = Buffer.allocUnsafe(bound);
    let o = 0;
    if (this.#announceZero) {
      o = writeInt(out, o, 0x20, 5, 0);
      this.#announceZero = false;
    }
    for (const [name, value] of fields) {
      const full = STATIC_FIELD.get(`${name}\u0000${value}`);
      if (full) {
        o = writeInt(out, o, 0x80, 7, full);
        continue;
      }
      const nameIndex = STATIC_NAME.get(name) ?? 0;
      o = writeInt(out, o, 0x00, 4, nameIndex);
      if (nameIndex === 0) o = writeString(out, o, name);
      o = writeString(out, o, value);
    }
    return out.subarray(0, o);
  }
}
