// How the CA learns which node is calling: a bearer credential in, a node name out. Two
// implementations: a tokens file (nodes outside Kubernetes, the local demo) and TokenReview
// (projected service-account tokens on Kubernetes). Fail closed: any rejection of
// `authenticate`, whatever its type, is a refusal; nothing here ever defaults to a node.

import { CaError } from '../errors.js';
import type { NodeTokens } from '../tokens.js';

export interface NodeAuthenticator {
  /** The node the credential proves. Rejects with CaError UNAUTHENTICATED (a definite no),
   *  RATE_LIMITED, or INTERNAL (could not check: the client may retry later). */
  authenticate(token: string): Promise<string>;
  /** For the CA's startup log: what it trusts, never a secret. */
  describe(): Record<string, unknown>;
}

export class TokensFileAuthenticator implements NodeAuthenticator {
  readonly #tokens: NodeTokens;

  constructor(tokens: NodeTokens) {
    this.#tokens = tokens;
  }

  async authenticate(token: string): Promise<string> {
    const node = this.#tokens.nodeFor(token);
    if (!node) throw new CaError('UNAUTHENTICATED', 'unknown node token');
    return node;
  }

  describe(): Record<string, unknown> {
    return { auth: 'tokens', nodes: this.#tokens.size };
  }
}
