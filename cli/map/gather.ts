// Asks every agent for its map summary (admin `/edges`) in parallel, each bounded in time and
// size; an agent that does not answer is listed with why, and the map shows the rest.
import type { MapSummary } from '../../agent/observe/map-summary.js';
import { errorMessage } from '../../lib/errors.js';
import type { AgentAnswer } from './merge.js';

const MAX_BYTES = 32 * 1024 * 1024; // 2,000 edges and a few thousand workloads fit easily

export async function askAgent(adminUrl: string, timeoutMs = 2_000): Promise<AgentAnswer> {
  const url = new URL('/edges', adminUrl).toString();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      return { url: adminUrl, error: `${url}: HTTP ${res.status}` };
    }
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_BYTES) {
      await res.body?.cancel();
      return { url: adminUrl, error: `${url}: answer of ${length} bytes is over ${MAX_BYTES}` };
    }
    const summary = (await res.json()) as MapSummary;
    if (summary?.version !== 1 || !Array.isArray(summary.edges))
      return { url: adminUrl, error: `${url}: not an mtun map summary (version 1)` };
    return { url: adminUrl, summary };
  } catch (err) {
    const why = (err as { cause?: unknown }).cause ?? err;
    return { url: adminUrl, error: `${url}: ${errorMessage(why)}` };
  }
}

export function askAgents(adminUrls: readonly string[]): Promise<AgentAnswer[]> {
  return Promise.all(adminUrls.map((u) => askAgent(u)));
}
