// Kubernetes objects for the fake API server (fake-apiserver.ts) and the tests that feed it:
// namespaces, nodes, pods, services, secrets, Istio policies and a TokenReview answer,
// shaped as the API returns them (pods carry the managedFields and annotations that the
// sources must drop).

// biome-ignore lint/suspicious/noExplicitAny: fixtures of any shape, read and written freely
export type Obj = Record<string, any>;

/** TokenReview's answer for a token of mtun-system/mtun-agent bound to a pod (audience
 *  mtun-ca), as FakeApiServer.tokenReview returns it. */
export function agentTokenReviewed(podName: string, podUid: string): { readonly body: Obj } {
  return {
    body: {
      status: {
        authenticated: true,
        audiences: ['mtun-ca'],
        user: {
          username: 'system:serviceaccount:mtun-system:mtun-agent',
          extra: {
            'authentication.kubernetes.io/pod-name': [podName],
            'authentication.kubernetes.io/pod-uid': [podUid],
          },
        },
      },
    },
  };
}

/** A node agent's pod as the DaemonSet makes it: mtun-system/mtun-agent, on the host network
 *  of its node (the pod that agentTokenReviewed binds a token to). */
export function agentPod(name: string, uid: string, nodeName: string, ip: string): Obj {
  return pod({
    ns: 'mtun-system',
    name,
    uid,
    sa: 'mtun-agent',
    node: nodeName,
    ip,
    hostNetwork: true,
  });
}

export function namespace(name: string, labels: Record<string, string> = {}): Obj {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

export function node(name: string, ip: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: {
      addresses: [
        { type: 'InternalIP', address: ip },
        { type: 'Hostname', address: name },
      ],
    },
  };
}

export function pod(o: {
  ns: string;
  name: string;
  sa: string;
  node?: string;
  ip?: string;
  labels?: Record<string, string>;
  phase?: string;
  hostNetwork?: boolean;
  uid?: string;
}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name,
      namespace: o.ns,
      labels: o.labels ?? {},
      ...(o.uid ? { uid: o.uid } : {}),
      managedFields: [{ manager: 'kubelet', operation: 'Update' }],
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big": "blob"}' },
    },
    spec: {
      serviceAccountName: o.sa,
      ...(o.node ? { nodeName: o.node } : {}),
      ...(o.hostNetwork ? { hostNetwork: true } : {}),
      containers: [
        {
          name: 'app',
          image: 'example/app:1',
          ports: [{ name: 'http', containerPort: 9080, protocol: 'TCP' }],
          env: [{ name: 'A', value: 'b' }],
        },
      ],
    },
    status: {
      phase: o.phase ?? (o.ip ? 'Running' : 'Pending'),
      ...(o.ip ? { podIP: o.ip, podIPs: [{ ip: o.ip }], hostIP: '198.18.0.1' } : {}),
      conditions: [
        {
          type: 'Ready',
          status: o.ip ? 'True' : 'False',
          lastTransitionTime: '2024-01-01T00:00:00Z',
        },
      ],
    },
  };
}

export function service(
  ns: string,
  name: string,
  clusterIP: string,
  selector: Record<string, string>,
  port = 80,
  targetPort = 9080,
): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: {
      clusterIP,
      clusterIPs: [clusterIP],
      selector,
      ports: [{ name: 'http', port, targetPort, protocol: 'TCP' }],
      type: 'ClusterIP',
    },
  };
}

/** A Secret with these entries (plain text here, base64 on the wire). */
export function secret(ns: string, name: string, entries: Record<string, string>): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns },
    data: Object.fromEntries(
      Object.entries(entries).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
  };
}

export function authorizationPolicy(ns: string, name: string, spec: Obj): Obj {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: ns },
    spec,
  };
}

export function peerAuthentication(ns: string, name: string, spec: Obj): Obj {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace: ns },
    spec,
  };
}
