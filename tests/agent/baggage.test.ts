// The CONNECT's baggage as ztunnel writes it (istio/ztunnel src/baggage.rs
// baggage_header_val; keys in its order, workload type from istiod's WorkloadType).
import t from 'tap';
import { ztunnelBaggage } from '../../agent/proxy/baggage.js';
import { metadataHeaders } from '../../hbone/headers.js';
import { snapshotFromYaml } from '../helpers/snapshot.js';

const YAML = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata:
  name: productpage-v1-6b746f74dc-9stvs
  generateName: productpage-v1-6b746f74dc-
  namespace: shop
  labels: {app: productpage, version: v1, pod-template-hash: 6b746f74dc}
  ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: productpage-v1-6b746f74dc, uid: u1, controller: true}
spec: {serviceAccountName: productpage, nodeName: node-a}
status: {podIP: 198.18.1.7}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  generateName: db-
  namespace: shop
  labels: {app: db}
  ownerReferences:
    - {apiVersion: apps/v1, kind: StatefulSet, name: db, uid: u2, controller: true}
spec: {serviceAccountName: db, nodeName: node-a}
status: {podIP: 198.18.1.8}
---
apiVersion: v1
kind: Pod
metadata: {name: lonely, namespace: shop}
spec: {serviceAccountName: default, nodeName: node-a}
status: {podIP: 198.18.1.9}
`;

const snapshot = snapshotFromYaml(YAML);
const header = (ip: string) =>
  metadataHeaders({ baggage: ztunnelBaggage(snapshot.workloadByIp(ip)!, 'Kubernetes') })['baggage'];

t.test('baggage of a Deployment, a StatefulSet and a bare pod, as ztunnel writes it', async (t) => {
  t.equal(
    header('198.18.1.7'),
    'k8s.cluster.name=Kubernetes,k8s.namespace.name=shop,k8s.deployment.name=productpage-v1,service.name=productpage,service.version=v1',
  );
  t.equal(
    header('198.18.1.8'),
    'k8s.cluster.name=Kubernetes,k8s.namespace.name=shop,k8s.pod.name=db,service.name=db,service.version=latest',
    'a StatefulSet is WorkloadType POD in istiod',
  );
  t.equal(
    header('198.18.1.9'),
    'k8s.cluster.name=Kubernetes,k8s.namespace.name=shop,k8s.pod.name=lonely,service.name=lonely,service.version=latest',
  );
});
