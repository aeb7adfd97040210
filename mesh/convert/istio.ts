// security.istio.io/v1 (and v1beta1) AuthorizationPolicy and PeerAuthentication → internal
// model, with the structural checks of Istio's own validation (pkg/config/validation):
// an invalid object is rejected whole, never half-applied. Unknown fields are errors, so a
// typo like `actionn:` cannot silently turn a DENY policy into nothing.
import { isIP } from 'node:net';
import { z } from 'zod';
import type {
  AuthorizationPolicy,
  AuthzRule,
  MtlsMode,
  Origin,
  PeerAuthentication,
} from '../types.js';
import { labels, metadataSchema, parseWith, toMeta } from './common.js';

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** Condition keys Istio accepts in `when` (L4 ones are evaluated, the rest are L7). */
export const WHEN_KEYS_L4 = [
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
] as const;
const WHEN_KEYS_L7_EXACT = [
  'remote.ip',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'connection.sni',
];
const WHEN_KEYS_L7_PREFIX = ['request.headers[', 'request.auth.claims[', 'experimental.envoy.filters.'];

export function isKnownWhenKey(key: string): boolean {
  return (
    (WHEN_KEYS_L4 as readonly string[]).includes(key) ||
    WHEN_KEYS_L7_EXACT.includes(key) ||
    WHEN_KEYS_L7_PREFIX.some((p) => key.startsWith(p))
  );
}

function validCidr(s: string): boolean {
  const [addr, bits, ...rest] = s.split('/');
  if (rest.length > 0 || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

// Istio: values must be non-empty; `*` only as the whole value, a prefix or a suffix.
const matchValue = z
  .string()
  .min(1, 'expected a non-empty value')
  .refine(
    (v) => v === '*' || !v.slice(1, -1).includes('*'),
    'expected "*" only as the whole value, as a prefix or as a suffix',
  );
const values = z.array(matchValue).min(1, 'expected at least one value when the field is given');
const cidrs = z.array(
  z.string().refine(validCidr, 'expected an IP address or CIDR block like 10.0.0.0/16'),
);
const portString = z
  .union([z.string(), z.number()])
  .transform(String)
  .refine((p) => /^\d{1,5}$/.test(p) && Number(p) <= 65535, 'expected a port number 0-65535');

const sourceSchema = z
  .object({
    principals: values.optional(),
    notPrincipals: values.optional(),
    requestPrincipals: values.optional(),
    notRequestPrincipals: values.optional(),
    namespaces: values.optional(),
    notNamespaces: values.optional(),
    serviceAccounts: values.optional(),
    notServiceAccounts: values.optional(),
    ipBlocks: cidrs.optional(),
    notIpBlocks: cidrs.optional(),
    remoteIpBlocks: cidrs.optional(),
    notRemoteIpBlocks: cidrs.optional(),
  })
  .strict()
  .refine((s) => Object.keys(s).length > 0, 'source must not be empty')
  .refine(
    (s) => !((s.serviceAccounts || s.notServiceAccounts) && (s.principals || s.notPrincipals)),
    'serviceAccounts cannot be combined with principals (Istio rejects it)',
  );

const operationSchema = z
  .object({
    hosts: values.optional(),
    notHosts: values.optional(),
    ports: z.array(portString).optional(),
    notPorts: z.array(portString).optional(),
    methods: values.optional(),
    notMethods: values.optional(),
    paths: values.optional(),
    notPaths: values.optional(),
  })
  .strict()
  .refine((o) => Object.keys(o).length > 0, 'operation must not be empty');

const conditionSchema = z
  .object({
    key: z.string().refine(isKnownWhenKey, 'expected a supported condition key (e.g. source.ip)'),
    values: z.array(z.string()).optional(),
    notValues: z.array(z.string()).optional(),
  })
  .strict()
  .refine((c) => c.values || c.notValues, 'condition needs values or notValues');

const ruleSchema = z
  .object({
    from: z
      .array(z.object({ source: sourceSchema }).strict())
      .min(1, '`from` must not be empty when given')
      .optional(),
    to: z
      .array(z.object({ operation: operationSchema }).strict())
      .min(1, '`to` must not be empty when given')
      .optional(),
    when: z.array(conditionSchema).min(1, '`when` must not be empty when given').optional(),
  })
  .strict();

const targetRef = z
  .object({
    group: z.string().optional(),
    kind: z.string().min(1),
    name: z.string().min(1),
    namespace: z.string().optional(),
  })
  .strict();

const selectorSchema = z.object({ matchLabels: labels.optional() }).strict();

const authzSchema = z.object({
  metadata: metadataSchema,
  spec: z
    .object({
      selector: selectorSchema.optional(),
      targetRef: targetRef.optional(),
      targetRefs: z.array(targetRef).optional(),
      action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).default('ALLOW'),
      provider: z.object({ name: z.string().min(1) }).strict().optional(),
      rules: z.array(ruleSchema).optional(),
    })
    .strict()
    .default({ action: 'ALLOW' })
    .refine(
      (s) => !(s.selector && (s.targetRef || s.targetRefs)),
      'selector and targetRef(s) are mutually exclusive',
    )
    .refine((s) => (s.action === 'CUSTOM') === !!s.provider, {
      message: 'provider is required with action CUSTOM and allowed only with it',
      path: ['provider'],
    }),
});

export function authorizationPolicyFromWire(doc: unknown, origin: Origin): AuthorizationPolicy {
  const ap = parseWith(authzSchema, doc, origin, 'AuthorizationPolicy');
  const meta = toMeta(ap.metadata, origin, { kind: 'AuthorizationPolicy' });
  const refs = [...(ap.spec.targetRef ? [ap.spec.targetRef] : []), ...(ap.spec.targetRefs ?? [])];
  return Object.freeze({
    meta,
    selector: ap.spec.selector ? Object.freeze({ ...(ap.spec.selector.matchLabels ?? {}) }) : undefined,
    targetRefs: Object.freeze(refs),
    action: ap.spec.action,
    provider: ap.spec.provider?.name,
    rules: ap.spec.rules as readonly AuthzRule[] | undefined,
    dryRun: meta.annotations[DRY_RUN_ANNOTATION]?.toLowerCase() === 'true',
  });
}

const mtlsMode = z.enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']);
const mtlsSchema = z.object({ mode: mtlsMode.default('UNSET') }).strict();

const peerAuthnSchema = z.object({
  metadata: metadataSchema,
  spec: z
    .object({
      selector: selectorSchema.optional(),
      mtls: mtlsSchema.optional(),
      portLevelMtls: z
        .record(
          z.string().regex(/^\d{1,5}$/, 'expected a port number as key'),
          mtlsSchema,
        )
        .optional(),
    })
    .strict()
    .default({})
    .refine((s) => !s.portLevelMtls || s.selector, {
      message: 'portLevelMtls requires a workload selector (Istio rejects it otherwise)',
      path: ['portLevelMtls'],
    }),
});

export function peerAuthenticationFromWire(doc: unknown, origin: Origin): PeerAuthentication {
  const pa = parseWith(peerAuthnSchema, doc, origin, 'PeerAuthentication');
  const ports = new Map<number, MtlsMode>();
  for (const [port, m] of Object.entries(pa.spec.portLevelMtls ?? {})) ports.set(Number(port), m.mode);
  return Object.freeze({
    meta: toMeta(pa.metadata, origin, { kind: 'PeerAuthentication' }),
    selector: pa.spec.selector ? Object.freeze({ ...(pa.spec.selector.matchLabels ?? {}) }) : undefined,
    mode: pa.spec.mtls?.mode ?? 'UNSET',
    portLevelMtls: ports,
  });
}
