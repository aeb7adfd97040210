// The command line of the single-purpose benchmark scripts: numeric options, each with a
// default and a range (a load loop stays bounded whatever is typed), and a few words from a
// fixed list (`--engine node|own|both`); `--help` written from the same table, and bad input
// refused with the usage (exit 2) before anything starts.
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

/** One word of `choices`. */
export interface ChoiceOption<V extends string = string> {
  readonly default: V;
  readonly choices: readonly V[];
  readonly help: string;
}

type Values<O> = { [k in keyof O]: O[k] extends ChoiceOption<infer V> ? V : number };

/** Parses `--name value` for every option of `options`; `about` opens the help text. */
export function scriptArgs<const O extends Readonly<Record<string, NumberOption | ChoiceOption>>>(
  about: string,
  options: O,
  argv: readonly string[] = process.argv.slice(2),
): Values<O> {
  const table = Object.entries(options) as [string, NumberOption | ChoiceOption][];
  const isChoice = (o: NumberOption | ChoiceOption): o is ChoiceOption => 'choices' in o;
  const words = (o: ChoiceOption) =>
    `${o.choices.slice(0, -1).join(', ')}${o.choices.length > 1 ? ' or ' : ''}${o.choices.at(-1)}`;
  const usage = [
    about,
    '',
    ...table.map(([k, o]) =>
      isChoice(o)
        ? `  --${k.padEnd(11)} ${o.choices.join('|')}: ${o.help} (default ${o.default})`
        : `  --${k.padEnd(11)} ${o.help} (default ${o.default}; ${o.min} to ${o.max})`,
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
  const out: Record<string, number | string> = {};
  for (const [k, o] of table) {
    const raw = values[k];
    if (isChoice(o)) {
      if (raw !== undefined && !o.choices.includes(raw as string))
        refuse(`--${k}: expected ${words(o)}, got '${raw}'`);
      out[k] = typeof raw === 'string' ? raw : o.default;
      continue;
    }
    const n = typeof raw === 'string' ? Number(raw) : o.default;
    const whole = !o.integer || Number.isInteger(n);
    if (raw === '' || !Number.isFinite(n) || !whole || n < o.min || n > o.max)
      refuse(
        `--${k}: expected ${o.integer ? 'a whole number' : 'a number'} from ${o.min} to ${o.max}, got '${raw}'`,
      );
    out[k] = n;
  }
  return out as Values<O>;
}
