// What an HTTP/2 session of the engine is configured with and learns from its peer: our
// SETTINGS, the defences' limits (their policy is stated at the top of session.ts), and the
// peer's SETTINGS as read by readSettings(), which checks each value (RFC 9113 §6.5.2).
import {
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ErrorCode,
  H2Error,
  MAX_FRAME_LIMIT,
  MAX_WINDOW,
  Setting,
} from './frame.js';

export interface H2LocalSettings {
  /** SETTINGS_INITIAL_WINDOW_SIZE we announce. */
  readonly streamWindowBytes: number;
  /** The connection receive window we open with WINDOW_UPDATE. */
  readonly connectionWindowBytes: number;
  readonly maxFrameBytes: number;
  readonly maxConcurrentStreams: number;
  readonly maxHeaderListBytes: number;
}

export interface H2Limits {
  readonly settingsAckTimeoutMs: number;
  readonly answeredControlBurst: number;
  readonly answeredControlPerSecond: number;
  readonly emptyFrameBurst: number;
  readonly emptyFramePerSecond: number;
  readonly maxContinuations: number;
  readonly outputLimitBytes: number;
}

export const DEFAULT_LIMITS: H2Limits = Object.freeze({
  settingsAckTimeoutMs: 10_000,
  answeredControlBurst: 100,
  answeredControlPerSecond: 10,
  emptyFrameBurst: 1_000,
  emptyFramePerSecond: 100,
  maxContinuations: 32,
  outputLimitBytes: 33 * 1024 * 1024,
});

/** What the peer announced (node:http2's names, for the code that reads them). */
export interface RemoteSettings {
  headerTableSize: number;
  enablePush: boolean;
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
}

/** The values in force before the peer's first SETTINGS (§6.5.2). */
export function initialRemoteSettings(): RemoteSettings {
  return {
    headerTableSize: 4096,
    enablePush: true,
    maxConcurrentStreams: 2 ** 32 - 1,
    initialWindowSize: DEFAULT_WINDOW,
    maxFrameSize: DEFAULT_MAX_FRAME,
    maxHeaderListSize: 2 ** 32 - 1,
  };
}

/** Applies a SETTINGS payload (not an ACK) to `remote`; throws the connection error a bad
 *  value is (§6.5.2). Returns how much SETTINGS_INITIAL_WINDOW_SIZE moved (every open
 *  stream's send window moves by as much, §6.9.2) and whether the header table size was
 *  set (the encoder must follow it). Unknown settings are ignored. */
export function readSettings(
  remote: RemoteSettings,
  payload: Buffer,
  isClient: boolean,
): { windowDelta: number; tableSizeSet: boolean } {
  if (payload.length % 6 !== 0)
    throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
  let windowDelta = 0;
  let tableSizeSet = false;
  for (let at = 0; at < payload.length; at += 6) {
    const key = payload.readUInt16BE(at);
    const value = payload.readUInt32BE(at + 2);
    switch (key) {
      case Setting.HEADER_TABLE_SIZE:
        remote.headerTableSize = value;
        tableSizeSet = true;
        break;
      case Setting.ENABLE_PUSH:
        if (value > 1 || (isClient && value !== 0))
          throw new H2Error(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
        remote.enablePush = value === 1;
        break;
      case Setting.MAX_CONCURRENT_STREAMS:
        remote.maxConcurrentStreams = value;
        break;
      case Setting.INITIAL_WINDOW_SIZE:
        if (value > MAX_WINDOW)
          throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
        windowDelta += value - remote.initialWindowSize;
        remote.initialWindowSize = value;
        break;
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME || value > MAX_FRAME_LIMIT)
          throw new H2Error(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
        remote.maxFrameSize = value;
        break;
      case Setting.MAX_HEADER_LIST_SIZE:
        remote.maxHeaderListSize = value;
        break;
      default:
        break; // unknown settings are ignored (§6.5.2)
    }
  }
  return { windowDelta, tableSizeSet };
}
