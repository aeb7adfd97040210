// deepFreeze: every level frozen, assignments throw (ES modules are strict), cycles and
// already-frozen parents with mutable children handled, getters left uncalled.
import t from 'tap';
import { deepFreeze } from '../../lib/freeze.js';

t.test('every level is frozen; assignments at any depth throw and change nothing', async (t) => {
  const tree = deepFreeze({ a: { b: { c: 1 } }, list: [{ x: 1 }], none: null, n: 2 });
  t.ok(Object.isFrozen(tree));
  t.ok(Object.isFrozen(tree.a));
  t.ok(Object.isFrozen(tree.a.b));
  t.ok(Object.isFrozen(tree.list));
  t.ok(Object.isFrozen(tree.list[0]));
  t.throws(() => {
    tree.a.b.c = 2;
  }, TypeError);
  t.throws(() => {
    tree.list.push({ x: 2 });
  }, TypeError);
  t.throws(() => {
    tree.list[0]!.x = 2;
  }, TypeError);
  t.equal(tree.a.b.c, 1);
  t.same(tree.list, [{ x: 1 }]);
});

t.test('a frozen parent with a mutable child: the child is frozen too', async (t) => {
  const child = { v: 1 };
  const tree = deepFreeze(Object.freeze({ child }));
  t.ok(Object.isFrozen(child));
  t.equal(tree.child, child, 'the same objects, not copies');
});

t.test('cycles end; primitives and undefined pass through', async (t) => {
  const a: { self?: unknown; n: number } = { n: 1 };
  a.self = a;
  t.equal(deepFreeze(a), a);
  t.ok(Object.isFrozen(a));
  t.equal(deepFreeze(3), 3);
  t.equal(deepFreeze(undefined), undefined);
  t.equal(deepFreeze('x'), 'x');
});

t.test('a getter is not called', async (t) => {
  let calls = 0;
  const tree = deepFreeze({
    get lazy() {
      calls++;
      return { v: 1 };
    },
  });
  t.ok(Object.isFrozen(tree));
  t.equal(calls, 0);
});
