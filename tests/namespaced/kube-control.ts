// The control plane from the Kubernetes API, for startCluster: the fake API server
// (tests/kube) runs in the test process and holds meshYaml()'s objects plus one host-network
// agent pod per node; the CA (--mesh-source kubernetes --auth tokenreview) and the agents
// (--mesh-source kubernetes) reach it at https://198.18.0.4:6443 with a kubeconfig. That
// address is a relay in the ctl namespace (tracked by the Netns, killed at teardown) that
// splices each connection onto a UNIX socket in the test's directory, where the server also
// listens: filesystem sockets are not scoped by network namespace. No host interface is
// touched. The server's certificate names 198.18.0.4, so TLS is verified end to end.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import type { ControlPlane } from '../../testkit/mesh.js';
import type { Netns } from '../../testkit/netns.js';
import { track } from '../../testkit/process.js';
import { CTL_IP, NODE_IP, NODE_NAME } from '../../testkit/topology.js';
import { FakeApiServer } from '../kube/fake-apiserver.js';
import { agentPod, agentTokenReviewed, namespace } from '../kube/objects.js';
import { meshYaml } from './pods.js';

export const API_PORT = 6443;
const RELAY = fileURLToPath(new URL('./relay.ts', import.meta.url));

const RESOURCE_OF_KIND: Record<string, string> = {
  Namespace: 'namespaces',
  Node: 'nodes',
  Pod: 'pods',
  Service: 'services',
  AuthorizationPolicy: 'authorizationpolicies',
  PeerAuthentication: 'peerauthentications',
};

/** The API server with the file source's objects: every document of meshYaml(), as is. */
export async function startMeshApi(t: Test): Promise<FakeApiServer> {
  const api = await FakeApiServer.start(t, { ipSans: [CTL_IP] });
  for (const doc of parseAllDocuments(meshYaml())) {
    const obj = doc.toJS() as Record<string, unknown>;
    const resource = RESOURCE_OF_KIND[String(obj['kind'])];
    if (!resource) throw new Error(`meshYaml(): no API resource for kind ${obj['kind']}`);
    api.apply(resource, obj);
  }
  return api;
}

/** `startCluster(t, { controlPlane: kubeControlPlane(api) })`. Each agent's CA credential is
 *  a token that the API's TokenReview maps to that node's agent pod, as a projected
 *  service-account token would be. */
export function kubeControlPlane(api: FakeApiServer) {
  return async (ns: Netns, dir: string): Promise<ControlPlane> => {
    api.apply('namespaces', namespace('mtun-system'));
    const tokens = new Map<string, 'n1' | 'n2'>();
    for (const node of ['n1', 'n2'] as const) {
      const token = `agent-${node}-${randomBytes(16).toString('hex')}`;
      tokens.set(token, node);
      await writeFile(join(dir, `token-${node}`), token);
      api.apply(
        'pods',
        agentPod(podName(node), `uid-${podName(node)}`, NODE_NAME[node], NODE_IP[node]),
      );
    }
    api.tokenReview = (spec) => {
      const node = tokens.get(String(spec['token']));
      if (!node || !(spec['audiences'] as string[] | undefined)?.includes('mtun-ca'))
        return { body: { status: { authenticated: false, error: 'invalid bearer token' } } };
      return agentTokenReviewed(podName(node), `uid-${podName(node)}`);
    };

    const socket = join(dir, 'kube-api.sock');
    await api.listenUnix(socket);
    const relay = track(
      ns.spawn('ctl', process.execPath, [
        '--import',
        'tsx',
        RELAY,
        CTL_IP,
        String(API_PORT),
        socket,
      ]),
      'relay',
    );
    await relay.waitFor(/relay listening/);
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, api.kubeconfigYaml(`https://${CTL_IP}:${API_PORT}`));
    const kube = ['--mesh-source', 'kubernetes', '--kubeconfig', kubeconfig];
    return {
      caArgs: [...kube, '--auth', 'tokenreview'],
      agentArgs: (node) => [...kube, '--ca-token-file', join(dir, `token-${node}`)],
    };
  };
}

function podName(node: 'n1' | 'n2'): string {
  return `mtun-agent-${NODE_NAME[node]}`;
}
