// One HTTP/2 stream of the HBONE engine: a Duplex whose writes become DATA frames under flow
// control and whose readable side receives the peer's DATA, with END_STREAM as EOF. Its API
// keeps node:http2's Http2Stream names where it has the same thing (respond, close(code),
// rstCode, headersSent, 'response'). Protocol state and every frame are the session's; this file only keeps the
// stream's own counters and turns Duplex calls into session calls.
//
// Flow control, receiving: the peer may send up to our window; what it sent is handed back
// (WINDOW_UPDATE) only once the reader has taken it out of the readable buffer, so a slow
// reader holds at most one stream window here, and the connection at most its window.
import { Duplex } from 'node:stream';
import { EMPTY, ErrorCode, errorCodeName } from './frame.js';

/** What a stream asks of its session. */
export interface StreamOwner {
  sendData(stream: H2Stream, chunk: Buffer, end: boolean, cb: (err?: Error | null) => void): void;
  sendHeaders(stream: H2Stream, headers: Record<string, string | number>, end: boolean): void;
  resetStream(stream: H2Stream, code: number): void;
  /** The reader took `bytes` more of this stream's data: window to give back. */
  consumed(stream: H2Stream, bytes: number): void;
}

/** The peer reset the stream, or its connection ended under it. */
export class StreamResetError extends Error {
  readonly code = 'ERR_HTTP2_STREAM_ERROR';
  constructor(readonly h2code: number) {
    super(`Stream closed with error code ${errorCodeName(h2code)}`);
  }
}

export class H2Stream extends Duplex {
  /** Bytes the peer may still send (our receive window for this stream). */
  recvWindow: number;
  /** Bytes we may still send (the peer's window for this stream; may go negative, §6.9.2). */
  sendWindow: number;
  /** A write waiting for send window: [chunk, offset, end, callback]. */
  pending: [Buffer, number, boolean, (err?: Error | null) => void] | undefined;
  /** END_STREAM sent / received; protocol-closed (both ended, or reset). */
  localEnded = false;
  remoteEnded = false;
  #closed = false;
  /** Protocol-closed: both END_STREAMs crossed, or a reset either way (node:http2's
   *  `closed`; Duplex's own `closed` means destroyed, see the accessor below the class). */
  declare readonly closed: boolean;
  /** The RST_STREAM code that closed the stream (NO_ERROR for a normal close). */
  rstCode: number | undefined;
  /** Server: the response was sent. Client: the request was (always true). */
  headersSent: boolean;
  /** Client: the final response's :status was received. */
  responded = false;
  /** Bytes of DATA received (padding included), taken by the reader, and handed back to
   *  the peer with a stream WINDOW_UPDATE. */
  received = 0;
  taken = 0;
  returned = 0;

  constructor(
    readonly id: number,
    readonly session: StreamOwner,
    sendWindow: number,
    recvWindow: number,
    isClient: boolean,
  ) {
    // Not autoDestroy (as node:http2's streams): reading to the end must not close the
    // sending side (a reader with for-await would cut its own direction); the stream is
    // destroyed when the protocol closes it (protocolClosed).
    super({ allowHalfOpen: true, autoDestroy: false });
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    this.headersSent = isClient;
  }

  get protocolIsClosed(): boolean {
    return this.#closed;
  }

  /** The peer's END_STREAM arrived: the readable side ended as a FIN, not as a cut. */
  get endedByPeer(): boolean {
    return this.remoteEnded;
  }

  /** Server: answers the request (`:status` and headers). */
  respond(headers: Record<string, string | number>, opts?: { endStream?: boolean }): void {
    if (this.headersSent) throw new Error(`stream ${this.id}: response already sent`);
    if (this.#closed || this.destroyed) return;
    this.headersSent = true;
    const end = opts?.endStream === true;
    this.session.sendHeaders(this, headers, end);
    if (!end || this.destroyed) return;
    this.end();
    // A complete answer before the request's end (a refusal): the rest of the request is
    // not wanted, RST_STREAM(NO_ERROR) says so and closes the stream (RFC 9113 §8.1).
    if (!this.remoteEnded) this.session.resetStream(this, ErrorCode.NO_ERROR);
  }

  /** Resets the stream with RST_STREAM(code) (only that: no END_STREAM before it). */
  close(code: number = ErrorCode.NO_ERROR): void {
    if (this.#closed) {
      if (!this.destroyed) this.destroy();
      return;
    }
    this.session.resetStream(this, code);
  }

  // --- called by the session ------------------------------------------------------------

  /** DATA arrived for the reader. */
  deliver(chunk: Buffer): void {
    this.received += chunk.length;
    this.push(chunk);
    this.#account();
  }

  /** Padding of a DATA frame: never reaches the reader, so it counts as taken at once. */
  receivedPadding(bytes: number): void {
    this.received += bytes;
    this.#account();
  }

  /** The protocol closed the stream (both END_STREAMs crossed, or a reset either way).
   *  `error` for a reset or a connection that ended under the stream. */
  protocolClosed(code: number, error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.rstCode = code;
    if (this.pending) {
      const cb = this.pending[3];
      this.pending = undefined;
      cb();
    }
    if (error || !this.remoteEnded) {
      this.destroy(error);
      return;
    }
    // A clean close: let the reader take what is buffered, then go (no reader: drained).
    if (this.readableEnded) this.destroy();
    else {
      this.once('end', () => this.destroy());
      if (this.readableFlowing !== true && this.listenerCount('data') === 0) this.resume();
    }
  }

  // --- Duplex ---------------------------------------------------------------------------

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#closed || this.localEnded) {
      cb();
      return;
    }
    this.session.sendData(this, chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#closed || this.localEnded) {
      cb();
      return;
    }
    this.session.sendData(this, EMPTY, true, cb);
  }

  override _read(): void {
    this.#account();
  }

  // Readable calls _read() once per push, and before it takes data out of the buffer: what
  // a reader takes after the peer's last DATA would never go back (the peer, out of window,
  // waits for ever). Every read, flowing or not, passes through read().
  // biome-ignore lint/suspicious/noExplicitAny: Readable.read's own return type
  override read(size?: number): any {
    const chunk = super.read(size);
    this.#account();
    return chunk;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#closed)
      this.session.resetStream(this, err ? ErrorCode.INTERNAL_ERROR : ErrorCode.CANCEL);
    cb(err);
  }

  /** Window goes back for what the reader has taken out of the buffer. */
  #account(): void {
    const taken = this.received - this.readableLength;
    if (taken > this.taken) {
      const delta = taken - this.taken;
      this.taken = taken;
      this.session.consumed(this, delta);
    }
  }
}

// An accessor cannot override Duplex's `closed` property in TypeScript; at run time it can.
Object.defineProperty(H2Stream.prototype, 'closed', {
  get(this: H2Stream) {
    return this.protocolIsClosed;
  },
});
