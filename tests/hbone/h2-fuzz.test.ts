// Fuzzing the own engine's H2Session (hbone/h2/session.ts) with fast-check: server and
// client sessions fed plausible frame sequences (random types, flags, ids, lengths and
// payloads, header blocks valid or not) and byte mutations of valid exchanges, split into
// random chunks, under a random application. After each run, whatever the input:
// - nothing escapes the session (no exception out of its 'data' handler, no unhandled
//   'error'), and what it wrote parses as frames;
// - it either stays usable (answers a PING) or has ended with one GOAWAY whose code is an
//   RFC 9113 code, followed by nothing (the 'error' it emitted carries the same code);
// - every RST_STREAM code is an RFC 9113 code; no stream it handed over is above the
//   GOAWAY's last-stream-id; open streams stay within our SETTINGS_MAX_CONCURRENT_STREAMS;
// - no stream is handed over once the session has ended; after the peer's FIN the session
//   and every stream it handed over are closed;
// - what it wrote is bounded by what it read (no amplification), each run takes bounded
//   time, and the heap does not grow across many runs.
// numRuns keep the file under 20 s on a 2-core machine.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import {
  dataFrame,
  ErrorCode,
  Flag,
  FrameType,
  frame,
  goawayFrame,
  H2Error,
  PREFACE,
  pingFrame,
  rstStreamFrame,
  SETTINGS_ACK,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../../hbone/h2/frame.js';
import { Encoder, type HeaderField } from '../../hbone/h2/hpack.js';
import type { H2Stream } from '../../hbone/h2/stream.js';
import { CONNECT, KNOWN_CODES, LOCAL, type Pair, pair, tick } from './h2-helpers.js';

const T = FrameType;

// --- generators ----------------------------------------------------------------------------

const u8 = fc.integer({ min: 0, max: 255 });
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const u32 = fc.oneof(
  fc.constantFrom(
    0,
    1,
    4,
    5,
    16_383,
    16_384,
    65_535,
    65_536,
    2 ** 24,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
  ),
  fc.nat({ max: 2 ** 32 - 1 }),
);
/** Mostly the ids a short exchange uses, sometimes any. */
const sid = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(1, 1, 3, 3, 5, 7, 9, 11, 0, 2) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 31 - 1 }) },
);
const flags = fc.oneof(
  fc.constantFrom(0, Flag.END_STREAM, Flag.END_HEADERS, 5, Flag.PADDED, Flag.PRIORITY),
  u8,
);

const octets = fc.string({ unit: u8.map((c) => String.fromCharCode(c)), maxLength: 12 });
const field: fc.Arbitrary<HeaderField> = fc.oneof(
  fc.constantFrom<HeaderField>(
    [':method', 'CONNECT'],
    [':authority', '10.0.0.5:8080'],
    [':status', '200'],
    [':status', '101'],
    [':path', '/'],
    [':scheme', 'https'],
    [':protocol', 'x'],
    ['connection', 'close'],
    ['te', 'trailers'],
    ['X-Upper', '1'],
    ['baggage', 'a=b'],
  ),
  fc.tuple(octets, octets),
);
const fields = fc.oneof(
  fc.constant(CONNECT),
  fc.constant<HeaderField[]>([[':status', '200']]),
  fc.array(field, { maxLength: 6 }),
);

/** One frame: a plausible one of each type, or anything at all. Encoded with a fresh HPACK
 *  encoder (it keeps no state, so blocks are valid whatever comes before). */
const plausibleFrame: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .record({ id: sid, f: flags, fs: fields, pad: fc.option(u8), prio: fc.boolean() })
    .map(({ id, f, fs, pad, prio }) => {
      const block = new Encoder().encode(fs);
      let fl = f & ~(Flag.PADDED | Flag.PRIORITY);
      const parts: Buffer[] = [];
      if (pad !== null) {
        fl |= Flag.PADDED;
        parts.push(Buffer.from([pad]));
      }
      if (prio) {
        fl |= Flag.PRIORITY;
        parts.push(Buffer.from([0, 0, 0, 0, 16]));
      }
      parts.push(block);
      if (pad !== null) parts.push(Buffer.alloc(pad));
      return frame(T.HEADERS, fl | Flag.END_HEADERS, id, Buffer.concat(parts));
    }),
  fc.record({ id: sid, f: flags, fs: fields, cut: fc.nat() }).map(({ id, f, fs, cut }) => {
    // A header block split into HEADERS + CONTINUATION.
    const block = new Encoder().encode(fs);
    const at = block.length ? cut % block.length : 0;
    return Buffer.concat([
      frame(T.HEADERS, f & Flag.END_STREAM, id, block.subarray(0, at)),
      frame(T.CONTINUATION, Flag.END_HEADERS, id, block.subarray(at)),
    ]);
  }),
  fc
    .record({ id: sid, f: flags, b: bytes(40) })
    .map(({ id, f, b }) => frame(T.CONTINUATION, f, id, b)),
  fc.record({ id: sid, f: flags, b: bytes(40) }).map(({ id, f, b }) => frame(T.HEADERS, f, id, b)),
  fc
    .record({
      id: sid,
      n: fc.oneof(fc.nat({ max: 2000 }), fc.constantFrom(0, 16_384)),
      end: fc.boolean(),
      pad: fc.option(u8),
    })
    .map(({ id, n, end, pad }) => {
      if (pad === null) return dataFrame(id, Buffer.alloc(n, 0x64), 0, n, end);
      const payload = Buffer.concat([Buffer.from([pad]), Buffer.alloc(n, 0x64), Buffer.alloc(pad)]);
      return frame(T.DATA, Flag.PADDED | (end ? Flag.END_STREAM : 0), id, payload);
    }),
  fc.record({ id: sid, inc: u32 }).map(({ id, inc }) => windowUpdateFrame(id, inc)),
  fc
    .record({ id: sid, code: fc.oneof(fc.constantFrom(0, 1, 5, 7, 8, 0xa), u32) })
    .map(({ id, code }) => rstStreamFrame(id, code)),
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: 8 }), u32), { maxLength: 4 })
    .map((s) => settingsFrame(s)),
  fc.constant(SETTINGS_ACK),
  fc
    .record({ ack: fc.boolean(), b: fc.uint8Array({ minLength: 8, maxLength: 8 }) })
    .map(({ ack, b }) => pingFrame(Buffer.from(b), ack)),
  fc.record({ last: u32, code: u32 }).map(({ last, code }) => goawayFrame(last & 0x7fffffff, code)),
  fc
    .record({ id: sid, n: fc.constantFrom(5, 5, 4, 0) })
    .map(({ id, n }) => frame(T.PRIORITY, 0, id, Buffer.alloc(n))),
  fc
    .record({ id: sid, b: bytes(12) })
    .map(({ id, b }) => frame(T.PUSH_PROMISE, Flag.END_HEADERS, id, b)),
  fc
    .record({ type: u8, f: u8, id: sid, b: bytes(64) })
    .map(({ type, f, id, b }) => frame(type, f, id, b)),
);

/** The opening a client sends: the preface and (usually) SETTINGS, maybe the ACK. */
const opening = (server: boolean) =>
  fc
    .record({
      settings: fc.option(
        fc.array(
          fc.tuple(
            fc.integer({ min: 1, max: 6 }),
            fc.constantFrom(0, 1, 100, 16_384, 65_535, 1 << 20),
          ),
          { maxLength: 3 },
        ),
        { freq: 10 },
      ),
      ack: fc.boolean(),
    })
    .map(({ settings, ack }) =>
      Buffer.concat([
        server ? PREFACE : Buffer.alloc(0),
        ...(settings
          ? [settingsFrame(settings.filter(([k]) => k !== Setting.ENABLE_PUSH || server))]
          : []),
        ...(ack ? [SETTINGS_ACK] : []),
      ]),
    );

/** Cut points: the bytes go to the session in these chunks. */
const cuts = fc.array(fc.nat(), { maxLength: 8 });
function split(buf: Buffer, at: number[]): Buffer[] {
  if (buf.length === 0) return [];
  const points = [...new Set(at.map((n) => n % buf.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, buf.length]) {
    if (p > from) out.push(buf.subarray(from, p));
    from = p;
  }
  return out;
}

/** A valid exchange from a client (server session) or a server (client session). */
function validExchange(server: boolean): Buffer {
  const e = new Encoder();
  if (server)
    return Buffer.concat([
      PREFACE,
      settingsFrame([
        [Setting.INITIAL_WINDOW_SIZE, 1 << 20],
        [Setting.MAX_FRAME_SIZE, 32_768],
      ]),
      SETTINGS_ACK,
      frame(T.HEADERS, Flag.END_HEADERS, 1, e.encode(CONNECT)),
      dataFrame(1, Buffer.alloc(300, 0x61), 0, 300, false),
      frame(T.HEADERS, Flag.END_HEADERS, 3, e.encode([...CONNECT, ['baggage', 'k=v']])),
      windowUpdateFrame(0, 100_000),
      windowUpdateFrame(1, 1000),
      pingFrame(Buffer.from('12345678'), false),
      frame(T.PRIORITY, 0, 3, Buffer.alloc(5)),
      frame(
        T.DATA,
        Flag.PADDED,
        3,
        Buffer.concat([Buffer.from([4]), Buffer.alloc(20, 0x62), Buffer.alloc(4)]),
      ),
      dataFrame(1, Buffer.alloc(10, 0x61), 0, 10, true),
      rstStreamFrame(3, ErrorCode.CANCEL),
      frame(T.HEADERS, 0, 5, e.encode(CONNECT).subarray(0, 3)),
      frame(T.CONTINUATION, Flag.END_HEADERS | 0, 5, e.encode(CONNECT).subarray(3)),
      settingsFrame([[Setting.HEADER_TABLE_SIZE, 0]]),
      goawayFrame(0, ErrorCode.NO_ERROR),
    ]);
  return Buffer.concat([
    settingsFrame([
      [Setting.INITIAL_WINDOW_SIZE, 1 << 20],
      [Setting.MAX_CONCURRENT_STREAMS, 100],
    ]),
    SETTINGS_ACK,
    frame(T.HEADERS, Flag.END_HEADERS, 1, e.encode([[':status', '100']])),
    frame(
      T.HEADERS,
      Flag.END_HEADERS,
      1,
      e.encode([
        [':status', '200'],
        ['server', 'x'],
      ]),
    ),
    dataFrame(1, Buffer.alloc(300, 0x61), 0, 300, false),
    frame(T.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, e.encode([[':status', '403']])),
    windowUpdateFrame(0, 100_000),
    windowUpdateFrame(1, 1000),
    pingFrame(Buffer.from('12345678'), false),
    frame(T.HEADERS, 0, 5, e.encode([[':status', '200']]).subarray(0, 1)),
    frame(T.CONTINUATION, Flag.END_HEADERS, 5, e.encode([[':status', '200']]).subarray(1)),
    dataFrame(5, Buffer.alloc(10, 0x61), 0, 10, true),
    rstStreamFrame(1, ErrorCode.CANCEL),
    goawayFrame(5, ErrorCode.NO_ERROR),
  ]);
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), v: u8 }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), v: u8 }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), v: fc.nat({ max: 20 }) }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), v: fc.nat({ max: 40 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), v: fc.constant(0) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(wire: Buffer, muts: Mutation[], keepPreface: boolean): Buffer {
  const floor = keepPreface ? PREFACE.length : 0;
  let w = wire;
  for (const m of muts) {
    if (w.length <= floor) break;
    const i = floor + (m.at % (w.length - floor));
    if (m.kind === 'flip') {
      w = Buffer.from(w);
      w[i] = m.v;
    } else if (m.kind === 'insert')
      w = Buffer.concat([w.subarray(0, i), Buffer.from([m.v]), w.subarray(i)]);
    else if (m.kind === 'delete') w = Buffer.concat([w.subarray(0, i), w.subarray(i + 1 + m.v)]);
    else if (m.kind === 'repeat') w = Buffer.concat([w.subarray(0, i + m.v), w.subarray(i)]);
    else w = w.subarray(0, i);
  }
  return w;
}

// --- the application ---------------------------------------------------------------------------

type App = 'hold' | 'echo' | 'refuse' | 'reset' | 'close' | 'destroy';
const app = fc.constantFrom<App>('hold', 'echo', 'refuse', 'reset', 'close');

function serve(c: () => Pair, behaviour: App) {
  return (s: H2Stream) => {
    switch (behaviour) {
      case 'hold':
        return;
      case 'refuse':
        return s.respond({ ':status': 403 }, { endStream: true });
      case 'reset':
        return s.close(ErrorCode.CANCEL);
      case 'close':
        c().session.close();
        break;
      case 'destroy':
        return c().session.destroy();
    }
    s.respond({ ':status': 200 });
    s.on('data', (b: Buffer) => s.write(b));
    s.on('end', () => s.end());
  };
}

// --- one run and its invariants ---------------------------------------------------------------

interface Run {
  readonly role: 'client' | 'server';
  readonly chunks: Buffer[];
  readonly app: App;
  readonly errorListener: boolean;
  /** The input is whole frames: a PING after it must be read as a PING. */
  readonly probe: boolean;
  /** Client role: requests opened before the input. */
  readonly requests?: number;
}

const stats = {
  runs: 0,
  alive: 0, // still usable at the end of their input
  streams: 0, // handed over to the application
  goaways: new Map<string, number>(),
  maxMs: 0,
  maxRatio: 0,
};

/** Runs once; throws (with what went wrong) if an invariant breaks. */
async function runOnce(r: Run): Promise<void> {
  const started = performance.now();
  let c!: Pair;
  // Regression: the session used to read on after it ended (a GOAWAY received with no stream
  // open, destroy() from a handler) and hand over streams that never closed.
  const late: number[] = [];
  c = await pair(r.role, {
    errorListener: r.errorListener,
    onStream: (s) => {
      if (c.session.destroyed) late.push(s.id);
      else serve(() => c, r.app)(s);
    },
  });
  const { peer, session } = c;
  let peerGoaway = false;
  session.on('goaway', () => {
    peerGoaway = true;
  });
  if (r.role === 'client')
    for (let i = 0; i < (r.requests ?? 0) && !session.closed; i++) {
      const s = session.request({ ':method': 'CONNECT', ':authority': 'a:1' });
      s.on('error', () => {});
      c.streams.push(s);
      s.on('response', () => s.on('data', () => {}));
    }
  const before = peer.bytesWritten;
  let input = 0;
  for (const chunk of r.chunks) {
    input += chunk.length;
    try {
      peer.send(chunk);
    } catch (err) {
      throw new Error(`an exception escaped the session: ${(err as Error).stack}`);
    }
    if (session.destroyed) break;
  }
  await tick(3);
  const fail = (what: string) => {
    throw new Error(
      `${what}; frames out: ${peer.frames.map((f) => `${f.type}/${f.streamId}`).join(' ')}`,
    );
  };
  if (peer.outputError) fail(`the session wrote bytes that do not parse: ${peer.outputError}`);
  if (late.length > 0) fail(`streams ${late} handed over by a session that had ended`);

  // One GOAWAY; or two when a graceful one (NO_ERROR) is followed by an error, with no
  // higher last-stream-id (§6.8).
  const goaways = peer.goaways();
  const [first, second] = goaways;
  if (goaways.length > 2) fail('more than two GOAWAYs');
  if (second && (first!.code !== ErrorCode.NO_ERROR || second.code === ErrorCode.NO_ERROR))
    fail('a second GOAWAY that does not turn a graceful close into an error');
  if (second && second.last > first!.last) fail('a second GOAWAY raises last-stream-id');
  const g = goaways.at(-1);
  if (g) {
    for (const { code } of goaways) {
      if (!KNOWN_CODES.has(code)) fail(`GOAWAY code ${code}`);
      const key = Object.entries(ErrorCode).find(([, v]) => v === code)?.[0];
      stats.goaways.set(key!, (stats.goaways.get(key!) ?? 0) + 1);
    }
    if (r.role === 'server')
      for (const s of c.streams)
        if (s.id > first!.last)
          fail(`stream ${s.id} handed over above last-stream-id ${first!.last}`);
    if (g.code !== ErrorCode.NO_ERROR) {
      if (!session.destroyed) fail('an error GOAWAY, and the session stays');
      // Regression: a WINDOW_UPDATE used to follow it (the unread bytes of the streams it cut).
      if (peer.frames.at(-1)?.type !== T.GOAWAY) fail('frames after an error GOAWAY');
      if (r.errorListener) {
        const codes = c.errors.map((e) => (e instanceof H2Error ? e.h2code : -1));
        if (codes.length !== 1 || codes[0] !== g.code)
          fail(`'error' ${codes} for GOAWAY ${g.code}`);
      }
    }
  } else if (session.destroyed && !peerGoaway) {
    fail('the session ended without a GOAWAY, and the peer sent none');
  }
  for (const [, code] of peer.rsts()) if (!KNOWN_CODES.has(code)) fail(`RST_STREAM code ${code}`);
  if (session.openStreams > LOCAL.maxConcurrentStreams + (r.requests ?? 0))
    fail(`${session.openStreams} streams open`);

  // Bounded output: no more than a small multiple of the input, plus the handshake, the
  // application's answers (one HEADERS each) and echoes.
  const out = peer.bytesWritten - before;
  const bound = 3 * input + 200 + 40 * c.streams.length;
  stats.maxRatio = Math.max(stats.maxRatio, input ? out / input : 0);
  if (out > bound) fail(`${out} bytes written for ${input} read`);

  stats.streams += c.streams.length;
  if (!session.destroyed) stats.alive++;
  if (r.probe && !session.destroyed) {
    const probe = Buffer.from('probe!!!');
    peer.send(pingFrame(probe, false));
    await tick();
    const answered = peer.frames.some(
      (f) => f.type === T.PING && f.flags & Flag.ACK && f.payload.equals(probe),
    );
    const g2 = peer.goaways().at(-1);
    // Refused only if the input left a header block open (PROTOCOL_ERROR) or spent the
    // PING budget (ENHANCE_YOUR_CALM).
    const refused = (code: number | undefined) =>
      code === ErrorCode.PROTOCOL_ERROR || code === ErrorCode.ENHANCE_YOUR_CALM;
    // Regression: after close() (GOAWAY NO_ERROR) a connection error used to end the
    // connection with no GOAWAY that says why: neither answered nor refused.
    if (!answered && !refused(g2?.code)) fail('a live session does not answer a PING');
  }

  peer.end();
  await tick(4);
  if (!session.destroyed || !c.closed) fail("the peer's FIN does not end the session");
  const open = c.streams.filter((s) => !s.destroyed);
  if (open.length > 0) fail(`streams ${open.map((s) => s.id)} still open after the session ended`);
  const ms = performance.now() - started;
  stats.maxMs = Math.max(stats.maxMs, ms);
  if (ms > 2_000) fail(`a run took ${ms.toFixed(0)} ms`);
  stats.runs++;
}

async function check(t: Test, name: string, prop: fc.IAsyncProperty<[Run]>, numRuns: number) {
  const started = performance.now();
  try {
    await fc.assert(prop, { numRuns });
    t.pass(`${name} (${numRuns} runs, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    t.fail(name, { diagnostic: true, error: (err as Error).message, cause: cause?.message });
  }
}

const wholeFrames = (server: boolean) =>
  fc
    .record({
      open: opening(server),
      streams: fc.boolean(),
      frames: fc.array(plausibleFrame, { maxLength: 30 }),
      cuts,
      app,
      errorListener: fc.boolean(),
      requests: fc.nat({ max: 3 }),
    })
    .map(
      ({ open, streams, frames, cuts, app, errorListener, requests }): Run => ({
        role: server ? 'server' : 'client',
        // Half the runs open streams 1 and 3 first (client) or answer 1 (server), so that
        // frames on those ids meet open streams.
        chunks: split(Buffer.concat([open, ...(streams ? opened(server) : []), ...frames]), cuts),
        app,
        errorListener,
        probe: true,
        requests,
      }),
    );

function opened(server: boolean): Buffer[] {
  const e = new Encoder();
  return server
    ? [
        frame(T.HEADERS, Flag.END_HEADERS, 1, e.encode(CONNECT)),
        frame(T.HEADERS, Flag.END_HEADERS, 3, e.encode(CONNECT)),
      ]
    : [frame(T.HEADERS, Flag.END_HEADERS, 1, e.encode([[':status', '200']]))];
}

const mutated = (server: boolean) =>
  fc
    .record({
      muts: fc.array(mutation, { minLength: 1, maxLength: 5 }),
      keepPreface: fc.boolean(),
      cuts,
      app,
      errorListener: fc.boolean(),
    })
    .map(
      ({ muts, keepPreface, cuts, app, errorListener }): Run => ({
        role: server ? 'server' : 'client',
        chunks: split(mutate(validExchange(server), muts, server && keepPreface), cuts),
        app,
        errorListener,
        probe: false,
        requests: 3,
      }),
    );

t.test('the valid exchanges themselves run clean', async (t) => {
  for (const server of [true, false]) {
    let c!: Pair;
    c = await pair(server ? 'server' : 'client', { onStream: serve(() => c, 'echo') });
    if (!server)
      for (let i = 0; i < 3; i++) {
        const s = c.session.request({ ':method': 'CONNECT', ':authority': 'a:1' });
        s.on('error', () => {});
      }
    c.peer.send(validExchange(server));
    await tick(3);
    t.same(
      c.peer.goaways().map((g) => g.code),
      server ? [] : [],
      `${server ? 'server' : 'client'}: no GOAWAY of its own`,
    );
    t.same(c.errors, [], 'no error');
    t.same(
      c.peer
        .rsts()
        .map(([, code]) => code)
        .filter((code) => code !== ErrorCode.NO_ERROR && code !== ErrorCode.CANCEL),
      [],
      'no stream error',
    );
    c.session.destroy();
  }
});

t.test('random frame sequences (server role)', async (t) => {
  await check(t, 'plausible frames', fc.asyncProperty(wholeFrames(true), runOnce), 3000);
});

t.test('mutated valid exchanges (server role)', async (t) => {
  await check(t, 'byte mutations', fc.asyncProperty(mutated(true), runOnce), 3000);
});

t.test('random frame sequences and mutated exchanges (client role)', async (t) => {
  await check(t, 'plausible frames', fc.asyncProperty(wholeFrames(false), runOnce), 1000);
  await check(t, 'byte mutations', fc.asyncProperty(mutated(false), runOnce), 1000);
});

t.test('random bytes after the preface', async (t) => {
  const raw = fc.record({ b: bytes(400), cuts }).map(
    ({ b, cuts }): Run => ({
      role: 'server',
      chunks: split(Buffer.concat([PREFACE, b]), cuts),
      app: 'echo',
      errorListener: true,
      probe: false,
    }),
  );
  await check(t, 'random bytes', fc.asyncProperty(raw, runOnce), 1000);
});

t.test("an application that destroys the session in 'stream'", async (t) => {
  // The application ends the session while the reader is in the middle of a chunk: the
  // rest of the chunk must not reach a destroyed session.
  const destroying = wholeFrames(true).map((r): Run => ({ ...r, app: 'destroy' }));
  await check(t, 'the other invariants hold', fc.asyncProperty(destroying, runOnce), 500);
});

t.test('the heap does not grow across runs', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const sample = fc.sample(fc.oneof(wholeFrames(true), mutated(true), wholeFrames(false)), 400);
  const batch = async (runs: Run[]) => {
    for (const r of runs) await runOnce(r).catch(() => {});
  };
  await batch(sample.slice(0, 100)); // warm up (JIT, static tables)
  await new Promise((r) => setTimeout(r, 1100)); // each ended session's last timer is 1 s
  gc();
  const before = process.memoryUsage().heapUsed;
  await batch(sample.slice(100));
  await new Promise((r) => setTimeout(r, 1100));
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.ok(grown < 8 * 1024 * 1024, `heap growth over 300 runs: ${(grown / 1024).toFixed(0)} KiB`);
});

t.test('summary', async (t) => {
  t.comment(
    `${stats.runs} runs, ${stats.alive} alive at the end of their input, ${stats.streams} streams handed over; slowest ${stats.maxMs.toFixed(0)} ms; largest output/input ${stats.maxRatio.toFixed(2)}; ` +
      `GOAWAYs: ${[...stats.goaways].map(([k, n]) => `${k} ${n}`).join(', ')}`,
  );
  // The generators reach what they are meant to: live sessions, streams, both kinds of end.
  t.ok(stats.alive > 0, 'some sessions are still usable at the end of their input');
  t.ok(stats.streams > 0, 'streams are handed over to the application');
  t.ok(
    stats.goaways.has('NO_ERROR') && stats.goaways.has('PROTOCOL_ERROR'),
    'graceful and error GOAWAYs are both seen',
  );
});
