// RFC 9113 conformance of the own engine's H2Session (hbone/h2/session.ts), server and client
// role, driven over an in-memory pipe by a hand-written peer that writes raw frames; the
// session's answer is read off the wire. First a table of violations, each with its answer
// (GOAWAY with a code, RST_STREAM with a code, or ignored: the session stays usable, checked
// by a PING it must answer); then flow control both ways, GOAWAY, graceful close, and the
// stream semantics the splice relies on. Rows that show an engine bug keep the right
// expectation as a todo assertion ("engine bug: …") so the suite stays green until it is fixed.
import t, { type Test } from 'tap';
import {
  DEFAULT_MAX_FRAME,
  dataFrame,
  ErrorCode,
  errorCodeName,
  Flag,
  FrameType,
  frame,
  goawayFrame,
  PREFACE,
  pingFrame,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../../hbone/h2/frame.js';
import type { HeaderField } from '../../hbone/h2/hpack.js';
import type { H2Stream } from '../../hbone/h2/stream.js';
import {
  CONNECT,
  handshake,
  type Pair,
  type PairOptions,
  pair,
  tick,
  times,
  type WireFrame,
} from './h2-helpers.js';

const E = ErrorCode;
const T = FrameType;
const MAX_WINDOW = 2 ** 31 - 1;

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const ping = (ack = false, payload: Buffer = Buffer.alloc(8)) => pingFrame(payload, ack);
const data = (id: number, n: number, end = false) =>
  dataFrame(id, Buffer.alloc(n, 0x61), 0, n, end);
const setting = (id: number, value: number) => settingsFrame([[id, value]]);
const priority = (id: number, len = 5) => frame(T.PRIORITY, 0, id, Buffer.alloc(len));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const open = (c: Pair, id: number, endStream = false, fields: HeaderField[] = CONNECT) =>
  c.peer.send(c.peer.headers(id, fields, { endStream }));
/** A request with one field changed or added after CONNECT's. */
const request = (...extra: HeaderField[]): HeaderField[] => [...CONNECT, ...extra];

/** Client role: opens a CONNECT stream through the session under test. */
function connect(c: Pair): H2Stream {
  const s = c.session.request({ ':method': 'CONNECT', ':authority': '10.0.0.5:8080' });
  s.on('error', () => {});
  c.streams.push(s);
  return s;
}
const status = (c: Pair, id: number, code = '200', endStream = false) =>
  c.peer.send(c.peer.headers(id, [[':status', code]], { endStream }));

type Expect = { goaway: number } | { rst: readonly [id: number, code: number] } | 'ignored';

interface Row {
  name: string;
  role?: 'client' | 'server';
  opts?: PairOptions;
  /** The peer's handshake (default: SETTINGS and the ACK of ours); false: none. */
  handshake?: false | { settings?: Array<[number, number]>; ack?: boolean };
  /** Before the violation (its frames are not the answer). */
  setup?: (c: Pair) => unknown;
  act: (c: Pair) => unknown;
  expect: Expect;
  /** An engine bug: the expectation stands, as a todo. */
  todo?: string;
  /** An engine bug in what follows a connection error's GOAWAY. */
  todoTail?: string;
  /** Skip the PING probe (a row that spends the PING budget). */
  noProbe?: boolean;
}

const ROWS: Row[] = [
  // --- the preface and SETTINGS (§3.4, §6.5) ---------------------------------------------
  {
    name: 'a bad preface',
    handshake: false,
    act: (c) => c.peer.send(Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n')),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'an HTTP/1.1 request instead of the preface',
    handshake: false,
    act: (c) => c.peer.send(Buffer.from('CONNECT 10.0.0.5:8080 HTTP/1.1\r\n\r\n')),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'first frame not SETTINGS (PING)',
    handshake: false,
    act: (c) => c.peer.send(PREFACE, ping()),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'first frame not SETTINGS (HEADERS)',
    handshake: false,
    act: (c) => c.peer.send(PREFACE, c.peer.headers(1, CONNECT)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'first frame not SETTINGS (DATA)',
    handshake: false,
    act: (c) => c.peer.send(PREFACE, data(1, 0)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'client role: first frame not SETTINGS',
    role: 'client',
    handshake: false,
    act: (c) => c.peer.send(ping()),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'SETTINGS of 7 bytes',
    handshake: false,
    act: (c) => c.peer.send(PREFACE, frame(T.SETTINGS, 0, 0, Buffer.alloc(7))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'SETTINGS ACK with a payload',
    act: (c) => c.peer.send(frame(T.SETTINGS, Flag.ACK, 0, Buffer.alloc(6))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'SETTINGS on a stream',
    act: (c) => c.peer.send(frame(T.SETTINGS, 0, 1, Buffer.alloc(0))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'client role: SETTINGS_ENABLE_PUSH 1 from a server',
    role: 'client',
    handshake: false,
    act: (c) => c.peer.send(setting(Setting.ENABLE_PUSH, 1)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'client role: SETTINGS_ENABLE_PUSH 0 from a server',
    role: 'client',
    act: (c) => c.peer.send(setting(Setting.ENABLE_PUSH, 0)),
    expect: 'ignored',
  },
  {
    name: 'SETTINGS_ENABLE_PUSH 2',
    act: (c) => c.peer.send(setting(Setting.ENABLE_PUSH, 2)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'SETTINGS_ENABLE_PUSH 1 from a client',
    act: (c) => c.peer.send(setting(Setting.ENABLE_PUSH, 1)),
    expect: 'ignored',
  },
  {
    name: 'SETTINGS_INITIAL_WINDOW_SIZE 2^31',
    act: (c) => c.peer.send(setting(Setting.INITIAL_WINDOW_SIZE, 2 ** 31)),
    expect: { goaway: E.FLOW_CONTROL_ERROR },
  },
  {
    name: 'SETTINGS_INITIAL_WINDOW_SIZE 2^31-1',
    act: (c) => c.peer.send(setting(Setting.INITIAL_WINDOW_SIZE, MAX_WINDOW)),
    expect: 'ignored',
  },
  {
    name: 'SETTINGS_INITIAL_WINDOW_SIZE that lifts an open stream window above 2^31-1',
    setup: (c) => open(c, 1),
    act: (c) =>
      c.peer.send(
        windowUpdateFrame(1, MAX_WINDOW - 65_535),
        setting(Setting.INITIAL_WINDOW_SIZE, 65_536),
      ),
    expect: { goaway: E.FLOW_CONTROL_ERROR },
  },
  {
    name: 'SETTINGS_MAX_FRAME_SIZE 16383',
    act: (c) => c.peer.send(setting(Setting.MAX_FRAME_SIZE, 16_383)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'SETTINGS_MAX_FRAME_SIZE 2^24',
    act: (c) => c.peer.send(setting(Setting.MAX_FRAME_SIZE, 2 ** 24)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'SETTINGS_MAX_FRAME_SIZE 2^24-1',
    act: (c) => c.peer.send(setting(Setting.MAX_FRAME_SIZE, 2 ** 24 - 1)),
    expect: 'ignored',
  },
  {
    name: 'an unknown setting',
    act: (c) =>
      c.peer.send(
        settingsFrame([
          [0xff, 7],
          [0x8, 1],
        ]),
      ),
    expect: 'ignored',
  },
  {
    name: 'the SETTINGS ACK deadline',
    opts: { limits: { settingsAckTimeoutMs: 30 } },
    handshake: { ack: false },
    act: () => sleep(100),
    expect: { goaway: E.SETTINGS_TIMEOUT },
  },
  {
    name: 'SETTINGS acknowledged in time: no deadline',
    opts: { limits: { settingsAckTimeoutMs: 30 } },
    act: () => sleep(100),
    expect: 'ignored',
  },
  // --- PING (§6.7) -------------------------------------------------------------------------
  {
    name: 'PING of 7 bytes',
    act: (c) => c.peer.send(frame(T.PING, 0, 0, Buffer.alloc(7))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'PING of 9 bytes',
    act: (c) => c.peer.send(frame(T.PING, 0, 0, Buffer.alloc(9))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'PING on a stream',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(frame(T.PING, 0, 1, Buffer.alloc(8))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'a PING ACK that answers nothing',
    act: (c) => c.peer.send(ping(true)),
    expect: 'ignored',
  },
  {
    name: 'a PING with unknown flags',
    act: (c) => c.peer.send(frame(T.PING, 0xfe, 0, Buffer.alloc(8))),
    expect: 'ignored',
  },
  // --- WINDOW_UPDATE (§6.9) ----------------------------------------------------------------
  {
    name: 'WINDOW_UPDATE of 0 on the connection',
    act: (c) => c.peer.send(windowUpdateFrame(0, 0)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'WINDOW_UPDATE of 0 on a stream',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(windowUpdateFrame(1, 0)),
    expect: { rst: [1, E.PROTOCOL_ERROR] },
  },
  {
    name: 'WINDOW_UPDATE lifting the connection window above 2^31-1',
    act: (c) => c.peer.send(windowUpdateFrame(0, MAX_WINDOW - 65_535 + 1)),
    expect: { goaway: E.FLOW_CONTROL_ERROR },
  },
  {
    name: 'WINDOW_UPDATE lifting the connection window to 2^31-1',
    act: (c) => c.peer.send(windowUpdateFrame(0, MAX_WINDOW - 65_535)),
    expect: 'ignored',
  },
  {
    name: 'WINDOW_UPDATE lifting a stream window above 2^31-1',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(windowUpdateFrame(1, MAX_WINDOW - 65_535 + 1)),
    expect: { rst: [1, E.FLOW_CONTROL_ERROR] },
  },
  {
    name: 'WINDOW_UPDATE of 3 bytes',
    act: (c) => c.peer.send(frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'WINDOW_UPDATE on an idle stream',
    act: (c) => c.peer.send(windowUpdateFrame(1, 1)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'WINDOW_UPDATE on a closed stream',
    setup: (c) => {
      open(c, 1);
      c.peer.send(rstStreamFrame(1, E.CANCEL));
    },
    act: (c) => c.peer.send(windowUpdateFrame(1, 100)),
    expect: 'ignored',
  },
  {
    name: 'WINDOW_UPDATE with the reserved bit set',
    act: (c) => c.peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(0x80000001))),
    expect: 'ignored',
  },
  // --- DATA (§6.1, §5.1) -------------------------------------------------------------------
  {
    name: 'DATA beyond the stream window',
    opts: { local: { streamWindowBytes: 1000 } },
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(data(1, 1000), data(1, 1)),
    expect: { rst: [1, E.FLOW_CONTROL_ERROR] },
  },
  {
    name: 'DATA up to the stream window',
    opts: { local: { streamWindowBytes: 1000 } },
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(data(1, 600), data(1, 400)),
    expect: 'ignored',
  },
  {
    name: 'DATA beyond the connection window',
    opts: { local: { streamWindowBytes: 200_000, connectionWindowBytes: 65_535 } },
    setup: (c) => {
      open(c, 1);
      open(c, 3);
    },
    act: (c) => c.peer.send(data(1, 16_384), data(3, 16_384), data(1, 16_384), data(3, 16_384)),
    expect: { goaway: E.FLOW_CONTROL_ERROR },
    todoTail:
      'engine bug: a WINDOW_UPDATE follows the GOAWAY: #fail closes the streams before the ' +
      'session is marked destroyed, and #returnConnection hands their unread bytes back',
  },
  {
    name: 'padded DATA counts its padding against the window',
    opts: { local: { streamWindowBytes: 1000 } },
    setup: (c) => open(c, 1),
    act: (c) => {
      const payload = Buffer.concat([Buffer.from([200]), Buffer.alloc(700), Buffer.alloc(200)]);
      c.peer.send(frame(T.DATA, Flag.PADDED, 1, payload), data(1, 100)); // 901 + 100
    },
    expect: { rst: [1, E.FLOW_CONTROL_ERROR] },
  },
  {
    name: 'DATA on stream 0',
    act: (c) => c.peer.send(data(0, 10)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'DATA on an idle stream',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(data(3, 10)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'DATA on an even (server) stream the server never opened',
    act: (c) => c.peer.send(data(2, 10)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'DATA after END_STREAM (half-closed remote)',
    setup: (c) => open(c, 1, true),
    act: (c) => c.peer.send(data(1, 10)),
    expect: { rst: [1, E.STREAM_CLOSED] },
  },
  {
    name: 'DATA after DATA with END_STREAM',
    setup: (c) => {
      open(c, 1);
      c.peer.send(data(1, 5, true));
    },
    act: (c) => c.peer.send(data(1, 5)),
    expect: { rst: [1, E.STREAM_CLOSED] },
  },
  {
    name: 'DATA with padding as long as the frame',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(frame(T.DATA, Flag.PADDED, 1, Buffer.from([4, 0, 0, 0]))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'DATA on a stream we reset (§5.1: MUST be ignored)',
    opts: { onStream: (s) => s.close(E.CANCEL) },
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(data(1, 100), data(1, 0, true)),
    expect: 'ignored',
  },
  {
    name: 'DATA on a stream the peer reset (§6.1: STREAM_CLOSED)',
    setup: (c) => {
      open(c, 1);
      c.peer.send(rstStreamFrame(1, E.CANCEL));
    },
    act: (c) => c.peer.send(data(1, 10)),
    expect: { rst: [1, E.STREAM_CLOSED] },
    todo:
      'engine bug: DATA on a stream closed by the peer is ignored; RFC 9113 §6.1 requires a ' +
      'STREAM_CLOSED stream error (h2spec http2/5.1 "closed: Sends a DATA frame after sending ' +
      'RST_STREAM frame"); the engine keeps no record of how a stream closed',
  },
  {
    name: 'a frame above our SETTINGS_MAX_FRAME_SIZE (DATA)',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(data(1, DEFAULT_MAX_FRAME + 1)),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'a frame above our SETTINGS_MAX_FRAME_SIZE (unknown type)',
    act: (c) => c.peer.send(frame(0x42, 0, 0, Buffer.alloc(DEFAULT_MAX_FRAME + 1))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
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
    name: 'HEADERS opening a lower stream id than the last (5, then 3)',
    setup: (c) => open(c, 5, true),
    act: (c) => open(c, 3, true),
    expect: { goaway: E.PROTOCOL_ERROR },
    todo:
      'engine bug: GOAWAY(STREAM_CLOSED); stream 3 was never opened, so this is an unexpected ' +
      'stream identifier: PROTOCOL_ERROR (RFC 9113 §5.1.1; h2spec http2/5.1.1 #2)',
  },
  {
    name: 'HEADERS reusing a stream id closed both ways',
    opts: { onStream: (s) => s.respond({ ':status': 200 }, { endStream: true }) },
    setup: (c) => open(c, 1, true),
    act: (c) => open(c, 1, true),
    expect: { goaway: E.STREAM_CLOSED },
  },
  {
    name: 'trailers on a stream we reset (§5.1: MUST be ignored)',
    opts: { onStream: (s) => s.close(E.CANCEL) },
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(c.peer.headers(1, [['x-trailer', '1']], { endStream: true })),
    expect: 'ignored',
    todo:
      'engine bug: GOAWAY(STREAM_CLOSED) ends every tunnel of the connection because a client ' +
      'sent trailers before it saw our RST_STREAM (RFC 9113 §5.1 closed: "An endpoint MUST ignore ' +
      'frames that it receives on closed streams after it has sent a RST_STREAM frame")',
  },
  {
    name: 'HEADERS on a half-closed (remote) stream',
    setup: (c) => open(c, 1, true),
    act: (c) => c.peer.send(c.peer.headers(1, [['x-trailer', '1']], { endStream: true })),
    expect: { rst: [1, E.STREAM_CLOSED] },
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
    expect: { goaway: E.FRAME_SIZE_ERROR },
    todo:
      'engine bug: GOAWAY(PROTOCOL_ERROR); a frame too small for its mandatory fields is a ' +
      'FRAME_SIZE_ERROR (RFC 9113 §4.2), as the engine already answers padded HEADERS without ' +
      'a pad length',
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
  // --- malformed requests (§8.1.1, §8.2, §8.3, §8.5): RST_STREAM(PROTOCOL_ERROR) ---------
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
  // --- push, concurrency, other frames -----------------------------------------------------
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
  {
    name: 'PRIORITY on an open stream',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(priority(1)),
    expect: 'ignored',
  },
  {
    name: 'PRIORITY on an idle stream',
    act: (c) => c.peer.send(priority(99)),
    expect: 'ignored',
  },
  {
    name: 'PRIORITY of 4 bytes',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(priority(1, 4)),
    expect: { rst: [1, E.FRAME_SIZE_ERROR] },
  },
  {
    name: 'PRIORITY on stream 0',
    act: (c) => c.peer.send(priority(0)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'an unknown frame type (on stream 0, on an idle stream)',
    act: (c) =>
      c.peer.send(frame(0x42, 0xff, 0, Buffer.alloc(10)), frame(0xfa, 0, 77, Buffer.alloc(0))),
    expect: 'ignored',
  },
  {
    name: 'RST_STREAM on an idle stream',
    act: (c) => c.peer.send(rstStreamFrame(1, E.CANCEL)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'RST_STREAM on stream 0',
    act: (c) => c.peer.send(rstStreamFrame(0, E.CANCEL)),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'RST_STREAM of 3 bytes',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(frame(T.RST_STREAM, 0, 1, Buffer.alloc(3))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  {
    name: 'RST_STREAM on a closed stream',
    setup: (c) => {
      open(c, 1);
      c.peer.send(rstStreamFrame(1, E.CANCEL));
    },
    act: (c) => c.peer.send(rstStreamFrame(1, E.CANCEL), priority(1)),
    expect: 'ignored',
  },
  {
    name: 'GOAWAY on a stream',
    act: (c) => c.peer.send(frame(T.GOAWAY, 0, 1, Buffer.alloc(8))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'GOAWAY of 7 bytes',
    act: (c) => c.peer.send(frame(T.GOAWAY, 0, 0, Buffer.alloc(7))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  // --- floods (the header comment's policy) ------------------------------------------------
  {
    name: 'a burst of 100 PINGs is answered',
    act: (c) => c.peer.send(times(100, ping())),
    expect: 'ignored',
    noProbe: true,
  },
  {
    name: 'a PING flood (120: burst 100, 10/s)',
    act: (c) => c.peer.send(times(120, ping())),
    expect: { goaway: E.ENHANCE_YOUR_CALM },
  },
  {
    name: 'a SETTINGS flood (120 after the first)',
    act: (c) => c.peer.send(times(120, settingsFrame([]))),
    expect: { goaway: E.ENHANCE_YOUR_CALM },
  },
  {
    name: 'an empty-DATA flood (1200: burst 1000, 100/s)',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(times(1200, data(1, 0))),
    expect: { goaway: E.ENHANCE_YOUR_CALM },
  },
  {
    name: 'a PRIORITY flood (1200)',
    act: (c) => c.peer.send(times(1200, priority(1))),
    expect: { goaway: E.ENHANCE_YOUR_CALM },
  },
  {
    name: 'an unknown-frame flood (1200)',
    act: (c) => c.peer.send(times(1200, frame(0x42, 0, 0, Buffer.alloc(0)))),
    expect: { goaway: E.ENHANCE_YOUR_CALM },
  },
  {
    name: 'a flood of malformed PRIORITY frames (1200), each answered with RST_STREAM',
    act: (c) => c.peer.send(times(1200, priority(1, 0))),
    expect: { goaway: E.ENHANCE_YOUR_CALM },
    todo:
      'engine bug: PRIORITY of a wrong length returns (RST_STREAM FRAME_SIZE_ERROR, 13 bytes ' +
      'out for 9 in) before it is counted as a frame that carries nothing, so the flood is ' +
      'answered without limit (a reset flood, CVE-2019-9514 class)',
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

/** Checks the session's answer to what the peer sent after `mark` frames. */
async function verdict(t: Test, c: Pair, row: Row, mark: number): Promise<void> {
  const opt = row.todo ? { todo: row.todo } : {};
  const { peer, session } = c;
  await tick(3);
  t.equal(peer.outputError, undefined, 'the session writes only valid frames');
  const answer = peer.frames.slice(mark);
  const goaways = answer.filter((f) => f.type === T.GOAWAY);
  const name = (f: WireFrame | undefined) =>
    f && errorCodeName(f.payload.readUInt32BE(f.type === T.GOAWAY ? 4 : 0));
  if (typeof row.expect === 'object' && 'goaway' in row.expect) {
    t.equal(name(goaways[0]), errorCodeName(row.expect.goaway), 'GOAWAY code', opt);
    t.equal(goaways.length, 1, 'one GOAWAY', opt);
    const tail = row.todoTail ? { todo: row.todoTail } : opt;
    t.equal(answer.at(-1)?.type, T.GOAWAY, 'GOAWAY is the last frame', tail);
    t.ok(session.destroyed && peer.ended, 'the connection ends', opt);
    await tick();
    t.ok(c.closed, "the session emits 'close'", opt);
    return;
  }
  t.same(goaways.map(name), [], 'no GOAWAY', opt);
  const rsts = answer.filter((f) => f.type === T.RST_STREAM).map((f) => [f.streamId, name(f)]);
  if (row.expect === 'ignored') t.same(rsts, [], 'no RST_STREAM', opt);
  else t.same(rsts, [[row.expect.rst[0], errorCodeName(row.expect.rst[1])]], 'RST_STREAM', opt);
  t.notOk(session.destroyed, 'the session stays', opt);
  if (row.noProbe || session.destroyed) return;
  const probe = Buffer.from('probe!!!');
  peer.send(ping(false, probe));
  await tick();
  const acks = peer.frames.filter(
    (f) => f.type === T.PING && f.flags === Flag.ACK && f.payload.equals(probe),
  );
  t.equal(acks.length, 1, 'and answers a PING', opt);
}

t.test('RFC 9113 violations and their answers', async (t) => {
  for (const row of ROWS) {
    await t.test(row.name, async (t) => {
      const role = row.role ?? 'server';
      const c = await pair(role, row.opts);
      if (row.handshake !== false)
        handshake(c.peer, role, row.handshake?.settings, row.handshake?.ack ?? true);
      await row.setup?.(c);
      await tick();
      const mark = c.peer.frames.length;
      await row.act(c);
      await verdict(t, c, row, mark);
      c.session.destroy();
    });
  }
});

t.test('the handshake: our SETTINGS, each of the peer answered with an ACK', async (t) => {
  const s = await pair('server');
  handshake(s.peer, 'server');
  s.peer.send(settingsFrame([[Setting.MAX_FRAME_SIZE, 20_000]]), settingsFrame([]));
  await tick();
  const settings = s.peer.of(T.SETTINGS);
  t.same(
    settings.map((f) => f.flags),
    [0, Flag.ACK, Flag.ACK, Flag.ACK],
    'our SETTINGS first, then one ACK for each of the peer',
  );
  const values = new Map<number, number>();
  const p = settings[0]!.payload;
  for (let at = 0; at < p.length; at += 6) values.set(p.readUInt16BE(at), p.readUInt32BE(at + 2));
  t.same(
    Object.fromEntries(values),
    {
      [Setting.INITIAL_WINDOW_SIZE]: 65_535,
      [Setting.MAX_FRAME_SIZE]: 16_384,
      [Setting.MAX_CONCURRENT_STREAMS]: 4,
      [Setting.MAX_HEADER_LIST_SIZE]: 1024,
    },
    'our local settings',
  );
  t.equal(s.session.remoteSettings.maxFrameSize, 20_000, "the peer's settings are applied");
  s.session.destroy();

  const c = await pair('client', { local: { connectionWindowBytes: 1 << 20 } });
  const first = c.peer.frames[0]!;
  t.equal(first.type, T.SETTINGS, 'client: the preface, then SETTINGS');
  t.equal(first.payload.readUInt16BE(0), Setting.ENABLE_PUSH, 'client: ENABLE_PUSH first…');
  t.equal(first.payload.readUInt32BE(2), 0, '…set to 0');
  t.equal(
    c.peer.credit(0),
    (1 << 20) - 65_535,
    'the connection window is opened to connectionWindowBytes',
  );
  c.session.destroy();
});

/** A server whose application answers 200 and hands each stream to the test. */
async function server(opts: PairOptions = {}, settings: Array<[number, number]> = []) {
  const c = await pair('server', {
    ...opts,
    onStream: (s) => s.respond({ ':status': 200 }),
  });
  handshake(c.peer, 'server', settings);
  await tick();
  return c;
}

t.test('flow control, sending: never beyond the windows the peer gave', async (t) => {
  await t.test('the stream window', async (t) => {
    const c = await server({}, [[Setting.INITIAL_WINDOW_SIZE, 100]]);
    open(c, 1);
    await tick();
    const s = c.streams[0]!;
    let written = false;
    s.write(Buffer.alloc(1000, 0x62), () => {
      written = true;
    });
    await tick();
    t.equal(c.peer.data(1).length, 100, 'stops at the stream window');
    t.notOk(written, 'the write waits for window');
    c.peer.send(windowUpdateFrame(1, 300));
    await tick();
    t.equal(c.peer.data(1).length, 400, 'resumes on WINDOW_UPDATE, up to it');
    c.peer.send(windowUpdateFrame(1, 10_000));
    await tick();
    t.equal(c.peer.data(1).length, 1000, 'the rest');
    t.ok(written, 'the write completes');
    s.end();
    await tick();
    const last = c.peer.of(T.DATA).at(-1)!;
    t.same(
      [last.payload.length, last.flags],
      [0, Flag.END_STREAM],
      'end() is an empty DATA with END_STREAM',
    );
    c.session.destroy();
  });

  await t.test('the connection window, and frames within SETTINGS_MAX_FRAME_SIZE', async (t) => {
    const c = await server({}, [[Setting.INITIAL_WINDOW_SIZE, 1_000_000]]);
    open(c, 1);
    open(c, 3);
    await tick();
    c.streams[0]!.write(Buffer.alloc(50_000));
    c.streams[1]!.write(Buffer.alloc(50_000));
    await tick();
    const sent = () => c.peer.of(T.DATA).reduce((n, f) => n + f.payload.length, 0);
    t.equal(sent(), 65_535, 'two streams together stop at the connection window');
    t.ok(
      c.peer.of(T.DATA).every((f) => f.payload.length <= 16_384),
      'each frame within 16384',
    );
    c.peer.send(windowUpdateFrame(0, 10_000));
    await tick();
    t.equal(sent(), 75_535, 'a connection WINDOW_UPDATE lets exactly that much more go');
    c.peer.send(settingsFrame([[Setting.MAX_FRAME_SIZE, 20_000]]), windowUpdateFrame(0, 100_000));
    await tick();
    t.equal(sent(), 100_000, 'the rest');
    t.equal(c.peer.data(1).length + c.peer.data(3).length, 100_000, 'both streams');
    t.ok(
      c.peer.of(T.DATA).some((f) => f.payload.length > 16_384),
      'a larger SETTINGS_MAX_FRAME_SIZE is used',
    );
    t.ok(
      c.peer.of(T.DATA).every((f) => f.payload.length <= 20_000),
      'and respected',
    );
    c.session.destroy();
  });

  await t.test(
    'SETTINGS_INITIAL_WINDOW_SIZE lowered mid-stream: the window goes negative (§6.9.2)',
    async (t) => {
      const c = await server({}, [[Setting.INITIAL_WINDOW_SIZE, 1000]]);
      open(c, 1);
      await tick();
      c.streams[0]!.write(Buffer.alloc(5000));
      await tick();
      t.equal(c.peer.data(1).length, 1000);
      c.peer.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0]]));
      c.peer.send(windowUpdateFrame(1, 1500)); // -1000 + 1500
      await tick();
      t.equal(c.peer.data(1).length, 1500, 'only the window above zero is used');
      c.peer.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 4000]])); // +4000
      await tick();
      t.equal(c.peer.data(1).length, 5000, 'a raised SETTINGS_INITIAL_WINDOW_SIZE unblocks it');
      c.session.destroy();
    },
  );
});

/** A server whose streams nobody reads, with a large connection window (the stream
 *  window, 65535, is the one that binds). */
async function unread() {
  const c = await pair('server', { local: { connectionWindowBytes: 1 << 20 } });
  handshake(c.peer, 'server');
  await tick();
  return c;
}
const fullWindow = (id: number) => [
  data(id, 16_384),
  data(id, 16_384),
  data(id, 16_384),
  data(id, 16_383),
];

t.test('flow control, receiving: our window goes back only as the reader consumes', async (t) => {
  await t.test('a stream nobody reads stops the peer at the stream window', async (t) => {
    const c = await unread();
    open(c, 1);
    await tick();
    const base = c.peer.credit(0);
    c.peer.send(...fullWindow(1));
    await tick();
    t.equal(c.peer.credit(1), 0, 'no stream WINDOW_UPDATE while the data sits unread');
    t.equal(c.peer.credit(0), base, 'nor a connection one');
    t.equal(c.streams[0]!.readableLength, 65_535, 'a whole stream window buffered');
    c.peer.send(data(1, 1));
    await tick();
    t.same(c.peer.rsts(), [[1, E.FLOW_CONTROL_ERROR]], 'one byte more: FLOW_CONTROL_ERROR');
    t.equal(c.peer.goaway(), undefined, 'on that stream only');
    c.session.destroy();
  });

  await t.test('a reader in flowing mode: the window comes back as the data arrives', async (t) => {
    const c = await unread();
    open(c, 1);
    await tick();
    let read = 0;
    c.streams[0]!.on('data', (b: Buffer) => {
      read += b.length;
    });
    for (let i = 0; i < 4; i++) {
      c.peer.send(...fullWindow(1));
      await tick();
    }
    t.equal(read, 4 * 65_535, 'four windows of data through a 65535-byte window');
    t.ok(c.peer.credit(1) >= 3 * 65_535, `stream credit ${c.peer.credit(1)}`);
    t.same(c.peer.rsts(), [], 'no FLOW_CONTROL_ERROR');
    c.session.destroy();
  });

  // A reader that falls behind (a splice to a slow upstream: pipe() pauses the stream) lets
  // a full window pile up, then drains it. Node calls _read() (where the stream accounts
  // what was taken) once per push and before it removes data from the buffer, so what the
  // reader takes after the peer's last DATA is never handed back: the peer, out of window,
  // waits for a WINDOW_UPDATE that never comes, and the tunnel stalls for good.
  const stall =
    'engine bug: H2Stream accounts consumed bytes only in deliver() and _read(); Readable ' +
    'calls _read() once per push, before taking data out of the buffer, so the window for a ' +
    'buffer drained after the last DATA never goes back (the tunnel stalls)';
  await t.test('a reader that drains a full window with read()', async (t) => {
    const c = await unread();
    open(c, 1);
    await tick();
    const r = c.streams[0]!;
    c.peer.send(...fullWindow(1));
    await tick();
    let read = 0;
    for (let chunk = r.read(); chunk; chunk = r.read()) read += chunk.length;
    await tick();
    t.equal(read, 65_535, 'the reader takes it all');
    t.ok(
      c.peer.credit(1) >= 65_535 - 65_535 / 4,
      `the stream window comes back (${c.peer.credit(1)})`,
      { todo: stall },
    );
    c.session.destroy();
  });

  await t.test('a paused reader that resumes (pipe backpressure)', async (t) => {
    const c = await unread();
    open(c, 1);
    await tick();
    const r = c.streams[0]!;
    let read = 0;
    r.on('data', (b: Buffer) => {
      read += b.length;
    });
    r.pause();
    c.peer.send(...fullWindow(1));
    await tick();
    r.resume();
    await tick(4);
    t.equal(read, 65_535, 'the reader takes it all');
    t.ok(
      c.peer.credit(1) >= 65_535 - 65_535 / 4,
      `the stream window comes back (${c.peer.credit(1)})`,
      { todo: stall },
    );
    c.session.destroy();
  });
});

t.test('flow control, receiving: a stream reset in the middle of a DATA frame', async (t) => {
  // The application cancels a tunnel while a DATA frame for it is half read (a TLS record
  // ends inside it). The rest of the frame arrives for a closed stream: its bytes were
  // counted against our connection window and must be handed back, or each such reset
  // shrinks the window for good, and the whole connection stalls once it is gone.
  const c = await pair('server');
  handshake(c.peer, 'server');
  await tick();
  let peerWindow = 65_535;
  for (let i = 0; i < 8; i++) {
    const id = 1 + 2 * i;
    const frameBytes = data(id, 8_000);
    open(c, id);
    c.peer.send(frameBytes.subarray(0, 9 + 100));
    await tick();
    c.streams.at(-1)!.close(E.CANCEL);
    c.peer.send(frameBytes.subarray(9 + 100));
    peerWindow -= 8_000;
    await tick();
  }
  peerWindow += c.peer.credit(0);
  t.equal(c.peer.goaway(), undefined, 'no connection error');
  t.ok(
    peerWindow >= (65_535 * 3) / 4,
    `the peer's connection window is handed back (${peerWindow} of 65535 left)`,
    {
      todo:
        'engine bug: DATA bytes that arrive after the stream closed, in the frame it closed ' +
        'in, are counted as received by the closed stream and never returned to the ' +
        'connection window',
    },
  );
  c.session.destroy();
});

t.test('the stream semantics the splice relies on', async (t) => {
  await t.test("END_STREAM reads as 'end', endedByPeer", async (t) => {
    const c = await server();
    open(c, 1);
    await tick();
    const s = c.streams[0]!;
    const chunks: Buffer[] = [];
    s.on('data', (b: Buffer) => chunks.push(b));
    const ended = new Promise<void>((r) => s.once('end', () => r()));
    c.peer.send(data(1, 10), data(1, 5, true));
    await ended;
    t.equal(Buffer.concat(chunks).length, 15, 'all the data');
    t.ok(s.endedByPeer, 'endedByPeer');
    t.notOk(s.destroyed, 'our side stays open to write');
    s.end(Buffer.from('bye'));
    await tick(4);
    t.equal(c.peer.data(1).toString(), 'bye');
    t.ok(s.destroyed, 'closed once both sides ended');
    t.equal(s.rstCode, E.NO_ERROR, 'rstCode NO_ERROR');
    t.equal(c.session.openStreams, 0);
    c.session.destroy();
  });

  for (const [code, withError] of [
    [E.NO_ERROR, false],
    [E.CANCEL, true],
    [E.CONNECT_ERROR, true],
  ] as const) {
    await t.test(`RST_STREAM(${errorCodeName(code)}) from the peer`, async (t) => {
      const c = await server();
      open(c, 1);
      await tick();
      const s = c.streams[0]!;
      const errors: Array<Error & { h2code?: number }> = [];
      s.on('error', (e) => errors.push(e));
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      c.peer.send(rstStreamFrame(1, code));
      await closed;
      t.equal(s.rstCode, code, 'rstCode');
      t.notOk(s.endedByPeer, 'not endedByPeer');
      t.same(
        errors.map((e) => e.h2code),
        withError ? [code] : [],
        withError ? 'an error with the code' : 'no error',
      );
      t.equal(c.peer.rsts().length, 0, 'no RST_STREAM back');
      c.session.destroy();
    });
  }

  await t.test('the peer closes the connection: open streams are cut with an error', async (t) => {
    const c = await server();
    open(c, 1);
    await tick();
    const s = c.streams[0]!;
    const errors: Error[] = [];
    s.on('error', (e) => errors.push(e));
    c.peer.end();
    await tick(4);
    t.ok(s.destroyed, 'the stream is closed');
    t.equal(s.rstCode, E.CONNECT_ERROR, 'rstCode CONNECT_ERROR');
    t.equal(errors.length, 1, 'with an error');
    t.ok(c.closed && c.session.destroyed, 'the session closes');
  });
});

t.test('GOAWAY received (client role)', async (t) => {
  const c = await pair('client');
  handshake(c.peer, 'client');
  await tick();
  const s1 = connect(c);
  const s3 = connect(c);
  const s3errors: Array<Error & { h2code?: number }> = [];
  s3.on('error', (e) => s3errors.push(e));
  const goaways: unknown[] = [];
  c.session.on('goaway', (code, last) => goaways.push([code, last]));
  status(c, 1);
  c.peer.send(goawayFrame(1, E.NO_ERROR));
  await tick();
  t.same(goaways, [[E.NO_ERROR, 1]], "'goaway' with the code and last stream id");
  t.ok(s3.destroyed, 'a stream above last-stream-id is closed…');
  t.equal(s3.rstCode, E.REFUSED_STREAM, '…as refused (safe to retry)');
  t.same(
    s3errors.map((e) => e.h2code),
    [E.REFUSED_STREAM],
  );
  t.notOk(s1.destroyed, 'a stream at or below it continues');
  t.ok(c.session.closed, 'the session takes no new stream');
  t.throws(() => connect(c), /GOAWAY/, 'request() throws');
  const got: Buffer[] = [];
  s1.on('data', (b: Buffer) => got.push(b));
  s1.write(Buffer.from('ping'));
  c.peer.send(dataFrame(1, Buffer.from('pong'), 0, 4, true));
  await tick();
  t.equal(c.peer.data(1).toString(), 'ping', 'it still sends');
  t.equal(Buffer.concat(got).toString(), 'pong', 'and receives');
  t.notOk(c.session.destroyed, 'the session waits for it');
  s1.end();
  await tick(4);
  t.ok(c.session.destroyed && c.peer.ended && c.closed, 'and ends when it is done');
  t.equal(c.peer.goaway(), undefined, 'without a GOAWAY of its own (client)');
});

t.test('graceful close(): open streams finish, then the connection ends', async (t) => {
  const c = await server();
  open(c, 1);
  open(c, 3);
  await tick();
  const [s1, s3] = c.streams as [H2Stream, H2Stream];
  c.session.close();
  await tick();
  t.same(c.peer.goaways(), [{ last: 3, code: E.NO_ERROR, debug: '' }], 'GOAWAY(NO_ERROR, last 3)');
  t.ok(c.session.closed && !c.session.destroyed, 'closing, not closed');
  open(c, 5);
  await tick();
  t.same(c.peer.rsts(), [[5, E.REFUSED_STREAM]], 'a new stream is refused');
  c.peer.send(data(1, 10, true), data(3, 10));
  s1.end(Buffer.from('one'));
  s3.write(Buffer.from('three'));
  await tick(4);
  t.equal(c.peer.data(1).toString(), 'one', 'streams still carry data');
  t.ok(s1.destroyed, 'stream 1 done');
  t.notOk(c.peer.ended, 'the connection waits for stream 3');
  c.peer.send(data(3, 0, true));
  s3.end();
  await tick(4);
  t.ok(c.session.destroyed && c.peer.ended && c.closed, 'then ends');
  t.equal(c.peer.goaways().length, 1, 'with its one GOAWAY');
});

t.test('PING round trip, and the answer owed when the session ends', async (t) => {
  const c = await pair('client');
  handshake(c.peer, 'client');
  await tick();
  const results: unknown[] = [];
  c.session.ping((err, ms, payload) => results.push([err, ms >= 0, payload.length]));
  await tick();
  const sent = c.peer.of(T.PING).at(-1)!;
  c.peer.send(ping(true, sent.payload));
  await tick();
  t.same(results, [[null, true, 8]], 'the callback gets the round trip');
  c.session.ping((err) => results.push(err?.message));
  c.session.destroy();
  await tick();
  t.match(results[1], /ended before the PING answer/, 'an unanswered PING fails at the end');
});

t.test('a peer that stops reading: the session stops reading past outputLimitBytes', async (t) => {
  const c = await pair('server', {
    limits: { outputLimitBytes: 20_000, answeredControlBurst: 10_000 },
  });
  handshake(c.peer, 'server');
  await tick();
  c.peer.stall();
  c.peer.send(times(1500, ping())); // 25,500 bytes of PING ACKs to write
  await tick();
  const socket = c.peer.socket;
  t.ok(socket.writableLength > 20_000, `output queued: ${socket.writableLength} bytes`);
  t.ok(socket.isPaused(), 'the session stops reading');
  c.peer.send(ping());
  await tick();
  t.equal(socket.readableLength, 17, 'the next PING waits unread');
  c.peer.release();
  await tick(4);
  const acks = c.peer.of(T.PING).filter((f) => f.flags & Flag.ACK).length;
  t.equal(acks, 1501, 'once the output drains, reading resumes and every PING is answered');
  t.notOk(socket.isPaused());
  c.session.destroy();
});

t.test("a session destroyed by its application in 'stream' reads no further", async (t) => {
  const c = await pair('server', {
    onStream: () => c.session.destroy(),
  });
  handshake(c.peer, 'server');
  await tick();
  c.peer.send(c.peer.headers(1, CONNECT), c.peer.headers(3, CONNECT)); // one chunk
  await tick(4);
  t.equal(c.streams.length, 1, 'only the first stream is handed over', {
    todo:
      "engine bug: frames after destroy() in the same chunk are still processed: 'stream' is " +
      'emitted for stream 3 on a destroyed session',
  });
  t.ok(
    c.streams.every((s) => s.destroyed),
    'no stream is left open on a destroyed session',
    { todo: 'engine bug: stream 3 never closes (no teardown runs again): a leaked tunnel' },
  );
});

t.test('a GOAWAY that ends the session: the rest of its chunk is not read', async (t) => {
  // The peer's GOAWAY with no stream open ends the session at once (#maybeEnd); a HEADERS
  // behind it in the same read must not open a stream on the ended session.
  const c = await pair('server');
  c.peer.send(PREFACE, settingsFrame([]), goawayFrame(0, E.NO_ERROR), c.peer.headers(1, CONNECT));
  await tick(4);
  t.ok(c.session.destroyed, 'the session ended');
  t.same(
    c.streams.map((s) => s.id),
    [],
    'no stream handed over after it',
    {
      todo:
        'engine bug: #onData goes on reading the chunk after #finish: stream 1 is handed ' +
        'to the application on a destroyed session and never closes (found by h2-fuzz)',
    },
  );
});

t.test('a connection error after close() still sends a GOAWAY with its code', async (t) => {
  const c = await server();
  open(c, 1);
  await tick();
  c.session.close();
  c.peer.send(frame(T.CONTINUATION, Flag.END_HEADERS, 1, Buffer.alloc(0))); // PROTOCOL_ERROR
  await tick(3);
  t.ok(c.session.destroyed, 'the session ends');
  t.same(
    c.peer.goaways().map((g) => errorCodeName(g.code)),
    ['NO_ERROR', 'PROTOCOL_ERROR'],
    'the graceful GOAWAY, then one that says why the connection ends',
    {
      todo:
        'engine bug: #sendGoaway sends at most one GOAWAY, so the peer sees NO_ERROR and a ' +
        'closed connection (RFC 9113 §5.4.1 SHOULD send the error; §6.8 allows a second GOAWAY)',
    },
  );
});

t.test('destroy(): every open stream is reset as a cut, then GOAWAY', async (t) => {
  const c = await server();
  open(c, 1);
  open(c, 3, true); // half-closed (remote): its readable side has ended
  await tick();
  c.session.destroy(undefined, E.INTERNAL_ERROR);
  await tick(4);
  t.same(
    c.peer.frames.slice(-3).map((f) => [f.type, f.streamId]),
    [
      [T.RST_STREAM, 1],
      [T.RST_STREAM, 3],
      [T.GOAWAY, 0],
    ],
    'RST_STREAM for each stream, then GOAWAY',
  );
  t.same(c.peer.rsts(), [
    [1, E.CONNECT_ERROR],
    [3, E.CONNECT_ERROR],
  ]);
  t.equal(c.peer.goaway()?.code, E.INTERNAL_ERROR, "GOAWAY with destroy()'s code");
  t.same(
    c.streams.map((s) => [s.destroyed, s.rstCode]),
    [
      [true, E.CONNECT_ERROR],
      [true, E.CONNECT_ERROR],
    ],
    'each stream closed with rstCode CONNECT_ERROR (the splice reads it as an abort)',
  );
  t.ok(c.peer.ended && c.closed, 'the connection ends');
});
