// Unknown-field checks that kubernetes-models' validators do not make (they accept
// `imagePullPolicyy`): core kinds are walked along @kubernetes/client-node's generated model
// metadata (every field of every Kubernetes type, with its wire name and type); custom
// resources along the openAPIV3Schema of the CRD we ship, which also checks types and enums.
import * as k8s from '@kubernetes/client-node';

type Json = unknown;
interface Attr {
  readonly baseName: string;
  readonly type: string;
}

const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attr[] } | undefined>;

/** The client-node model class name of a manifest (`apps/v1 DaemonSet` → V1DaemonSet). */
export function modelOf(apiVersion: string, kind: string): string | undefined {
  const version = apiVersion.split('/').pop()!;
  const name = `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
  return models[name]?.getAttributeTypeMap ? name : undefined;
}

/** Paths of fields that the Kubernetes type does not have. */
export function unknownFields(value: Json, type: string, path = ''): string[] {
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    return Array.isArray(value)
      ? value.flatMap((v, i) => unknownFields(v, arr[1]!, `${path}[${i}]`))
      : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    return value && typeof value === 'object'
      ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`))
      : [];
  }
  const model = models[type];
  if (!model?.getAttributeTypeMap || !value || typeof value !== 'object' || Array.isArray(value))
    return [];
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const t = attrs.get(k);
    if (t === undefined) out.push(`${path ? `${path}.` : ''}${k}`);
    else out.push(...unknownFields(v, t, path ? `${path}.${k}` : k));
  }
  return out;
}

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  enum?: Json[];
  required?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

/** Problems of `value` against a CRD's structural schema (the subset CRDs use). */
export function schemaProblems(value: Json, s: Schema, path = ''): string[] {
  const at = path || '(root)';
  if (s['x-kubernetes-preserve-unknown-fields']) return [];
  const type = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  if (s.type === 'integer' ? !Number.isInteger(value) : s.type && s.type !== type)
    return [`${at}: expected ${s.type}, got ${type}`];
  if (s.enum && !s.enum.includes(value))
    return [`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(s.enum)}`];
  const out: string[] = [];
  if (s.type === 'array' && s.items) {
    for (const [i, v] of (value as Json[]).entries())
      out.push(...schemaProblems(v, s.items, `${path}[${i}]`));
  }
  if (s.type === 'object') {
    const obj = value as Record<string, Json>;
    for (const r of s.required ?? []) if (!(r in obj)) out.push(`${at}: missing ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      const p = path ? `${path}.${k}` : k;
      const sub =
        s.properties?.[k] ??
        (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
      if (sub) out.push(...schemaProblems(v, sub, p));
      else if (
        s.additionalProperties !== true &&
        (s.properties || s.additionalProperties !== undefined)
      )
        out.push(`${p}: unknown field`);
      else if (!s.properties && s.additionalProperties === undefined)
        out.push(`${p}: unknown field`);
    }
  }
  return out;
}
