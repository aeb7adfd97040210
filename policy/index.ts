// The policy engine's public surface. Pure: it imports only the mesh model and identity
// types, and never does I/O, reads a clock or logs.
export { authorize, type PolicySource, peerAuthentication } from './authorize.js';
export { type Applicable, CompiledPolicies, compile } from './compiled.js';
export { type PolicyStatus, policyStatus, policyStatuses } from './status.js';
export type {
  CompileOptions,
  Connection,
  ConnectionDestination,
  ConnectionSource,
  Decision,
  DryRunMatch,
  DryRunReport,
  MtlsResolution,
  PolicyKind,
  Verdict,
} from './types.js';
export { DEFAULT_ROOT_NAMESPACE } from './types.js';
