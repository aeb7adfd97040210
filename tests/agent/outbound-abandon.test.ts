// A client that goes away while its tunnel is being set up (issue 15, item 2): the tunnel
// opened for it is closed, never left in the pool, and the connection is recorded exactly
// once on each side. The HBONE client's open() is held after it succeeded (the seam: the
// real tunnel, only later), and the SOCKS5 client resets in that window.
import { connect } from 'node:net';
import t from 'tap';
import type { HboneClient } from '../../hbone/index.js';
import { eventually } from '../helpers/eventually.js';
import { startWorld } from '../helpers/world.js';

t.test('a SOCKS5 client that vanishes during tunnel set-up leaks no tunnel', async (t) => {
  const w = await startWorld(t);
  const hbone: HboneClient = w.mesh.agents.get('node-a')!.ctx.hbone;
  const real = hbone.open.bind(hbone);
  let opened = 0;
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  hbone.open = async (req) => {
    const tunnel = await real(req);
    opened++;
    await held;
    return tunnel;
  };
  const target = w.ip('20.1').split('.').map(Number);
  const socks = w.socks('node-a');
  const s = connect({ host: socks.host, port: socks.port, localAddress: w.ip('10.1') });
  s.on('error', () => {});
  s.on('data', () => {});
  await new Promise((r) => s.once('connect', r));
  s.write(Buffer.from([5, 1, 0]));
  s.write(Buffer.from([5, 1, 0, 1, ...target, 9080 >> 8, 9080 & 0xff]));
  await eventually(() => opened === 1, 'the tunnel opened');
  t.equal(hbone.stats().streams, 1, 'one tunnel open for the client');
  s.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 100));
  release();
  const outbound = () => w.access.get('node-a')!.filter((l) => l['dst.workload'] === 'reviews-1');
  const inbound = () => w.access.get('node-b')!.filter((l) => l['dst.workload'] === 'reviews-1');
  await eventually(() => outbound().length === 1, 'the client side recorded it');
  await eventually(() => hbone.stats().streams === 0, 'the tunnel is closed');
  await eventually(() => inbound().length === 1, 'the server side recorded it');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(outbound().length, 1, 'recorded once on the client side');
  t.equal(outbound()[0]!['error_code'], 'CONNECTION_RESET', 'as a reset');
  t.equal(inbound().length, 1, 'recorded once on the server side');
  t.ok(inbound()[0]!['error'], `the server side saw it end abnormally: ${inbound()[0]!['error']}`);
  t.equal(w.mesh.agents.get('node-a')!.ctx.drain.size, 0, 'nothing left to drain');
});
