// RFC 9113 conformance of the own engine's H2Session (hbone/h2/session.ts), part 2 of 4:
// HEADERS and header blocks. A table of violations, each with its answer (runRows in
// h2-helpers.ts): stream ids and HEADERS framing, CONTINUATION and the HPACK limits,
// malformed requests (§8), push and concurrency, and what a client session makes of a
// malformed response.
import t from 'tap';
import {
  ErrorCode,
  Flag,
  FrameType,
  frame,
  goawayFrame,
  rstStreamFrame,
  windowUpdateFrame,
} from '../../hbone/h2/frame.js';
import type { HeaderField } from '../../hbone/h2/hpack.js';
import {
  CONNECT,
  connect,
  data,
  open,
  ping,
  priority,
  type Row,
  request,
  runRows,
  status,
} from './h2-helpers.js';

const E = ErrorCode;
const T = FrameType;

const ROWS: Row[] = [
  // --- HEADERS and stream ids (§5.1.1, §6.2) -----------------------------------------------
  {
    name: 'HEADERS with an even stream id from a client',
    act: (c) => open(c, 2),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'HEADERS on stream 0',
    act: (c) => open(c, 0),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'trailers without END_STREAM',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(c.peer.headers(1, [['x-trailer', '1']])),
    expect: { rst: [1, E.PROTOCOL_ERROR] },
  },
  {
    name: 'trailers with a pseudo-header',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(c.peer.headers(1, [[':path', '/']], { endStream: true })),
    expect: { rst: [1, E.PROTOCOL_ERROR] },
  },
  {
    name: 'trailers with END_STREAM end the request',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(c.peer.headers(1, [['x-trailer', '1']], { endStream: true })),
    expect: 'ignored',
  },
  {
    name: 'HEADERS padding longer than the frame',
    act: (c) => {
      const block = c.peer.encoder.encode(CONNECT);
      const payload = Buffer.concat([Buffer.from([block.length + 1]), block]);
      c.peer.send(frame(T.HEADERS, Flag.END_HEADERS | Flag.PADDED, 1, payload));
    },
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'padded HEADERS without a pad length',
    act: (c) => c.peer.send(frame(T.HEADERS, Flag.END_HEADERS | Flag.PADDED, 1, Buffer.alloc(0))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'HEADERS with the PRIORITY flag and fewer than 5 bytes',
    act: (c) => c.peer.send(frame(T.HEADERS, Flag.END_HEADERS | Flag.PRIORITY, 1, Buffer.alloc(3))),
    // Regression: the session used to answer PROTOCOL_ERROR; a frame too small for its
    // mandatory fields is a FRAME_SIZE_ERROR (§4.2).
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'padded HEADERS with PRIORITY, well formed',
    act: (c) => {
      const block = c.peer.encoder.encode(CONNECT);
      const payload = Buffer.concat([Buffer.from([3]), Buffer.alloc(5), block, Buffer.alloc(3)]);
      c.peer.send(frame(T.HEADERS, Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY, 1, payload));
    },
    expect: 'ignored',
  },
  // --- header blocks: CONTINUATION and HPACK (§4.3, §6.10) ---------------------------------
  {
    name: 'CONTINUATION without HEADERS',
    act: (c) => c.peer.send(frame(T.CONTINUATION, Flag.END_HEADERS, 1, Buffer.alloc(0))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'CONTINUATION after END_HEADERS',
    act: (c) => {
      open(c, 1);
      c.peer.send(frame(T.CONTINUATION, Flag.END_HEADERS, 1, Buffer.alloc(0)));
    },
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'CONTINUATION on another stream',
    act: (c) => {
      c.peer.send(c.peer.headers(1, CONNECT, { endHeaders: false }));
      c.peer.send(frame(T.CONTINUATION, Flag.END_HEADERS, 3, Buffer.alloc(0)));
    },
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  ...(
    [
      ['PING', () => ping()],
      ['DATA', () => data(1, 1)],
      ['PRIORITY', () => priority(1)],
      ['an unknown frame type', () => frame(0x42, 0, 0, Buffer.alloc(4))],
      ['HEADERS', () => frame(T.HEADERS, Flag.END_HEADERS, 3, Buffer.from([0x82]))],
      ['WINDOW_UPDATE', () => windowUpdateFrame(0, 1)],
    ] as const
  ).map(
    ([what, f]): Row => ({
      name: `${what} inside a header block`,
      act: (c) => {
        c.peer.send(c.peer.headers(1, CONNECT, { endHeaders: false }));
        c.peer.send(f());
      },
      expect: { goaway: E.PROTOCOL_ERROR },
    }),
  ),
  {
    name: 'a header block in 32 CONTINUATIONs',
    act: (c) => {
      const block = c.peer.encoder.encode(CONNECT);
      const parts = [frame(T.HEADERS, 0, 1, block.subarray(0, 1))];
      for (let i = 0; i < 31; i++) parts.push(frame(T.CONTINUATION, 0, 1, Buffer.alloc(0)));
      parts.push(frame(T.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(1)));
      c.peer.send(...parts);
    },
    expect: 'ignored',
  },
  {
    name: 'a CONTINUATION flood (33 frames)',
    act: (c) => {
      const parts = [c.peer.headers(1, CONNECT, { endHeaders: false })];
      for (let i = 0; i < 33; i++) parts.push(frame(T.CONTINUATION, 0, 1, Buffer.from([0x82])));
      c.peer.send(...parts);
    },
    expect: { goaway: E.ENHANCE_YOUR_CALM },
  },
  {
    name: 'a header block above 4 x SETTINGS_MAX_HEADER_LIST_SIZE (1024)',
    act: (c) =>
      c.peer.send(
        frame(T.HEADERS, 0, 1, Buffer.alloc(3000, 0x82)),
        frame(T.CONTINUATION, 0, 1, Buffer.alloc(1097, 0x82)),
      ),
    expect: { goaway: E.ENHANCE_YOUR_CALM },
  },
  {
    name: 'a header block of exactly 4 x SETTINGS_MAX_HEADER_LIST_SIZE is read',
    act: (c) => {
      // 4096 octets that decode small: table size updates to 0 (§6.3, only at the start of
      // a block), then CONNECT's fields.
      const head = c.peer.encoder.encode(CONNECT);
      const block = Buffer.concat([Buffer.alloc(4096 - head.length, 0x20), head]);
      c.peer.send(frame(T.HEADERS, 0, 1, block.subarray(0, 2000)));
      c.peer.send(frame(T.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(2000)));
    },
    expect: 'ignored',
  },
  {
    name: 'an HPACK error (index 0)',
    act: (c) => c.peer.send(frame(T.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x80]))),
    expect: { goaway: E.COMPRESSION_ERROR },
  },
  {
    name: 'an HPACK error in a block for a closed stream',
    setup: (c) => {
      open(c, 1);
      c.peer.send(rstStreamFrame(1, E.CANCEL));
    },
    act: (c) =>
      c.peer.send(frame(T.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.from([0xff]))),
    expect: { goaway: E.COMPRESSION_ERROR },
  },
  {
    name: 'a decoded header list above the HPACK limit (4 x 1024)',
    act: (c) => c.peer.send(c.peer.headers(1, request(['x-big', 'a'.repeat(4200)]))),
    expect: { goaway: E.COMPRESSION_ERROR },
  },
  // --- malformed requests (§8.1.1, §8.2, §8.3, §8.5): RST_STREAM(PROTOCOL_ERROR) -----------
  ...(
    [
      ['an uppercase header name', request(['X-Upper', '1'])],
      ['a connection-specific header (connection)', request(['connection', 'close'])],
      [
        'a connection-specific header (transfer-encoding)',
        request(['transfer-encoding', 'chunked']),
      ],
      ['a connection-specific header (upgrade)', request(['upgrade', 'h2c'])],
      ['te other than trailers', request(['te', 'gzip'])],
      ['CONNECT with :path', [...CONNECT, [':path', '/']]],
      ['CONNECT with :scheme', [...CONNECT, [':scheme', 'https']]],
      ['CONNECT without :authority', [[':method', 'CONNECT']]],
      ['no :method', [[':authority', 'a:1']]],
      [
        'a pseudo-header after a regular one',
        [
          [':method', 'CONNECT'],
          ['x-a', '1'],
          [':authority', 'a:1'],
        ],
      ],
      ['an unknown pseudo-header', [...CONNECT, [':protocol', 'websocket']]],
      ['a response pseudo-header in a request', [...CONNECT, [':status', '200']]],
      [':method twice', [...CONNECT, [':method', 'CONNECT']]],
      ['a header value with LF', request(['x-a', 'b\nc'])],
      ['a header value with NUL', request(['x-a', 'b\0c'])],
      ['an empty header name', request(['', 'x'])],
      [
        'GET without :path',
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', 'a:1'],
        ],
      ],
    ] as Array<[string, HeaderField[]]>
  ).map(
    ([what, fields]): Row => ({
      name: `malformed request: ${what}`,
      act: (c) => open(c, 1, false, fields),
      expect: { rst: [1, E.PROTOCOL_ERROR] },
    }),
  ),
  {
    name: 'te: trailers is allowed',
    act: (c) => open(c, 1, false, request(['te', 'trailers'])),
    expect: 'ignored',
  },
  // --- push and concurrency (§5.1.2, §8.4) -------------------------------------------------
  {
    name: 'PUSH_PROMISE from a client',
    setup: (c) => open(c, 1),
    act: (c) =>
      c.peer.send(frame(T.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.from([0, 0, 0, 2, 0x82]))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'client role: PUSH_PROMISE though push is disabled',
    role: 'client',
    setup: (c) => connect(c),
    act: (c) =>
      c.peer.send(frame(T.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.from([0, 0, 0, 2, 0x82]))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'SETTINGS_MAX_CONCURRENT_STREAMS (4) exceeded',
    setup: (c) => {
      for (const id of [1, 3, 5, 7]) open(c, id);
    },
    act: (c) => open(c, 9),
    expect: { rst: [9, E.REFUSED_STREAM] },
  },
  // --- client role -------------------------------------------------------------------------
  {
    name: 'client role: a response on an idle stream',
    role: 'client',
    setup: (c) => connect(c),
    act: (c) => status(c, 3),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'client role: HEADERS on an even stream',
    role: 'client',
    act: (c) => status(c, 2),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'client role: DATA before the response',
    role: 'client',
    setup: (c) => connect(c),
    act: (c) => c.peer.send(data(1, 10)),
    expect: { rst: [1, E.PROTOCOL_ERROR] },
  },
  {
    name: 'client role: DATA on an idle stream',
    role: 'client',
    setup: (c) => connect(c),
    act: (c) => c.peer.send(data(3, 10)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  ...(
    [
      ['without :status', [['x-a', '1']]],
      ['with :status 101', [[':status', '101']]],
      ['with :status 20', [[':status', '20']]],
      [
        'with a request pseudo-header',
        [
          [':status', '200'],
          [':method', 'GET'],
        ],
      ],
      [
        'with an uppercase name',
        [
          [':status', '200'],
          ['X-A', '1'],
        ],
      ],
    ] as Array<[string, HeaderField[]]>
  ).map(
    ([what, fields]): Row => ({
      name: `client role: a response ${what}`,
      role: 'client',
      setup: (c) => connect(c),
      act: (c) => c.peer.send(c.peer.headers(1, fields)),
      expect: { rst: [1, E.PROTOCOL_ERROR] },
    }),
  ),
  {
    name: 'client role: a 1xx with END_STREAM',
    role: 'client',
    setup: (c) => connect(c),
    act: (c) => status(c, 1, '103', true),
    expect: { rst: [1, E.PROTOCOL_ERROR] },
  },
  {
    name: 'client role: a 1xx, then 200',
    role: 'client',
    setup: (c) => connect(c),
    act: (c) => {
      status(c, 1, '100');
      status(c, 1, '200');
    },
    expect: 'ignored',
  },
  {
    name: 'client role: GOAWAY raising its last stream id',
    role: 'client',
    setup: (c) => {
      connect(c);
      status(c, 1);
    },
    act: (c) => c.peer.send(goawayFrame(1, E.NO_ERROR), goawayFrame(3, E.NO_ERROR)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
];

t.test('HEADERS and header blocks: violations and their answers', (t) => runRows(t, ROWS));
