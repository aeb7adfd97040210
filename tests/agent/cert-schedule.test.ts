import t from 'tap';
import {
  BACKOFF_MAX_MS,
  backoffDelayMs,
  RETRY_MIN_MS,
  RETRY_WITHOUT_CERT_MS,
  refreshDelayMs,
  retryDelayMs,
} from '../../agent/certs/schedule.js';

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

const S = 1_000;
const retry: [string, number, number, number | undefined, number, number][] = [
  // name, attempt, random, expiresAt (undefined: never had one), now, expected delay
  ['far from expiry: plain backoff', 3, 0.5, 10 * H, 0, 4 * S],
  ['far from expiry, many failures: the 150 s cap', 12, 0.5, 10 * H, 0, 150 * S],
  ['backoff longer than half the time left: half the time left', 8, 0.5, 60 * S, 0, 30 * S],
  // Issue 12, item 6: the 7th failure, 1.3 s before expiry, used to wait 64 s ±20 % (68 s).
  ['issue 12: 7th failure 1.3 s before expiry: 1 s, before expiry', 7, 0.66, 1_300, 0, 1 * S],
  ['little left: never under 1 s', 9, 0.5, 400, 0, 1 * S],
  ['short backoff stays short near expiry', 1, 0.5, 1_300, 0, 1 * S],
  ['expired: every ~3 s', 10, 0.5, 5 * S, 6 * S, 3 * S],
  ['expired, lowest jitter: 2.4 s', 10, 0, 5 * S, 6 * S, 2.4 * S],
  ['expired, highest jitter: under 3.6 s', 30, 0.999999, 5 * S, 6 * S, 3.6 * S],
  ['expired, first failures: the shorter backoff', 1, 0.5, 5 * S, 6 * S, 1 * S],
  ['never had a certificate: every ~3 s at most', 9, 0.5, undefined, 0, 3 * S],
  ['never had a certificate, second failure: 2 s', 2, 0.5, undefined, 0, 2 * S],
];
for (const [name, attempt, rnd, expires, now, want] of retry) {
  t.test(`retry: ${name}`, async (t) => {
    t.equal(retryDelayMs(attempt, rnd, expires, now), Math.round(want));
  });
}

t.test(
  'retry: a CA outage through expiry is retried every few seconds, never a minute',
  async (t) => {
    // Replays the schedule of one identity with a 24 h certificate whose renewals all fail:
    // no wait may end after expiry by more than RETRY_WITHOUT_CERT_MS (+20 %), and after expiry
    // no wait is longer than that either.
    const expires = 24 * H;
    let now = 12 * H; // the refresh point: the first try fails
    let worstAfterExpiry = 0;
    const late: number[] = [];
    for (let attempt = 1; now < expires + 60 * S; attempt++) {
      const d = retryDelayMs(attempt, 0.999999, expires, now);
      if (now < expires && now + d > expires + RETRY_MIN_MS) late.push(attempt);
      if (now >= expires) worstAfterExpiry = Math.max(worstAfterExpiry, d);
      now += d;
    }
    t.same(late, [], 'no try before expiry is scheduled more than 1 s past it');
    t.ok(
      worstAfterExpiry <= RETRY_WITHOUT_CERT_MS * 1.2,
      `after expiry at most ${worstAfterExpiry} ms`,
    );
  },
);
