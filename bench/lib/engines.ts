// Which HBONE engines a benchmark measures (issue 16: node:http2 against our own HTTP/2, in
// the same run): `--engine node|own|both` of the scripts, `--engines` of the suite, the
// agents' `--hbone-engine` flag, and the name each engine goes by in the output.
import { defaultEngine, HBONE_ENGINES, type HboneEngine } from '../../hbone/engine.js';
import type { ChoiceOption } from './args.js';

export type EngineChoice = HboneEngine | 'both';

/** What an output line or a report row calls an engine. */
export const ENGINE_LABEL: Readonly<Record<HboneEngine, string>> = {
  node: 'node:http2',
  own: 'own h2',
};

/** The scripts' `--engine`, `both` explained by `both`; the default is the process's
 *  (MTUN_HBONE_ENGINE, else own). */
export function engineOption(both: string): ChoiceOption<EngineChoice> {
  let fallback: HboneEngine = 'node';
  try {
    fallback = defaultEngine();
  } catch (err) {
    // Refused before anything starts, as a bad option is (args.ts).
    console.error((err as Error).message);
    process.exit(2);
  }
  return {
    default: fallback,
    choices: [...HBONE_ENGINES, 'both'],
    help: `the agents' HBONE HTTP/2 engine, both = ${both} with the ratios own/node; the default is MTUN_HBONE_ENGINE's, else own`,
  };
}

/** The engines a choice stands for, node first. */
export function enginesOf(choice: EngineChoice): HboneEngine[] {
  return choice === 'both' ? [...HBONE_ENGINES] : [choice];
}

/** `mtun agent` flags for `engine`. */
export function engineArgs(engine: HboneEngine): string[] {
  return ['--hbone-engine', engine];
}

/** own/node of one figure, as "1.23×" ("–" when either is missing). */
export function ownOverNode(byEngine: Partial<Record<HboneEngine, number>>): string {
  const own = byEngine.own;
  const node = byEngine.node;
  if (own === undefined || node === undefined || !Number.isFinite(own / node)) return '–';
  return `${(own / node).toFixed(2)}×`;
}
