// HPACK's Huffman code (RFC 7541 Appendix B): encode, and a strict decode that refuses EOS
// in a string and any padding that is not the code's most significant ones (at most 7
// bits), as §5.2 requires. Decoding walks the code tree a nibble at a time through tables
// built once at load.

/** [code, bit length] of each octet 0..255, then EOS (256). */
const CODES: readonly (readonly [number, number])[] = [
  [0x1ff8, 13],
  [0x7fffd8, 23],
  [0xfffffe2, 28],
  [0xfffffe3, 28],
  [0xfffffe4, 28],
  [0xfffffe5, 28],
  [0xfffffe6, 28],
  [0xfffffe7, 28],
  [0xfffffe8, 28],
  [0xffffea, 24],
  [0x3ffffffc, 30],
  [0xfffffe9, 28],
  [0xfffffea, 28],
  [0x3ffffffd, 30],
  [0xfffffeb, 28],
  [0xfffffec, 28],
  [0xfffffed, 28],
  [0xfffffee, 28],
  [0xfffffef, 28],
  [0xffffff0, 28],
  [0xffffff1, 28],
  [0xffffff2, 28],
  [0x3ffffffe, 30],
  [0xffffff3, 28],
  [0xffffff4, 28],
  [0xffffff5, 28],
  [0xffffff6, 28],
  [0xffffff7, 28],
  [0xffffff8, 28],
  [0xffffff9, 28],
  [0xffffffa, 28],
  [0xffffffb, 28],
  [0x14, 6],
  [0x3f8, 10],
  [0x3f9, 10],
  [0xffa, 12],
  [0x1ff9, 13],
  [0x15, 6],
  [0xf8, 8],
  [0x7fa, 11],
  [0x3fa, 10],
  [0x3fb, 10],
  [0xf9, 8],
  [0x7fb, 11],
  [0xfa, 8],
  [0x16, 6],
  [0x17, 6],
  [0x18, 6],
  [0x0, 5],
  [0x1, 5],
  [0x2, 5],
  [0x19, 6],
  [0x1a, 6],
  [0x1b, 6],
  [0x1c, 6],
  [0x1d, 6],
  [0x1e, 6],
  [0x1f, 6],
  [0x5c, 7],
  [0xfb, 8],
  [0x7ffc, 15],
  [0x20, 6],
  [0xffb, 12],
  [0x3fc, 10],
  [0x1ffa, 13],
  [0x21, 6],
  [0x5d, 7],
  [0x5e, 7],
  [0x5f, 7],
  [0x60, 7],
  [0x61, 7],
  [0x62, 7],
  [0x63, 7],
  [0x64, 7],
  [0x65, 7],
  [0x66, 7],
  [0x67, 7],
  [0x68, 7],
  [0x69, 7],
  [0x6a, 7],
  [0x6b, 7],
  [0x6c, 7],
  [0x6d, 7],
  [0x6e, 7],
  [0x6f, 7],
  [0x70, 7],
  [0x71, 7],
  [0x72, 7],
  [0xfc, 8],
  [0x73, 7],
  [0xfd, 8],
  [0x1ffb, 13],
  [0x7fff0, 19],
  [0x1ffc, 13],
  [0x3ffc, 14],
  [0x22, 6],
  [0x7ffd, 15],
  [0x3, 5],
  [0x23, 6],
  [0x4, 5],
  [0x24, 6],
  [0x5, 5],
  [0x25, 6],
  [0x26, 6],
  [0x27, 6],
  [0x6, 5],
  [0x74, 7],
  [0x75, 7],
  [0x28, 6],
  [0x29, 6],
  [0x2a, 6],
  [0x7, 5],
  [0x2b, 6],
  [0x76, 7],
  [0x2c, 6],
  [0x8, 5],
  [0x9, 5],
  [0x2d, 6],
  [0x77, 7],
  [0x78, 7],
  [0x79, 7],
  [0x7a, 7],
  [0x7b, 7],
  [0x7ffe, 15],
  [0x7fc, 11],
  [0x3ffd, 14],
  [0x1ffd, 13],
  [0xffffffc, 28],
  [0xfffe6, 20],
  [0x3fffd2, 22],
  [0xfffe7, 20],
  [0xfffe8, 20],
  [0x3fffd3, 22],
  [0x3fffd4, 22],
  [0x3fffd5, 22],
  [0x7fffd9, 23],
  [0x3fffd6, 22],
  [0x7fffda, 23],
  [0x7fffdb, 23],
  [0x7fffdc, 23],
  [0x7fffdd, 23],
  [0x7fffde, 23],
  [0xffffeb, 24],
  [0x7fffdf, 23],
  [0xffffec, 24],
  [0xffffed, 24],
  [0x3fffd7, 22],
  [0x7fffe0, 23],
  [0xffffee, 24],
  [0x7fffe1, 23],
  [0x7fffe2, 23],
  [0x7fffe3, 23],
  [0x7fffe4, 23],
  [0x1fffdc, 21],
  [0x3fffd8, 22],
  [0x7fffe5, 23],
  [0x3fffd9, 22],
  [0x7fffe6, 23],
  [0x7fffe7, 23],
  [0xffffef, 24],
  [0x3fffda, 22],
  [0x1fffdd, 21],
  [0xfffe9, 20],
  [0x3fffdb, 22],
  [0x3fffdc, 22],
  [0x7fffe8, 23],
  [0x7fffe9, 23],
  [0x1fffde, 21],
  [0x7fffea, 23],
  [0x3fffdd, 22],
  [0x3fffde, 22],
  [0xfffff0, 24],
  [0x1fffdf, 21],
  [0x3fffdf, 22],
  [0x7fffeb, 23],
  [0x7fffec, 23],
  [0x1fffe0, 21],
  [0x1fffe1, 21],
  [0x3fffe0, 22],
  [0x1fffe2, 21],
  [0x7fffed, 23],
  [0x3fffe1, 22],
  [0x7fffee, 23],
  [0x7fffef, 23],
  [0xfffea, 20],
  [0x3fffe2, 22],
  [0x3fffe3, 22],
  [0x3fffe4, 22],
  [0x7ffff0, 23],
  [0x3fffe5, 22],
  [0x3fffe6, 22],
  [0x7ffff1, 23],
  [0x3ffffe0, 26],
  [0x3ffffe1, 26],
  [0xfffeb, 20],
  [0x7fff1, 19],
  [0x3fffe7, 22],
  [0x7ffff2, 23],
  [0x3fffe8, 22],
  [0x1ffffec, 25],
  [0x3ffffe2, 26],
  [0x3ffffe3, 26],
  [0x3ffffe4, 26],
  [0x7ffffde, 27],
  [0x7ffffdf, 27],
  [0x3ffffe5, 26],
  [0xfffff1, 24],
  [0x1ffffed, 25],
  [0x7fff2, 19],
  [0x1fffe3, 21],
  [0x3ffffe6, 26],
  [0x7ffffe0, 27],
  [0x7ffffe1, 27],
  [0x3ffffe7, 26],
  [0x7ffffe2, 27],
  [0xfffff2, 24],
  [0x1fffe4, 21],
  [0x1fffe5, 21],
  [0x3ffffe8, 26],
  [0x3ffffe9, 26],
  [0xffffffd, 28],
  [0x7ffffe3, 27],
  [0x7ffffe4, 27],
  [0x7ffffe5, 27],
  [0xfffec, 20],
  [0xfffff3, 24],
  [0xfffed, 20],
  [0x1fffe6, 21],
  [0x3fffe9, 22],
  [0x1fffe7, 21],
  [0x1fffe8, 21],
  [0x7ffff3, 23],
  [0x3fffea, 22],
  [0x3fffeb, 22],
  [0x1ffffee, 25],
  [0x1ffffef, 25],
  [0xfffff4, 24],
  [0xfffff5, 24],
  [0x3ffffea, 26],
  [0x7ffff4, 23],
  [0x3ffffeb, 26],
  [0x7ffffe6, 27],
  [0x3ffffec, 26],
  [0x3ffffed, 26],
  [0x7ffffe7, 27],
  [0x7ffffe8, 27],
  [0x7ffffe9, 27],
  [0x7ffffea, 27],
  [0x7ffffeb, 27],
  [0xffffffe, 28],
  [0x7ffffec, 27],
  [0x7ffffed, 27],
  [0x7ffffee, 27],
  [0x7ffffef, 27],
  [0x7fffff0, 27],
  [0x3ffffee, 26],
  [0x3fffffff, 30],
];

/** Why a Huffman string is refused (the caller turns it into COMPRESSION_ERROR). */
export class HuffmanError extends Error {}

// The code tree: node 0 is the root; a child is a node id (>= 0) or ~symbol.
const children: [number, number][] = [[-1, -1]];
const depth: number[] = [0];
const allOnes: boolean[] = [true];
for (let sym = 0; sym <= 256; sym++) {
  const [code, len] = CODES[sym]!;
  let n = 0;
  for (let i = len - 1; i >= 0; i--) {
    const bit = (code >>> i) & 1;
    if (i === 0) {
      children[n]![bit] = ~sym;
      break;
    }
    if (children[n]![bit] === -1) {
      children.push([-1, -1]);
      depth.push(depth[n]! + 1);
      allOnes.push(allOnes[n]! && bit === 1);
      children[n]![bit] = children.length - 1;
    }
    n = children[n]![bit]!;
  }
}
const NIBBLE_NEXT = new Uint16Array(children.length * 16);
/** The symbol a (state, nibble) step emits: -1 none, -2 EOS (an error). */
const NIBBLE_SYM = new Int16Array(children.length * 16);
/** States where a string may end: the root, or ≤ 7 one-bits into a code (padding). */
const MAY_END = new Uint8Array(children.length);
for (let s = 0; s < children.length; s++) {
  MAY_END[s] = s === 0 || (allOnes[s]! && depth[s]! <= 7) ? 1 : 0;
  for (let nib = 0; nib < 16; nib++) {
    let n = s;
    let sym = -1;
    for (let i = 3; i >= 0; i--) {
      const child = children[n]![(nib >>> i) & 1]!;
      if (child >= 0) {
        n = child;
        continue;
      }
      if (~child === 256) {
        sym = -2;
        break;
      }
      sym = ~child;
      n = 0;
    }
    NIBBLE_NEXT[s * 16 + nib] = n;
    NIBBLE_SYM[s * 16 + nib] = sym;
  }
}

/** Decodes buf[start, end) as octets (latin1); refuses more than `maxOctets` of output. */
export function huffmanDecode(
  buf: Uint8Array,
  start: number,
  end: number,
  maxOctets: number,
): string {
  // The shortest code is 5 bits: the output is at most 8/5 of the input.
  const out = Buffer.allocUnsafe(Math.min(Math.ceil(((end - start) * 8) / 5), maxOctets + 1));
  let o = 0;
  let s = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    for (let half = 0; half < 2; half++) {
      const k = s * 16 + (half === 0 ? b >>> 4 : b & 15);
      const sym = NIBBLE_SYM[k]!;
      if (sym === -2) throw new HuffmanError('EOS inside a Huffman string');
      if (sym >= 0) {
        if (o >= maxOctets)
          throw new HuffmanError(`Huffman string longer than ${maxOctets} octets`);
        out[o++] = sym;
      }
      s = NIBBLE_NEXT[k]!;
    }
  }
  if (!MAY_END[s]) throw new HuffmanError('invalid Huffman padding');
  return out.toString('latin1', 0, o);
}

/** The encoded length in octets of `text` (octets as latin1), to choose Huffman only when
 *  it is shorter. */
export function huffmanLength(text: string): number {
  let bits = 0;
  for (let i = 0; i < text.length; i++) bits += CODES[text.charCodeAt(i) & 0xff]![1];
  return Math.ceil(bits / 8);
}

/** Writes the code of `text` (octets as latin1) at `offset`; returns the offset after it. */
export function huffmanEncodeInto(text: string, out: Uint8Array, offset: number): number {
  let o = offset;
  let acc = 0; // the bits of the octet being filled
  let bits = 0; // how many (< 8)
  for (let i = 0; i < text.length; i++) {
    const [code, len] = CODES[text.charCodeAt(i) & 0xff]!;
    let rest = len;
    while (rest > 0) {
      const take = rest < 8 - bits ? rest : 8 - bits;
      rest -= take;
      acc = (acc << take) | ((code >>> rest) & ((1 << take) - 1));
      bits += take;
      if (bits === 8) {
        out[o++] = acc;
        acc = 0;
        bits = 0;
      }
    }
  }
  // Padding: the most significant bits of EOS, all ones.
  if (bits > 0) out[o++] = (acc << (8 - bits)) | ((1 << (8 - bits)) - 1);
  return o;
}

export function huffmanEncode(text: string): Buffer {
  const out = Buffer.allocUnsafe(huffmanLength(text));
  huffmanEncodeInto(text, out, 0);
  return out;
}
