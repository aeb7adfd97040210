// The mesh files under an unlucky operator, end to end (issue 12, item 7): while a policy
// file is rewritten in place and reads empty, the agents keep enforcing its DENY; emptying
// it on purpose (`# mtun: empty`) lifts it.
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { socks5Connect } from '../../lib/socks5-client.js';
import { EMPTY_MARKER } from '../../mesh/file-source.js';
import { converse } from '../helpers/apps.js';
import { eventually } from '../helpers/eventually.js';
import { RATINGS_DENY_WEB, startWorld, type World } from '../helpers/world.js';

/** web (node-a) → ratings (node-b) over HBONE: the answer, or 'refused'. */
async function webToRatings(w: World): Promise<string> {
  try {
    const s = await socks5Connect(
      w.socks('node-a'),
      { host: w.ip('20.3'), port: 9080 },
      { localAddress: w.ip('10.1') },
    );
    return await converse(s, ['x']);
  } catch {
    return 'refused';
  }
}

/** Resolves once both agents have read the mesh files after now (a new file is the mark). */
async function barrier(w: World, n: number): Promise<void> {
  await writeFile(
    join(w.meshDir, `zz-barrier-${n}.yaml`),
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: barrier-${n}}\n`,
  );
  for (const node of ['node-a', 'node-b'])
    await eventually(
      () =>
        w.mesh.agents
          .get(node)!
          .ctx.state.current.snapshot.namespaces.some((ns) => ns.meta.name === `barrier-${n}`),
      `${node} read barrier ${n}`,
      10_000,
    );
}

t.test('a DENY file rewritten in place keeps denying; emptied on purpose it lifts', async (t) => {
  const w = await startWorld(t, { files: { 'deny.yaml': RATINGS_DENY_WEB } });
  const file = join(w.meshDir, 'deny.yaml');
  t.equal(await webToRatings(w), 'refused', 'denied at start');
  for (let i = 0; i < 3; i++) {
    const fh = await open(file, 'w'); // truncated: the file reads empty until written
    await barrier(w, i); // both agents have now reloaded with the empty file in place
    t.equal(await webToRatings(w), 'refused', `still denied while the file is empty (${i})`);
    await fh.writeFile(RATINGS_DENY_WEB);
    await fh.close();
  }
  const denials = w.access
    .get('node-b')!
    .filter((l) => l['dst.workload'] === 'ratings-1' && l['verdict'] === 'deny');
  t.ok(denials.length >= 4, 'each refusal was the receiving agent applying the DENY');
  t.notOk(
    w.access
      .get('node-b')!
      .some((l) => l['dst.workload'] === 'ratings-1' && l['verdict'] === 'allow'),
    'ratings never accepted web',
  );
  await writeFile(file, `${EMPTY_MARKER}\n`);
  await eventually(
    async () => (await webToRatings(w)).startsWith('ratings-1 x'),
    'allowed once the file is emptied on purpose',
    10_000,
  );
  t.pass('emptied on purpose: the DENY is lifted');
});
