// SPIFFE IDs of workloads: exactly `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
// A SpiffeId is only ever built by parse()/of(), so holding one means it is well formed.
import { MtunError } from '../lib/errors.js';

export class InvalidSpiffeIdError extends MtunError {
  constructor(message: string) {
    super('SPIFFE_ID_INVALID', message);
  }
}

// Trust domain: lowercase letters, digits, '.', '-', '_' (SPIFFE ID spec §2.1).
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
// Kubernetes namespace / service-account names: DNS-1123 labels/subdomains.
const K8S_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export function isValidTrustDomain(td: string): boolean {
  return td.length > 0 && td.length <= 255 && TRUST_DOMAIN.test(td);
}

/** IDs already validated, by `td ns sa`: the agent asks for the same few identities on
 *  every connection, and each answer used to cost three regular expressions, an object and
 *  (at every toString) a new string. Bounded: cleared when full. */
const interned = new Map<string, SpiffeId>();
const INTERNED_MAX = 4096;

export class SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly #uri: string;

  private constructor(trustDomain: string, namespace: string, serviceAccount: string) {
    this.trustDomain = trustDomain;
    this.namespace = namespace;
    this.serviceAccount = serviceAccount;
    this.#uri = `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
    Object.freeze(this);
  }

  static of(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
    // Spaces cannot occur in any valid part, so the key is unambiguous.
    const key = `${trustDomain} ${namespace} ${serviceAccount}`;
    const known = interned.get(key);
    if (known) return known;
    const id = SpiffeId.#validated(trustDomain, namespace, serviceAccount);
    if (interned.size >= INTERNED_MAX) interned.clear();
    interned.set(key, id);
    return id;
  }

  static #validated(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
    if (!isValidTrustDomain(trustDomain)) {
      throw new InvalidSpiffeIdError(
        `trust domain ${JSON.stringify(trustDomain)}: expected lowercase letters, digits, '.', '-' or '_'`,
      );
    }
    if (!K8S_NAME.test(namespace)) {
      throw new InvalidSpiffeIdError(
        `namespace ${JSON.stringify(namespace)}: expected a Kubernetes name (lowercase alphanumerics, '-', '.')`,
      );
    }
    if (!K8S_NAME.test(serviceAccount)) {
      throw new InvalidSpiffeIdError(
        `service account ${JSON.stringify(serviceAccount)}: expected a Kubernetes name (lowercase alphanumerics, '-', '.')`,
      );
    }
    return new SpiffeId(trustDomain, namespace, serviceAccount);
  }

  /** Parses `spiffe://td/ns/NS/sa/SA`; anything else (query, fragment, port, userinfo,
   *  extra segments, percent-encoding, upper case scheme) is rejected with the reason. */
  static parse(text: string): SpiffeId {
    const prefix = 'spiffe://';
    if (!text.startsWith(prefix)) {
      throw new InvalidSpiffeIdError(
        `${JSON.stringify(text)}: expected a URI starting with spiffe:// (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)`,
      );
    }
    if (/[?#%@:\s]/.test(text.slice(prefix.length))) {
      throw new InvalidSpiffeIdError(
        `${JSON.stringify(text)}: SPIFFE IDs may not contain a query, fragment, port, userinfo, whitespace or percent-encoding`,
      );
    }
    const parts = text.slice(prefix.length).split('/');
    if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') {
      throw new InvalidSpiffeIdError(
        `${JSON.stringify(text)}: expected the path /ns/<namespace>/sa/<service-account>`,
      );
    }
    return SpiffeId.of(parts[0]!, parts[2]!, parts[4]!);
  }

  static tryParse(text: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(text);
    } catch {
      return undefined;
    }
  }

  toString(): string {
    return this.#uri;
  }

  /** Istio principal form: the ID without `spiffe://` (what AuthorizationPolicy matches). */
  principal(): string {
    return `${this.trustDomain}/ns/${this.namespace}/sa/${this.serviceAccount}`;
  }

  equals(other: SpiffeId): boolean {
    return (
      this.trustDomain === other.trustDomain &&
      this.namespace === other.namespace &&
      this.serviceAccount === other.serviceAccount
    );
  }

  toJSON(): string {
    return this.toString();
  }
}
