// Durations on the command line and in config: "90s", "15m", "24h", "1h30m", "500ms".
import { ConfigError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDurationMs(text: string, what = 'duration'): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNIT_MS[m[2] as string]!;
    matched = re.lastIndex;
  }
  if (text.length === 0 || matched !== text.length || total <= 0) {
    throw new ConfigError(
      `${what}: expected a positive duration like 90s, 15m, 24h or 1h30m, got ${JSON.stringify(text)}`,
    );
  }
  return Math.round(total);
}
