// Istio's value checks (istio/istio pkg/config/security/security.go: ValidateIPs,
// ValidatePorts, CheckServiceAccount, ValidateAttribute) and the schema pieces that the
// AuthorizationPolicy and PeerAuthentication converters share.
import { isIP } from 'node:net';
import { z } from 'zod';

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
export function serviceAccountProblem(v: string): string | undefined {
  if (v.includes('*')) return 'wildcard not allowed in service accounts';
  if (v.length > 320) return 'value cannot exceed 320 characters';
  const parts = v.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    return `expected format 'serviceAccount' or 'namespace/serviceAccount', found ${JSON.stringify(v)}`;
  }
  return undefined;
}

/** CheckValidPathTemplate: `{*}` and `{**}` (last) as whole segments, no other braces. */
export function pathTemplateProblem(path: string): string | undefined {
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

export const cidrCheck = (v: string) =>
  validCidr(v) ? undefined : `bad IP address or CIDR range ${JSON.stringify(v)}`;
export const portCheck = (v: string) =>
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
export function whenProblem(
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
export type Ctx = z.RefinementCtx;
/** The message for a missing or non-mapping object field. */
export const mapping = (what: string) => (iss: { input: unknown }) =>
  iss.input === undefined || iss.input === null
    ? `${what} must be set`
    : `${what} must be a mapping`;
export const issue = (ctx: Ctx, path: PropertyKey[], message: string) =>
  ctx.addIssue({ code: 'custom', path, message });

// A list field: null or [] mean "not set" (protobuf has no distinction), normalized to
// undefined. Istio's CheckEmptyValues: no entry may be the empty string.
export const list = (check?: (v: string) => string | undefined) =>
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

export const strings = list();
export const cidrs = list(cidrCheck);
export const ports = list(portCheck);
export const pathList = list(pathTemplateProblem);

export const selectorSchema = z
  .object({ matchLabels: z.record(z.string(), z.string()).nullish() })
  .strict()
  .superRefine((s, ctx) => {
    for (const [k, v] of Object.entries(s.matchLabels ?? {})) {
      if (k === '') issue(ctx, ['matchLabels'], 'empty key is not supported in selector');
      if (k.includes('*') || v.includes('*'))
        issue(ctx, ['matchLabels', k], 'wildcard is not supported in selector');
    }
  });
