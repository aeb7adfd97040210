// One header block as it arrives: a HEADERS frame's fragment (padding and priority fields
// stripped, §6.2) and the CONTINUATIONs after it (§6.10), collected until END_HEADERS.
// Bounded: at most `maxBytes` compressed and `maxContinuations` frames (ENHANCE_YOUR_CALM
// past either: a CONTINUATION flood), so a peer cannot make us hold an endless block.
import { ErrorCode, Flag, H2Error } from './frame.js';

export class HeaderBlock {
  readonly #parts: Buffer[] = [];
  #bytes = 0;
  #frames = 0;

  /** Starts a block from a HEADERS frame; throws the connection error a malformed one is. */
  constructor(
    readonly id: number,
    readonly flags: number,
    payload: Buffer,
    private readonly maxBytes: number,
    private readonly maxContinuations: number,
  ) {
    if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let at = 0;
    let end = payload.length;
    if (flags & Flag.PADDED) {
      if (payload.length < 1)
        throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'padded HEADERS without pad length');
      at = 1;
      end -= payload[0]!;
    }
    if (flags & Flag.PRIORITY) at += 5;
    if (at > payload.length)
      throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS shorter than its priority fields');
    if (end < at)
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
    this.#add(payload.subarray(at, end));
  }

  /** Whether the block is complete (END_HEADERS on its HEADERS). */
  get ended(): boolean {
    return (this.flags & Flag.END_HEADERS) !== 0;
  }

  /** A CONTINUATION's payload; returns whether it ended the block. */
  continuation(flags: number, payload: Buffer): boolean {
    if (++this.#frames > this.maxContinuations)
      throw new H2Error(
        ErrorCode.ENHANCE_YOUR_CALM,
        `more than ${this.maxContinuations} CONTINUATION frames`,
      );
    this.#add(payload);
    return (flags & Flag.END_HEADERS) !== 0;
  }

  /** The whole block, for the HPACK decoder. */
  bytes(): Buffer {
    return this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts);
  }

  #add(fragment: Buffer): void {
    this.#bytes += fragment.length;
    if (this.#bytes > this.maxBytes)
      throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, `header block above ${this.maxBytes} bytes`);
    // Copied: a fragment is a slice of a TLS chunk that the next read may reuse.
    if (fragment.length > 0) this.#parts.push(Buffer.from(fragment));
  }
}
