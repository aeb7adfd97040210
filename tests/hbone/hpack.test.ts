// HPACK (hbone/h2/hpack.ts) against RFC 7541 Appendix C (every example: the header lists
// and the dynamic table after each block, raw and Huffman), hostile header blocks (each
// refused with COMPRESSION_ERROR, none crashes, hangs or expands without bound), and
// properties checked by fast-check: what the encoder writes decodes to the same fields,
// and random or mutated blocks only ever decode or fail with CompressionError.
import fc from 'fast-check';
import t from 'tap';
import {
  CompressionError,
  Decoder,
  Encoder,
  type HeaderField,
  STATIC_TABLE,
} from '../../hbone/h2/hpack.js';
import { huffmanDecode, huffmanEncode } from '../../hbone/h2/huffman.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const REQ1: HeaderField[] = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/'],
  [':authority', 'www.example.com'],
];
const REQ2: HeaderField[] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: HeaderField[] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/index.html'],
  [':authority', 'www.example.com'],
  ['custom-key', 'custom-value'],
];
const RES1: HeaderField[] = [
  [':status', '302'],
  ['cache-control', 'private'],
  ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
  ['location', 'https://www.example.com'],
];
const RES2: HeaderField[] = [[':status', '307'], ...RES1.slice(1)];
const RES3: HeaderField[] = [
  [':status', '200'],
  ['cache-control', 'private'],
  ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
  ['location', 'https://www.example.com'],
  ['content-encoding', 'gzip'],
  ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
];
const T_REQ = [
  { size: 57, entries: [[':authority', 'www.example.com']] },
  {
    size: 110,
    entries: [
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
  },
  {
    size: 164,
    entries: [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
  },
];
const T_RES = [
  { size: 222, entries: [RES1[3], RES1[2], RES1[1], RES1[0]] },
  { size: 222, entries: [[':status', '307'], RES1[3], RES1[2], RES1[1]] },
  { size: 215, entries: [RES3[5], RES3[4], RES3[2]] },
];

interface Step {
  bytes: Buffer;
  fields: HeaderField[];
  table: { size: number; entries: unknown[] };
}
/** RFC 7541 Appendix C: one decoder per sequence (one connection). */
const SEQUENCES: [string, number, Step[]][] = [
  [
    'C.2.1 literal with indexing',
    4096,
    [
      {
        bytes: hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'),
        fields: [['custom-key', 'custom-header']],
        table: { size: 55, entries: [['custom-key', 'custom-header']] },
      },
    ],
  ],
  [
    'C.2.2 literal without indexing',
    4096,
    [
      {
        bytes: hex('040c 2f73 616d 706c 652f 7061 7468'),
        fields: [[':path', '/sample/path']],
        table: { size: 0, entries: [] },
      },
    ],
  ],
  [
    'C.2.3 literal never indexed',
    4096,
    [
      {
        bytes: hex('1008 7061 7373 776f 7264 0673 6563 7265 74'),
        fields: [['password', 'secret']],
        table: { size: 0, entries: [] },
      },
    ],
  ],
  [
    'C.2.4 indexed',
    4096,
    [{ bytes: hex('82'), fields: [[':method', 'GET']], table: { size: 0, entries: [] } }],
  ],
  [
    'C.3 requests, raw',
    4096,
    [
      {
        bytes: hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'),
        fields: REQ1,
        table: T_REQ[0]!,
      },
      { bytes: hex('8286 84be 5808 6e6f 2d63 6163 6865'), fields: REQ2, table: T_REQ[1]! },
      {
        bytes: hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'),
        fields: REQ3,
        table: T_REQ[2]!,
      },
    ],
  ],
  [
    'C.4 requests, Huffman',
    4096,
    [
      { bytes: hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'), fields: REQ1, table: T_REQ[0]! },
      { bytes: hex('8286 84be 5886 a8eb 1064 9cbf'), fields: REQ2, table: T_REQ[1]! },
      {
        bytes: hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'),
        fields: REQ3,
        table: T_REQ[2]!,
      },
    ],
  ],
  [
    'C.5 responses, raw, 256-byte table',
    256,
    [
      {
        bytes: hex(
          '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        ),
        fields: RES1,
        table: T_RES[0]!,
      },
      { bytes: hex('4803 3330 37c1 c0bf'), fields: RES2, table: T_RES[1]! },
      {
        bytes: hex(
          '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
        ),
        fields: RES3,
        table: T_RES[2]!,
      },
    ],
  ],
  [
    'C.6 responses, Huffman, 256-byte table',
    256,
    [
      {
        bytes: hex(
          '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        ),
        fields: RES1,
        table: T_RES[0]!,
      },
      { bytes: hex('4883 640e ffc1 c0bf'), fields: RES2, table: T_RES[1]! },
      {
        bytes: hex(
          '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
        ),
        fields: RES3,
        table: T_RES[2]!,
      },
    ],
  ],
];

t.test('RFC 7541 Appendix C: fields and the dynamic table after each block', async (t) => {
  for (const [name, tableBytes, steps] of SEQUENCES) {
    const d = new Decoder({ maxTableBytes: tableBytes });
    steps.forEach((step, i) => {
      t.same(d.decode(step.bytes), step.fields, `${name}, block ${i + 1}: fields`);
      t.same(d.table, step.table, `${name}, block ${i + 1}: dynamic table`);
    });
  }
});

t.test('Huffman: the RFC strings both ways', async (t) => {
  const rows: [string, string][] = [
    ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
    ['no-cache', 'a8eb 1064 9cbf'],
    ['custom-key', '25a8 49e9 5ba9 7d7f'],
    ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
    ['302', '6402'],
    ['private', 'aec3 771a 4b'],
    ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
    ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
  ];
  for (const [text, code] of rows) {
    t.equal(huffmanEncode(text).toString('hex'), hex(code).toString('hex'), text);
    const h = hex(code);
    t.equal(huffmanDecode(h, 0, h.length, 1000), text);
  }
});

t.test('hostile blocks are refused with COMPRESSION_ERROR', async (t) => {
  const int = (first: number, prefix: number, v: number) => {
    const out: number[] = [];
    const max = (1 << prefix) - 1;
    if (v < max) return [first | v];
    out.push(first | max);
    let rest = v - max;
    while (rest >= 128) {
      out.push((rest % 128) | 128);
      rest = Math.floor(rest / 128);
    }
    out.push(rest);
    return out;
  };
  const cat = (...parts: (number[] | Buffer | string)[]) =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
  const rows: [string, Buffer, RegExp][] = [
    ['truncated integer', hex('ff'), /truncated integer/],
    ['integer continuation then end', hex('ff80'), /truncated integer/],
    ['integer above 2^31-1', hex('ff8080808010'), /2\^31|continuation/],
    ['integer of 2^60', cat([0xff], Buffer.alloc(8, 0xff), [0x0f]), /continuation/],
    [
      'integer padded with 100k zero continuations',
      cat([0x3f], Buffer.alloc(100_000, 0x80), [0x00, 0x82]),
      /continuation/,
    ],
    [
      'raw string length 2^31+126',
      cat([0x00], int(0x00, 7, 2 ** 31 + 126), 'abc'),
      /2\^31|continuation/,
    ],
    [
      'Huffman string length 2^28, 3 bytes follow',
      cat([0x00], int(0x80, 7, 2 ** 28), 'abc'),
      /truncated string/,
    ],
    ['string shorter than its length', hex('04056162'), /truncated string/],
    ['Huffman padding of zeros', hex('048100'), /padding/],
    ['Huffman padding longer than 7 bits', hex('048207ff'), /padding|EOS/],
    ['EOS inside a Huffman string', hex('0484ffffffff'), /EOS/],
    ['table size update above SETTINGS', cat(int(0x20, 5, 4097), [0x82]), /above SETTINGS/],
    ['table size update after a field', hex('8220'), /after a header field/],
    ['index 0', hex('80'), /index 0/],
    ['index beyond the tables', hex('be'), /beyond/],
    ['name index beyond the tables', cat(int(0x00, 4, 70), [0x01, 0x61]), /beyond/],
    [
      'raw string longer than the limit',
      cat([0x00, 0x01, 0x61], int(0x00, 7, 9000), Buffer.alloc(9000, 0x61)),
      /longer than/,
    ],
    // 20 KB that expands to 64 MB of header list: refused as it grows, not after.
    [
      'header-list bomb',
      cat(
        [0x40, 0x01, 0x78],
        int(0x00, 7, 4000),
        Buffer.alloc(4000, 0x61),
        Buffer.alloc(16_000, 0xbe),
      ),
      /header list larger/,
    ],
  ];
  for (const [name, block, why] of rows) {
    const started = performance.now();
    t.throws(
      () => new Decoder().decode(block),
      { name: 'Error', code: 'COMPRESSION_ERROR', message: why },
      name,
    );
    t.ok(performance.now() - started < 200, `${name}: refused at once`);
  }
  t.same(new Decoder().decode(Buffer.alloc(0)), [], 'an empty block is no error');
  t.same(
    new Decoder().decode(hex('0402fffe')),
    [[':path', '\xff\xfe']],
    'octets are kept as they are',
  );
});

t.test('an HBONE CONNECT block round-trips and stays small', async (t) => {
  const fields: HeaderField[] = [
    [':method', 'CONNECT'],
    [':authority', '10.0.0.5:8080'],
    ['forwarded', 'for="10.0.1.7:43210";host=reviews.shop.svc.cluster.local'],
    ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
    ['baggage', 'k8s.namespace.name=shop,k8s.deployment.name=web,service.name=web'],
  ];
  const block = new Encoder().encode(fields);
  t.same(new Decoder().decode(block), fields);
  t.ok(block.length < 200, `${block.length} bytes`);
  const e = new Encoder();
  e.peerTableSize(0);
  const announced = e.encode([[':method', 'GET']]);
  t.equal(announced.toString('hex'), '2082', 'a size update to 0 first, once');
  t.equal(e.encode([[':method', 'GET']]).toString('hex'), '82');
});

/** A block either decodes or is refused with CompressionError: nothing else escapes. */
function decodesOrRefuses(block: Uint8Array): boolean {
  try {
    new Decoder().decode(block);
  } catch (err) {
    if (!(err instanceof CompressionError)) throw err;
  }
  return true;
}

t.test('properties (fast-check)', async (t) => {
  const octets = fc.string({
    unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
    maxLength: 200,
  });
  const field = fc.oneof(
    fc.tuple(fc.constantFrom(...STATIC_TABLE.map((f) => f[0])), octets),
    fc.tuple(fc.constantFrom('constructor', 'toString', '__proto__', 'x-custom', ''), octets),
    fc.tuple(octets, octets),
  );
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(fc.array(field, { maxLength: 20 }), (fields) => {
          const decoded = new Decoder({ maxHeaderListBytes: 1 << 20 }).decode(
            new Encoder().encode(fields),
          );
          return JSON.stringify(decoded) === JSON.stringify(fields);
        }),
        { numRuns: 3000 },
      ),
    'what the encoder writes decodes to the same fields',
  );
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
          return decodesOrRefuses(bytes);
        }),
        { numRuns: 20_000 },
      ),
    'random blocks decode or fail with CompressionError only',
  );
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(
          fc.array(field, { minLength: 1, maxLength: 8 }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 4,
          }),
          (fields, flips) => {
            const block = Buffer.from(new Encoder().encode(fields));
            for (const [at, value] of flips) block[at % block.length] = value;
            return decodesOrRefuses(block);
          },
        ),
        { numRuns: 10_000 },
      ),
    'mutated blocks decode or fail with CompressionError only',
  );
});
