// RFC 9113 conformance of the own engine's H2Session (hbone/h2/session.ts), part 1 of 4: the
// connection's own frames. A table of violations (the preface, SETTINGS, PING, frame sizes,
// PRIORITY, RST_STREAM, GOAWAY, unknown types, floods), each with its answer: GOAWAY with a
// code, RST_STREAM with a code, or ignored (runRows in h2-helpers.ts); then the handshake,
// the PING round trip, and a peer that stops reading. The other parts:
// h2-conformance-{headers,flow,streams}.test.ts.
import t from 'tap';
import {
  DEFAULT_MAX_FRAME,
  ErrorCode,
  Flag,
  FrameType,
  frame,
  PREFACE,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../../hbone/h2/frame.js';
import {
  CONNECT,
  data,
  handshake,
  MAX_WINDOW,
  open,
  pair,
  ping,
  priority,
  type Row,
  runRows,
  setting,
  tick,
  times,
} from './h2-helpers.js';

const E = ErrorCode;
const T = FrameType;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ROWS: Row[] = [
  // --- the preface and SETTINGS (§3.4, §6.5) -----------------------------------------------
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
    name: 'a SETTINGS ACK as the first frame',
    handshake: false,
    act: (c) => c.peer.send(PREFACE, frame(T.SETTINGS, Flag.ACK, 0, Buffer.alloc(0))),
    expect: { goaway: E.PROTOCOL_ERROR },
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
  // --- frame sizes and padding (§4.2, §6.1) ------------------------------------------------
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
  {
    name: 'DATA with padding as long as the frame',
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(frame(T.DATA, Flag.PADDED, 1, Buffer.from([4, 0, 0, 0]))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  // --- PRIORITY, RST_STREAM, GOAWAY, unknown types (§5.5, §6.3, §6.4, §6.8) ----------------
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
    name: 'PRIORITY of 4 bytes on an idle stream (no RST_STREAM on an idle stream, §6.4)',
    act: (c) => c.peer.send(priority(99, 4)),
    expect: { goaway: E.FRAME_SIZE_ERROR },
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
    name: 'GOAWAY on a stream',
    act: (c) => c.peer.send(frame(T.GOAWAY, 0, 1, Buffer.alloc(8))),
    expect: { goaway: E.PROTOCOL_ERROR },
  },
  {
    name: 'GOAWAY of 7 bytes',
    act: (c) => c.peer.send(frame(T.GOAWAY, 0, 0, Buffer.alloc(7))),
    expect: { goaway: E.FRAME_SIZE_ERROR },
  },
  // --- floods (the policy in session.ts' header comment) -----------------------------------
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
    setup: (c) => open(c, 1),
    act: (c) => c.peer.send(times(1200, priority(1, 0))),
    // Regression: the session used to answer each one (13 bytes out for 9 in) before it
    // counted it as a frame that carries nothing: a reset flood without limit (CVE-2019-9514).
    expect: { goaway: E.ENHANCE_YOUR_CALM },
  },
];

t.test("the connection's frames: violations and their answers", (t) => runRows(t, ROWS));

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
