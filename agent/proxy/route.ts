// Decide, then do: where an outbound connection goes, as a plain record. Pure function of
// (source, destination, mesh snapshot, agent settings, a random number); the I/O lives in
// outbound.ts. Tested by tables.
import { isIPv4 } from 'node:net';
import { SpiffeId } from '../../identity/spiffe-id.js';
import { canonical, formatAddr, type Ip, type SocketAddr } from '../../lib/address.js';
import type { MeshSnapshot } from '../../mesh/snapshot.js';
import { qualifiedName, type Service, type Workload } from '../../mesh/types.js';

export interface RouteSettings {
  readonly node: string;
  readonly trustDomain: string;
  readonly clusterDomain: string;
  /** The HBONE port of every agent (ztunnel's 15008). */
  readonly hbonePort: number;
  /** `pod`: dial the pod IP at hbonePort, no SNI (ztunnel); `node`: its node's agent, SNI. */
  readonly hboneDial: 'pod' | 'node';
  /** Addresses of this agent's own listeners, as formatAddr spells them (`ip:port`,
   *  `[v6]:port`) with canonical IPs (lib/address.ts): a connection to one is a loop.
   *  A wildcard (`0.0.0.0:p`, `[::]:p`) stands for every loopback address on port p. */
  readonly ownAddresses: ReadonlySet<string>;
}

/** What the client asked for: an IP literal in any spelling (a captured original
 *  destination, a SOCKS5 address) or a host name (SOCKS5 domain). route() folds it to one
 *  canonical SocketAddr before any lookup or comparison. */
export interface Destination {
  readonly host: string;
  readonly port: number;
}

export type Route =
  | {
      readonly kind: 'hbone';
      /** The pod address the tunnel asks for (HBONE :authority). */
      readonly target: SocketAddr;
      /** Where the TLS connection goes: the pod's :15008, or its node's agent. */
      readonly dial: SocketAddr;
      /** Dialing a node address: the server picks the certificate by SNI. */
      readonly viaNode: boolean;
      readonly destination: Workload;
      readonly expectedIdentity: SpiffeId;
      readonly service: Service | undefined;
      /** The destination runs on this node: short cut to our own inbound path. */
      readonly local: boolean;
    }
  | {
      readonly kind: 'passthrough';
      readonly target: SocketAddr;
      readonly service: Service | undefined;
      readonly destination: Workload | undefined;
    }
  | {
      readonly kind: 'refuse';
      readonly code: 'NO_HEALTHY_UPSTREAM' | 'SELF_CALL' | 'UNKNOWN_HOST' | 'NO_SERVICE_PORT';
      readonly reason: string;
    };

export function identityOf(w: Workload, trustDomain: string): SpiffeId {
  return SpiffeId.of(trustDomain, w.meta.namespace, w.serviceAccount);
}

/** `pick(n)` returns an index in [0, n): endpoint choice is injected so tests are exact. */
export function route(
  dst: Destination,
  snapshot: MeshSnapshot,
  settings: RouteSettings,
  pick: (n: number) => number,
  sourceNamespace?: string,
): Route {
  // One canonical spelling (lib/ip.ts), the same as ownAddresses and the mesh's: any other
  // spelling of a pod (`::ffff:a.b.c.d`) or of our own listeners would slip past the lookups.
  const ip = canonical(dst.host);
  const host: string = ip ?? dst.host;
  const hostKey = ip ? formatAddr({ ip, port: dst.port }) : `${dst.host}:${dst.port}`;
  if (settings.ownAddresses.has(hostKey) || (ip && reachesWildcard(ip, dst.port, settings))) {
    return {
      kind: 'refuse',
      code: 'SELF_CALL',
      reason: `${hostKey} is one of this agent's own listeners`,
    };
  }
  if (host === '0.0.0.0' || host === '::') {
    // The unspecified address is no destination; a connect to it reaches this host itself.
    return {
      kind: 'refuse',
      code: 'SELF_CALL',
      reason: `${hostKey}: the unspecified address reaches this host's own listeners`,
    };
  }
  let service: Service | undefined;
  if (!ip) {
    service = snapshot.serviceByHostname(qualify(host, settings.clusterDomain, sourceNamespace));
    if (!service)
      return {
        kind: 'refuse',
        code: 'UNKNOWN_HOST',
        reason: `${host} is not a known mesh service`,
      };
  } else {
    const pod = snapshot.workloadByIp(ip);
    if (pod) return toWorkload(pod, ip, dst.port, undefined, snapshot, settings);
    service = snapshot.serviceByIp(ip);
    if (!service)
      return {
        kind: 'passthrough',
        target: { ip, port: dst.port },
        service: undefined,
        destination: undefined,
      };
  }
  const port = service.ports.find((p) => p.port === dst.port && p.protocol === 'TCP');
  if (!port) {
    return {
      kind: 'refuse',
      code: 'NO_SERVICE_PORT',
      reason: `service ${qualifiedName(service.meta)} has no TCP port ${dst.port}`,
    };
  }
  // Candidates: ready pods of the service that can serve the target port.
  const candidates: { pod: Workload; ip: Ip; port: number }[] = [];
  for (const pod of snapshot.endpointsOf(service)) {
    const podIp = canonical(pod.ips[0] ?? ''); // the mesh's IPs are canonical already (convert)
    const targetPort =
      typeof port.targetPort === 'number' ? port.targetPort : pod.namedPorts.get(port.targetPort);
    if (pod.ready && podIp && targetPort) candidates.push({ pod, ip: podIp, port: targetPort });
  }
  if (candidates.length === 0) {
    return {
      kind: 'refuse',
      code: 'NO_HEALTHY_UPSTREAM',
      reason: `service ${qualifiedName(service.meta)} has no ready endpoint for port ${dst.port}`,
    };
  }
  const chosen = candidates[Math.min(candidates.length - 1, Math.max(0, pick(candidates.length)))]!;
  return toWorkload(chosen.pod, chosen.ip, chosen.port, service, snapshot, settings);
}

function toWorkload(
  pod: Workload,
  ip: Ip,
  port: number,
  service: Service | undefined,
  snapshot: MeshSnapshot,
  s: RouteSettings,
): Route {
  if (!pod.inMesh) return { kind: 'passthrough', target: { ip, port }, service, destination: pod };
  const node = s.hboneDial === 'node' && pod.node ? snapshot.node(pod.node) : undefined;
  const nodeIp = canonical(node?.addresses.find((a) => a.type === 'InternalIP')?.address ?? '');
  return {
    kind: 'hbone',
    target: { ip, port },
    dial: nodeIp ? { ip: nodeIp, port: s.hbonePort } : { ip, port: s.hbonePort },
    viaNode: nodeIp !== undefined,
    destination: pod,
    expectedIdentity: identityOf(pod, s.trustDomain),
    service,
    local: pod.node === s.node,
  };
}

/** A loopback destination reaches a listener bound to the wildcard on that port, whatever
 *  the loopback address (`127.0.0.2`), so such a listener is ours for all of 127/8 and ::1. */
function reachesWildcard(ip: Ip, port: number, s: RouteSettings): boolean {
  const loopback = ip === '::1' || (isIPv4(ip) && ip.startsWith('127.'));
  if (!loopback) return false;
  return (
    s.ownAddresses.has(formatAddr({ host: '0.0.0.0', port })) ||
    s.ownAddresses.has(formatAddr({ host: '::', port }))
  );
}

/** `reviews` (in the caller's namespace) / `reviews.shop` / `reviews.shop.svc` → the
 *  full service host name, as Kubernetes DNS search paths would resolve it. */
function qualify(host: string, clusterDomain: string, sourceNamespace: string | undefined): string {
  const h = host.toLowerCase().replace(/\.$/, '');
  const parts = h.split('.');
  if (h.endsWith(`.svc.${clusterDomain}`)) return h;
  if (parts.length === 1 && sourceNamespace) return `${h}.${sourceNamespace}.svc.${clusterDomain}`;
  if (parts.length === 3 && parts[2] === 'svc') return `${h}.${clusterDomain}`;
  if (parts.length === 2) return `${h}.svc.${clusterDomain}`;
  return h;
}
