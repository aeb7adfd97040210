// Harness for the own HTTP/2 engine's tests (hbone/h2/): an in-memory byte pipe under an
// H2Session and a hand-written peer that writes raw frames (frame.ts writers, hpack Encoder)
// and parses every byte the session writes back with FrameReader. Nothing touches the network;
// once the session reads (after one tick), a send() is delivered synchronously, so a bug
// the session throws surfaces at the send() that caused it. Last, the frame builders and the
// violation-table runner the h2-conformance-*.test.ts files share.
import { Duplex } from 'node:stream';
import type { Test } from 'tap';
import type { H2Limits, H2LocalSettings } from '../../hbone/h2/config.js';
import {
  dataFrame,
  ErrorCode,
  errorCodeName,
  Flag,
  FrameReader,
  FrameType,
  frame,
  H2Error,
  MAX_FRAME_LIMIT,
  PREFACE,
  pingFrame,
  SETTINGS_ACK,
  settingsFrame,
} from '../../hbone/h2/frame.js';
import { Encoder, type HeaderField } from '../../hbone/h2/hpack.js';
import { H2Session } from '../../hbone/h2/session.js';
import type { H2Stream } from '../../hbone/h2/stream.js';

export interface WireFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  /** DATA: the data, reassembled, padding removed. */
  readonly payload: Buffer;
}

/** Every RFC 9113 §7 code: what a GOAWAY or RST_STREAM of ours may carry. */
export const KNOWN_CODES: ReadonlySet<number> = new Set(Object.values(ErrorCode));

export const LOCAL: H2LocalSettings = Object.freeze({
  streamWindowBytes: 65_535,
  connectionWindowBytes: 65_535,
  maxFrameBytes: 16_384,
  maxConcurrentStreams: 4,
  maxHeaderListBytes: 1024,
});

export const CONNECT: HeaderField[] = [
  [':method', 'CONNECT'],
  [':authority', '10.0.0.5:8080'],
];

/** The session's end of the pipe. The peer's bytes are pushed into its readable side; what
 *  the session writes goes to `onWrite`, and `stall()` stops completing writes (a peer that
 *  does not read) until `release()`. */
class PipeSocket extends Duplex {
  #held: Array<() => void> | undefined;

  constructor(
    private readonly onWrite: (chunk: Buffer) => void,
    private readonly onEnd: () => void,
  ) {
    super({ allowHalfOpen: true });
  }

  stall(): void {
    this.#held ??= [];
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const cb of held) cb();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.onWrite(chunk);
    if (this.#held) this.#held.push(() => cb());
    else cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.onEnd();
    cb();
  }

  override _read(): void {}
}

/** The other end: writes raw bytes, reads the session's frames. */
export class Peer {
  readonly frames: WireFrame[] = [];
  readonly socket: PipeSocket;
  readonly encoder = new Encoder();
  /** Bytes the session wrote, and whether it ended its side (FIN). */
  bytesWritten = 0;
  ended = false;
  /** The session's output did not parse (always a bug: it must write valid frames). */
  outputError: unknown;
  readonly #reader: FrameReader;
  #data: { flags: number; streamId: number; parts: Buffer[] } | undefined;

  constructor(sessionIsClient: boolean) {
    this.#reader = new FrameReader(MAX_FRAME_LIMIT, sessionIsClient);
    this.socket = new PipeSocket(
      (chunk) => this.#parse(chunk),
      () => {
        this.ended = true;
      },
    );
  }

  /** Delivers bytes to the session (synchronously once it reads). */
  send(...bufs: Buffer[]): void {
    this.socket.push(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs));
  }

  /** The peer's FIN. */
  end(): void {
    this.socket.push(null);
  }

  stall(): void {
    this.socket.stall();
  }

  release(): void {
    this.socket.release();
  }

  /** A HEADERS frame carrying `fields` (one frame, END_HEADERS unless told). */
  headers(
    streamId: number,
    fields: readonly HeaderField[],
    opts: { endStream?: boolean; endHeaders?: boolean } = {},
  ): Buffer {
    const flags = (opts.endHeaders === false ? 0 : 0x4) | (opts.endStream ? 0x1 : 0);
    return frame(FrameType.HEADERS, flags, streamId, this.encoder.encode(fields));
  }

  of(type: number): WireFrame[] {
    return this.frames.filter((f) => f.type === type);
  }

  goaways(): Array<{ last: number; code: number; debug: string }> {
    return this.of(FrameType.GOAWAY).map((f) => ({
      last: f.payload.readUInt32BE(0),
      code: f.payload.readUInt32BE(4),
      debug: f.payload.subarray(8).toString(),
    }));
  }

  goaway(): { last: number; code: number; debug: string } | undefined {
    return this.goaways()[0];
  }

  rsts(): Array<[id: number, code: number]> {
    return this.of(FrameType.RST_STREAM).map((f) => [f.streamId, f.payload.readUInt32BE(0)]);
  }

  /** Window credit the session gave on `streamId` (0: the connection). */
  credit(streamId: number): number {
    return this.of(FrameType.WINDOW_UPDATE)
      .filter((f) => f.streamId === streamId)
      .reduce((sum, f) => sum + (f.payload.readUInt32BE(0) & 0x7fffffff), 0);
  }

  data(streamId: number): Buffer {
    return Buffer.concat(
      this.of(FrameType.DATA)
        .filter((f) => f.streamId === streamId)
        .map((f) => f.payload),
    );
  }

  #parse(chunk: Buffer): void {
    this.bytesWritten += chunk.length;
    if (this.outputError) return;
    try {
      this.#reader.push(chunk, {
        frame: (type, flags, streamId, payload) =>
          this.frames.push({ type, flags, streamId, payload: Buffer.from(payload) }),
        dataStart: (flags, streamId) => {
          this.#data = { flags, streamId, parts: [] };
        },
        data: (part) => this.#data!.parts.push(Buffer.from(part)),
        dataEnd: () => {
          const d = this.#data!;
          this.#data = undefined;
          this.frames.push({
            type: FrameType.DATA,
            flags: d.flags,
            streamId: d.streamId,
            payload: Buffer.concat(d.parts),
          });
        },
      });
    } catch (err) {
      this.outputError = err;
    }
  }
}

export interface Pair {
  readonly session: H2Session;
  readonly peer: Peer;
  /** Streams the session handed over ('stream' events, server). */
  readonly streams: H2Stream[];
  /** Errors the session emitted. */
  readonly errors: unknown[];
  closed: boolean;
}

export interface PairOptions {
  readonly local?: Partial<H2LocalSettings>;
  readonly limits?: Partial<H2Limits>;
  /** Whether to listen for the session's 'error' (default true; without, it must not throw). */
  readonly errorListener?: boolean;
  /** What the server application does with a new stream (default: keeps it, unanswered). */
  readonly onStream?: (stream: H2Stream, headers: Record<string, string>) => void;
}

/** A session of `role` on a fresh pipe; resolves once the session reads. */
export async function pair(role: 'client' | 'server', opts: PairOptions = {}): Promise<Pair> {
  const peer = new Peer(role === 'client');
  const session = new H2Session(peer.socket, {
    role,
    local: { ...LOCAL, ...opts.local },
    limits: opts.limits,
  });
  const p: Pair = { session, peer, streams: [], errors: [], closed: false };
  if (opts.errorListener !== false) session.on('error', (err) => p.errors.push(err));
  session.on('close', () => {
    p.closed = true;
  });
  session.on('stream', (stream: H2Stream, headers: Record<string, string>) => {
    stream.on('error', () => {});
    p.streams.push(stream);
    opts.onStream?.(stream, headers);
  });
  await tick();
  return p;
}

/** The peer's side of the handshake: (preface,) SETTINGS, and the ACK of the session's. */
export function handshake(
  peer: Peer,
  role: 'client' | 'server',
  settings: ReadonlyArray<readonly [number, number]> = [],
  ack = true,
): void {
  const parts: Buffer[] = role === 'server' ? [PREFACE] : [];
  parts.push(settingsFrame(settings));
  if (ack) parts.push(SETTINGS_ACK);
  peer.send(...parts);
}

/** Lets queued callbacks, nextTicks and stream events run. */
export async function tick(n = 2): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

export function isH2Error(err: unknown): err is H2Error {
  return err instanceof H2Error;
}

/** `count` times the same bytes. */
export function times(count: number, buf: Buffer): Buffer {
  return Buffer.concat(Array.from({ length: count }, () => buf));
}

// --- frame builders and the violation table (h2-conformance-*.test.ts) ----------------------

export const MAX_WINDOW = 2 ** 31 - 1;

export const ping = (ack = false, payload: Buffer = Buffer.alloc(8)) => pingFrame(payload, ack);
/** DATA of `n` bytes on `id`. */
export const data = (id: number, n: number, end = false) =>
  dataFrame(id, Buffer.alloc(n, 0x61), 0, n, end);
export const setting = (id: number, value: number) => settingsFrame([[id, value]]);
export const priority = (id: number, len = 5) =>
  frame(FrameType.PRIORITY, 0, id, Buffer.alloc(len));
/** Server role: the peer opens stream `id` with `fields` (a CONNECT by default). */
export const open = (c: Pair, id: number, endStream = false, fields: HeaderField[] = CONNECT) =>
  c.peer.send(c.peer.headers(id, fields, { endStream }));
/** A request with one field changed or added after CONNECT's. */
export const request = (...extra: HeaderField[]): HeaderField[] => [...CONNECT, ...extra];

/** Client role: opens a CONNECT stream through the session under test. */
export function connect(c: Pair): H2Stream {
  const s = c.session.request({ ':method': 'CONNECT', ':authority': '10.0.0.5:8080' });
  s.on('error', () => {});
  c.streams.push(s);
  return s;
}

/** Client role: the peer answers stream `id` with `:status`. */
export const status = (c: Pair, id: number, code = '200', endStream = false) =>
  c.peer.send(c.peer.headers(id, [[':status', code]], { endStream }));

/** A server whose application answers 200 and hands each stream to the test. */
export async function server(opts: PairOptions = {}, settings: Array<[number, number]> = []) {
  const c = await pair('server', {
    ...opts,
    onStream: (s) => s.respond({ ':status': 200 }),
  });
  handshake(c.peer, 'server', settings);
  await tick();
  return c;
}

/** The answer a violation deserves: a connection error (GOAWAY), a stream error
 *  (RST_STREAM), or none (the session stays usable, checked by a PING it must answer). */
export type Expect = { goaway: number } | { rst: readonly [id: number, code: number] } | 'ignored';

export interface Row {
  name: string;
  role?: 'client' | 'server';
  opts?: PairOptions;
  /** The peer's handshake (default: SETTINGS and the ACK of ours); false: none. */
  handshake?: false | { settings?: Array<[number, number]>; ack?: boolean };
  /** Before the violation (its frames are not the answer). */
  setup?: (c: Pair) => unknown;
  act: (c: Pair) => unknown;
  expect: Expect;
  /** Skip the PING probe (a row that spends the PING budget). */
  noProbe?: boolean;
}

/** Checks the session's answer to what the peer sent after `mark` frames. */
async function verdict(t: Test, c: Pair, row: Row, mark: number): Promise<void> {
  const { peer, session } = c;
  await tick(3);
  t.equal(peer.outputError, undefined, 'the session writes only valid frames');
  const answer = peer.frames.slice(mark);
  const goaways = answer.filter((f) => f.type === FrameType.GOAWAY);
  const name = (f: WireFrame | undefined) =>
    f && errorCodeName(f.payload.readUInt32BE(f.type === FrameType.GOAWAY ? 4 : 0));
  if (typeof row.expect === 'object' && 'goaway' in row.expect) {
    t.equal(name(goaways[0]), errorCodeName(row.expect.goaway), 'GOAWAY code');
    t.equal(goaways.length, 1, 'one GOAWAY');
    t.equal(answer.at(-1)?.type, FrameType.GOAWAY, 'GOAWAY is the last frame');
    t.ok(session.destroyed && peer.ended, 'the connection ends');
    await tick();
    t.ok(c.closed, "the session emits 'close'");
    return;
  }
  t.same(goaways.map(name), [], 'no GOAWAY');
  const rsts = answer
    .filter((f) => f.type === FrameType.RST_STREAM)
    .map((f) => [f.streamId, name(f)]);
  if (row.expect === 'ignored') t.same(rsts, [], 'no RST_STREAM');
  else t.same(rsts, [[row.expect.rst[0], errorCodeName(row.expect.rst[1])]], 'RST_STREAM');
  t.notOk(session.destroyed, 'the session stays');
  if (row.noProbe || session.destroyed) return;
  const probe = Buffer.from('probe!!!');
  peer.send(ping(false, probe));
  await tick();
  const acks = peer.frames.filter(
    (f) => f.type === FrameType.PING && f.flags === Flag.ACK && f.payload.equals(probe),
  );
  t.equal(acks.length, 1, 'and answers a PING');
}

/** One subtest per row: a fresh session, the handshake, the setup, the violation, and the
 *  session's answer read off the wire. */
export async function runRows(t: Test, rows: readonly Row[]): Promise<void> {
  for (const row of rows) {
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
}
