// The HBONE library's public surface: the client (open tunnels through a pool), the server
// (hands each incoming tunnel over, to refuse or accept), splice() to join a socket to a tunnel, and the
// typed errors. Depends on identity/ only (DESIGN.md §3).
export {
  canonicalIp,
  formatSocketAddr,
  parseSocketAddr,
  type SocketAddr,
  socketAddr,
} from './address.js';
export {
  type CertificateSource,
  StaticCertificateSource,
  type WorkloadCertificate,
} from './certificates.js';
export {
  HboneClient,
  type HboneClientOptions,
  type OpenRequest,
  type Tunnel,
} from './client/client.js';
export type { PoolStats } from './client/pool.js';
export * from './errors.js';
export type { H2Stream } from './h2/stream.js';
export { metadataHeaders, newTraceparent, parseMetadata, type TunnelMetadata } from './headers.js';
export type { IdentityRequest, SelectIdentity, ServerRoute } from './server/admission.js';
export type { IncomingTunnel, TunnelRefusal, TunnelSink } from './server/connect.js';
export { type ForwardOptions, type ForwardResult, forwardTunnel } from './server/forward.js';
export { HboneServer, type HboneServerOptions, type ServerStats } from './server/server.js';
export { DEFAULT_HTTP2, type Http2Tuning } from './settings.js';
export { destinationFromSni, sniForDestination } from './sni.js';
export { resetTunnel, type SpliceResult, splice } from './splice.js';
