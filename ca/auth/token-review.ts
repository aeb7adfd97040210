// Node authentication on Kubernetes, as istiod does it for ztunnel: the agent presents its
// projected service-account token (audience of our own); the API server's TokenReview says
// whose it is; only the agent's service account is accepted; the calling node comes from the
// token's pod binding: the `node-name` extra where the API server adds it (1.30+), else the
// bound pod (name and uid must match a live pod) and its spec.nodeName. Every failure to
// check is a refusal. Good answers are cached briefly so a node's burst of CSRs costs one
// review; concurrent reviews are bounded.
import { z } from 'zod';
import type { KubeApi } from '../../mesh/kube/http.js';
import { CaError } from '../errors.js';
import { sha256 } from '../tokens.js';
import type { NodeAuthenticator } from './authenticator.js';

export const POD_NAME = 'authentication.kubernetes.io/pod-name';
export const POD_UID = 'authentication.kubernetes.io/pod-uid';
export const NODE_NAME = 'authentication.kubernetes.io/node-name';

export interface TokenReviewOptions {
  readonly api: KubeApi;
  /** The audience agents' tokens are minted for (the DaemonSet's projected volume). */
  readonly audience: string;
  /** `namespace/name` of the service accounts that may act as nodes (the agent's). */
  readonly serviceAccounts: readonly string[];
  readonly cacheTtlMs?: number;
  readonly cacheSize?: number;
  readonly maxInFlight?: number;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

const reviewSchema = z.object({
  status: z
    .object({
      authenticated: z.boolean().optional(),
      error: z.string().optional(),
      audiences: z.array(z.string()).nullish(),
      user: z
        .object({
          username: z.string().optional(),
          extra: z.record(z.string(), z.array(z.string())).nullish(),
        })
        .loose()
        .optional(),
    })
    .loose()
    .optional(),
});

const podSchema = z.object({
  metadata: z.object({ uid: z.string() }).loose(),
  spec: z
    .object({ nodeName: z.string().optional(), serviceAccountName: z.string().optional() })
    .loose(),
  status: z.object({ phase: z.string().optional() }).loose().optional(),
});

export class TokenReviewAuthenticator implements NodeAuthenticator {
  readonly #opts: TokenReviewOptions;
  readonly #usernames: ReadonlySet<string>;
  readonly #cache = new Map<string, { node: string; until: number }>();
  readonly #pending = new Map<string, Promise<string>>();

  constructor(opts: TokenReviewOptions) {
    for (const sa of opts.serviceAccounts) {
      if (!/^[a-z0-9.-]+\/[a-z0-9.-]+$/.test(sa))
        throw new CaError(
          'INTERNAL',
          `service account ${JSON.stringify(sa)}: expected NAMESPACE/NAME`,
        );
    }
    this.#opts = opts;
    this.#usernames = new Set(
      opts.serviceAccounts.map((sa) => `system:serviceaccount:${sa.replace('/', ':')}`),
    );
  }

  describe(): Record<string, unknown> {
    return {
      auth: 'tokenreview',
      api: this.#opts.api.server,
      audience: this.#opts.audience,
      serviceAccounts: this.#opts.serviceAccounts,
    };
  }

  async authenticate(token: string): Promise<string> {
    const now = this.#opts.now ?? Date.now;
    const key = sha256(token).toString('hex');
    const hit = this.#cache.get(key);
    if (hit && hit.until > now()) return hit.node;
    this.#cache.delete(key);
    const same = this.#pending.get(key);
    if (same) return same;
    if (this.#pending.size >= (this.#opts.maxInFlight ?? 32))
      throw new CaError('RATE_LIMITED', 'too many token reviews in flight');
    const review = this.#review(token).finally(() => this.#pending.delete(key));
    this.#pending.set(key, review);
    const node = await review;
    if (this.#cache.size >= (this.#opts.cacheSize ?? 1024)) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(key, { node, until: now() + (this.#opts.cacheTtlMs ?? 30_000) });
    return node;
  }

  async #review(token: string): Promise<string> {
    const { api, audience } = this.#opts;
    const timeoutMs = this.#opts.timeoutMs ?? 5_000;
    const answer = await api
      .json(
        'POST',
        '/apis/authentication.k8s.io/v1/tokenreviews',
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences: [audience] },
        },
        { timeoutMs },
      )
      .catch((err: unknown) => {
        throw unavailable('token review failed', err);
      });
    if (answer.status !== 200 && answer.status !== 201)
      throw unavailable(`token review answered HTTP ${answer.status}`);
    const parsed = reviewSchema.safeParse(answer.body);
    if (!parsed.success) throw unavailable('token review answer of unexpected shape');
    const st = parsed.data.status ?? {};
    if (st.authenticated !== true)
      throw new CaError(
        'UNAUTHENTICATED',
        `token not authenticated${st.error ? `: ${st.error}` : ''}`,
      );
    // The API server answers with the audiences the token is valid for among those we asked.
    if (!(st.audiences ?? []).includes(audience))
      throw new CaError('UNAUTHENTICATED', `token is not for audience ${audience}`);
    const username = st.user?.username ?? '';
    if (!this.#usernames.has(username))
      throw new CaError(
        'UNAUTHENTICATED',
        `${username || 'the caller'} is not a node agent's service account`,
      );
    const extra = st.user?.extra ?? {};
    const one = (k: string) => (extra[k]?.length === 1 ? extra[k]![0] : undefined);
    const podName = one(POD_NAME);
    const podUid = one(POD_UID);
    if (!podName || !podUid)
      throw new CaError(
        'UNAUTHENTICATED',
        'token is not bound to a pod (use a projected service-account token)',
      );
    const nodeName = one(NODE_NAME);
    if (nodeName) return nodeName;
    return this.#nodeOfPod(username.split(':')[2]!, podName, podUid);
  }

  /** The node of the pod the token is bound to; the uid guards against a re-created pod. */
  async #nodeOfPod(namespace: string, name: string, uid: string): Promise<string> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
    const a = await this.#opts.api
      .json('GET', path, undefined, { timeoutMs: this.#opts.timeoutMs ?? 5_000 })
      .catch((err: unknown) => {
        throw unavailable('reading the bound pod failed', err);
      });
    if (a.status === 404)
      throw new CaError('UNAUTHENTICATED', `the token's pod ${namespace}/${name} no longer exists`);
    if (a.status !== 200) throw unavailable(`reading the bound pod answered HTTP ${a.status}`);
    const pod = podSchema.safeParse(a.body);
    if (!pod.success) throw unavailable('bound pod of unexpected shape');
    if (pod.data.metadata.uid !== uid)
      throw new CaError(
        'UNAUTHENTICATED',
        `the token's pod ${namespace}/${name} was replaced (uid differs)`,
      );
    const phase = pod.data.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed')
      throw new CaError('UNAUTHENTICATED', `the token's pod ${namespace}/${name} has ended`);
    if (!pod.data.spec.nodeName)
      throw new CaError('UNAUTHENTICATED', `the token's pod ${namespace}/${name} is not scheduled`);
    return pod.data.spec.nodeName;
  }
}

/** Could not check: a refusal the client may retry (500), never an allow. */
function unavailable(message: string, cause?: unknown): CaError {
  return new CaError(
    'INTERNAL',
    `${message}${cause instanceof Error ? `: ${cause.message}` : ''}; refusing`,
    cause === undefined ? undefined : { cause },
  );
}
