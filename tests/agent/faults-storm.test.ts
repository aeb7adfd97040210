// Application reset storms on a pooled HBONE connection between two real agent processes
// (issues 12 and 19): the pool, the long-lived tunnel on it and both agents survive.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import t from 'tap';
import { startAgentPair } from '../helpers/agent-procs.js';
import { client, startPod } from '../helpers/fault-apps.js';

t.test(
  'issue 19: application reset storms with a long-lived tunnel: both agents survive, the long tunnel too',
  async (t) => {
    const p = await startAgentPair(t);
    await startPod(t, p.ip('20.1'));
    const rounds = 6;
    const perRound = 1_000;
    const long = await client(p);
    const echo = async (s: Socket, text: string) => {
      s.write(text);
      let got = '';
      while (got.length < text.length) got += String((await once(s, 'data'))[0]);
      return got;
    };
    t.equal(await echo(long, 'long\n'), 'long\n');
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < perRound; i += 100) {
        await Promise.all(
          Array.from({ length: 100 }, async () => {
            const s = await client(p);
            s.on('error', () => {});
            await echo(s, 'x');
            const closed = once(s, 'close');
            s.resetAndDestroy();
            await closed;
          }),
        );
      }
      t.equal(await echo(long, `round ${round}\n`), `round ${round}\n`, `round ${round}: long ok`);
    }
    for (const node of ['node-a', 'node-b'] as const) {
      const proc = p.agent(node).child;
      t.ok(proc.exitCode === null && proc.signalCode === null, `${node} is alive`);
      t.notMatch(p.agent(node).output(), /uncaught/, `${node} logged no uncaught error`);
    }
    t.pass(`${rounds} storms of ${perRound} resets each`);
  },
);
