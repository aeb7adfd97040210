import t from 'tap';
import { BACKOFF_MAX_MS, backoffDelayMs, refreshDelayMs } from '../../agent/certs/schedule.js';

const H = 3_600_000;
const refresh: [string, number, number, number, number, number][] = [
  // name, receivedAt, expiresAt, now, random, expected delay
  ['24 h cert, no jitter (random 0.5): half life', 0, 24 * H, 0, 0.5, 12 * H],
  ['24 h cert, lowest jitter: 45 % of the lifetime', 0, 24 * H, 0, 0, 0.45 * 24 * H],
  [
    '24 h cert, highest jitter: just under 55 %',
    0,
    24 * H,
    0,
    0.999999,
    Math.round(0.55 * 24 * H - 0.000001 * 0.1 * 24 * H),
  ],
  ['asked later: counts from now', 0, 24 * H, 6 * H, 0.5, 6 * H],
  ['past the refresh point: at once', 0, 24 * H, 20 * H, 0.5, 0],
  ['already expired: at once', 0, H, 2 * H, 0.5, 0],
  ['short 10 s certificate: 5 s', 1_000, 11_000, 1_000, 0.5, 5_000],
];
for (const [name, r, e, now, rnd, want] of refresh) {
  t.test(`refresh: ${name}`, async (t) => {
    t.equal(refreshDelayMs(r, e, now, rnd), want);
  });
}

t.test('backoff: about 1 s doubling to 150 s, ±20 %', async (t) => {
  t.same(
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((a) => backoffDelayMs(a, 0.5)),
    [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 150000, 150000],
  );
  t.equal(backoffDelayMs(1, 0), 800, '-20 %');
  t.equal(backoffDelayMs(1, 0.999999), 1200, '+20 %');
  t.ok(backoffDelayMs(50, 0.999999) <= BACKOFF_MAX_MS * 1.2, 'bounded even after many failures');
  t.equal(backoffDelayMs(0, 0.5), 1000, 'attempt 0 behaves like the first');
});
