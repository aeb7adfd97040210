// security.istio.io PeerAuthentication → internal model, with the checks of Istio's
// ValidatePeerAuthentication: an object Istio would refuse is rejected whole.
import { z } from 'zod';
import type { MtlsMode, Origin, PeerAuthentication } from '../types.js';
import { metadataSchema, parseWith, toMeta } from './common.js';
import { issue, selectorSchema } from './istio-checks.js';

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
