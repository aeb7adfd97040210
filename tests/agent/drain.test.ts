// The draining primitive every listener shares (agent/drain.ts): what is open is asked to
// finish, waited for at most the grace period, and what is left is closed and counted.
import t from 'tap';
import { Drain } from '../../agent/drain.js';

function closable() {
  const c = { drained: 0, destroyed: 0, drain: () => c.drained++, destroy: () => c.destroyed++ };
  return c;
}

t.test('nothing open: resolves at once with 0', async (t) => {
  const d = new Drain();
  const started = Date.now();
  t.equal(await d.drain(10_000), 0);
  t.ok(Date.now() - started < 1_000, 'no wait for the grace period');
  t.ok(d.draining);
});

t.test(
  'what finishes within the grace period is not destroyed; the wait ends with it',
  async (t) => {
    const d = new Drain();
    const a = closable();
    const untrack = d.track(a);
    t.equal(d.size, 1);
    const started = Date.now();
    const result = d.drain(10_000);
    t.equal(a.drained, 1, 'asked to finish');
    setTimeout(untrack, 50);
    t.equal(await result, 0, 'none destroyed');
    t.equal(a.destroyed, 0);
    t.ok(Date.now() - started < 5_000, 'resolved when the last one closed, not at the grace end');
    t.equal(d.size, 0);
  },
);

t.test('what is still open after the grace period is destroyed and counted', async (t) => {
  const d = new Drain();
  const [a, b, c] = [closable(), closable(), closable()];
  d.track(a);
  const untrackB = d.track(b);
  d.track(c);
  setTimeout(untrackB, 10);
  const started = Date.now();
  t.equal(await d.drain(200), 2, 'two destroyed');
  t.ok(Date.now() - started >= 190, 'after the grace period');
  t.same([a.destroyed, b.destroyed, c.destroyed], [1, 0, 1]);
  t.equal(d.size, 0);
});

t.test('something opened while draining is asked to finish at once', async (t) => {
  const d = new Drain();
  const keep = closable();
  d.track(keep);
  const result = d.drain(100);
  const late = closable();
  d.track(late);
  t.equal(late.drained, 1, 'drain() called on track');
  t.equal(await result, 2, 'both destroyed at the grace end');
  t.equal(late.destroyed, 1);
});

t.test('a closable without drain() is only destroyed', async (t) => {
  const d = new Drain();
  let destroyed = 0;
  d.track({ destroy: () => destroyed++ });
  t.equal(await d.drain(20), 1);
  t.equal(destroyed, 1);
});
