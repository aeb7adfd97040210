// The CA's Prometheus metrics, on a registry of its own (no global default registry).
import { Counter, Histogram, Registry } from 'prom-client';

export class CaMetrics {
  readonly registry = new Registry();
  readonly issued = new Counter({
    name: 'mtun_ca_certificates_issued_total',
    help: 'Certificates issued by the CA',
    registers: [this.registry],
  });
  readonly refused = new Counter({
    name: 'mtun_ca_requests_refused_total',
    help: 'Requests the CA refused, by code (ABORTED: the client left before its request was complete)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly signSeconds = new Histogram({
    name: 'mtun_ca_sign_duration_seconds',
    help: 'Time to check and sign one certificate request',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
}
