// Loads the native addon (native/*.c, built at `npm install`) and turns it into the agent's
// OriginalDestination seam. Never throws: the result says whether transparent
// capture is available and, if not, why in words an operator can act on.
// Fail closed: a connection whose original destination cannot be read, or that was not
// redirected (the kernel then reports the socket's own address), yields undefined, which
// the listeners refuse as a loop.
import { loadNativeAddon, type NativeAddon, socketFd } from '../../lib/native-addon.js';
import type { OriginalDestination } from '../context.js';

export type CaptureSupport =
  | {
      readonly available: true;
      readonly originalDestination: OriginalDestination;
      readonly addonPath: string;
    }
  | { readonly available: false; readonly reason: string };

export function loadCapture(opts: { searchFrom?: string } = {}): CaptureSupport {
  if (process.platform !== 'linux')
    return {
      available: false,
      reason: `SO_ORIGINAL_DST is Linux-only (this is ${process.platform})`,
    };
  const loaded = loadNativeAddon(opts);
  if ('reason' in loaded) return { available: false, reason: loaded.reason };
  const { addon, addonPath } = loaded;
  if (typeof addon.originalDst !== 'function')
    return { available: false, reason: `the native addon ${addonPath} has no originalDst()` };
  return { available: true, originalDestination: fromAddon(addon), addonPath };
}

/** The seam over an addon (exported for tests with a fake addon). */
export function fromAddon(addon: NativeAddon): OriginalDestination {
  return (socket) => {
    const fd = socketFd(socket);
    if (fd === undefined) return undefined;
    try {
      const got = addon.originalDst(fd);
      return got.self ? undefined : { ip: got.address, port: got.port };
    } catch {
      // ENOENT (no conntrack entry), EBADF (closed meanwhile), ...: nothing to trust.
      return undefined;
    }
  };
}
