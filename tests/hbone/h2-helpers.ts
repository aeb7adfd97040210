// Harness for the own HTTP/2 engine's tests (hbone/h2/): an in-memory byte pipe under an
// H2Session and a hand-written peer that writes raw frames (frame.ts writers, hpack Encoder)
// and parses every byte the session writes back with FrameReader. Nothing touches the network;
// once the session reads (after one tick), a send() is delivered synchronously, so a bug
// the session throws surfaces at the send() that caused it.
import { Duplex } from 'node:stream';
import {
  ErrorCode,
  FrameReader,
  FrameType,
  frame,
  H2Error,
  MAX_FRAME_LIMIT,
  PREFACE,
  SETTINGS_ACK,
  settingsFrame,
} from '../../hbone/h2/frame.js';
import { Encoder, type HeaderField } from '../../hbone/h2/hpack.js';
import { type H2Limits, type H2LocalSettings, H2Session } from '../../hbone/h2/session.js';
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
