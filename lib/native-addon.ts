// mtun's native addon (native/*.c, built at `npm install` into build/Release/): found and
// loaded once, never throwing: the result is the addon or why there is none, in words an
// operator can act on. Its users (transparent capture, malloc tuning, reset detection) each
// say what they lose without it.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from './errors.js';

const ADDON = join('build', 'Release', 'mtun_native.node');
const STATUS = join('build', 'mtun-native-status.json');

/** What the C addon exports. Functions added later are optional: an addon built before
 *  them lacks them until `npm run build:native`. */
export interface NativeAddon {
  /** native/original_dst.c. Throws an Error whose `code` is an errno name (ENOENT: no
   *  conntrack entry). */
  originalDst(fd: number): { address: string; port: number; family: 4 | 6; self: boolean };
  /** glibc's M_TRIM_THRESHOLD and M_TOP_PAD (native/malloc_tune.c); false on other libcs. */
  mallocTune?(trimBytes: number, topPadBytes: number): boolean;
  /** The socket's pending error (SO_ERROR, which reading clears): an errno number, 0 for
   *  none, -errno when getsockopt itself failed (native/socket_error.c). */
  socketError?(fd: number): number;
}

export type LoadedAddon =
  | { readonly addon: NativeAddon; readonly addonPath: string }
  | { readonly reason: string };

let fromHere: LoadedAddon | undefined;

/** The built addon, or why there is none. `searchFrom`: where to start looking for build/
 *  (default: this module's folder, lib/ in the sources and dist/lib/ when compiled; that
 *  search is done once per process, for all of the addon's users). */
export function loadNativeAddon(opts: { searchFrom?: string } = {}): LoadedAddon {
  if (opts.searchFrom !== undefined) return load(opts.searchFrom);
  fromHere ??= load(dirname(fileURLToPath(import.meta.url)));
  return fromHere;
}

function load(start: string): LoadedAddon {
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

/** The kernel descriptor behind a net.Socket. `_handle.fd` is undocumented but stable on
 *  Unix (TCPWrap); -1 or absent when the socket is not open. */
export function socketFd(socket: Socket): number | undefined {
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
