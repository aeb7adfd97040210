// HTTP/2 framing (RFC 9113 §4, §6) for the own HBONE engine: the protocol's numbers, the
// error that ends a stream or the connection, the incremental frame reader and the frame
// writers. The reader hands DATA payloads over as slices of the chunks TLS gave us (no copy,
// padding stripped) and every other frame whole; it checks only what framing alone can
// check (preface, frame size, padding); meaning is session.ts's.
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** RFC 9113 §7. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const CODE_NAMES = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

export function errorCodeName(code: number): string {
  return CODE_NAMES[code] ?? `0x${code.toString(16)}`;
}

/** RFC 9113 §6.5.2. */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const HEADER_BYTES = 9;
export const DEFAULT_MAX_FRAME = 16_384;
export const MAX_FRAME_LIMIT = 16_777_215;
export const MAX_WINDOW = 2 ** 31 - 1;
export const DEFAULT_WINDOW = 65_535;

/**
 * A protocol violation. `streamId` 0: a connection error (GOAWAY with `code`, then the
 * connection ends); otherwise a stream error (RST_STREAM with `code` on that stream only).
 */
export class H2Error extends Error {
  constructor(
    readonly h2code: number,
    message: string,
    readonly streamId = 0,
  ) {
    super(`${errorCodeName(h2code)}: ${message}`);
  }
}

/** What the reader hands over, in wire order. */
export interface FrameSink {
  /** A whole frame other than DATA. */
  frame(type: number, flags: number, streamId: number, payload: Buffer): void;
  /** A DATA frame starts: `length` is its flow-controlled size (padding included). */
  dataStart(flags: number, streamId: number, length: number): void;
  /** Part of the current DATA frame's data, padding removed (never empty). */
  data(chunk: Buffer): void;
  /** The current DATA frame is complete. */
  dataEnd(): void;
}

enum State {
  Preface,
  Header,
  Payload,
  DataPad,
  DataBody,
  DataSkip,
}

/**
 * Reads frames from a byte stream. `maxFrameBytes` is our SETTINGS_MAX_FRAME_SIZE: a larger
 * frame is a FRAME_SIZE_ERROR (§4.2) before any of its payload is read. Throws H2Error;
 * after a throw the reader must not be used again (the connection ends).
 */
export class FrameReader {
  #state: State;
  #prefaceAt = 0;
  readonly #head = Buffer.alloc(HEADER_BYTES);
  #headAt = 0;
  #type = 0;
  #flags = 0;
  #stream = 0;
  #length = 0;
  /** Non-DATA payload being collected (only when it spans chunks). */
  #payload: Buffer | undefined;
  #payloadAt = 0;
  /** DATA: bytes of data, then of padding, still to come. */
  #left = 0;
  #pad = 0;

  constructor(
    public maxFrameBytes: number,
    expectPreface: boolean,
  ) {
    this.#state = expectPreface ? State.Preface : State.Header;
  }

  push(chunk: Buffer, sink: FrameSink): void {
    let p = 0;
    const n = chunk.length;
    while (p < n) {
      switch (this.#state) {
        case State.Preface: {
          while (p < n && this.#prefaceAt < PREFACE.length) {
            if (chunk[p] !== PREFACE[this.#prefaceAt])
              throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'bad connection preface');
            p++;
            this.#prefaceAt++;
          }
          if (this.#prefaceAt === PREFACE.length) this.#state = State.Header;
          break;
        }
        case State.Header: {
          if (this.#headAt === 0 && n - p >= HEADER_BYTES) {
            this.#header(chunk, p, sink);
            p += HEADER_BYTES;
          } else {
            const take = Math.min(HEADER_BYTES - this.#headAt, n - p);
            chunk.copy(this.#head, this.#headAt, p, p + take);
            this.#headAt += take;
            p += take;
            if (this.#headAt === HEADER_BYTES) {
              this.#headAt = 0;
              this.#header(this.#head, 0, sink);
            }
          }
          break;
        }
        case State.Payload: {
          const need = this.#length - this.#payloadAt;
          if (!this.#payload && n - p >= need) {
            const payload = chunk.subarray(p, p + need);
            p += need;
            this.#state = State.Header;
            sink.frame(this.#type, this.#flags, this.#stream, payload);
            break;
          }
          this.#payload ??= Buffer.allocUnsafe(this.#length);
          const take = Math.min(need, n - p);
          chunk.copy(this.#payload, this.#payloadAt, p, p + take);
          this.#payloadAt += take;
          p += take;
          if (this.#payloadAt === this.#length) {
            const payload = this.#payload;
            this.#payload = undefined;
            this.#payloadAt = 0;
            this.#state = State.Header;
            sink.frame(this.#type, this.#flags, this.#stream, payload);
          }
          break;
        }
        case State.DataPad: {
          this.#pad = chunk[p++]!;
          if (this.#pad >= this.#length)
            throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'DATA padding as long as the frame');
          this.#left = this.#length - 1 - this.#pad;
          this.#state = this.#left > 0 ? State.DataBody : State.DataSkip;
          if (this.#left === 0 && this.#pad === 0) this.#endData(sink);
          break;
        }
        case State.DataBody: {
          const take = Math.min(this.#left, n - p);
          const part = chunk.subarray(p, p + take);
          p += take;
          this.#left -= take;
          sink.data(part);
          if (this.#left === 0) {
            if (this.#pad > 0) this.#state = State.DataSkip;
            else this.#endData(sink);
          }
          break;
        }
        case State.DataSkip: {
          const take = Math.min(this.#pad, n - p);
          p += take;
          this.#pad -= take;
          if (this.#pad === 0) this.#endData(sink);
          break;
        }
      }
    }
  }

  /** Whether the reader stopped between frames (for a clean end of the connection). */
  get betweenFrames(): boolean {
    return this.#state === State.Header && this.#headAt === 0;
  }

  #header(b: Buffer, at: number, sink: FrameSink): void {
    const length = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
    const type = b[at + 3]!;
    const flags = b[at + 4]!;
    const streamId = b.readUInt32BE(at + 5) & 0x7fffffff; // the reserved bit is ignored (§4.1)
    if (length > this.maxFrameBytes)
      throw new H2Error(
        ErrorCode.FRAME_SIZE_ERROR,
        `frame of ${length} bytes above our SETTINGS_MAX_FRAME_SIZE ${this.maxFrameBytes}`,
      );
    this.#type = type;
    this.#flags = flags;
    this.#stream = streamId;
    this.#length = length;
    if (type === FrameType.DATA) {
      sink.dataStart(flags, streamId, length);
      if (flags & Flag.PADDED) {
        if (length === 0)
          throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'padded DATA without a pad length');
        this.#state = State.DataPad;
      } else if (length > 0) {
        this.#pad = 0;
        this.#left = length;
        this.#state = State.DataBody;
      } else {
        this.#endData(sink);
      }
      return;
    }
    if (length === 0) {
      this.#state = State.Header;
      sink.frame(type, flags, streamId, EMPTY);
      return;
    }
    this.#payloadAt = 0;
    this.#state = State.Payload;
  }

  #endData(sink: FrameSink): void {
    this.#state = State.Header;
    sink.dataEnd();
  }
}

export const EMPTY = Buffer.alloc(0);

function writeHeader(
  out: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(streamId, at + 5);
}

/** A frame with `payload` copied after its header: one buffer, one TLS write. */
export function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const len = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(HEADER_BYTES + len);
  writeHeader(out, 0, len, type, flags, streamId);
  if (payload) payload.copy(out, HEADER_BYTES);
  return out;
}

/** DATA frame of `data[from, to)`. */
export function dataFrame(
  streamId: number,
  data: Buffer,
  from: number,
  to: number,
  endStream: boolean,
): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + to - from);
  writeHeader(out, 0, to - from, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
  data.copy(out, HEADER_BYTES, from, to);
  return out;
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export const SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0);

export function pingFrame(payload: Buffer, ack: boolean): Buffer {
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, payload);
}

export function goawayFrame(lastStreamId: number, code: number, debug?: string): Buffer {
  const text = debug ? Buffer.from(debug.slice(0, 256), 'utf8') : EMPTY;
  const payload = Buffer.allocUnsafe(8 + text.length);
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(code, 4);
  text.copy(payload, 8);
  return frame(FrameType.GOAWAY, 0, 0, payload);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + 4);
  writeHeader(out, 0, 4, FrameType.RST_STREAM, 0, streamId);
  out.writeUInt32BE(code, HEADER_BYTES);
  return out;
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + 4);
  writeHeader(out, 0, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  out.writeUInt32BE(increment, HEADER_BYTES);
  return out;
}

/** HEADERS, plus CONTINUATIONs when the block is larger than the peer's frame size. */
export function headersFrames(
  streamId: number,
  block: Buffer,
  endStream: boolean,
  maxFrameBytes: number,
): Buffer {
  if (block.length <= maxFrameBytes) {
    const flags = Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0);
    return frame(FrameType.HEADERS, flags, streamId, block);
  }
  const parts: Buffer[] = [];
  for (let at = 0; at < block.length; at += maxFrameBytes) {
    const last = at + maxFrameBytes >= block.length;
    const type = at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    let flags = last ? Flag.END_HEADERS : 0;
    if (at === 0 && endStream) flags |= Flag.END_STREAM;
    parts.push(frame(type, flags, streamId, block.subarray(at, at + maxFrameBytes)));
  }
  return Buffer.concat(parts);
}
