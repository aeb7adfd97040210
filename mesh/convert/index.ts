// Dispatch of Kubernetes-shaped documents to their converters. Collects every problem of
// every document, so that one reload reports all of them at once.
import { MeshValidationError } from '../errors.js';
import {
  type AuthorizationPolicy,
  type MeshNode,
  type MeshObjects,
  type Namespace,
  type Origin,
  type PeerAuthentication,
  qualifiedName,
  type Service,
  type Workload,
} from '../types.js';
import { authorizationPolicyFromWire } from './istio.js';
import { namespaceFromWire, nodeFromWire, podToWorkload, serviceFromWire } from './k8s.js';
import { peerAuthenticationFromWire } from './peer-authentication.js';

export interface SourceDocument {
  readonly doc: unknown;
  readonly origin: Origin;
}

export interface ConvertOptions {
  readonly clusterDomain: string;
}

const ISTIO_SECURITY = ['security.istio.io/v1', 'security.istio.io/v1beta1'];

type Kind = 'Pod' | 'Service' | 'Node' | 'Namespace' | 'AuthorizationPolicy' | 'PeerAuthentication';

function kindOf(doc: Record<string, unknown>): Kind | undefined {
  const api = doc['apiVersion'];
  const kind = doc['kind'];
  if (
    api === 'v1' &&
    (kind === 'Pod' || kind === 'Service' || kind === 'Node' || kind === 'Namespace')
  ) {
    return kind;
  }
  if (typeof api === 'string' && ISTIO_SECURITY.includes(api)) {
    if (kind === 'AuthorizationPolicy' || kind === 'PeerAuthentication') return kind;
  }
  return undefined;
}

/** Throws one MeshValidationError carrying all problems; ignores kinds mtun does not use
 *  (a directory of manifests may hold Deployments etc.), but never a document without kind. */
export function convertDocuments(
  docs: readonly SourceDocument[],
  opts: ConvertOptions,
): MeshObjects {
  const errors: MeshValidationError[] = [];
  const typed: { kind: Kind; doc: Record<string, unknown>; origin: Origin }[] = [];
  for (const { doc, origin } of docs) {
    if (doc === null || doc === undefined) continue; // empty document (`---` at the end)
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      errors.push(
        new MeshValidationError(origin, undefined, [
          {
            path: '',
            message: 'expected a Kubernetes object (a mapping with apiVersion and kind)',
          },
        ]),
      );
      continue;
    }
    const obj = doc as Record<string, unknown>;
    if (typeof obj['apiVersion'] !== 'string' || typeof obj['kind'] !== 'string') {
      errors.push(
        new MeshValidationError(origin, undefined, [
          {
            path: typeof obj['apiVersion'] !== 'string' ? 'apiVersion' : 'kind',
            message: 'expected a string',
          },
        ]),
      );
      continue;
    }
    if (obj['kind'] === 'List' && Array.isArray(obj['items'])) {
      for (const item of obj['items']) {
        const k =
          item && typeof item === 'object' ? kindOf(item as Record<string, unknown>) : undefined;
        if (k) typed.push({ kind: k, doc: item as Record<string, unknown>, origin });
      }
      continue;
    }
    const kind = kindOf(obj);
    if (kind) typed.push({ kind, doc: obj, origin });
  }

  const namespaces: Namespace[] = [];
  const nodes: MeshNode[] = [];
  const services: Service[] = [];
  const authorizationPolicies: AuthorizationPolicy[] = [];
  const peerAuthentications: PeerAuthentication[] = [];
  const attempt = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof MeshValidationError) errors.push(err);
      else throw err;
    }
  };
  // Namespaces first: pod mesh membership depends on namespace labels.
  for (const d of typed) {
    attempt(() => {
      switch (d.kind) {
        case 'Namespace':
          namespaces.push(namespaceFromWire(d.doc, d.origin));
          break;
        case 'Node':
          nodes.push(nodeFromWire(d.doc, d.origin));
          break;
        case 'Service':
          services.push(serviceFromWire(d.doc, d.origin, opts.clusterDomain));
          break;
        case 'AuthorizationPolicy':
          authorizationPolicies.push(authorizationPolicyFromWire(d.doc, d.origin));
          break;
        case 'PeerAuthentication':
          peerAuthentications.push(peerAuthenticationFromWire(d.doc, d.origin));
          break;
        case 'Pod':
          break;
      }
    });
  }
  const nsLabels = new Map(
    namespaces.map((n) => [n.meta.name, n.meta.labels as Record<string, string>]),
  );
  const workloads: Workload[] = [];
  for (const d of typed) {
    if (d.kind === 'Pod')
      attempt(() => workloads.push(podToWorkload(d.doc, d.origin, (ns) => nsLabels.get(ns))));
  }
  const objects = {
    workloads,
    services,
    nodes,
    namespaces,
    authorizationPolicies,
    peerAuthentications,
  };
  errors.push(...duplicateErrors(objects));
  if (errors.length > 0) throw combine(errors);
  return objects;
}

function duplicateErrors(objects: MeshObjects): MeshValidationError[] {
  const out: MeshValidationError[] = [];
  const check = (
    kind: string,
    items: readonly { meta: { namespace: string; name: string; origin: Origin } }[],
  ) => {
    const seen = new Map<string, Origin>();
    for (const { meta } of items) {
      const key = qualifiedName(meta);
      const first = seen.get(key);
      if (first) {
        out.push(
          new MeshValidationError(meta.origin, `${kind} ${key}`, [
            {
              path: 'metadata.name',
              message: `duplicate ${kind}; first defined in ${first.source}, document ${first.document}`,
            },
          ]),
        );
      } else seen.set(key, meta.origin);
    }
  };
  check('Pod', objects.workloads);
  check('Service', objects.services);
  check('Node', objects.nodes);
  check('Namespace', objects.namespaces);
  check('AuthorizationPolicy', objects.authorizationPolicies);
  check('PeerAuthentication', objects.peerAuthentications);
  const byIp = new Map<string, string>();
  for (const w of objects.workloads) {
    for (const ip of w.ips) {
      const other = byIp.get(ip);
      if (other) {
        out.push(
          new MeshValidationError(w.meta.origin, `Pod ${qualifiedName(w.meta)}`, [
            { path: 'status.podIP', message: `IP ${ip} is already used by pod ${other}` },
          ]),
        );
      } else byIp.set(ip, qualifiedName(w.meta));
    }
  }
  return out;
}

export class MeshErrors extends MeshValidationError {
  readonly all: readonly MeshValidationError[];
  constructor(all: readonly MeshValidationError[]) {
    const first = all[0]!;
    super(
      first.origin,
      first.object,
      all.flatMap((e) => e.problems),
    );
    this.all = all;
    this.message = all.map((e) => e.message).join('\n');
  }
}

function combine(errors: MeshValidationError[]): MeshValidationError {
  return errors.length === 1 ? errors[0]! : new MeshErrors(errors);
}
