// Frames on streams that are already closed, as the own engine remembers them (a bounded
// memory of the last 256, then "reset by us" for every older id): a peer that keeps sending
// on a stream gets one RST_STREAM, not one per frame (an unbounded answer flood otherwise),
// and late frames on long-gone streams are ignored rather than failing the connection.
import t from 'tap';
import { ErrorCode as E, rstStreamFrame } from '../../hbone/h2/frame.js';
import { data, handshake, open, pair, tick, times } from './h2-helpers.js';

t.test(
  'DATA on a stream the peer reset is answered once, however many frames follow',
  async (t) => {
    const c = await pair('server');
    handshake(c.peer, 'server');
    await tick();
    open(c, 1);
    await tick();
    c.peer.send(rstStreamFrame(1, E.CANCEL));
    c.peer.send(times(5000, data(1, 1)));
    await tick(3);
    t.ok(c.peer.rsts().length <= 1, `answered at most once (${c.peer.rsts().length} RST_STREAM)`);
    t.same(c.peer.goaways(), [], 'the connection stays');
    c.session.destroy();
  },
);

t.test('late trailers on a stream we reset, after 300 other streams closed: ignored', async (t) => {
  const c = await pair('server', {
    onStream: (s) => {
      if (s.id === 1) s.close(E.CANCEL);
      else s.respond({ ':status': 200 }, { endStream: true });
    },
  });
  handshake(c.peer, 'server');
  await tick();
  open(c, 1);
  await tick();
  for (let id = 3; id < 3 + 2 * 300; id += 2) {
    open(c, id, true);
    await tick(1);
  }
  await tick();
  t.equal(c.session.openStreams, 0);
  t.same(c.peer.goaways(), [], 'no GOAWAY so far');
  c.peer.send(c.peer.headers(1, [['x-trailer', '1']], { endStream: true }));
  await tick();
  t.same(c.peer.goaways(), [], 'the connection stays');
  c.session.destroy();
});

t.test(
  'late DATA on a stream the peer reset, after 300 other streams closed: ignored',
  async (t) => {
    const c = await pair('server', {
      onStream: (s) => {
        if (s.id !== 1) s.respond({ ':status': 200 }, { endStream: true });
      },
    });
    handshake(c.peer, 'server');
    await tick();
    open(c, 1);
    await tick();
    c.peer.send(rstStreamFrame(1, E.CANCEL));
    for (let id = 3; id < 3 + 2 * 300; id += 2) {
      open(c, id, true);
      await tick(1);
    }
    await tick();
    const before = c.peer.rsts().length;
    c.peer.send(data(1, 10));
    await tick();
    t.equal(c.peer.rsts().length - before, 0, 'no answer');
    t.same(c.peer.goaways(), [], 'the connection stays');
    c.session.destroy();
  },
);
