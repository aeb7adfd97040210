// HTTP/2 and TLS settings shared by both ends, with the defaults chosen by measurement
// (bench/hbone.ts) and ztunnel's values where they are protocol-visible. HTTP/2's own
// defaults (64 KiB windows, 16 KiB frames) halve bulk throughput: never rely on them.
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

/** TLS 1.3 only, with ztunnel's two suites. */
export const TLS_OPTIONS: SecureContextOptions = Object.freeze({
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
});

export const ALPN_H2 = ['h2'];
