// `--workers N` with `--mesh-source kubernetes` and `--redirect iptables` (issue 15's bug
// found by reading): the primary process keeps the capture rules and follows the mesh for
// them, and it opened an empty *file* mesh instead of the API's, so no pod was captured and
// pod-to-pod traffic went around the mesh. Both agents here run two workers, fed by the
// fake API server. Root only (CI runs it).
import t from 'tap';
import {
  clusterCannotRun,
  podToPodThroughHbone,
  serviceVipThroughHbone,
  startCluster,
} from './cluster.js';
import { kubeControlPlane, startMeshApi } from './kube-control.js';

const why = clusterCannotRun();
if (why) t.comment(`namespaced --workers tests skipped: ${why}`);

t.test(
  '--workers 2 fed by the Kubernetes API: the primary captures the pods the API names',
  { skip: why ? `skipped: ${why}` : false, timeout: 180_000 },
  async (t) => {
    const api = await startMeshApi(t);
    const c = await startCluster(t, {
      controlPlane: kubeControlPlane(api),
      extraAgentArgs: () => ['--workers', '2'],
    });
    await t.test('curl pod(node-1) -> pod(node-2) by pod IP: captured, through HBONE', (t) =>
      podToPodThroughHbone(t, c),
    );
    await t.test('curl by a Service VIP from the API', (t) => serviceVipThroughHbone(t, c));
  },
);
