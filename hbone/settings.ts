// HTTP/2 and TLS settings shared by both ends, with the defaults chosen by measurement
// (bench/hbone.ts) and ztunnel's values where they are protocol-visible. Node's own
// defaults (64 KiB windows, 16 KiB frames) halve bulk throughput: never rely on them.
import { constants as h2 } from 'node:http2';
import type { SecureContextOptions } from 'node:tls';

export interface Http2Tuning {
  /** Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). ztunnel: 4 MiB. */
  readonly streamWindowBytes: number;
  /** Per-connection receive window (set with WINDOW_UPDATE on stream 0). ztunnel: 16 MiB. */
  readonly connectionWindowBytes: number;
  /** Largest DATA frame we accept (SETTINGS_MAX_FRAME_SIZE). */
  readonly maxFrameBytes: number;
}

const MiB = 1 << 20;

export const DEFAULT_HTTP2: Http2Tuning = Object.freeze({
  streamWindowBytes: 4 * MiB,
  connectionWindowBytes: 16 * MiB,
  maxFrameBytes: 1 * MiB,
});

/** HTTP/2 limits and nghttp2 `maxSessionMemory` derived from the windows: a session must be
 *  allowed to buffer at least one connection window, or nghttp2 refuses streams (ENHANCE_YOUR_CALM)
 *  exactly when the tunnel is busiest. */
export function sessionOptions(
  tuning: Http2Tuning,
  extra: { maxConcurrentStreams: number; maxHeaderListBytes: number },
) {
  return {
    maxSessionMemory: Math.ceil((2 * tuning.connectionWindowBytes) / MiB) + 16,
    maxHeaderListPairs: 64,
    maxSendHeaderBlockLength: extra.maxHeaderListBytes,
    settings: {
      enablePush: false,
      initialWindowSize: tuning.streamWindowBytes,
      maxFrameSize: tuning.maxFrameBytes,
      maxConcurrentStreams: extra.maxConcurrentStreams,
      maxHeaderListSize: extra.maxHeaderListBytes,
    },
  };
}

/** How much EagerTransport buffers each way before it applies backpressure: legitimate
 *  traffic stays under it (a peer may send at most the windows it was granted). */
export function transportLimitBytes(tuning: Http2Tuning): number {
  return 2 * tuning.connectionWindowBytes + MiB;
}

/** TLS 1.3 only, with ztunnel's two suites. */
export const TLS_OPTIONS: SecureContextOptions = Object.freeze({
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
});

export const ALPN_H2 = ['h2'];

/** RST_STREAM code for "the TCP connection behind this tunnel failed" (RFC 9113 §8.5). */
export const CONNECT_ERROR = h2.NGHTTP2_CONNECT_ERROR;
