// The frame reader and writers (hbone/h2/frame.ts), by properties checked with fast-check:
// any split of a frame sequence into chunks reads as the same frames (DATA reassembled,
// padding stripped); random and mutated bytes only ever yield frames or an H2Error (never
// another exception, never a frame above the size limit, never a hang); an oversized frame
// is refused with FRAME_SIZE_ERROR from its header alone; a bad preface with PROTOCOL_ERROR;
// what the writers produce reads back as written. Frames here are encoded by hand, not by
// the writers, so the reader is checked against an independent encoding.
import { isDeepStrictEqual as same } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import {
  DEFAULT_MAX_FRAME,
  dataFrame,
  ErrorCode,
  Flag,
  FrameReader,
  type FrameSink,
  FrameType,
  frame,
  goawayFrame,
  H2Error,
  HEADER_BYTES,
  headersFrames,
  PREFACE,
  pingFrame,
  rstStreamFrame,
  SETTINGS_ACK,
  settingsFrame,
  windowUpdateFrame,
} from '../../hbone/h2/frame.js';

/** A frame as the reader should report it: DATA with its data (padding removed) and its
 *  flow-controlled length; any other type with its payload. */
interface Read {
  type: number;
  flags: number;
  streamId: number;
  payload: string; // hex, for deep equality
  length: number;
}

/** Records what the reader hands over and checks the sink contract as it goes. */
class Recorder implements FrameSink {
  readonly frames: Read[] = [];
  #data: { flags: number; streamId: number; length: number; parts: Buffer[] } | undefined;
  constructor(readonly maxFrameBytes: number) {}

  frame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.#data) throw new Error('frame() inside a DATA frame');
    if (type === FrameType.DATA) throw new Error('DATA through frame()');
    if (payload.length > this.maxFrameBytes) throw new Error('frame above the limit');
    if (streamId > 0x7fffffff) throw new Error('reserved bit not masked');
    this.frames.push({
      type,
      flags,
      streamId,
      payload: payload.toString('hex'),
      length: payload.length,
    });
  }

  dataStart(flags: number, streamId: number, length: number): void {
    if (this.#data) throw new Error('dataStart() twice');
    if (length > this.maxFrameBytes) throw new Error('DATA above the limit');
    this.#data = { flags, streamId, length, parts: [] };
  }

  data(chunk: Buffer): void {
    if (!this.#data) throw new Error('data() outside a DATA frame');
    if (chunk.length === 0) throw new Error('empty data()');
    this.#data.parts.push(Buffer.from(chunk));
    const got = this.#data.parts.reduce((n, b) => n + b.length, 0);
    if (got > this.#data.length) throw new Error('more data than the frame length');
  }

  dataEnd(): void {
    const d = this.#data;
    if (!d) throw new Error('dataEnd() outside a DATA frame');
    this.#data = undefined;
    this.frames.push({
      type: FrameType.DATA,
      flags: d.flags,
      streamId: d.streamId,
      payload: Buffer.concat(d.parts).toString('hex'),
      length: d.length,
    });
  }

  get inData(): boolean {
    return this.#data !== undefined;
  }
}

/** One frame of the model: its bytes on the wire and what the reader must report. */
interface Model {
  bytes: Buffer;
  read: Read;
}

function header(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId >>> 0, 5);
  return h;
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
/** A stream id, sometimes with the reserved bit set (the reader must ignore it). */
const streamId = fc
  .tuple(
    fc.oneof(fc.constantFrom(0, 1, 2, 3), fc.integer({ min: 0, max: 0x7fffffff })),
    fc.boolean(),
  )
  .map(([id, reserved]) => [id, reserved ? (id | 0x80000000) >>> 0 : id] as const);

const dataModel: fc.Arbitrary<Model> = fc
  .record({
    id: streamId,
    flags: fc.integer({ min: 0, max: 255 }),
    data: bytes(300),
    pad: fc.option(fc.integer({ min: 0, max: 255 })),
  })
  .map(({ id, flags, data, pad }) => {
    const padded = pad !== null;
    const f = padded ? flags | Flag.PADDED : flags & ~Flag.PADDED;
    const payload = padded
      ? Buffer.concat([Buffer.from([pad]), data, Buffer.alloc(pad, 0xee)])
      : data;
    return {
      bytes: Buffer.concat([header(payload.length, FrameType.DATA, f, id[1]), payload]),
      read: {
        type: FrameType.DATA,
        flags: f,
        streamId: id[0],
        payload: data.toString('hex'),
        length: payload.length,
      },
    };
  });

const otherModel: fc.Arbitrary<Model> = fc
  .record({
    type: fc.integer({ min: 1, max: 255 }),
    flags: fc.integer({ min: 0, max: 255 }),
    id: streamId,
    payload: bytes(300),
  })
  .map(({ type, flags, id, payload }) => ({
    bytes: Buffer.concat([header(payload.length, type, flags, id[1]), payload]),
    read: {
      type,
      flags,
      streamId: id[0],
      payload: payload.toString('hex'),
      length: payload.length,
    },
  }));

const sequence = fc.array(fc.oneof(dataModel, otherModel), { maxLength: 12 });
/** Cut points into a buffer (taken modulo its length). */
const cuts = fc.array(fc.nat(), { maxLength: 20 });

function split(buf: Buffer, at: number[]): Buffer[] {
  if (buf.length === 0) return [buf];
  const points = [...new Set(at.map((n) => n % buf.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, buf.length]) {
    out.push(buf.subarray(from, p)); // empty chunks included: the reader must take them
    from = p;
  }
  return out;
}

/** Feeds chunks; returns the frames read and the error, if any. Anything but an H2Error
 *  (or a broken sink contract) escapes and fails the property. */
function readAll(
  chunks: Buffer[],
  maxFrameBytes: number,
  expectPreface: boolean,
): { rec: Recorder; reader: FrameReader; error: H2Error | undefined } {
  const reader = new FrameReader(maxFrameBytes, expectPreface);
  const rec = new Recorder(maxFrameBytes);
  for (const chunk of chunks) {
    try {
      reader.push(chunk, rec);
    } catch (err) {
      if (!(err instanceof H2Error)) throw err;
      if (!Object.values(ErrorCode).includes(err.h2code as never)) throw err;
      return { rec, reader, error: err };
    }
  }
  return { rec, reader, error: undefined };
}

t.test('any split of a frame sequence reads as the same frames', async (t) => {
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(sequence, cuts, fc.boolean(), (frames, at, preface) => {
          const wire = Buffer.concat([
            preface ? PREFACE : Buffer.alloc(0),
            ...frames.map((f) => f.bytes),
          ]);
          const { rec, reader, error } = readAll(split(wire, at), DEFAULT_MAX_FRAME, preface);
          if (error) throw error;
          return (
            same(
              rec.frames,
              frames.map((f) => f.read),
            ) &&
            reader.betweenFrames &&
            !rec.inData
          );
        }),
        { numRuns: 10_000 },
      ),
    'same frames, DATA reassembled and unpadded, reader between frames at the end',
  );
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(
          sequence.filter((s) => s.length > 0),
          fc.nat(),
          (frames, cut) => {
            // A cut strictly inside the last frame leaves the reader mid-frame.
            const wire = Buffer.concat(frames.map((f) => f.bytes));
            const last = frames.at(-1)!.bytes.length;
            const at = wire.length - 1 - (cut % (last - 1 || 1));
            const reader = new FrameReader(DEFAULT_MAX_FRAME, false);
            reader.push(wire.subarray(0, at), new Recorder(DEFAULT_MAX_FRAME));
            return !reader.betweenFrames;
          },
        ),
        { numRuns: 1000 },
      ),
    'betweenFrames is false inside a frame',
  );
});

t.test('DATA padding at its edges', async (t) => {
  const cases: Array<[string, Buffer, Read[] | number]> = [
    ['PADDED without a pad length', header(0, 0, Flag.PADDED, 1), ErrorCode.FRAME_SIZE_ERROR],
    [
      'pad length equal to the frame length',
      Buffer.concat([header(3, 0, Flag.PADDED, 1), Buffer.from([3, 0, 0])]),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'pad length above the frame length',
      Buffer.concat([header(1, 0, Flag.PADDED, 1), Buffer.from([200])]),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      'only padding',
      Buffer.concat([header(3, 0, Flag.PADDED, 1), Buffer.from([2, 0, 0])]),
      [{ type: 0, flags: Flag.PADDED, streamId: 1, payload: '', length: 3 }],
    ],
    [
      'pad length 0',
      Buffer.concat([header(1, 0, Flag.PADDED | Flag.END_STREAM, 1), Buffer.from([0])]),
      [{ type: 0, flags: Flag.PADDED | Flag.END_STREAM, streamId: 1, payload: '', length: 1 }],
    ],
    [
      'empty DATA',
      header(0, 0, Flag.END_STREAM, 3),
      [{ type: 0, flags: Flag.END_STREAM, streamId: 3, payload: '', length: 0 }],
    ],
  ];
  for (const [name, wire, want] of cases) {
    for (const chunks of [[wire], [...wire].map((b) => Buffer.from([b]))]) {
      const { rec, error } = readAll(chunks, DEFAULT_MAX_FRAME, false);
      if (typeof want === 'number')
        t.equal(error?.h2code, want, `${name} (${chunks.length} chunks)`);
      else t.same([error, rec.frames], [undefined, want], `${name} (${chunks.length} chunks)`);
    }
  }
});

t.test('random and mutated bytes: frames or an H2Error, nothing else', async (t) => {
  const maxFrame = fc.oneof(fc.constant(DEFAULT_MAX_FRAME), fc.integer({ min: 0, max: 600 }));
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(bytes(2000), cuts, maxFrame, fc.boolean(), (wire, at, max, preface) => {
          const started = performance.now();
          readAll(split(wire, at), max, preface);
          return performance.now() - started < 500;
        }),
        { numRuns: 20_000 },
      ),
    'random bytes',
  );
  const mutation = fc.oneof(
    fc.record({
      kind: fc.constant('flip' as const),
      at: fc.nat(),
      value: fc.integer({ min: 0, max: 255 }),
    }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      value: fc.integer({ min: 0, max: 255 }),
    }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
  );
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(
          sequence.filter((s) => s.length > 0),
          fc.array(mutation, { minLength: 1, maxLength: 6 }),
          cuts,
          maxFrame,
          (frames, muts, at, max) => {
            let wire = Buffer.concat([PREFACE, ...frames.map((f) => f.bytes)]);
            for (const m of muts) {
              const i = m.at % wire.length;
              if (m.kind === 'flip') wire[i] = m.value;
              else if (m.kind === 'insert')
                wire = Buffer.concat([
                  wire.subarray(0, i),
                  Buffer.from([m.value]),
                  wire.subarray(i),
                ]);
              else wire = Buffer.concat([wire.subarray(0, i), wire.subarray(i + 1)]);
              if (wire.length === 0) return true;
            }
            readAll(split(wire, at), max, true);
            return true;
          },
        ),
        { numRuns: 20_000 },
      ),
    'mutated valid sequences',
  );
});

t.test('a frame above the size limit is refused from its header alone', async (t) => {
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 20_000 }),
          fc.integer({ min: 1, max: 0xffffff }),
          fc.integer({ min: 0, max: 255 }),
          fc.integer({ min: 0, max: 255 }),
          fc.nat({ max: HEADER_BYTES - 1 }),
          (max, over, type, flags, cut) => {
            const length = Math.min(max + over, 0xffffff);
            if (length <= max) return true;
            const h = header(length, type, flags, 1);
            const reader = new FrameReader(max, false);
            const rec = new Recorder(max);
            reader.push(h.subarray(0, cut), rec); // not yet a whole header: nothing to refuse
            try {
              reader.push(h.subarray(cut), rec);
            } catch (err) {
              return (
                err instanceof H2Error &&
                err.h2code === ErrorCode.FRAME_SIZE_ERROR &&
                err.streamId === 0 &&
                rec.frames.length === 0 &&
                !rec.inData
              );
            }
            return false;
          },
        ),
        { numRuns: 3000 },
      ),
    'FRAME_SIZE_ERROR, no sink call, with no payload byte read',
  );
  const atLimit = Buffer.concat([header(600, 0x21, 0, 0), Buffer.alloc(600)]);
  t.equal(
    readAll([atLimit], 600, false).rec.frames.length,
    1,
    'a frame of exactly the limit is read',
  );
});

t.test('a bad preface is a PROTOCOL_ERROR where it differs', async (t) => {
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(
          fc.nat({ max: PREFACE.length - 1 }),
          fc.integer({ min: 0, max: 255 }),
          cuts,
          (at, value, cutsAt) => {
            if (PREFACE[at] === value) return true;
            const wire = Buffer.concat([PREFACE, SETTINGS_ACK]);
            wire[at] = value;
            const chunks = split(wire, cutsAt);
            const reader = new FrameReader(DEFAULT_MAX_FRAME, true);
            const rec = new Recorder(DEFAULT_MAX_FRAME);
            let fed = 0;
            for (const chunk of chunks) {
              try {
                reader.push(chunk, rec);
              } catch (err) {
                // Thrown by the chunk that holds the differing byte, before any frame.
                return (
                  err instanceof H2Error &&
                  err.h2code === ErrorCode.PROTOCOL_ERROR &&
                  fed <= at &&
                  at < fed + chunk.length &&
                  rec.frames.length === 0
                );
              }
              fed += chunk.length;
            }
            return false;
          },
        ),
        { numRuns: 2000 },
      ),
    'PROTOCOL_ERROR on the chunk with the first wrong byte',
  );
  // A client reader expects no preface: "PRI" read as a frame length is 5,263,945 bytes.
  const client = readAll([PREFACE], DEFAULT_MAX_FRAME, false);
  t.equal(
    client.error?.h2code,
    ErrorCode.FRAME_SIZE_ERROR,
    'a preface sent to a client: FRAME_SIZE_ERROR',
  );
});

t.test('what the writers produce reads back as written', async (t) => {
  const id = fc.integer({ min: 0, max: 0x7fffffff });
  const read1 = (buf: Buffer, max = DEFAULT_MAX_FRAME) => {
    const { rec, error } = readAll([buf], max, false);
    if (error) throw error;
    return rec.frames;
  };
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 255 }),
          fc.integer({ min: 0, max: 255 }),
          id,
          fc.option(bytes(500)),
          (type, flags, sid, payload) => {
            return same(read1(frame(type, flags, sid, payload ?? undefined)), [
              {
                type,
                flags,
                streamId: sid,
                payload: (payload ?? Buffer.alloc(0)).toString('hex'),
                length: payload?.length ?? 0,
              },
            ]);
          },
        ),
        { numRuns: 1000 },
      ),
    'frame()',
  );
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(id, bytes(800), fc.nat(), fc.nat(), fc.boolean(), (sid, data, a, b, end) => {
          const from = data.length ? a % (data.length + 1) : 0;
          const to = from + (data.length - from ? b % (data.length - from + 1) : 0);
          return same(read1(dataFrame(sid, data, from, to, end)), [
            {
              type: FrameType.DATA,
              flags: end ? Flag.END_STREAM : 0,
              streamId: sid,
              payload: data.subarray(from, to).toString('hex'),
              length: to - from,
            },
          ]);
        }),
        { numRuns: 1000 },
      ),
    'dataFrame()',
  );
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(
          id.filter((n) => n > 0),
          bytes(3000),
          fc.boolean(),
          fc.integer({ min: 1, max: 700 }),
          (sid, block, end, max) => {
            const frames = read1(headersFrames(sid, block, end, max), Math.max(max, 1));
            const last = frames.length - 1;
            const ok = frames.every(
              (f, i) =>
                f.type === (i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION) &&
                f.streamId === sid &&
                f.length <= max &&
                (f.flags & Flag.END_HEADERS) === (i === last ? Flag.END_HEADERS : 0) &&
                (f.flags & Flag.END_STREAM) === (i === 0 && end ? Flag.END_STREAM : 0),
            );
            const joined = frames.map((f) => f.payload).join('');
            return (
              ok && joined === block.toString('hex') && (frames.length === 1 || block.length > max)
            );
          },
        ),
        { numRuns: 1000 },
      ),
    'headersFrames(): HEADERS then CONTINUATIONs, each within the size, flags on the right frame',
  );
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.nat({ max: 0xffffffff })), {
            maxLength: 10,
          }),
          id,
          fc.nat({ max: 0xffffffff }),
          fc.string({ maxLength: 300 }),
          fc.uint8Array({ minLength: 8, maxLength: 8 }),
          fc.boolean(),
          fc.integer({ min: 1, max: 0x7fffffff }),
          (settings, sid, code, debug, ping, ack, inc) => {
            const [s] = read1(settingsFrame(settings));
            const got: Array<[number, number]> = [];
            const p = Buffer.from(s!.payload, 'hex');
            for (let at = 0; at < p.length; at += 6)
              got.push([p.readUInt16BE(at), p.readUInt32BE(at + 2)]);
            const ok1 = same(
              [s!.type, s!.flags, s!.streamId, got],
              [FrameType.SETTINGS, 0, 0, settings],
            );
            const [g] = read1(goawayFrame(sid, code, debug));
            const gp = Buffer.from(g!.payload, 'hex');
            const ok2 = same(
              [
                g!.type,
                g!.streamId,
                gp.readUInt32BE(0),
                gp.readUInt32BE(4),
                gp.subarray(8).toString(),
              ],
              [FrameType.GOAWAY, 0, sid, code, Buffer.from(debug.slice(0, 256)).toString()],
            );
            const [pf] = read1(pingFrame(Buffer.from(ping), ack));
            const ok3 = same(
              [pf!.type, pf!.flags, pf!.streamId, pf!.payload],
              [FrameType.PING, ack ? Flag.ACK : 0, 0, Buffer.from(ping).toString('hex')],
            );
            const [r] = read1(rstStreamFrame(sid, code));
            const ok4 = same(
              [r!.type, r!.streamId, Buffer.from(r!.payload, 'hex').readUInt32BE(0)],
              [FrameType.RST_STREAM, sid, code],
            );
            const [w] = read1(windowUpdateFrame(sid, inc));
            const ok5 = same(
              [w!.type, w!.streamId, Buffer.from(w!.payload, 'hex').readUInt32BE(0)],
              [FrameType.WINDOW_UPDATE, sid, inc],
            );
            return ok1 && ok2 && ok3 && ok4 && ok5;
          },
        ),
        { numRuns: 500 },
      ),
    'settingsFrame(), goawayFrame(), pingFrame(), rstStreamFrame(), windowUpdateFrame()',
  );
  t.same(
    read1(SETTINGS_ACK),
    [{ type: FrameType.SETTINGS, flags: Flag.ACK, streamId: 0, payload: '', length: 0 }],
    'SETTINGS_ACK',
  );
});
