// Either agent killed (SIGKILL) or stopped (SIGTERM) in the middle of transfers, with real
// processes (issue 12): an application never takes a cut transfer for a complete one,
// completed transfers are intact (checksums), and the survivor lets go of its sockets.
import { once } from 'node:events';
import t from 'tap';
import { startAgentPair } from '../helpers/agent-procs.js';
import { client, downloads, ending, pattern, sha, startPod } from '../helpers/fault-apps.js';

t.test('SIGKILL of the server-side agent: every download ends with a reset', async (t) => {
  const p = await startAgentPair(t);
  await startPod(t, p.ip('20.1'));
  const ends = await downloads(t, p, 40);
  await p.kill('node-b');
  const seen = await Promise.all(ends);
  t.equal(seen.filter((e) => e === 'fin').length, 0, 'no download "completed"');
  t.same(new Set(seen), new Set(['reset']), 'every download was reset');
  // Restarted, it serves again, and a checked transfer is intact.
  await p.start('node-b');
  const s = await client(p);
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.write('sum 5000000\n');
  await once(s, 'end');
  t.equal(sha(Buffer.concat(chunks)), sha(pattern(5_000_000)), 'checksum after the restart');
});

t.test(
  'SIGKILL of the client-side agent: the pod sees every upstream reset and node-b lets go',
  async (t) => {
    const p = await startAgentPair(t);
    const pod = await startPod(t, p.ip('20.1'));
    const fdsBefore = await p.steadyFds('node-b');
    const podEnds: Promise<'reset' | 'fin'>[] = [];
    pod.server.on('connection', (s) => podEnds.push(ending(s)));
    // The applications were connected to the killed agent itself: what they see is the
    // kernel's close of a dead process's sockets (a FIN when nothing was left unread), not
    // anything an agent can choose. The far side is what the agents answer for.
    await downloads(t, p, 30);
    await p.kill('node-a');
    const podSeen = await Promise.race([
      Promise.all(podEnds),
      new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            reject(
              new Error(
                `pod sockets still open: ${pod.open.size}; node-b: ${p.agent('node-b').output().slice(-1500)}`,
              ),
            ),
          45_000,
        ),
      ),
    ]);
    t.equal(podSeen.filter((e) => e === 'fin').length, 0, 'the pod saw resets, not FINs');
    const fdsAfter = await p.steadyFds('node-b');
    t.ok(
      fdsAfter <= fdsBefore + 2,
      `node-b is back to its descriptors (${fdsBefore} -> ${fdsAfter})`,
    );
  },
);

t.test(
  'SIGTERM of either agent during transfers: completed ones are intact, cut ones are resets, exit 0 within the drain',
  async (t) => {
    const p = await startAgentPair(t);
    await startPod(t, p.ip('20.1'));
    for (const node of ['node-a', 'node-b'] as const) {
      // Finite transfers that finish within the drain period, and endless ones that cannot.
      const finite = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const s = await client(p);
          const chunks: Buffer[] = [];
          s.on('data', (d: Buffer) => chunks.push(d));
          const e = ending(s);
          s.write('sum 2000000\n');
          return { e, chunks };
        }),
      );
      const endless = await downloads(t, p, 10);
      const started = Date.now();
      const code = await p.stop(node);
      t.equal(code, 0, `${node} exits 0`);
      t.ok(Date.now() - started < 6_000, `${node} stopped within its 1 s drain (and slack)`);
      for (const f of finite) {
        const how = await f.e;
        if (how === 'fin')
          t.equal(sha(Buffer.concat(f.chunks)), sha(pattern(2_000_000)), 'complete and intact');
        else t.equal(how, 'reset');
      }
      const cut = await Promise.all(endless);
      t.match(
        p.agent(node).output(),
        /"forcedClosed":(\d+)/,
        `${node}: the drain forced the rest closed`,
      );
      // Either agent's forced close reaches every application as a reset: node-b's through
      // node-a, node-a's from node-a itself (resetAndDestroy, counted in forcedClosed).
      t.same(new Set(cut), new Set(['reset']), `${node}: cut transfers were reset`);
      await p.start(node);
    }
  },
);
