// Shared pieces of the wire-format edge: metadata schema, zod → MeshValidationError.
import { isIP } from 'node:net';
import { z } from 'zod';
import { canonicalIp } from '../../lib/ip.js';
import { formatPath, MeshValidationError } from '../errors.js';
import type { ObjectMeta, Origin } from '../types.js';

const DNS_LABELISH = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export const k8sName = z
  .string()
  .regex(DNS_LABELISH, 'expected a Kubernetes name (lowercase alphanumerics, "-" and ".")');

export const labels = z.record(z.string(), z.string());

/** An IP address, in the one canonical form (lib/ip.ts: `::ffff:a.b.c.d` becomes a.b.c.d). */
export const ipAddress = z
  .string()
  .refine((s) => isIP(s) !== 0, 'expected an IPv4 or IPv6 address')
  .transform((s) => canonicalIp(s) ?? s);

export const metadataSchema = z
  .object({
    name: k8sName,
    namespace: k8sName.optional(),
    uid: z.string().min(1).optional(),
    labels: labels.nullish(),
    annotations: labels.nullish(),
    generateName: z.string().nullish(),
    ownerReferences: z
      .array(
        z
          .object({
            apiVersion: z.string().default(''),
            kind: z.string().min(1),
            name: z.string().min(1),
            controller: z.boolean().nullish(),
          })
          .loose(),
      )
      .nullish(),
    creationTimestamp: z
      .union([
        z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'expected an RFC 3339 time'),
        z.date(),
      ])
      .nullish(),
  })
  .loose();

export type MetadataWire = z.infer<typeof metadataSchema>;

export function toMeta(
  m: MetadataWire,
  origin: Origin,
  opts: { kind: string; clusterScoped?: boolean },
): ObjectMeta {
  const namespace = opts.clusterScoped ? '' : (m.namespace ?? 'default');
  const ts = m.creationTimestamp;
  return Object.freeze({
    name: m.name,
    namespace,
    // Files rarely carry uids; derive a stable one so that identity of objects is by name.
    uid: m.uid ?? `${opts.kind}/${namespace}/${m.name}`,
    labels: Object.freeze({ ...(m.labels ?? {}) }),
    annotations: Object.freeze({ ...(m.annotations ?? {}) }),
    // Normalised so that "oldest wins" comparisons are plain string comparisons.
    creationTimestamp: ts ? new Date(ts).toISOString() : undefined,
    origin,
  });
}

/** `Kind namespace/name` when the document says so, for error messages. */
function nameOf(kind: string, doc: unknown): string {
  const meta = (doc as { metadata?: { name?: unknown; namespace?: unknown } } | undefined)
    ?.metadata;
  const name = typeof meta?.name === 'string' ? meta.name : undefined;
  if (!name) return kind;
  const ns = typeof meta?.namespace === 'string' ? meta.namespace : undefined;
  return ns ? `${kind} ${ns}/${name}` : `${kind} ${name}`;
}

/** Parses with a zod schema; on failure throws MeshValidationError listing every problem. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  doc: unknown,
  origin: Origin,
  object: string | undefined,
): z.infer<S> {
  const res = schema.safeParse(doc);
  if (res.success) return res.data;
  throw new MeshValidationError(
    origin,
    object && nameOf(object, doc),
    res.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
  );
}
