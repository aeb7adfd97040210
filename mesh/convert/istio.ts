// security.istio.io/v1 (and v1beta1) AuthorizationPolicy and PeerAuthentication → internal
// model, with the checks of Istio's own validation (istio/istio pkg/config/validation:
// ValidateAuthorizationPolicy, ValidatePeerAuthentication; pkg/config/security: ValidateIPs,
// ValidatePorts, CheckServiceAccount, ValidateAttribute) and of the CRD schema. An object
// Istio would refuse is rejected whole, never half-applied. Unknown fields are errors, so a
// typo like `actionn:` cannot silently turn a DENY policy into nothing.
import { z } from 'zod';
import { deepFreeze } from '../../lib/freeze.js';
import type { AuthorizationPolicy, AuthzRule, Origin } from '../types.js';
import { metadataSchema, parseWith, toMeta } from './common.js';
import {
  type Ctx,
  cidrs,
  issue,
  list,
  mapping,
  pathList,
  ports,
  selectorSchema,
  serviceAccountProblem,
  strings,
  whenProblem,
} from './istio-checks.js';

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

// Go's strconv.ParseBool, which istiod applies to the dry-run annotation.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

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
        // istiod's webhook also refuses DENY without rules, but such a policy can exist (the
        // webhook off, or older objects) and istiod then sends ztunnel a DENY that matches
        // nothing. It is loaded as that, and reported (policy/status.ts), not refused.
        if (s.action === 'CUSTOM' && noRules) {
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
