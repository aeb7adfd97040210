// The mtun configuration: a `mtun ca` process and two `mtun agent` processes (node-a on
// 127.0.0.1, node-b on 127.0.0.2), HBONE between them with certificates from the CA and an
// AuthorizationPolicy in force; the load client enters through node-a's SOCKS5 listener
// as the client pod (--socks5-workload) to the server pod (127.0.40.2). As in bench/agent-pair.ts.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mtun, type Proc } from '../lib/procs.js';

export const CLIENT_POD = '127.0.40.1';
export const SERVER_POD = '127.0.40.2';

/** The benchmark mesh: client on node-a, server on node-b, a policy in force. */
export const MESH = `
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
metadata: {name: bench, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: bench}
spec: {serviceAccountName: client, nodeName: node-a}
status: {podIP: ${CLIENT_POD}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: bench, labels: {app: server}}
spec: {serviceAccountName: server, nodeName: node-b}
status: {podIP: ${SERVER_POD}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: server-from-client, namespace: bench}
spec:
  selector: {matchLabels: {app: server}}
  rules: [{from: [{source: {principals: [cluster.local/ns/bench/sa/client]}}]}]
`;

export interface MtunPair {
  readonly socks: { host: string; port: number };
  /** The two agents (the CA is not on the data path and is not measured). */
  readonly agents: readonly Proc[];
  readonly all: readonly Proc[];
}

/** Writes the benchmark mesh and both node tokens into `dir` and starts the CA on them;
 *  resolves with it and its URL once it listens (its root: `dir/ca/root-cert.pem`). */
export async function startBenchCa(
  dir: string,
  root?: string | undefined,
): Promise<{ ca: Proc; url: string }> {
  await writeFile(join(dir, 'mesh.yaml'), MESH);
  await writeFile(
    join(dir, 'tokens.yaml'),
    '- {node: node-a, token: bench-token-node-a-000000}\n- {node: node-b, token: bench-token-node-b-000000}\n',
  );
  await writeFile(join(dir, 'token-a'), 'bench-token-node-a-000000');
  await writeFile(join(dir, 'token-b'), 'bench-token-node-b-000000');
  const ca = mtun(
    [
      'ca',
      ...['--state-dir', join(dir, 'ca'), '--mesh', join(dir, 'mesh.yaml')],
      ...['--tokens', join(dir, 'tokens.yaml'), '--listen', '127.0.0.1:0', '--log-level', 'info'],
    ],
    { root },
  );
  return { ca, url: (await ca.waitFor(/"url":"(https:[^"]+)"/))[1]! };
}

/** The `mtun agent` flags both benchmarks share for `node` of startBenchCa's mesh in `dir`:
 *  identity, CA, and the HBONE (`hbone`) and SOCKS5 (`hbone + 1`) listeners on its address. */
export function benchAgentArgs(
  dir: string,
  caUrl: string,
  node: 'node-a' | 'node-b',
  hbone: number,
): string[] {
  const [ip, token] = node === 'node-a' ? ['127.0.0.1', 'token-a'] : ['127.0.0.2', 'token-b'];
  return [
    ...['--node', node, '--mesh', join(dir, 'mesh.yaml'), '--ca', caUrl],
    ...['--ca-token-file', join(dir, token), '--ca-bundle', join(dir, 'ca', 'root-cert.pem')],
    ...['--listen-ip', ip, '--inbound', String(hbone), '--socks5', `${ip}:${hbone + 1}`],
  ];
}

/** The CA and both agents in `dir`, HBONE on `hbonePort` (and SOCKS5, outbound and
 *  inbound-plaintext on the three ports above it). */
export async function startMtunPair(
  dir: string,
  opts: {
    workers: number;
    hbonePort: number;
    nodeArgs?: string[];
    root?: string | undefined;
  },
): Promise<MtunPair> {
  await mkdir(dir, { recursive: true });
  const { ca, url } = await startBenchCa(dir, opts.root);
  const hbone = opts.hbonePort;
  const agent = (node: 'node-a' | 'node-b') =>
    mtun(
      [
        'agent',
        ...benchAgentArgs(dir, url, node, hbone),
        // Two pairs run side by side: no default (fixed) capture ports.
        ...['--outbound', String(hbone + 2), '--inbound-plaintext', String(hbone + 3)],
        // The load client connects from 127.0.0.1, not the pod IP: binding a source address
        // before connect() makes the kernel search for a free port per connection (no
        // IP_BIND_ADDRESS_NO_PORT in Node), which throttled new connections to ~200/s.
        ...['--socks5-workload', 'bench/client'],
        ...['--admin', 'off', '--metrics', 'off', '--readiness', 'off'],
        ...['--workers', String(opts.workers)],
        // Access logs off (warn), like the C peers' configs: they log errors only.
        ...['--log-level', 'warn'],
      ],
      { nodeArgs: opts.nodeArgs ?? [], root: opts.root },
    );
  const a = agent('node-a');
  const b = agent('node-b');
  return { socks: { host: '127.0.0.1', port: hbone + 1 }, agents: [a, b], all: [ca, a, b] };
}
