// Kubernetes-shaped YAML → the mesh model: what is read, and how bad input is reported.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { convertDocuments } from '../../mesh/convert/index.js';
import { readDocuments } from '../../mesh/file-source.js';
import { MeshSnapshot } from '../../mesh/snapshot.js';
import { tempDir } from '../helpers/tmp.js';

async function load(t: Test, files: Record<string, string>) {
  const dir = await tempDir(t);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const { docs } = await readDocuments([dir]);
  return new MeshSnapshot(convertDocuments(docs, { clusterDomain: 'cluster.local' }), 1);
}

const GOOD = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  serviceAccountName: web
  nodeName: node-a
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 198.18.1.10, podIPs: [{ip: 198.18.1.10}, {ip: "fd00::10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy, namespace: shop, labels: {app: web, istio.io/dataplane-mode: none}}
spec: {nodeName: node-a}
status: {podIP: 198.18.1.11, phase: Running, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {istio.io/dataplane-mode: ambient}}
spec: {nodeName: node-b}
status: {podIP: 198.18.2.10}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 198.19.0.10, selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
status: {addresses: [{type: InternalIP, address: 127.0.0.1}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ignored}
`;

t.test('reads pods, services, nodes and namespaces', async (t) => {
  const s = await load(t, { 'a.yaml': GOOD });
  const web = s.workload('shop', 'web-1')!;
  t.equal(web.serviceAccount, 'web');
  t.equal(web.node, 'node-a');
  t.same(web.ips, ['198.18.1.10', 'fd00::10']);
  t.equal(web.inMesh, true, 'namespace label puts the pod in the mesh');
  t.equal(web.ready, true, 'no status conditions: ready');
  t.equal(web.namedPorts.get('http'), 8080);
  t.equal(web.meta.creationTimestamp, '2026-01-01T00:00:00.000Z');
  const legacy = s.workload('shop', 'legacy')!;
  t.equal(legacy.inMesh, false, 'pod label none opts out');
  t.equal(legacy.ready, false, 'Ready=False');
  t.equal(legacy.serviceAccount, 'default');
  const solo = s.workload('default', 'solo')!;
  t.equal(solo.inMesh, true, 'pod label ambient opts in');
  t.equal(s.workloadByIp('fd00::10'), web);
  t.same(
    s.workloadsOnNode('node-a').map((w) => w.meta.name),
    ['web-1', 'legacy'],
  );
  const svc = s.serviceByIp('198.19.0.10')!;
  t.equal(svc.hostname, 'web.shop.svc.cluster.local');
  t.equal(s.serviceByHostname('WEB.shop.svc.cluster.local.'), svc);
  t.same(svc.ports, [{ name: undefined, port: 80, targetPort: 'http', protocol: 'TCP' }]);
  t.same(
    s.endpointsOf(svc).map((w) => w.meta.name),
    ['web-1', 'legacy'],
  );
  t.equal(s.node('node-a')?.addresses[0]?.address, '127.0.0.1');
  t.ok(s.runsIdentityOnNode('node-a', 'shop', 'web'));
  t.notOk(s.runsIdentityOnNode('node-b', 'shop', 'web'), 'other node');
  t.notOk(
    s.runsIdentityOnNode('node-a', 'shop', 'default'),
    'the only default-SA pod there is out of the mesh',
  );
  t.equal(s.workloads.length, 3, 'the Deployment is ignored');
});

const bad: { name: string; yaml: string; where: RegExp }[] = [
  {
    name: 'YAML syntax',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata: {name: [\n',
    where: /b\.yaml, document 0: \(document\): YAML syntax/,
  },
  {
    name: 'missing kind',
    yaml: 'apiVersion: v1\nmetadata: {name: x}\n',
    where: /document 0: kind: expected a string/,
  },
  { name: 'not a mapping', yaml: '- a\n- b\n', where: /expected a Kubernetes object/ },
  {
    name: 'bad pod IP',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIP: 300.1.1.1}\n',
    where: /b\.yaml, document 0 \(Pod p\): status\.podIP: expected an IPv4 or IPv6 address/,
  },
  {
    name: 'bad name',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\n',
    where: /metadata\.name: expected a Kubernetes name/,
  },
  {
    name: 'service port out of range',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 70000}]}\n',
    where: /spec\.ports\[0\]\.port/,
  },
  {
    name: 'second document is bad',
    yaml: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: nope}\n',
    where: /document 1 \(Service s\): spec\.clusterIP/,
  },
  {
    name: 'policy with a typo',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {actionn: DENY}\n',
    where: /\(AuthorizationPolicy p\): spec: Unrecognized key.*actionn/,
  },
  {
    name: 'policy with a bad action',
    yaml: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {action: BLOCK}\n',
    where: /spec\.action/,
  },
  {
    name: 'peer authentication with a bad mode',
    yaml: 'apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec: {mtls: {mode: STRICTEST}}\n',
    where: /spec\.mtls\.mode/,
  },
  {
    name: 'duplicate pod',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop}\n',
    where: /duplicate Pod/,
  },
  {
    name: 'duplicate pod IP',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: shop}\nstatus: {podIP: 198.18.1.10}\n',
    where: /IP 198\.18\.1\.10 is already used by pod shop\/web-1/,
  },
];
for (const c of bad) {
  t.test(`reports ${c.name} with file, document and field`, async (t) => {
    const err = await load(t, { 'a.yaml': GOOD, 'b.yaml': c.yaml }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof Error, 'rejected');
    t.match((err as Error).message, c.where);
  });
}
