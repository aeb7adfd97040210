// Bounded waiting for something that becomes true by itself (a log line, a metric, a rule,
// a pool's state): the one polling loop the tests share. Kept apart from world.ts so a test
// that only waits does not load the whole local mesh.

/** Waits until `cond()` holds, checking every `intervalMs`; throws naming `what` after `ms`. */
export async function eventually(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 5_000,
  intervalMs = 20,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
