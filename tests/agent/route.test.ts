// The outbound decision as a table: destination → HBONE / passthrough / refusal.
import t from 'tap';
import { type Route, route } from '../../agent/proxy/route.js';
import { snapshotFromYaml } from '../helpers/snapshot.js';

const YAML = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
status: {addresses: [{type: InternalIP, address: 127.0.0.2}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {serviceAccountName: web, nodeName: node-a}
status: {podIP: 198.18.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-1, namespace: shop, labels: {app: reviews}}
spec: {serviceAccountName: reviews, nodeName: node-b, containers: [{ports: [{name: http, containerPort: 9080}]}]}
status: {podIP: 198.18.2.1}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-2, namespace: shop, labels: {app: reviews}}
spec: {serviceAccountName: reviews, nodeName: node-c, containers: [{ports: [{name: http, containerPort: 9090}]}]}
status: {podIP: 198.18.3.1}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-3, namespace: shop, labels: {app: reviews}}
spec: {serviceAccountName: reviews, nodeName: node-c}
status: {podIP: 198.18.3.2, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy-1, namespace: shop, labels: {app: legacy, istio.io/dataplane-mode: none}}
spec: {nodeName: node-b}
status: {podIP: 198.18.2.9}
---
apiVersion: v1
kind: Pod
metadata: {name: mapped-1, namespace: shop, labels: {app: mapped}}
spec: {serviceAccountName: mapped, nodeName: node-c}
status: {podIP: "::ffff:198.18.4.1"}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {clusterIP: 198.19.0.1, selector: {app: reviews}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec: {clusterIP: 198.19.0.2, selector: {app: nothing}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop}
spec: {clusterIP: 198.19.0.3, selector: {app: legacy}, ports: [{port: 80, targetPort: 8080}]}
`;
const snapshot = snapshotFromYaml(YAML);
const settings = {
  node: 'node-a',
  trustDomain: 'cluster.local',
  clusterDomain: 'cluster.local',
  hbonePort: 15008,
  hboneDial: 'node' as const,
  ownAddresses: new Set([
    '127.0.0.1:15080',
    '127.0.0.1:15008',
    '0.0.0.0:15001',
    '[::]:15006',
    'localhost:15000', // a listener bound by name (--admin localhost:15000)
  ]),
};

type Want = Partial<{
  kind: Route['kind'];
  target: string;
  dial: string;
  identity: string;
  viaNode: boolean;
  code: string;
  service: string;
  local: boolean;
}>;
function summary(r: Route): Want {
  if (r.kind === 'refuse') return { kind: r.kind, code: r.code };
  if (r.kind === 'passthrough')
    return {
      kind: r.kind,
      target: `${r.target.ip}:${r.target.port}`,
      ...(r.service ? { service: r.service.meta.name } : {}),
    };
  return {
    kind: r.kind,
    target: `${r.target.ip}:${r.target.port}`,
    dial: `${r.dial.ip}:${r.dial.port}`,
    identity: r.expectedIdentity.toString(),
    viaNode: r.viaNode,
    local: r.local,
    ...(r.service ? { service: r.service.meta.name } : {}),
  };
}

const cases: [string, { host: string; port: number }, number, Want, string?][] = [
  [
    '--hbone-dial node: mesh pod IP on a node with an address → HBONE via the node agent (SNI)',
    { host: '198.18.2.1', port: 9080 },
    0,
    {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      dial: '127.0.0.2:15008',
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
      viaNode: true,
      local: false,
    },
  ],
  [
    'mesh pod IP on a node without an address → HBONE to the pod IP:15008',
    { host: '198.18.3.1', port: 9090 },
    0,
    {
      kind: 'hbone',
      target: '198.18.3.1:9090',
      dial: '198.18.3.1:15008',
      viaNode: false,
      local: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
    },
  ],
  [
    'mesh pod on this node → local short cut',
    { host: '198.18.1.1', port: 80 },
    0,
    {
      kind: 'hbone',
      local: true,
      target: '198.18.1.1:80',
      dial: '198.18.1.1:15008',
      viaNode: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/web',
    },
  ],
  [
    'service cluster IP, first endpoint, named targetPort resolved per pod',
    { host: '198.19.0.1', port: 80 },
    0,
    {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      service: 'reviews',
      dial: '127.0.0.2:15008',
      viaNode: true,
      local: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
    },
  ],
  [
    'service cluster IP, second endpoint (other port from its named port)',
    { host: '198.19.0.1', port: 80 },
    1,
    {
      kind: 'hbone',
      target: '198.18.3.1:9090',
      service: 'reviews',
      dial: '198.18.3.1:15008',
      viaNode: false,
      local: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
    },
  ],
  [
    'unready endpoint is never chosen (pick past the end clamps)',
    { host: '198.19.0.1', port: 80 },
    7,
    {
      kind: 'hbone',
      target: '198.18.3.1:9090',
      service: 'reviews',
      dial: '198.18.3.1:15008',
      viaNode: false,
      local: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
    },
  ],
  [
    'service host name, fully qualified',
    { host: 'reviews.shop.svc.cluster.local', port: 80 },
    0,
    {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      service: 'reviews',
      dial: '127.0.0.2:15008',
      viaNode: true,
      local: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
    },
  ],
  [
    'service host name, short form name.namespace',
    { host: 'reviews.shop', port: 80 },
    0,
    {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      service: 'reviews',
      dial: '127.0.0.2:15008',
      viaNode: true,
      local: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
    },
  ],
  [
    'service host name, bare name in the caller namespace',
    { host: 'reviews', port: 80 },
    0,
    {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      service: 'reviews',
      dial: '127.0.0.2:15008',
      viaNode: true,
      local: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
    },
    'shop',
  ],
  [
    'bare name without a caller namespace is unknown',
    { host: 'reviews', port: 80 },
    0,
    { kind: 'refuse', code: 'UNKNOWN_HOST' },
  ],
  [
    'unknown host name',
    { host: 'example.com', port: 443 },
    0,
    { kind: 'refuse', code: 'UNKNOWN_HOST' },
  ],
  [
    'service port that does not exist',
    { host: '198.19.0.1', port: 81 },
    0,
    { kind: 'refuse', code: 'NO_SERVICE_PORT' },
  ],
  [
    'service without ready endpoints',
    { host: '198.19.0.2', port: 80 },
    0,
    { kind: 'refuse', code: 'NO_HEALTHY_UPSTREAM' },
  ],
  [
    'non-mesh pod → passthrough',
    { host: '198.18.2.9', port: 8080 },
    0,
    { kind: 'passthrough', target: '198.18.2.9:8080' },
  ],
  [
    'service of non-mesh pods → passthrough to the endpoint',
    { host: '198.19.0.3', port: 80 },
    0,
    { kind: 'passthrough', target: '198.18.2.9:8080', service: 'legacy' },
  ],
  [
    'address outside the mesh → passthrough',
    { host: '127.0.0.1', port: 8080 },
    0,
    { kind: 'passthrough', target: '127.0.0.1:8080' },
  ],
  [
    "the agent's own listener → loop refused",
    { host: '127.0.0.1', port: 15080 },
    0,
    { kind: 'refuse', code: 'SELF_CALL' },
  ],
  // Issue 12, item 5: other spellings of an address are the address (lib/ip.ts).
  [
    'mesh pod as IPv4-mapped IPv6 → the pod, over HBONE (never plaintext around its policy)',
    { host: '::ffff:198.18.2.1', port: 9080 },
    0,
    {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      dial: '127.0.0.2:15008',
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
      viaNode: true,
      local: false,
    },
  ],
  [
    'mesh pod as IPv4-mapped IPv6 in full hex → the pod',
    { host: '0:0:0:0:0:ffff:c612:201', port: 9080 },
    0,
    {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      dial: '127.0.0.2:15008',
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
      viaNode: true,
      local: false,
    },
  ],
  [
    'service cluster IP as IPv4-mapped IPv6 → the service',
    { host: '::ffff:198.19.0.1', port: 80 },
    0,
    {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      service: 'reviews',
      dial: '127.0.0.2:15008',
      viaNode: true,
      local: false,
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
    },
  ],
  [
    "the agent's own listener as IPv4-mapped IPv6 → loop refused",
    { host: '::ffff:127.0.0.1', port: 15080 },
    0,
    { kind: 'refuse', code: 'SELF_CALL' },
  ],
  [
    'a listener bound by name, asked for by that name → loop refused',
    { host: 'localhost', port: 15000 },
    0,
    { kind: 'refuse', code: 'SELF_CALL' },
  ],
  [
    'the unspecified address (reaches this host) → loop refused',
    { host: '0.0.0.0', port: 15008 },
    0,
    { kind: 'refuse', code: 'SELF_CALL' },
  ],
  [
    'the IPv6 unspecified address → loop refused',
    { host: '0:0:0:0:0:0:0:0', port: 8080 },
    0,
    { kind: 'refuse', code: 'SELF_CALL' },
  ],
  [
    'a pod written as IPv4-mapped IPv6 in the mesh files is found by its IPv4 address',
    { host: '198.18.4.1', port: 80 },
    0,
    {
      kind: 'hbone',
      target: '198.18.4.1:80',
      dial: '198.18.4.1:15008',
      identity: 'spiffe://cluster.local/ns/shop/sa/mapped',
      viaNode: false,
      local: false,
    },
  ],
  [
    'any loopback address on a port we listen on with 0.0.0.0 → loop refused',
    { host: '127.0.0.2', port: 15001 },
    0,
    { kind: 'refuse', code: 'SELF_CALL' },
  ],
  [
    '::1 on a port we listen on with :: → loop refused',
    { host: '::1', port: 15006 },
    0,
    { kind: 'refuse', code: 'SELF_CALL' },
  ],
  [
    'another loopback address on a port we listen on with 127.0.0.1 only → passthrough',
    { host: '127.0.0.2', port: 15080 },
    0,
    { kind: 'passthrough', target: '127.0.0.2:15080' },
  ],
  [
    'a non-mesh address as IPv4-mapped IPv6 → passthrough to the IPv4 address',
    { host: '::ffff:127.0.0.1', port: 8080 },
    0,
    { kind: 'passthrough', target: '127.0.0.1:8080' },
  ],
];
for (const [name, dst, pick, want, ns] of cases) {
  t.test(name, async (t) => {
    t.same(summary(route(dst, snapshot, settings, () => pick, ns)), want);
  });
}

t.test(
  "--hbone-dial pod (ztunnel's, with capture): the pod IP:15008 without SNI, even when its node has an address",
  async (t) => {
    const pod = { ...settings, hboneDial: 'pod' as const };
    t.same(summary(route({ host: '198.18.2.1', port: 9080 }, snapshot, pod, () => 0)), {
      kind: 'hbone',
      target: '198.18.2.1:9080',
      dial: '198.18.2.1:15008',
      identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
      viaNode: false,
      local: false,
    });
    // A service endpoint likewise: the chosen pod's own address.
    const viaService = route({ host: '198.19.0.1', port: 80 }, snapshot, pod, () => 0);
    t.equal(viaService.kind, 'hbone');
    if (viaService.kind === 'hbone') {
      t.equal(viaService.dial.ip, viaService.target.ip, 'dialed at the endpoint pod itself');
      t.equal(viaService.viaNode, false);
    }
  },
);
