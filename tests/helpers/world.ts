// A small mesh on loopback for end-to-end tests: the CA, agents for node-a (127.0.0.1) and
// node-b (127.0.0.2), and echo apps on their pod IPs. Access-log lines are kept per node.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { OriginalDestination } from '../../agent/context.js';
import { type LocalMesh, startLocalMesh, waitReady } from '../../cli/local-mesh.js';
import { createLogger } from '../../lib/logger.js';
import { type App, startApp, stopApps } from './apps.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';

export const baseMesh = (net: number) => `
apiVersion: v1
kind: Node
metadata: {name: node-a}
status: {addresses: [{type: InternalIP, address: 127.0.0.1}]}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
status: {addresses: [{type: InternalIP, address: 127.0.0.2}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {serviceAccountName: web, nodeName: node-a}
status: {podIP: 127.${net}.10.1}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-1, namespace: shop, labels: {app: reviews}}
spec: {serviceAccountName: reviews, nodeName: node-b}
status: {podIP: 127.${net}.20.1}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-2, namespace: shop, labels: {app: reviews}}
spec: {serviceAccountName: reviews, nodeName: node-b}
status: {podIP: 127.${net}.20.2}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-1, namespace: shop, labels: {app: ratings}}
spec: {serviceAccountName: ratings, nodeName: node-b}
status: {podIP: 127.${net}.20.3}
---
apiVersion: v1
kind: Pod
metadata: {name: details-1, namespace: shop, labels: {app: details}}
spec: {serviceAccountName: details, nodeName: node-a}
status: {podIP: 127.${net}.10.2}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {clusterIP: 127.${net}.30.1, selector: {app: reviews}, ports: [{port: 80, targetPort: 9080}]}
`;

export const RATINGS_ONLY_FROM_REVIEWS = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-from-reviews, namespace: shop}
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/reviews]}}]}]
`;

/** A DENY of web → ratings (a cross-node tunnel): what an attacker or an accident must
 *  never lift. */
export const RATINGS_DENY_WEB = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-deny-web, namespace: shop}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}]
`;

export interface World {
  readonly mesh: LocalMesh;
  readonly dir: string;
  readonly meshDir: string;
  readonly access: Map<string, Record<string, unknown>[]>;
  readonly apps: App[];
  readonly hbonePort: number;
  /** `ip('20.1')` = the address 127.<net>.20.1 of this world. */
  ip(suffix: string): string;
  socks(node: 'node-a' | 'node-b'): { host: string; port: number };
}

export async function startWorld(
  t: Test,
  opts: {
    files?: Record<string, string>;
    certTtlSeconds?: number;
    originalDestination?: OriginalDestination;
    drainPeriodMs?: number;
  } = {},
): Promise<World> {
  const dir = await tempDir(t, 'mtun-world-');
  const meshDir = join(dir, 'mesh');
  await mkdir(meshDir);
  // Pod and service IPs live in 127.<net>.0.0/16, a range of this world's own, so that
  // test files running at the same time never compete for an app's address. Picked at
  // random; a range another world holds already (an app's address in use) is left for
  // another pick, with the apps started so far closed.
  const { net, apps } = await startApps();
  t.teardown(() => stopApps(apps));
  const ip = (suffix: string) => `127.${net}.${suffix}`;
  await writeFile(join(meshDir, '00-base.yaml'), baseMesh(net));
  for (const [name, text] of Object.entries(opts.files ?? {}))
    await writeFile(join(meshDir, name), text);
  const access = new Map<string, Record<string, unknown>[]>([
    ['node-a', []],
    ['node-b', []],
  ]);
  // The HBONE port must be free on both nodes' addresses.
  const hbonePort = await freePort(['127.0.0.1', '127.0.0.2']);
  const mesh = await startLocalMesh({
    dir,
    meshPaths: [meshDir],
    nodes: [
      { name: 'node-a', ip: '127.0.0.1' },
      { name: 'node-b', ip: '127.0.0.2' },
    ],
    hbonePort,
    logger: createLogger({ level: process.env['MTUN_TEST_LOG'] ? 'debug' : 'silent' }),
    accessLog: (node) => ({ write: (line) => access.get(node)!.push(line) }),
    ...(opts.certTtlSeconds ? { certTtlSeconds: opts.certTtlSeconds } : {}),
    ...(opts.originalDestination ? { originalDestination: opts.originalDestination } : {}),
    drainPeriodMs: opts.drainPeriodMs ?? 500,
  });
  t.teardown(() => mesh.close());
  await waitReady(mesh);
  return {
    mesh,
    dir,
    meshDir,
    access,
    apps,
    hbonePort,
    ip,
    socks(node) {
      const a = mesh.agents.get(node)!.addresses().socks5!;
      return { host: a.host, port: a.port };
    },
  };
}

async function startApps(): Promise<{ net: number; apps: App[] }> {
  for (let tries = 1; ; tries++) {
    const net = 100 + Math.floor(Math.random() * 150);
    const ip = (suffix: string) => `127.${net}.${suffix}`;
    const started = await Promise.allSettled([
      startApp('web-1', ip('10.1'), 9080),
      startApp('details-1', ip('10.2'), 9080),
      startApp('reviews-1', ip('20.1'), 9080),
      startApp('reviews-2', ip('20.2'), 9080),
      startApp('ratings-1', ip('20.3'), 9080),
    ]);
    const apps = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (apps.length === started.length) return { net, apps };
    await stopApps(apps);
    const failed = started.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    if (tries >= 10 || (failed.reason as NodeJS.ErrnoException).code !== 'EADDRINUSE')
      throw failed.reason;
  }
}
