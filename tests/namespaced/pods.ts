// The root-only tests' pods on the two-node topology (testkit/topology.ts), and the mesh
// that describes them. The Service VIP 198.19.0.10 is routed nowhere: only the agents know
// it (no kube-proxy).
//
//   node-1 pods 198.18.1.0/24: client-1 .11 (mesh), peer-1 .12 (mesh), legacy-1 .13
//   node-2 pods 198.18.2.0/24: web-2 .11 (mesh), open-2 .12 (mesh), legacy-2 .13
import { NODE_NAME, type NodeTag, POD_NET } from '../../testkit/topology.js';

export interface PodSpec {
  readonly tag: string;
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly app: string;
  readonly node: NodeTag;
  readonly ip: string;
  readonly mesh: boolean;
}

export const SERVICE_VIP = '198.19.0.10';

export const PODS: readonly PodSpec[] = [
  pod('client-1', 'apps', 'client', 'client', 'n1', 11, true),
  pod('peer-1', 'strict', 'peer', 'peer', 'n1', 12, true),
  pod('legacy-1', 'legacy', 'legacy', 'legacy', 'n1', 13, false),
  pod('web-2', 'strict', 'web', 'web', 'n2', 11, true),
  pod('open-2', 'open', 'open', 'open', 'n2', 12, true),
  pod('legacy-2', 'legacy', 'legacy', 'legacy', 'n2', 13, false),
];

function pod(
  name: string,
  namespace: string,
  serviceAccount: string,
  app: string,
  node: NodeTag,
  host: number,
  mesh: boolean,
): PodSpec {
  return {
    tag: name,
    name,
    namespace,
    serviceAccount,
    app,
    node,
    ip: `${POD_NET[node]}.${host}`,
    mesh,
  };
}

export function podByName(name: string): PodSpec {
  const p = PODS.find((x) => x.name === name);
  if (!p) throw new Error(`no pod ${name}`);
  return p;
}

/** The mesh the CA and both agents read. No Node objects: agents dial podIP:15008, which
 *  the destination node's rules capture (the path that needs SO_ORIGINAL_DST inbound). */
export function meshYaml(): string {
  const docs = [
    ns('apps', true),
    ns('strict', true),
    ns('open', true),
    ns('legacy', false),
    `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: strict}
spec: {mtls: {mode: STRICT}}`,
    `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: open}
spec: {mtls: {mode: PERMISSIVE}}`,
    `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-9090, namespace: strict}
spec:
  action: DENY
  rules: [{to: [{operation: {ports: ["9090"]}}]}]`,
    `apiVersion: v1
kind: Service
metadata: {name: web, namespace: strict}
spec: {clusterIP: ${SERVICE_VIP}, selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}`,
    ...PODS.map(
      (p) => `apiVersion: v1
kind: Pod
metadata: {name: ${p.name}, namespace: ${p.namespace}, labels: {app: ${p.app}}}
spec: {serviceAccountName: ${p.serviceAccount}, nodeName: ${NODE_NAME[p.node]}}
status: {phase: Running, podIP: ${p.ip}}`,
    ),
  ];
  return `${docs.join('\n---\n')}\n`;
}

function ns(name: string, ambient: boolean): string {
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${name}${ambient ? ', labels: {istio.io/dataplane-mode: ambient}' : ''}}`;
}
