// The CA client the agent uses: a fresh P-256 key per request (the key never leaves this
// process), a CSR for exactly the identity wanted, and a strict check of the answer: the
// leaf must carry that identity, hold our key, and chain to the returned trust bundle.
import { X509Certificate as NodeX509 } from 'node:crypto';
import { request } from 'node:https';
import type { SpiffeId } from '../identity/spiffe-id.js';
import { checkLeafSvid } from '../identity/svid.js';
import { ECDSA_SHA256, subtle, x509 } from '../identity/x509.js';
import { errorMessage, MtunError } from '../lib/errors.js';
import { generateP256, privateKeyPem } from './pki.js';

const MAX_ANSWER_BYTES = 1 << 20;

export class CaClientError extends MtunError {
  /** HTTP status, when the CA answered; undefined for transport failures. */
  readonly status: number | undefined;
  constructor(code: string, message: string, status?: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
  /** Worth retrying later (CA down, overloaded, rate limited) rather than a permanent no. */
  get retryable(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}

export interface CertificateBundle {
  readonly id: SpiffeId;
  readonly keyPem: string;
  /** Leaf first, then intermediates. */
  readonly certChainPem: readonly string[];
  readonly trustBundlePem: readonly string[];
  readonly serial: string;
  readonly notBefore: Date;
  readonly expiresAt: Date;
}

export interface CaClientOptions {
  /** e.g. https://127.0.0.1:15012 */
  readonly url: string;
  /** PEM roots that the CA's serving certificate chains to. */
  readonly caBundlePem: string;
  /** Reads the node credential at each request (projected tokens rotate). */
  readonly token: () => Promise<string>;
  readonly timeoutMs?: number;
}

export class CaClient {
  readonly #opts: CaClientOptions;

  constructor(opts: CaClientOptions) {
    this.#opts = opts;
  }

  async fetchCertificate(id: SpiffeId, ttlSeconds?: number): Promise<CertificateBundle> {
    const keys = await generateP256();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id.toString() }], true),
      ],
    });
    const answer = await this.#post('/v1/certificates', {
      csr: csr.toString('pem'),
      ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
    });
    const bundle = parseAnswer(answer);
    const leaf = verifyAnswer(
      id,
      bundle,
      Buffer.from(await subtle.exportKey('spki', keys.publicKey)),
    );
    return {
      id,
      keyPem: await privateKeyPem(keys.privateKey),
      certChainPem: bundle.certChain,
      trustBundlePem: bundle.trustBundle,
      serial: leaf.serialNumber.toLowerCase(),
      notBefore: new Date(leaf.validFrom),
      expiresAt: new Date(leaf.validTo),
    };
  }

  #post(path: string, body: unknown): Promise<unknown> {
    const payload = JSON.stringify(body);
    const timeoutMs = this.#opts.timeoutMs ?? 10_000;
    return this.#opts.token().then(
      (token) =>
        new Promise((resolve, reject) => {
          const req = request(new URL(path, this.#opts.url), {
            method: 'POST',
            ca: this.#opts.caBundlePem,
            minVersion: 'TLSv1.3',
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(payload),
            },
            timeout: timeoutMs,
          });
          req.on('timeout', () =>
            req.destroy(
              new CaClientError('CA_TIMEOUT', `CA did not answer within ${timeoutMs} ms`),
            ),
          );
          req.on('error', (err) =>
            reject(
              err instanceof CaClientError
                ? err
                : new CaClientError(
                    'CA_UNAVAILABLE',
                    `CA ${this.#opts.url}: ${err.message}`,
                    undefined,
                    { cause: err },
                  ),
            ),
          );
          req.on('response', async (res) => {
            try {
              const chunks: Buffer[] = [];
              let size = 0;
              for await (const c of res) {
                size += (c as Buffer).length;
                if (size > MAX_ANSWER_BYTES)
                  throw new CaClientError('CA_BAD_ANSWER', 'CA answer is too large');
                chunks.push(c as Buffer);
              }
              const text = Buffer.concat(chunks).toString('utf8');
              let json: unknown;
              try {
                json = JSON.parse(text);
              } catch {
                throw new CaClientError(
                  'CA_BAD_ANSWER',
                  `CA answered ${res.statusCode} with non-JSON`,
                  res.statusCode,
                );
              }
              if (res.statusCode !== 200) {
                const e = (json as { error?: { code?: string; message?: string } }).error;
                throw new CaClientError(
                  `CA_REFUSED_${e?.code ?? res.statusCode}`,
                  `CA refused (${res.statusCode} ${e?.code ?? ''}): ${e?.message ?? text.slice(0, 200)}`,
                  res.statusCode,
                );
              }
              resolve(json);
            } catch (err) {
              reject(err);
            }
          });
          req.end(payload);
        }),
    );
  }
}

function parseAnswer(json: unknown): { certChain: string[]; trustBundle: string[] } {
  const a = json as { certChain?: unknown; trustBundle?: unknown };
  const strings = (v: unknown) =>
    Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string');
  if (!strings(a.certChain) || !strings(a.trustBundle)) {
    throw new CaClientError(
      'CA_BAD_ANSWER',
      'CA answer lacks certChain/trustBundle PEM lists',
      200,
    );
  }
  return { certChain: a.certChain as string[], trustBundle: a.trustBundle as string[] };
}

/** Throws unless the leaf is a valid SVID for `id`, holds our key, and chains to a root. */
function verifyAnswer(
  id: SpiffeId,
  b: { certChain: string[]; trustBundle: string[] },
  ourSpki: Buffer,
): NodeX509 {
  const bad = (msg: string) => new CaClientError('CA_BAD_ANSWER', msg, 200);
  let chain: NodeX509[];
  let roots: NodeX509[];
  try {
    chain = b.certChain.map((p) => new NodeX509(p));
    roots = b.trustBundle.map((p) => new NodeX509(p));
  } catch (err) {
    throw new CaClientError('CA_BAD_ANSWER', 'CA answer holds an unparsable certificate', 200, {
      cause: err,
    });
  }
  const leaf = chain[0]!;
  let got: SpiffeId;
  try {
    got = checkLeafSvid(leaf.raw);
  } catch (err) {
    throw bad(`issued certificate is not a valid X.509-SVID: ${errorMessage(err)}`);
  }
  if (!got.equals(id)) throw bad(`issued certificate names ${got}, not the requested ${id}`);
  const leafSpki = leaf.publicKey.export({ type: 'spki', format: 'der' });
  if (!leafSpki.equals(ourSpki)) throw bad('issued certificate does not hold the key we generated');
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
      throw bad(`certChain[${i}] is not signed by certChain[${i + 1}]`);
    }
  }
  const top = chain[chain.length - 1]!;
  if (!roots.some((r) => top.checkIssued(r) && top.verify(r.publicKey))) {
    throw bad('certChain does not chain to the returned trust bundle');
  }
  if (Date.parse(leaf.validTo) <= Date.now()) throw bad('issued certificate is already expired');
  return leaf;
}
