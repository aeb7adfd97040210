// Loads the native addon (native/*.c, built at `npm install`) and turns it into the agent's
// OriginalDestination seam. Never throws: the result says whether transparent
// capture is available and, if not, why in words an operator can act on.
// Fail closed: a connection whose original destination cannot be read, or that was not
// redirected (the kernel then reports the socket's own address), yields undefined, which
// the listeners refuse as a loop.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../lib/errors.js';
import type { OriginalDestination } from '../context.js';

const ADDON = join('build', 'Release', 'mtun_native.node');
const STATUS = join('build', 'mtun-native-status.json');

/** What the C addon exports (see native/original_dst.c). */
export interface NativeAddon {
  /** Throws an Error whose `code` is an errno name (ENOENT: no conntrack entry). */
  originalDst(fd: number): { address: string; port: number; family: 4 | 6; self: boolean };
  /** glibc's M_TRIM_THRESHOLD and M_TOP_PAD (native/malloc_tune.c); false on other libcs.
   *  Absent from an addon built before it existed. */
  mallocTune?(trimBytes: number, topPadBytes: number): boolean;
}

export type CaptureSupport =
  | {
      readonly available: true;
      readonly originalDestination: OriginalDestination;
      readonly addonPath: string;
    }
  | { readonly available: false; readonly reason: string };

/** The built addon, or why there is none (in words an operator can act on). `searchFrom`:
 *  where to start looking for build/ (default: this module's folder, which is
 *  agent/capture/ in the sources and dist/agent/capture/ when compiled). */
export function loadNativeAddon(
  opts: { searchFrom?: string } = {},
): { readonly addon: NativeAddon; readonly addonPath: string } | { readonly reason: string } {
  const start = opts.searchFrom ?? dirname(fileURLToPath(import.meta.url));
  const root = findPackageRoot(start);
  if (!root) return { reason: `no mtun package root above ${start}` };
  const addonPath = join(root, ADDON);
  if (!existsSync(addonPath)) {
    return {
      reason: `the native addon was not built (${addonPath} is missing${buildReason(root)}); install a C toolchain and run \`npm run build:native\``,
    };
  }
  try {
    return { addon: createRequire(import.meta.url)(addonPath) as NativeAddon, addonPath };
  } catch (err) {
    return { reason: `the native addon ${addonPath} does not load: ${errorMessage(err)}` };
  }
}

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

/** The kernel descriptor behind a net.Socket. `_handle.fd` is undocumented but stable on
 *  Unix (TCPWrap); -1 or absent when the socket is not open. */
function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function findPackageRoot(from: string): string | undefined {
  let dir = resolve(from);
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'binding.gyp')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** Why `npm install` skipped the build, as native/build.mjs recorded it. */
function buildReason(root: string): string {
  try {
    const s = JSON.parse(readFileSync(join(root, STATUS), 'utf8')) as { reason?: string };
    return s.reason ? `: ${s.reason.split('\n')[0]}` : '';
  } catch {
    return '';
  }
}
