// Which HTTP/2 implementation carries HBONE (issue 16): 'node' is node:http2 (nghttp2 inside
// Node), 'own' is hbone/h2/ (CONNECT-only HTTP/2 framed by us over node:tls). Both sit behind
// the same HboneClient / HboneServer API while the own engine proves itself; then one goes.
// The default is 'own'; it can be switched for a whole process (tests, benchmarks, an agent) with
// MTUN_HBONE_ENGINE, so every existing test runs against either engine unchanged.
export type HboneEngine = 'node' | 'own';

export const HBONE_ENGINES: readonly HboneEngine[] = ['node', 'own'];

/** The engine used when an option does not name one: MTUN_HBONE_ENGINE, else 'own' (it
 *  passes every test node:http2 does, the interop and conformance suites, and measures at
 *  least as well: issue 16's closing note). */
export function defaultEngine(env: NodeJS.ProcessEnv = process.env): HboneEngine {
  const v = env.MTUN_HBONE_ENGINE;
  if (v === undefined || v === '') return 'own';
  if (v === 'node' || v === 'own') return v;
  throw new TypeError(`MTUN_HBONE_ENGINE=${JSON.stringify(v)}: expected "node" or "own"`);
}
