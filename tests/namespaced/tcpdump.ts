// tcpdump on node-1's link (its eth0 in the namespaced topology) while something runs: the
// capture the wire tests read with pcap.ts. Started and ready before `during`, stopped after
// it (SIGINT flushes the file), even when `during` throws.
import { readFile } from 'node:fs/promises';
import { track } from '../../testkit/process.js';
import type { Cluster } from './cluster.js';

/** The pcap file's bytes: packets matching the BPF `filter` seen while `during` ran. */
export async function tcpdumpOnNode1(
  c: Cluster,
  filter: string,
  file: string,
  during: () => Promise<void>,
): Promise<Buffer> {
  const dump = track(
    c.ns.spawn('n1', 'tcpdump', [
      ...['-i', 'eth0', '-nn', '--immediate-mode', '-U', '-Z', 'root'],
      ...['-w', file, filter],
    ]),
    'tcpdump',
  );
  await dump.waitFor(/listening on eth0/, 10_000);
  try {
    await during();
  } finally {
    // Immediate mode hands each packet over at once; a moment more lets the last ACKs in.
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise((r) => dump.child.once('exit', r));
    dump.child.kill('SIGINT');
    await exited;
  }
  return readFile(file);
}
