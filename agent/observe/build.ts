// mtun's version: `mtun --version` and the `tag` of istio_build{component="mtun"} (ztunnel
// reports the Istio version there; src/metrics/meta.rs). Keep in step with package.json
// (tests/agent/metrics-labels.test.ts checks).
export const MTUN_VERSION = '0.1.0';
