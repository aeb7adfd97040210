// Freezing all the way down, for trees of plain data built once and then shared (the agent's
// config, parsed policy rules): a nested field cannot change under a reader either. In strict
// mode (every ES module) an assignment to a frozen field throws a TypeError.

/** Freezes `value` and every object reachable through its own data properties; returns it.
 *  For plain objects and arrays: a Map's or a class's internal state stays mutable. */
export function deepFreeze<T>(value: T): T {
  const seen = new WeakSet<object>();
  const visit = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    // Descriptors, not reads: a getter is left uncalled.
    for (const d of Object.values(Object.getOwnPropertyDescriptors(v))) visit(d.value);
    Object.freeze(v);
  };
  visit(value);
  return value;
}
