// The command line of the single-purpose benchmark scripts: numeric options only, each with
// a default and a range (a load loop stays bounded whatever is typed), `--help` written from
// the same table, and bad input refused with the usage (exit 2) before anything starts.
import { parseArgs } from 'node:util';
import { errorMessage } from '../../lib/errors.js';

export interface NumberOption {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly help: string;
  /** A count (tunnels, rounds): whole numbers only. */
  readonly integer?: boolean;
}

/** Parses `--name value` for every option of `options`; `about` opens the help text. */
export function scriptArgs<K extends string>(
  about: string,
  options: Readonly<Record<K, NumberOption>>,
  argv: readonly string[] = process.argv.slice(2),
): Record<K, number> {
  const table = Object.entries(options) as [K, NumberOption][];
  const usage = [
    about,
    '',
    ...table.map(
      ([k, o]) => `  --${k.padEnd(11)} ${o.help} (default ${o.default}; ${o.min} to ${o.max})`,
    ),
    '  -h, --help    this text',
  ].join('\n');
  const refuse = (message: string): never => {
    console.error(`${message}\n\n${usage}`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | undefined> = {};
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(table.map(([k]) => [k, { type: 'string' as const }])),
      },
    }));
  } catch (err) {
    refuse(errorMessage(err));
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const out = {} as Record<K, number>;
  for (const [k, o] of table) {
    const raw = values[k];
    const n = typeof raw === 'string' ? Number(raw) : o.default;
    const whole = !o.integer || Number.isInteger(n);
    if (raw === '' || !Number.isFinite(n) || !whole || n < o.min || n > o.max)
      refuse(
        `--${k}: expected ${o.integer ? 'a whole number' : 'a number'} from ${o.min} to ${o.max}, got '${raw}'`,
      );
    out[k] = n;
  }
  return out;
}
