// The ceiling check from the command line: two mtun agents against a plain Node TLS pipe
// pair and the HBONE library pair, interleaved, as ratios (bench/lib/ceiling.ts); exit 1
// when mtun is below the limits CI holds it to (tests/bench/ceiling.test.ts).
// Usage: node --import tsx bench/ceiling.ts --help
import { scriptArgs } from './lib/args.js';
import { CEILING_LIMITS, ceilingFailures, measureCeiling } from './lib/ceiling.js';

const args = scriptArgs(
  'usage: node --import tsx bench/ceiling.ts [options]\n\nmtun against the Node TLS pair and the HBONE library pair in the same run, as ratios.',
  {
    rounds: { default: 3, min: 1, max: 10, integer: true, help: 'interleaved rounds' },
    seconds: { default: 1, min: 0.2, max: 10, help: 'seconds per bulk transfer at most' },
    mib: { default: 256, min: 8, max: 4096, help: 'MiB per bulk transfer at most' },
    tunnels: {
      default: 0,
      min: 0,
      max: 5000,
      integer: true,
      help: 'tunnels opened and closed through mtun before measuring',
    },
    trips: { default: 500, min: 50, max: 20_000, integer: true, help: 'round trips per sample' },
  },
);
const r = await measureCeiling(
  {
    rounds: args.rounds,
    bulkSeconds: args.seconds,
    bulkBytes: args.mib * 2 ** 20,
    trips: args.trips,
    tunnelsBefore: args.tunnels,
  },
  (line) => console.log(line),
);
const f = (n: number) => n.toFixed(2);
console.log(
  `best of ${args.rounds}: mtun bulk ${f(r.bulkRatio)}x, CPU/GB ${f(r.cpuRatio)}x, round-trip p50 ${f(r.rttRatio)}x the Node TLS pair; HBONE library pair bulk ${f(r.hboneBulkRatio)}x`,
);
console.log(
  `limits: bulk >= ${CEILING_LIMITS.minBulkRatio}x, CPU/GB <= ${CEILING_LIMITS.maxCpuRatio}x, p50 <= ${CEILING_LIMITS.maxRttRatio}x`,
);
const failures = ceilingFailures(r);
for (const x of failures) console.log(`FAIL ${x}`);
process.exitCode = failures.length > 0 ? 1 : 0;
