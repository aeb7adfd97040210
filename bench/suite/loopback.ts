// Loopback mode: every process in this network namespace. The target on the server pod's
// address (127.0.40.2); mtun's load client enters through node-a's SOCKS5 listener (no
// capture needed); each C peer pair listens on 127.0.0.1 (client side) and 127.0.0.2.
import { join } from 'node:path';
import { freePortBlock } from '../../lib/free-ports.js';
import { socks5Connect } from '../../lib/socks5-client.js';
import { tcpConnector } from '../lib/load.js';
import { startTargetProcess } from '../lib/procs.js';
import { writeCerts } from './certs.js';
import { inProcess } from './driver.js';
import { SERVER_POD, startMtunPair } from './mtun-pair.js';
import { startPeer, startPeers } from './peers.js';
import { type Config, profileArgs, type RunContext } from './runner.js';

export async function loopbackConfigs(ctx: RunContext): Promise<Config[]> {
  const { dir, want, procs, progress } = ctx;
  // A checked free block below the kernel's ephemeral range (lib/free-ports.ts): the target,
  // then 10 ports per mtun pair (4 used), the C peers from +30.
  const base = await freePortBlock(40, ['127.0.0.1', '127.0.0.2', SERVER_POD]);
  const targetPort = base;
  progress('target, certificates');
  await startTargetProcess(SERVER_POD, targetPort, procs);
  const target = procs.at(-1)!;
  const certs = await writeCerts(dir);
  const configs: Config[] = [];
  if (want('direct'))
    configs.push({
      name: 'direct',
      kind: 'direct',
      driver: inProcess(tcpConnector(SERVER_POD, targetPort)),
      procs: () => [],
      floor: () => [target],
    });
  for (const [name, workers, port] of [
    ['mtun', 1, base + 10],
    ['mtun-w2', 2, base + 20],
  ] as const) {
    if (!want(name)) continue;
    progress(`starting ${name}`);
    const pair = await startMtunPair(join(dir, name), {
      workers,
      hbonePort: port,
      // A profile (--profile) of the single-process pair only.
      nodeArgs: workers === 1 ? profileArgs(ctx) : [],
      root: ctx.root,
    });
    procs.push(...pair.all);
    configs.push({
      name,
      kind: 'mtun',
      driver: inProcess(() => socks5Connect(pair.socks, { host: SERVER_POD, port: targetPort })),
      procs: () => pair.agents,
    });
  }
  const peers = await startPeers(ctx, (kind, i) =>
    startPeer(kind, dir, certs, [
      {
        client: base + 30 + 2 * i,
        server: base + 31 + 2 * i,
        target: { host: SERVER_POD, port: targetPort },
      },
    ]),
  );
  for (const { kind, pair } of peers) {
    procs.push(...pair.procs);
    const entry = pair.entries[0]!;
    configs.push({
      name: kind,
      kind: 'c',
      driver: inProcess(tcpConnector(entry.host, entry.port)),
      procs: () => pair.procs,
    });
  }
  return configs;
}
