// glibc malloc tuning for the data path (issue 13), applied once at agent start through the
// native addon (native/malloc_tune.c: Node cannot call mallopt). Without it, OpenSSL's TLS
// read buffer, freed after every record and allocated again for the next, made glibc trim
// the heap's top and fault the same pages in again: 15-155k page faults per GB and 2-3x
// the CPU per GB in the agents, now and then (whether the freed buffer sat at the heap's
// top decided it, so runs were fast or slow by chance). An operator's own choice wins:
// with MALLOC_TRIM_THRESHOLD_ or a glibc.malloc tunable in the environment nothing is set.
import type { Logger } from '../lib/logger.js';
import { loadNativeAddon } from '../lib/native-addon.js';

/** Above the data path's working set (16 MiB HTTP/2 connection windows, buffers in flight):
 *  what the top of the heap may keep free before glibc hands it back to the kernel. */
export const TRIM_THRESHOLD_BYTES = 64 * 2 ** 20;
/** Grown by at least this much at a time, so a growing heap faults in fewer steps. */
export const TOP_PAD_BYTES = 16 * 2 ** 20;

export type MallocTuning =
  | { readonly tuned: true; readonly trimThresholdBytes: number; readonly topPadBytes: number }
  | { readonly tuned: false; readonly reason: string };

export function tuneMalloc(env: NodeJS.ProcessEnv = process.env): MallocTuning {
  if (env.MALLOC_TRIM_THRESHOLD_ !== undefined || /glibc\.malloc\./.test(env.GLIBC_TUNABLES ?? ''))
    return { tuned: false, reason: 'the environment sets glibc malloc tuning: left as it is' };
  if (process.platform !== 'linux')
    return {
      tuned: false,
      reason: `glibc malloc tuning is for Linux (this is ${process.platform})`,
    };
  const loaded = loadNativeAddon();
  if ('reason' in loaded) return { tuned: false, reason: loaded.reason };
  if (typeof loaded.addon.mallocTune !== 'function')
    return {
      tuned: false,
      reason: `the native addon ${loaded.addonPath} predates mallocTune(): run \`npm run build:native\``,
    };
  if (!loaded.addon.mallocTune(TRIM_THRESHOLD_BYTES, TOP_PAD_BYTES))
    return { tuned: false, reason: 'this libc is not glibc (mallopt refused)' };
  return { tuned: true, trimThresholdBytes: TRIM_THRESHOLD_BYTES, topPadBytes: TOP_PAD_BYTES };
}

/** Tunes, and says so once: info when tuned, warn with the remedy when it could not be. */
export function tuneMallocAndLog(logger: Logger): MallocTuning {
  const result = tuneMalloc();
  if (result.tuned)
    logger.info(
      { trimThresholdBytes: result.trimThresholdBytes, topPadBytes: result.topPadBytes },
      'glibc malloc tuned for the data path',
    );
  else if (!result.reason.startsWith('the environment'))
    logger.warn(
      { reason: result.reason },
      `glibc malloc not tuned: bulk transfers may cost up to 3x the CPU; set MALLOC_TRIM_THRESHOLD_=${TRIM_THRESHOLD_BYTES} in the agent's environment instead`,
    );
  return result;
}
