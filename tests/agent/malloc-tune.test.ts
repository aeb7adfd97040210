// The agent's glibc malloc tuning (issue 13, agent/malloc-tune.ts): applied through the
// native addon, never over an operator's own setting, and each refusal says why. Its effect
// on the data path is measured by bench/ceiling.ts and bench/agent-pair.ts, not here.
import t from 'tap';
import { TRIM_THRESHOLD_BYTES, tuneMalloc } from '../../agent/malloc-tune.js';
import { loadNativeAddon } from '../../lib/native-addon.js';

const addon = loadNativeAddon();

t.test("an operator's own glibc malloc setting is left as it is", async (t) => {
  for (const env of [
    { MALLOC_TRIM_THRESHOLD_: '131072' },
    { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' },
  ]) {
    const r = tuneMalloc(env);
    t.equal(r.tuned, false);
    t.match(!r.tuned && r.reason, /the environment sets glibc malloc tuning/);
  }
});

t.test('tuned through the native addon where it is built', async (t) => {
  if ('reason' in addon) {
    t.match(tuneMalloc({}), { tuned: false, reason: addon.reason }, "the reason is the addon's");
    return;
  }
  t.same(tuneMalloc({}), {
    tuned: true,
    trimThresholdBytes: TRIM_THRESHOLD_BYTES,
    topPadBytes: 16 * 2 ** 20,
  });
  t.throws(() => addon.addon.mallocTune?.(-1, 0), /two byte counts/, 'bad input is refused');
  t.throws(() => addon.addon.mallocTune?.(2 ** 31, 0), /two byte counts/);
});
