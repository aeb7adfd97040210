// RFC 9113 conformance of the own engine's H2Session (hbone/h2/session.ts), part 4 of 4:
// stream states (§5.1) and the session's lifecycle. A table of frames on idle, half-closed
// and closed streams, each with its answer (runRows in h2-helpers.ts); then the stream
// semantics the splice relies on (END_STREAM, RST_STREAM, a cut connection), GOAWAY received
// and sent, close(), destroy(), and a session that ends in the middle of a chunk.
import t from 'tap';
import {
  dataFrame,
  ErrorCode,
  errorCodeName,
  Flag,
  FrameType,
  frame,
  goawayFrame,
  PREFACE,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
} from '../../hbone/h2/frame.js';
import type { H2Stream } from '../../hbone/h2/stream.js';
import {
  CONNECT,
  connect,
  data,
  handshake,
  open,
  pair,
  priority,
  type Row,
  runRows,
  server,
  status,
  tick,
} from './h2-helpers.js';

const E = ErrorCode;
const T = FrameType;

const ROWS: Row[] = [
  // --- DATA by stream state (§5.1, §6.1) ---------------------------------------------------
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
    // Regression: the session used to ignore it, keeping no record of how a stream closed
    // (h2spec http2/5.1 "closed: Sends a DATA frame after sending RST_STREAM frame").
    expect: { rst: [1, E.STREAM_CLOSED] },
  },
  // --- HEADERS by stream state (§5.1, §5.1.1) ----------------------------------------------
  {
    name: 'HEADERS opening a lower stream id than the last (5, then 3)',
    setup: (c) => open(c, 5, true),
    act: (c) => open(c, 3, true),
    // Regression: the session used to answer STREAM_CLOSED, but stream 3 was never opened:
    // an unexpected stream identifier (§5.1.1; h2spec http2/5.1.1 #2).
    expect: { goaway: E.PROTOCOL_ERROR },
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
    // Regression: the session used to answer GOAWAY(STREAM_CLOSED), ending every tunnel of
    // the connection because a client sent trailers before it saw our RST_STREAM.
    expect: 'ignored',
  },
  {
    name: 'HEADERS on a half-closed (remote) stream',
    setup: (c) => open(c, 1, true),
    act: (c) => c.peer.send(c.peer.headers(1, [['x-trailer', '1']], { endStream: true })),
    expect: { rst: [1, E.STREAM_CLOSED] },
  },
  // --- WINDOW_UPDATE and RST_STREAM on idle and closed streams (§5.1, §6.4, §6.9) ----------
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
    name: 'RST_STREAM on an idle stream',
    act: (c) => c.peer.send(rstStreamFrame(1, E.CANCEL)),
    expect: { goaway: E.PROTOCOL_ERROR },
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
];

t.test('stream states: violations and their answers', (t) => runRows(t, ROWS));

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

t.test("a session destroyed by its application in 'stream' reads no further", async (t) => {
  const c = await pair('server', {
    onStream: () => c.session.destroy(),
  });
  handshake(c.peer, 'server');
  await tick();
  c.peer.send(c.peer.headers(1, CONNECT), c.peer.headers(3, CONNECT)); // one chunk
  await tick(4);
  // Regression: the session used to read the rest of the chunk, hand stream 3 over on a
  // destroyed session, and never close it (a leaked tunnel).
  t.equal(c.streams.length, 1, 'only the first stream is handed over');
  t.ok(
    c.streams.every((s) => s.destroyed),
    'no stream is left open on a destroyed session',
  );
});

t.test('a GOAWAY that ends the session: the rest of its chunk is not read', async (t) => {
  // The peer's GOAWAY with no stream open ends the session at once (#maybeEnd); a HEADERS
  // behind it in the same read must not open a stream on the ended session. Regression
  // (found by h2-fuzz): stream 1 used to be handed over, and never closed.
  const c = await pair('server');
  c.peer.send(PREFACE, settingsFrame([]), goawayFrame(0, E.NO_ERROR), c.peer.headers(1, CONNECT));
  await tick(4);
  t.ok(c.session.destroyed, 'the session ended');
  t.same(
    c.streams.map((s) => s.id),
    [],
    'no stream handed over after it',
  );
});

t.test('a connection error after close() still sends a GOAWAY with its code', async (t) => {
  // Regression: the session used to send one GOAWAY at most, so the peer saw NO_ERROR and a
  // closed connection (§5.4.1 SHOULD send the error; §6.8 allows a second GOAWAY).
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
  );
  t.same(
    c.peer.goaways().map((g) => g.last),
    [1, 1],
    'the same last-stream-id in both (§6.8: never raised)',
  );
  t.equal(c.peer.frames.at(-1)?.type, T.GOAWAY, 'nothing after the error GOAWAY');
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
