// One HTTP/2 connection of the HBONE engine (RFC 9113, the subset HBONE needs: CONNECT
// streams, no push, no priorities), client or server, over a verified TLS socket. Its API
// keeps node:http2's names where it has the same thing (request, ping, close, destroy,
// setLocalWindowSize; 'stream', 'remoteSettings', 'goaway', 'error', 'close'): the engine
// that replaced node:http2 under hbone/ (issue 16) kept its callers' code.
//
// What it enforces (each violation answered with its RFC 9113 code: a stream error resets
// that stream, a connection error sends GOAWAY and ends the connection):
// - the preface (server), SETTINGS first, SETTINGS values (§6.5.2) and our ACK deadline;
// - frame sizes per type, stream id rules (idle, closed, parity), CONTINUATION sequencing;
// - flow control both ways: the peer's DATA never exceeds our windows, ours never its;
// - MAX_CONCURRENT_STREAMS (REFUSED_STREAM past it), malformed requests/responses (§8.1.1).
// Defences, with the policy they state (limits below, all per connection):
// - PING and SETTINGS we must answer: a token bucket (burst 100, 10/s), past it
//   ENHANCE_YOUR_CALM; frames that carry nothing (empty DATA without END_STREAM, empty
//   CONTINUATION, PRIORITY, unknown types): burst 1,000, 100/s;
// - a header block is at most 4 x our SETTINGS_MAX_HEADER_LIST_SIZE compressed and 32
//   CONTINUATIONs; HPACK's own limits are in hpack.ts;
// - rapid reset (streams the client cancels before our answer) is the server's budget
//   (server/server.ts), which tells it apart from resets of answered tunnels;
// - output: we never stop reading while our writes wait (node:http2 does, and two busy
//   peers with windows larger than the kernel's socket buffers then deadlock), except past
//   `outputLimitBytes` queued, which legitimate traffic never reaches (DATA is bounded by
//   the windows): a peer that floods without reading stalls.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { TokenBucket } from '../../lib/token-bucket.js';
import { ClosedStreams } from './closed-streams.js';
import {
  DEFAULT_LIMITS,
  type H2Limits,
  type H2LocalSettings,
  initialRemoteSettings,
  type RemoteSettings,
  readSettings,
} from './config.js';
import { requestHeaders, responseHeaders } from './fields.js';
import {
  DEFAULT_WINDOW,
  dataFrame,
  ErrorCode,
  Flag,
  FrameReader,
  type FrameSink,
  FrameType,
  goawayFrame,
  H2Error,
  headersFrames,
  MAX_WINDOW,
  PREFACE,
  pingFrame,
  rstStreamFrame,
  SETTINGS_ACK,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from './frame.js';
import { HeaderBlock } from './header-block.js';
import { CompressionError, Decoder, Encoder, type HeaderField } from './hpack.js';
import { H2Stream, type StreamOwner, StreamResetError } from './stream.js';

type PingCallback = (err: Error | null, durationMs: number, payload: Buffer) => void;

export class H2Session extends EventEmitter implements StreamOwner {
  readonly #socket: Duplex;
  readonly #isClient: boolean;
  readonly #local: H2LocalSettings;
  readonly #limits: H2Limits;
  readonly #reader: FrameReader;
  readonly #decoder: Decoder;
  readonly #encoder = new Encoder();
  readonly #streams = new Map<number, H2Stream>();
  readonly #blocked = new Set<H2Stream>();
  readonly #drainWaiters: Array<(err?: Error | null) => void> = [];
  readonly #pings = new Map<string, [number, PingCallback]>();
  readonly #answered: TokenBucket;
  readonly #empty: TokenBucket;
  readonly remoteSettings: RemoteSettings = initialRemoteSettings();
  #settingsSeen = false;
  #settingsTimer: NodeJS.Timeout | undefined;
  /** Connection windows: what the peer may still send us, what we may still send. */
  #recvWindow = DEFAULT_WINDOW;
  #sendWindow = DEFAULT_WINDOW;
  /** Connection-level bytes taken by readers (or discarded) and not yet handed back. */
  #unreturned = 0;
  #connWindowTarget = DEFAULT_WINDOW;
  /** Client: the next stream id we open. Server: the highest the peer opened. */
  #nextStreamId = 1;
  #lastPeerStream = 0;
  /** A header block in progress (HEADERS without END_HEADERS yet). */
  #block: HeaderBlock | undefined;
  /** The current DATA frame's stream (undefined: discarded) and its flow-controlled size. */
  #dataStream: H2Stream | undefined;
  #dataLength = 0;
  #dataBytes = 0;
  #dataFlags = 0;
  /** The code and last-stream-id of the GOAWAY we sent. */
  #goawayCode: number | undefined;
  #goawayLast = 0;
  #goawayReceived: number | undefined;
  #closing = false;
  #destroyed = false;
  #pausedForOutput = false;
  #pingSeq = 0;
  readonly #closed = new ClosedStreams();

  constructor(
    socket: Duplex,
    opts: { role: 'client' | 'server'; local: H2LocalSettings; limits?: Partial<H2Limits> },
  ) {
    super();
    this.#socket = socket;
    this.#isClient = opts.role === 'client';
    this.#local = opts.local;
    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    // Reading resumes on the socket's 'drain', which only comes once its buffer passed the
    // high-water mark: a lower output limit would pause reading for good.
    limits.outputLimitBytes = Math.max(limits.outputLimitBytes, socket.writableHighWaterMark);
    this.#limits = limits;
    this.#reader = new FrameReader(opts.local.maxFrameBytes, !this.#isClient);
    this.#decoder = new Decoder({ maxHeaderListBytes: 4 * opts.local.maxHeaderListBytes });
    this.#answered = new TokenBucket(
      this.#limits.answeredControlBurst,
      this.#limits.answeredControlPerSecond,
    );
    this.#empty = new TokenBucket(this.#limits.emptyFrameBurst, this.#limits.emptyFramePerSecond);
    this.#nextStreamId = this.#isClient ? 1 : 2;

    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#teardown(new Error('the peer closed the connection')));
    socket.on('error', (err: Error) => this.#teardown(err));
    socket.on('close', () => this.#teardown(new Error('connection closed')));
    socket.on('drain', () => this.#onDrain());

    if (this.#isClient) this.#write(PREFACE);
    const settings: Array<[number, number]> = [
      [Setting.INITIAL_WINDOW_SIZE, opts.local.streamWindowBytes],
      [Setting.MAX_FRAME_SIZE, opts.local.maxFrameBytes],
      [Setting.MAX_CONCURRENT_STREAMS, opts.local.maxConcurrentStreams],
      [Setting.MAX_HEADER_LIST_SIZE, opts.local.maxHeaderListBytes],
    ];
    if (this.#isClient) settings.unshift([Setting.ENABLE_PUSH, 0]);
    this.#write(settingsFrame(settings));
    this.#settingsTimer = setTimeout(
      () =>
        this.#fail(new H2Error(ErrorCode.SETTINGS_TIMEOUT, 'our SETTINGS were not acknowledged')),
      this.#limits.settingsAckTimeoutMs,
    );
    this.#settingsTimer.unref();
    this.setLocalWindowSize(opts.local.connectionWindowBytes);
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Going away (GOAWAY sent or received) or gone: no new streams. */
  get closed(): boolean {
    return this.#destroyed || this.#closing || this.#goawayReceived !== undefined;
  }

  get openStreams(): number {
    return this.#streams.size;
  }

  /** Raises the connection receive window to `bytes` (never lowers it). */
  setLocalWindowSize(bytes: number): void {
    if (bytes <= this.#connWindowTarget || this.#destroyed) return;
    const inc = bytes - this.#connWindowTarget;
    this.#connWindowTarget = bytes;
    this.#recvWindow += inc;
    this.#write(windowUpdateFrame(0, inc));
  }

  /** Client: opens a stream with `headers` (pseudo-headers first). */
  request(headers: Record<string, string>, _opts?: { endStream?: boolean }): H2Stream {
    if (!this.#isClient) throw new Error('request() on a server session');
    if (this.closed) throw new Error('ERR_HTTP2_GOAWAY_SESSION: the session is going away');
    const id = this.#nextStreamId;
    if (id > MAX_WINDOW) throw new Error('stream ids exhausted');
    this.#nextStreamId += 2;
    const stream = new H2Stream(
      id,
      this,
      this.remoteSettings.initialWindowSize,
      this.#local.streamWindowBytes,
      true,
    );
    this.#streams.set(id, stream);
    this.sendHeaders(stream, headers, false);
    return stream;
  }

  /** Sends a PING; `cb` gets its round trip, or an error if the session ends first. */
  ping(cb: PingCallback): boolean {
    if (this.#destroyed) return false;
    const payload = Buffer.allocUnsafe(8);
    payload.writeUInt32BE(process.pid >>> 0, 0);
    payload.writeUInt32BE(++this.#pingSeq >>> 0, 4);
    this.#pings.set(payload.toString('latin1'), [performance.now(), cb]);
    this.#write(pingFrame(payload, false));
    return true;
  }

  /** Graceful: GOAWAY(NO_ERROR), open streams finish, then the connection ends. */
  close(): void {
    if (this.#destroyed || this.#closing) return;
    this.#closing = true;
    this.#sendGoaway(ErrorCode.NO_ERROR);
    this.#maybeEnd();
  }

  /** Ends at once: each open stream is reset (CONNECT_ERROR: a cut tunnel, never a clean
   *  end), GOAWAY(code), the socket is flushed and closed. */
  destroy(err?: Error, code: number = ErrorCode.NO_ERROR): void {
    if (this.#destroyed) return;
    for (const stream of [...this.#streams.values()])
      this.resetStream(stream, ErrorCode.CONNECT_ERROR, err);
    this.#sendGoaway(code);
    this.#finish(err);
  }

  // --- StreamOwner ----------------------------------------------------------------------

  sendHeaders(stream: H2Stream, headers: Record<string, string | number>, end: boolean): void {
    const fields: HeaderField[] = [];
    for (const [name, value] of Object.entries(headers))
      if (name.startsWith(':')) fields.push([name, String(value)]);
    for (const [name, value] of Object.entries(headers))
      if (!name.startsWith(':')) fields.push([name.toLowerCase(), String(value)]);
    const block = this.#encoder.encode(fields);
    this.#write(headersFrames(stream.id, block, end, this.remoteSettings.maxFrameSize));
    if (end) this.#localEnd(stream);
  }

  sendData(stream: H2Stream, chunk: Buffer, end: boolean, cb: (err?: Error | null) => void): void {
    if (stream.closed || this.#destroyed) {
      cb();
      return;
    }
    const at = this.#pushData(stream, chunk, 0, end);
    if (at < chunk.length) {
      stream.pending = [chunk, at, end, cb];
      this.#blocked.add(stream);
      return;
    }
    this.#afterWrite(cb);
  }

  resetStream(stream: H2Stream, code: number, err?: Error): void {
    if (stream.closed) return;
    this.#closed.remember(stream.id, true);
    if (!this.#destroyed) this.#write(rstStreamFrame(stream.id, code));
    this.#closeStream(stream, code, err);
  }

  consumed(stream: H2Stream, bytes: number): void {
    if (stream.closed) return; // its unread bytes went back to the connection at its close
    this.#returnConnection(bytes);
    if (stream.remoteEnded) return;
    const give = stream.taken - stream.returned;
    if (give >= this.#local.streamWindowBytes / 4) {
      stream.returned += give;
      stream.recvWindow += give;
      this.#write(windowUpdateFrame(stream.id, give));
    }
  }

  // --- receiving ------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#destroyed) return;
    try {
      this.#reader.push(chunk, this.#sink);
    } catch (err) {
      if (err instanceof H2Error) this.#fail(err);
      else if (err instanceof CompressionError)
        this.#fail(new H2Error(ErrorCode.COMPRESSION_ERROR, err.message));
      else {
        // A bug here or in a listener called from here: this connection ends (INTERNAL_ERROR,
        // reported through 'error' with the cause); the process and its other connections
        // go on.
        const bug = new H2Error(ErrorCode.INTERNAL_ERROR, `bug: ${(err as Error).message}`);
        bug.cause = err;
        this.#fail(bug);
      }
    }
    if (!this.#destroyed && this.#socket.writableLength > this.#limits.outputLimitBytes) {
      this.#pausedForOutput = true;
      this.#socket.pause();
    }
  }

  // Once the session has ended (a GOAWAY received with no stream open, destroy() from a
  // handler) the rest of the chunk goes nowhere: no stream may open on an ended session.
  readonly #sink: FrameSink = {
    frame: (type, flags, id, payload) => {
      if (!this.#destroyed) this.#frame(type, flags, id, payload);
    },
    dataStart: (flags, id, length) => {
      if (!this.#destroyed) this.#dataStart(flags, id, length);
    },
    data: (chunk) => {
      if (this.#destroyed) return;
      this.#dataBytes += chunk.length;
      this.#dataStream?.deliver(chunk);
    },
    dataEnd: () => {
      if (!this.#destroyed) this.#dataEnd();
    },
  };

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.#block && type !== FrameType.CONTINUATION)
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'a frame inside a header block');
    if (!this.#settingsSeen && type !== FrameType.SETTINGS)
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'the first frame is not SETTINGS');
    switch (type) {
      case FrameType.HEADERS:
        this.#headers(flags, id, payload);
        return;
      case FrameType.CONTINUATION:
        this.#continuation(flags, id, payload);
        return;
      case FrameType.SETTINGS:
        this.#settings(flags, id, payload);
        return;
      case FrameType.PING:
        this.#ping(flags, id, payload);
        return;
      case FrameType.WINDOW_UPDATE:
        this.#windowUpdate(id, payload);
        return;
      case FrameType.RST_STREAM:
        this.#rstStream(id, payload);
        return;
      case FrameType.GOAWAY:
        this.#goaway(id, payload);
        return;
      case FrameType.PRIORITY:
        if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        this.#junk('PRIORITY'); // first: a malformed one is answered, and must not be free
        if (payload.length === 5) return;
        // A stream error (§6.3), but no RST_STREAM may be sent on an idle stream (§6.4):
        // there, the connection's (§5.4.1 allows either).
        if (this.#isIdle(id))
          throw new H2Error(
            ErrorCode.FRAME_SIZE_ERROR,
            `PRIORITY of ${payload.length} bytes on idle stream ${id}`,
          );
        this.#streamError(id, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.PUSH_PROMISE:
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE (push is disabled)');
      default:
        this.#junk(`frame type ${type}`); // unknown types are ignored (§5.5)
        return;
    }
  }

  #settings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (payload.length !== 0)
        throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      // The preface's SETTINGS must come first (§3.4): an ACK of ours cannot.
      if (!this.#settingsSeen)
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'the first frame is a SETTINGS ACK');
      clearTimeout(this.#settingsTimer);
      return;
    }
    if (payload.length % 6 !== 0)
      throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
    if (this.#settingsSeen) this.#answeredControl('SETTINGS');
    const r = this.remoteSettings;
    const { windowDelta, tableSizeSet } = readSettings(r, payload, this.#isClient);
    if (tableSizeSet) this.#encoder.peerTableSize(r.headerTableSize);
    if (windowDelta !== 0)
      for (const s of this.#streams.values()) {
        s.sendWindow += windowDelta;
        if (s.sendWindow > MAX_WINDOW)
          throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, 'a stream window above 2^31-1');
      }
    this.#write(SETTINGS_ACK);
    const first = !this.#settingsSeen;
    this.#settingsSeen = true;
    this.emit('remoteSettings', r);
    if (!first || this.#blocked.size > 0) this.#unblock();
  }

  #ping(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'PING not 8 bytes');
    if (flags & Flag.ACK) {
      const key = payload.toString('latin1');
      const waiting = this.#pings.get(key);
      if (!waiting) return; // an answer to nothing we sent: ignored
      this.#pings.delete(key);
      waiting[1](null, performance.now() - waiting[0], payload);
      return;
    }
    this.#answeredControl('PING');
    this.#write(pingFrame(payload, true));
  }

  #windowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE not 4 bytes');
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW)
        throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      this.#unblock();
      return;
    }
    const stream = this.#known(id, 'WINDOW_UPDATE');
    if (!stream) return;
    if (inc === 0) {
      this.#streamError(id, ErrorCode.PROTOCOL_ERROR, stream);
      return;
    }
    stream.sendWindow += inc;
    if (stream.sendWindow > MAX_WINDOW) {
      this.#streamError(id, ErrorCode.FLOW_CONTROL_ERROR, stream);
      return;
    }
    if (stream.pending) this.#unblock();
  }

  #rstStream(id: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM not 4 bytes');
    const stream = this.#known(id, 'RST_STREAM');
    if (!stream) return;
    const code = payload.readUInt32BE(0);
    this.#closeStream(
      stream,
      code,
      code === ErrorCode.NO_ERROR ? undefined : new StreamResetError(code),
    );
  }

  #goaway(id: number, payload: Buffer): void {
    if (id !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8)
      throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes');
    const last = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    if (this.#goawayReceived !== undefined && last > this.#goawayReceived)
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'GOAWAY raised its last stream id');
    this.#goawayReceived = last;
    // Streams above `last` were never processed: refused, so a client may retry them
    // (§6.8); those at or below it finish, whatever the code.
    if (this.#isClient)
      for (const s of [...this.#streams.values()])
        if (s.id > last)
          this.#closeStream(
            s,
            ErrorCode.REFUSED_STREAM,
            new StreamResetError(ErrorCode.REFUSED_STREAM),
          );
    this.emit('goaway', code, last, payload.subarray(8));
    this.#maybeEnd();
  }

  #headers(flags: number, id: number, payload: Buffer): void {
    const block = new HeaderBlock(
      id,
      flags,
      payload,
      4 * this.#local.maxHeaderListBytes,
      this.#limits.maxContinuations,
    );
    if (block.ended) this.#endBlock(block);
    else this.#block = block;
  }

  #continuation(flags: number, id: number, payload: Buffer): void {
    const block = this.#block;
    if (!block || block.id !== id)
      throw new H2Error(
        ErrorCode.PROTOCOL_ERROR,
        'CONTINUATION without a header block on its stream',
      );
    const ended = block.continuation(flags, payload);
    if (payload.length === 0) this.#junk('empty CONTINUATION');
    if (!ended) return;
    this.#block = undefined;
    this.#endBlock(block);
  }

  #endBlock(block: HeaderBlock): void {
    const { id, flags } = block;
    // Decoded even for a stream we ignore: the HPACK table must follow the peer's.
    const fields = this.#decoder.decode(block.bytes());
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const stream = this.#streams.get(id);
    if (this.#isClient) {
      this.#responseHeaders(id, stream, fields, endStream);
      return;
    }
    if (stream) {
      this.#trailers(stream, fields, endStream);
      return;
    }
    if (id % 2 === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `client stream id ${id} is even`);
    if (id <= this.#lastPeerStream) {
      const resetByUs = this.#closed.resetByUs(id);
      if (resetByUs) return; // trailers the peer sent before it saw our RST_STREAM
      if (resetByUs === false)
        throw new H2Error(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${id}`);
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${id}, below the last`);
    }
    this.#lastPeerStream = id;
    if (this.#closing) {
      this.#streamError(id, ErrorCode.REFUSED_STREAM);
      return;
    }
    if (this.#streams.size >= this.#local.maxConcurrentStreams) {
      this.#streamError(id, ErrorCode.REFUSED_STREAM);
      return;
    }
    const headers = requestHeaders(fields);
    if (typeof headers === 'string') {
      this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    const s = new H2Stream(
      id,
      this,
      this.remoteSettings.initialWindowSize,
      this.#local.streamWindowBytes,
      false,
    );
    this.#streams.set(id, s);
    if (endStream) this.#remoteEnd(s);
    this.emit('stream', s, headers);
  }

  #responseHeaders(
    id: number,
    stream: H2Stream | undefined,
    fields: HeaderField[],
    endStream: boolean,
  ): void {
    if (!stream) {
      if (id % 2 === 0)
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, `HEADERS on server stream ${id}`);
      if (id >= this.#nextStreamId)
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${id}`);
      return; // a stream we closed: ignored
    }
    if (stream.responded) {
      this.#trailers(stream, fields, endStream);
      return;
    }
    const headers = responseHeaders(fields);
    if (typeof headers === 'string') {
      this.#streamError(id, ErrorCode.PROTOCOL_ERROR, stream);
      return;
    }
    const status = Number(headers[':status']);
    if (status >= 100 && status < 200) {
      if (status === 101 || endStream) {
        this.#streamError(id, ErrorCode.PROTOCOL_ERROR, stream);
        return;
      }
      return; // interim answers are skipped
    }
    stream.responded = true;
    stream.emit('response', headers, endStream ? Flag.END_STREAM : 0);
    if (endStream) this.#remoteEnd(stream);
  }

  #trailers(stream: H2Stream, fields: HeaderField[], endStream: boolean): void {
    if (stream.remoteEnded) {
      this.#streamError(stream.id, ErrorCode.STREAM_CLOSED, stream);
      return;
    }
    if (!endStream || fields.some(([n]) => n.startsWith(':'))) {
      this.#streamError(stream.id, ErrorCode.PROTOCOL_ERROR, stream);
      return;
    }
    this.#remoteEnd(stream);
  }

  #dataStart(flags: number, id: number, length: number): void {
    if (this.#block) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'DATA inside a header block');
    if (!this.#settingsSeen)
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'the first frame is not SETTINGS');
    if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    if (length > this.#recvWindow)
      throw new H2Error(
        ErrorCode.FLOW_CONTROL_ERROR,
        `DATA of ${length} bytes beyond the connection window ${this.#recvWindow}`,
      );
    this.#recvWindow -= length;
    this.#dataLength = length;
    this.#dataBytes = 0;
    this.#dataFlags = flags;
    this.#dataStream = undefined;
    if (length === 0 && !(flags & Flag.END_STREAM)) this.#junk('empty DATA');
    const stream = this.#known(id, 'DATA');
    if (!stream) {
      this.#returnConnection(length);
      // Closed without our RST_STREAM: STREAM_CLOSED, once (then it is one we reset).
      if (this.#closed.resetByUs(id) === false) this.#streamError(id, ErrorCode.STREAM_CLOSED);
      return;
    }
    if (stream.remoteEnded) {
      this.#returnConnection(length);
      this.#streamError(id, ErrorCode.STREAM_CLOSED, stream);
      return;
    }
    // Server: DATA before our answer is the client's early data, buffered (flow control
    // bounds it) until the tunnel is accepted.
    if (this.#isClient && !stream.responded) {
      this.#returnConnection(length);
      this.#streamError(id, ErrorCode.PROTOCOL_ERROR, stream);
      return;
    }
    if (length > stream.recvWindow) {
      this.#returnConnection(length);
      this.#streamError(id, ErrorCode.FLOW_CONTROL_ERROR, stream);
      return;
    }
    stream.recvWindow -= length;
    this.#dataStream = stream;
  }

  #dataEnd(): void {
    const stream = this.#dataStream;
    this.#dataStream = undefined;
    if (!stream) return;
    const padding = this.#dataLength - this.#dataBytes;
    if (padding > 0) stream.receivedPadding(padding); // its window goes back at once
    if (this.#dataFlags & Flag.END_STREAM) this.#remoteEnd(stream);
  }

  /** The stream `id` refers to, or undefined for a closed one (frames on it are ignored);
   *  a frame on an idle stream is a connection error (§5.1). */
  #known(id: number, what: string): H2Stream | undefined {
    if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `${what} on stream 0`);
    const stream = this.#streams.get(id);
    if (stream) return stream;
    if (this.#isIdle(id))
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, `${what} on idle stream ${id}`);
    return undefined;
  }

  /** Not opened yet by either side (§5.1): above the ids used so far in its parity. */
  #isIdle(id: number): boolean {
    const ours = this.#isClient ? id % 2 === 1 : id % 2 === 0;
    return ours ? id >= this.#nextStreamId : id > this.#lastPeerStream;
  }

  // --- stream state ---------------------------------------------------------------------

  #remoteEnd(stream: H2Stream): void {
    if (stream.remoteEnded) return;
    stream.remoteEnded = true;
    stream.push(null); // EOF while the stream is still open: a FIN, not a cut
    if (stream.localEnded) this.#closeStream(stream, ErrorCode.NO_ERROR, undefined);
  }

  #localEnd(stream: H2Stream): void {
    stream.localEnded = true;
    if (stream.remoteEnded) this.#closeStream(stream, ErrorCode.NO_ERROR, undefined);
  }

  #closeStream(stream: H2Stream, code: number, err: Error | undefined): void {
    if (stream.closed) return;
    this.#closed.remember(stream.id, false);
    this.#streams.delete(stream.id);
    this.#blocked.delete(stream);
    // What the reader has not taken goes back to the connection window now, and so does
    // the rest of a DATA frame being read for it (discarded as it arrives).
    let unread = stream.received - stream.taken;
    if (this.#dataStream === stream) {
      this.#dataStream = undefined;
      unread += this.#dataLength - this.#dataBytes;
    }
    stream.protocolClosed(code, err);
    if (unread > 0) this.#returnConnection(unread);
    this.#maybeEnd();
  }

  #streamError(id: number, code: number, stream?: H2Stream): void {
    if (stream) {
      this.resetStream(stream, code, new StreamResetError(code));
      return;
    }
    this.#closed.remember(id, true);
    if (!this.#destroyed) this.#write(rstStreamFrame(id, code));
  }

  // --- sending --------------------------------------------------------------------------

  /** Frames as much of `chunk` from `at` as the windows allow; returns the offset reached
   *  (chunk.length: all of it, and END_STREAM if `end`, went out). */
  #pushData(stream: H2Stream, chunk: Buffer, at: number, end: boolean): number {
    const max = this.remoteSettings.maxFrameSize;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, stream.sendWindow, this.#sendWindow, max);
      if (n <= 0) return at;
      const last = at + n === chunk.length;
      this.#write(dataFrame(stream.id, chunk, at, at + n, end && last));
      stream.sendWindow -= n;
      this.#sendWindow -= n;
      at += n;
    }
    if (chunk.length === 0 && end) this.#write(dataFrame(stream.id, chunk, 0, 0, true));
    if (end) this.#localEnd(stream);
    return at;
  }

  #unblock(): void {
    for (const stream of this.#blocked) {
      if (this.#sendWindow <= 0) return;
      const p = stream.pending;
      if (!p) {
        this.#blocked.delete(stream);
        continue;
      }
      const at = this.#pushData(stream, p[0], p[1], p[2]);
      if (at < p[0].length) {
        p[1] = at;
        continue;
      }
      this.#blocked.delete(stream);
      stream.pending = undefined;
      this.#afterWrite(p[3]);
    }
  }

  #returnConnection(bytes: number): void {
    this.#unreturned += bytes;
    // No window goes back to a connection that ends in an error (nothing after its GOAWAY).
    const failing = this.#goawayCode !== undefined && this.#goawayCode !== ErrorCode.NO_ERROR;
    if (this.#destroyed || failing || this.#unreturned < this.#connWindowTarget / 4) return;
    const inc = this.#unreturned;
    this.#unreturned = 0;
    this.#recvWindow += inc;
    this.#write(windowUpdateFrame(0, inc));
  }

  #write(buf: Buffer): void {
    if (!this.#socket.destroyed && !this.#socket.writableEnded) this.#socket.write(buf);
  }

  /** A stream write completes when the socket can take more (no unbounded queue). */
  #afterWrite(cb: (err?: Error | null) => void): void {
    if (this.#socket.writableNeedDrain) this.#drainWaiters.push(cb);
    else cb();
  }

  #onDrain(): void {
    if (this.#pausedForOutput) {
      this.#pausedForOutput = false;
      this.#socket.resume();
    }
    const waiting = this.#drainWaiters.splice(0);
    for (const cb of waiting) cb();
  }

  /** One GOAWAY; a second only to say that a graceful close ended in an error, with the
   *  same last-stream-id (§6.8: never raised). */
  #sendGoaway(code: number, debug?: string): void {
    const sent = this.#goawayCode;
    if (sent !== undefined && (sent !== ErrorCode.NO_ERROR || code === ErrorCode.NO_ERROR)) return;
    if (sent === undefined) this.#goawayLast = this.#isClient ? 0 : this.#lastPeerStream;
    this.#goawayCode = code;
    this.#write(goawayFrame(this.#goawayLast, code, debug));
  }

  // --- defences and ends ----------------------------------------------------------------

  #answeredControl(what: string): void {
    if (!this.#answered.take())
      throw new H2Error(
        ErrorCode.ENHANCE_YOUR_CALM,
        `${what} flood (more than ${this.#limits.answeredControlBurst} at once, ${this.#limits.answeredControlPerSecond}/s)`,
      );
  }

  #junk(what: string): void {
    if (!this.#empty.take())
      throw new H2Error(
        ErrorCode.ENHANCE_YOUR_CALM,
        `flood of frames that carry nothing (${what})`,
      );
  }

  /** A connection error: GOAWAY with its code, every stream cut, the connection ends. */
  #fail(err: H2Error): void {
    if (this.#destroyed) return;
    this.#sendGoaway(err.h2code, err.message);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    const cut = new StreamResetError(err.h2code);
    for (const stream of [...this.#streams.values()]) this.#closeStream(stream, err.h2code, cut);
    this.#finish(err);
  }

  /** The connection went away under us. */
  #teardown(err: Error): void {
    if (this.#destroyed) return;
    const cut = new StreamResetError(ErrorCode.CONNECT_ERROR);
    cut.cause = err;
    for (const stream of [...this.#streams.values()])
      this.#closeStream(stream, ErrorCode.CONNECT_ERROR, cut);
    this.#finish(undefined);
  }

  /** After a graceful close or a GOAWAY: the connection ends once no stream is left. */
  #maybeEnd(): void {
    if (this.#destroyed || this.#streams.size > 0) return;
    if (this.#closing || this.#goawayReceived !== undefined) this.#finish(undefined);
  }

  #finish(err: Error | undefined): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    clearTimeout(this.#settingsTimer);
    for (const [, [, cb]] of this.#pings)
      cb(new Error('the session ended before the PING answer'), 0, Buffer.alloc(8));
    this.#pings.clear();
    for (const cb of this.#drainWaiters.splice(0)) cb();
    const socket = this.#socket;
    // Flush what is queued (GOAWAY, resets), then close; a peer that never reads gets a second.
    if (!socket.destroyed) {
      socket.end();
      setTimeout(() => socket.destroy(), 1_000).unref();
    }
    process.nextTick(() => this.emit('close', err));
  }
}
