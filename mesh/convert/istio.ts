// security.istio.io/v1 (and v1beta1) AuthorizationPolicy and PeerAuthentication → internal
// model, with the checks of Istio's own validation (istio/istio pkg/config/validation:
// ValidateAuthorizationPolicy, ValidatePeerAuthentication; pkg/config/security: ValidateIPs,
// ValidatePorts, CheckServiceAccount, ValidateAttribute) and of the CRD schema. An object
// Istio would refuse is rejected whole, never half-applied. Unknown fields are errors, so a
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
import { metadataSchema, parseWith, toMeta } from './common.js';

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

// ---- Istio's value checks (pkg/config/security/security.go) ----

/** ValidateIPs: `addr/bits` (Go netip.ParsePrefix: no zone, bits without leading zeros)
 *  or a bare address (netip.ParseAddr). */
function validCidr(v: string): boolean {
  const slash = v.indexOf('/');
  if (slash < 0) return isIP(v) !== 0;
  const addr = v.slice(0, slash);
  const bits = v.slice(slash + 1);
  const family = addr.includes('%') ? 0 : isIP(addr);
  return (
    family !== 0 && /^(0|[1-9][0-9]{0,2})$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
  );
}

/** ValidatePorts: strconv.ParseUint(p, 10, 32) and at most 65535. */
const validPort = (v: string) => /^[0-9]+$/.test(v) && Number(v) <= 65535;

/** CheckServiceAccount: `sa` or `namespace/sa`, no wildcard, at most 320 characters. */
function serviceAccountProblem(v: string): string | undefined {
  if (v.includes('*')) return 'wildcard not allowed in service accounts';
  if (v.length > 320) return 'value cannot exceed 320 characters';
  const parts = v.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    return `expected format 'serviceAccount' or 'namespace/serviceAccount', found ${JSON.stringify(v)}`;
  }
  return undefined;
}

/** CheckValidPathTemplate: `{*}` and `{**}` (last) as whole segments, no other braces. */
function pathTemplateProblem(path: string): string | undefined {
  const templated = path.includes('{*}') || path.includes('{**}');
  let anySeen = false;
  for (const glob of path.replace(/^\/+|\/+$/g, '').split('/')) {
    if (glob === '{*}' || glob === '{**}') {
      if (anySeen) return `invalid path ${JSON.stringify(path)}: {**} must be the last operator`;
      anySeen = glob === '{**}';
      continue;
    }
    if (/[{}]/.test(glob))
      return `invalid path ${JSON.stringify(path)}: '{' or '}' beyond a supported path template`;
    if (templated && !/^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/.test(glob)) {
      return `invalid path ${JSON.stringify(path)}: segment ${JSON.stringify(glob)} is not a valid literal`;
    }
  }
  return undefined;
}

const cidrCheck = (v: string) =>
  validCidr(v) ? undefined : `bad IP address or CIDR range ${JSON.stringify(v)}`;
const portCheck = (v: string) =>
  validPort(v) ? undefined : `bad port ${JSON.stringify(v)}: expected 0-65535`;
const noCheck = () => undefined;

/** ValidateAttribute: how the values of each known `when` key are checked. */
const WHEN_VALUE_CHECKS: Record<string, (v: string) => string | undefined> = {
  'source.ip': cidrCheck,
  'remote.ip': cidrCheck,
  'destination.ip': cidrCheck,
  'destination.port': portCheck,
  'source.serviceAccount': serviceAccountProblem,
  'source.namespace': noCheck,
  'source.principal': noCheck,
  'request.auth.principal': noCheck,
  'request.auth.audiences': noCheck,
  'request.auth.presenter': noCheck,
  'connection.sni': noCheck,
};
const WHEN_MAP_KEYS = [
  'request.headers',
  'request.experimental.inline.headers',
  'request.auth.claims',
  'experimental.envoy.filters.',
];

/** ValidateAttribute for a `when` condition: the problem and, if about one value, its index. */
function whenProblem(
  key: string,
  values: readonly string[],
): { index?: number; message: string } | undefined {
  const check = WHEN_VALUE_CHECKS[key];
  for (const [index, v] of values.entries()) {
    const message = v === '' ? 'empty value not allowed' : check?.(v);
    if (message) return { index, message };
  }
  if (key === 'source.serviceAccount' && values.length > 16)
    return { message: 'may not have more than 16 values' };
  if (check) return undefined;
  if (WHEN_MAP_KEYS.some((p) => key.startsWith(p))) {
    const open = key.indexOf('[');
    const ok = key.endsWith(']') && open > 0 && open < key.length - 2;
    return ok ? undefined : { message: `bad key (${key}): should have format a[b]` };
  }
  if (key === 'destination.namespace')
    return { message: `attribute ${key} is replaced by the metadata.namespace` };
  if (key.startsWith('destination.labels'))
    return { message: `attribute ${key} is replaced by the workload selector` };
  if (key === 'destination.name' || key === 'destination.user') {
    return { message: `deprecated attribute ${key}: only supported in v1alpha1` };
  }
  return { message: `unknown attribute: ${key}` };
}

// Go's strconv.ParseBool, which istiod applies to the dry-run annotation.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

type Ctx = z.RefinementCtx;
/** The message for a missing or non-mapping object field. */
const mapping = (what: string) => (iss: { input: unknown }) =>
  iss.input === undefined || iss.input === null
    ? `${what} must be set`
    : `${what} must be a mapping`;
const issue = (ctx: Ctx, path: PropertyKey[], message: string) =>
  ctx.addIssue({ code: 'custom', path, message });

// A list field: null or [] mean "not set" (protobuf has no distinction), normalized to
// undefined. Istio's CheckEmptyValues: no entry may be the empty string.
const list = (check?: (v: string) => string | undefined) =>
  z
    .array(z.string({ error: 'expected a string (quote numbers, e.g. "8080")' }))
    .nullish()
    .superRefine((vs, ctx) => {
      vs?.forEach((v, i) => {
        const problem = v === '' ? 'empty value not allowed' : check?.(v);
        if (problem) issue(ctx, [i], problem);
      });
    })
    .transform((vs) => (vs && vs.length > 0 ? vs : undefined));

const strings = list();
const cidrs = list(cidrCheck);
const ports = list(portCheck);
const pathList = list(pathTemplateProblem);

const sourceSchema = z
  .object(
    {
      principals: strings,
      notPrincipals: strings,
      requestPrincipals: strings,
      notRequestPrincipals: strings,
      namespaces: strings,
      notNamespaces: strings,
      serviceAccounts: list(serviceAccountProblem),
      notServiceAccounts: list(serviceAccountProblem),
      ipBlocks: cidrs,
      notIpBlocks: cidrs,
      remoteIpBlocks: cidrs,
      notRemoteIpBlocks: cidrs,
    },
    { error: mapping('`from.source`') },
  )
  .strict()
  .superRefine((s, ctx) => {
    if (Object.values(s).every((v) => v === undefined))
      issue(ctx, [], '`from.source` must not be empty');
    for (const f of ['serviceAccounts', 'notServiceAccounts'] as const) {
      if (s[f] && s[f].length > 16) issue(ctx, [f], 'may not have more than 16 values');
    }
    if (
      (s.serviceAccounts || s.notServiceAccounts) &&
      (s.principals || s.notPrincipals || s.namespaces || s.notNamespaces)
    ) {
      issue(ctx, ['serviceAccounts'], 'cannot set serviceAccounts with namespaces or principals');
    }
  });

const operationSchema = z
  .object(
    {
      hosts: strings,
      notHosts: strings,
      ports,
      notPorts: ports,
      methods: strings,
      notMethods: strings,
      paths: pathList,
      notPaths: pathList,
    },
    { error: mapping('`to.operation`') },
  )
  .strict()
  .superRefine((o, ctx) => {
    if (Object.values(o).every((v) => v === undefined))
      issue(ctx, [], '`to.operation` must not be empty');
  });

const conditionSchema = z
  .object({
    key: z.string().min(1, '`key` must not be empty'),
    values: z.array(z.string()).nullish(),
    notValues: z.array(z.string()).nullish(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.values?.length && !c.notValues?.length) {
      issue(ctx, [], `at least one of \`values\` or \`notValues\` must be set for key ${c.key}`);
      return;
    }
    // The key is checked with each list, as Istio does; report a bad key once.
    const reported = new Set<string>();
    for (const field of ['values', 'notValues'] as const) {
      const problem = whenProblem(c.key, c[field] ?? []);
      const path = problem?.index === undefined ? ['key'] : [field, problem.index];
      if (problem && !reported.has(`${path}:${problem.message}`)) {
        reported.add(`${path}:${problem.message}`);
        issue(ctx, path, problem.message);
      }
    }
  })
  .transform((c) => ({
    key: c.key,
    ...(c.values?.length ? { values: c.values } : {}),
    ...(c.notValues?.length ? { notValues: c.notValues } : {}),
  }));

const ruleSchema = z
  .object(
    {
      from: z
        .array(
          z.object({ source: sourceSchema }, { error: '`from` entries need a `source`' }).strict(),
        )
        .min(1, '`from` must not be empty when given')
        .optional(),
      to: z
        .array(
          z
            .object({ operation: operationSchema }, { error: '`to` entries need an `operation`' })
            .strict(),
        )
        .min(1, '`to` must not be empty when given')
        .optional(),
      when: z.array(conditionSchema).nullish(),
    },
    { error: '`rule` must not be null' },
  )
  .strict();

// Istio: only Service, ServiceEntry, Gateway and GatewayClass may be targeted, in the
// policy's own namespace.
const TARGET_KINDS: Record<string, string> = {
  Service: 'core',
  ServiceEntry: 'networking.istio.io',
  Gateway: 'gateway.networking.k8s.io',
  GatewayClass: 'gateway.networking.k8s.io',
};

const targetRef = z
  .object({
    group: z.string().optional(),
    kind: z.string().min(1),
    name: z.string().min(1, 'targetRef name must be set'),
    namespace: z.string().optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.namespace)
      issue(ctx, ['namespace'], 'must not be set; cross namespace referencing is not supported');
    if (TARGET_KINDS[r.kind] !== (r.group || 'core')) {
      issue(
        ctx,
        ['kind'],
        `targetRef must be a Service, ServiceEntry, Gateway or GatewayClass, not ${r.group || 'core'}/${r.kind}`,
      );
    }
  });

const selectorSchema = z
  .object({ matchLabels: z.record(z.string(), z.string()).nullish() })
  .strict()
  .superRefine((s, ctx) => {
    for (const [k, v] of Object.entries(s.matchLabels ?? {})) {
      if (k === '') issue(ctx, ['matchLabels'], 'empty key is not supported in selector');
      if (k.includes('*') || v.includes('*'))
        issue(ctx, ['matchLabels', k], 'wildcard is not supported in selector');
    }
  });

const authzSchema = z
  .object({
    metadata: metadataSchema,
    spec: z
      .object({
        selector: selectorSchema.optional(),
        targetRef: targetRef.optional(),
        targetRefs: z.array(targetRef).nullish(),
        action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).default('ALLOW'),
        provider: z.object({ name: z.string() }).strict().optional(),
        rules: z.array(ruleSchema).nullish(),
      })
      .strict()
      .nullish()
      .transform((s) => s ?? { action: 'ALLOW' as const })
      .superRefine((s, ctx) => {
        if (
          [s.selector, s.targetRef, s.targetRefs?.length ? s.targetRefs : undefined].filter(Boolean)
            .length > 1
        ) {
          issue(ctx, [], 'only one of targetRefs or workloadSelector can be set');
        }
        // An empty list arrives as "not set" in Istio's protobuf types, so `rules: []` counts as none.
        const noRules = !s.rules?.length;
        if ((s.action === 'DENY' || s.action === 'CUSTOM') && noRules) {
          issue(
            ctx,
            ['rules'],
            `${s.action} action without \`rules\` is meaningless as it will never be triggered; add an empty rule \`{}\` to match every connection`,
          );
        }
        if (s.action === 'CUSTOM') {
          if (!noRules && !s.provider?.name)
            issue(ctx, ['provider', 'name'], '`provider.name` must not be empty');
          customRuleProblems(s.rules ?? [], ctx);
        } else if (s.provider) {
          issue(
            ctx,
            ['provider'],
            `\`provider\` must not be used with the ${s.action} action, only with CUSTOM`,
          );
        }
      }),
  })
  .superRefine((ap, ctx) => {
    const v = ap.metadata.annotations?.[DRY_RUN_ANNOTATION];
    // istiod logs a bad value and enforces the policy; we refuse it instead, so that a policy
    // meant as a trial is not silently enforced.
    if (v !== undefined && v !== '' && !TRUE.has(v) && !FALSE.has(v)) {
      issue(
        ctx,
        ['metadata', 'annotations', DRY_RUN_ANNOTATION],
        `expected "true" or "false", got ${JSON.stringify(v)}`,
      );
    }
  });

const NOT_WITH_CUSTOM = [
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
] as const;

function customRuleProblems(rules: readonly z.infer<typeof ruleSchema>[], ctx: Ctx): void {
  rules.forEach((r, i) => {
    r.from?.forEach((f, j) => {
      for (const k of NOT_WITH_CUSTOM) {
        if (f.source[k])
          issue(
            ctx,
            ['rules', i, 'from', j, 'source', k],
            `${k} is currently not supported with CUSTOM action`,
          );
      }
    });
    r.when?.forEach((c, j) => {
      if (
        ['source.namespace', 'source.serviceAccount', 'source.principal'].includes(c.key) ||
        c.key.startsWith('request.auth.')
      ) {
        issue(
          ctx,
          ['rules', i, 'when', j, 'key'],
          `${c.key} is currently not supported with CUSTOM action`,
        );
      }
    });
  });
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

export function authorizationPolicyFromWire(doc: unknown, origin: Origin): AuthorizationPolicy {
  const ap = parseWith(authzSchema, doc, origin, 'AuthorizationPolicy');
  const meta = toMeta(ap.metadata, origin, { kind: 'AuthorizationPolicy' });
  const refs = [...(ap.spec.targetRef ? [ap.spec.targetRef] : []), ...(ap.spec.targetRefs ?? [])];
  const rules = ap.spec.rules?.map((r) =>
    stripUndefined({ from: r.from, to: r.to, when: r.when?.length ? r.when : undefined }),
  );
  return Object.freeze({
    meta,
    selector: ap.spec.selector
      ? Object.freeze({ ...(ap.spec.selector.matchLabels ?? {}) })
      : undefined,
    targetRefs: deepFreeze(refs),
    action: ap.spec.action,
    provider: ap.spec.provider?.name,
    rules: deepFreeze(rules as AuthzRule[] | undefined),
    dryRun: TRUE.has(meta.annotations[DRY_RUN_ANNOTATION] ?? ''),
  });
}

/** Drops keys whose value is undefined, recursively, so the model holds only what was set. */
function stripUndefined<T>(v: T): T {
  if (Array.isArray(v)) return v.map(stripUndefined) as T;
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [k, stripUndefined(x)]),
    ) as T;
  }
  return v;
}

const mtlsMode = z.enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']);
const mtlsSchema = z.object({ mode: mtlsMode.default('UNSET') }).strict();

const peerAuthnSchema = z.object({
  metadata: metadataSchema,
  spec: z
    .object({
      selector: selectorSchema.optional(),
      mtls: mtlsSchema.nullish(),
      portLevelMtls: z.record(z.string(), mtlsSchema).nullish(),
    })
    .strict()
    .nullish()
    .transform((s) => s ?? {})
    .superRefine((s, ctx) => {
      if (!s.portLevelMtls) return;
      const labels = Object.keys(s.selector?.matchLabels ?? {});
      if (labels.length === 0) {
        issue(
          ctx,
          ['portLevelMtls'],
          'mesh/namespace peer authentication cannot have port level mTLS (it needs a selector with labels)',
        );
      }
      const ports = Object.keys(s.portLevelMtls);
      if (ports.length === 0)
        issue(
          ctx,
          ['portLevelMtls'],
          'port level mTLS, if defined, must have at least one element',
        );
      for (const p of ports) {
        if (!/^[0-9]+$/.test(p) || Number(p) < 1 || Number(p) > 65535) {
          issue(ctx, ['portLevelMtls', p], 'port must be in range 1..65535');
        }
      }
    }),
});

export function peerAuthenticationFromWire(doc: unknown, origin: Origin): PeerAuthentication {
  const pa = parseWith(peerAuthnSchema, doc, origin, 'PeerAuthentication');
  const ports = new Map<number, MtlsMode>();
  for (const [port, m] of Object.entries(pa.spec.portLevelMtls ?? {}))
    ports.set(Number(port), m.mode);
  return Object.freeze({
    meta: toMeta(pa.metadata, origin, { kind: 'PeerAuthentication' }),
    selector: pa.spec.selector
      ? Object.freeze({ ...(pa.spec.selector.matchLabels ?? {}) })
      : undefined,
    mode: pa.spec.mtls?.mode ?? 'UNSET',
    portLevelMtls: ports,
  });
}
