// The mesh over time: plaintext under STRICT/PERMISSIVE, certificate renewal under
// traffic, the CA going away, and draining on shutdown.
import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { socks5Connect } from '../../lib/socks5-client.js';
import { converse, readUntil } from '../helpers/apps.js';
import { eventually } from '../helpers/eventually.js';
import { startWorld, type World } from '../helpers/world.js';

const web = (w: World) => ({ localAddress: w.ip('10.1') });

t.test('STRICT refuses plaintext on 15006, PERMISSIVE accepts it', async (t) => {
  // The kernel's original destination is the seam here (no iptables in this test): the
  // client's source address says which pod it was trying to reach.
  const intended = new Map<string, { ip: string; port: number }>();
  const strict =
    'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: shop}\nspec: {mtls: {mode: STRICT}}\n';
  const w = await startWorld(t, {
    files: { 'pa.yaml': strict },
    originalDestination: (s: Socket) => intended.get(s.remoteAddress ?? ''),
  });
  intended.set('127.0.99.1', { ip: w.ip('20.1'), port: 9080 });
  const plaintext = w.mesh.agents.get('node-b')!.addresses().inboundPlaintext!;
  const attempt = () =>
    new Promise<string>((resolve) => {
      const s = connect({
        host: plaintext.host,
        port: plaintext.port,
        localAddress: '127.0.99.1',
        allowHalfOpen: true,
      });
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('error', () => {});
      s.on('close', () => resolve(out));
      s.end('plain\n');
    });
  t.equal(await attempt(), '', 'STRICT: closed without data');
  const denied = w.access
    .get('node-b')!
    .find((l) => l['direction'] === 'inbound' && l['security'] === 'none')!;
  t.equal(denied['verdict'], 'deny');
  t.equal(denied['policy'], 'shop/default');
  await writeFile(join(w.meshDir, 'pa.yaml'), strict.replace('STRICT', 'PERMISSIVE'));
  await eventually(
    async () => (await attempt()) === 'reviews-1 plain\nreviews-1 bye\n',
    'PERMISSIVE accepts plaintext',
  );
  t.pass('PERMISSIVE: the pod answered');

  // Not redirected (no original destination) = a loop: refused.
  const loop = await new Promise<string>((resolve) => {
    const s = connect({ host: plaintext.host, port: plaintext.port, localAddress: '127.0.99.2' });
    s.on('error', () => {});
    s.on('close', () => resolve('closed'));
  });
  t.equal(loop, 'closed');
  t.ok(w.access.get('node-b')!.some((l) => l['error_code'] === 'SELF_CALL'));
});

t.test('certificate renewal under traffic drops nothing', async (t) => {
  const w = await startWorld(t, { certTtlSeconds: 2 });
  const agentA = w.mesh.agents.get('node-a')!;
  const serial = () =>
    agentA.ctx.certs.status().find((s) => s.identity.endsWith('/sa/web'))!.serial;
  const first = serial();
  // A long-lived connection that keeps talking across renewals…
  const long = await socks5Connect(w.socks('node-a'), { host: w.ip('20.1'), port: 9080 }, web(w));
  let failures = 0;
  let done = 0;
  const end = Date.now() + 3_500; // ~3 renewals of a 2 s certificate
  let i = 0;
  while (Date.now() < end) {
    long.write(`ping ${i}\n`);
    await readUntil(long, new RegExp(`ping ${i}\\n`));
    // …and new connections all along.
    try {
      const answer = await converse(
        await socks5Connect(w.socks('node-a'), { host: 'reviews.shop', port: 80 }, web(w)),
        [`n${i}`],
      );
      if (!answer.includes(`n${i}`)) failures++;
      done++;
    } catch {
      failures++;
    }
    i++;
  }
  long.end();
  t.not(serial(), first, 'the certificate was renewed meanwhile');
  t.equal(
    failures,
    0,
    `no connection failed (${done} new connections, ${i} round trips on the long one)`,
  );
  t.ok(done > 20);
});

t.test('CA down: the agents keep serving with the certificates they have', async (t) => {
  const w = await startWorld(t);
  await w.mesh.ca.close();
  for (let i = 0; i < 5; i++) {
    const answer = await converse(
      await socks5Connect(w.socks('node-a'), { host: w.ip('20.2'), port: 9080 }, web(w)),
      ['still'],
    );
    t.equal(answer, 'reviews-2 still\nreviews-2 bye\n');
  }
  t.equal(
    w.mesh.agents.get('node-a')!.notReadyReason(),
    undefined,
    'still ready: certificates are valid',
  );
});

t.test('shutdown drains an open transfer to completion and refuses new connections', async (t) => {
  const w = await startWorld(t, { drainPeriodMs: 10_000 });
  const socks = w.socks('node-a');
  const conn = await socks5Connect(socks, { host: w.ip('20.1'), port: 9080 }, web(w));
  const size = 32 * 1024 * 1024;
  let got = 0;
  conn.on('data', (d) => {
    got += d.length;
  });
  const finished = new Promise<void>((r) => conn.on('close', () => r()));
  conn.write(`stream ${size}\n`);
  await eventually(() => got > 0, 'transfer started');
  conn.pause(); // keep it in flight while the agent starts draining
  const closing = w.mesh.agents.get('node-a')!.close(10_000);
  await new Promise((r) => setTimeout(r, 100));
  const refused = await socks5Connect(socks, { host: w.ip('20.1'), port: 9080 }, web(w)).then(
    () => 'connected',
    () => 'refused',
  );
  t.equal(refused, 'refused', 'no new connections while draining');
  conn.resume();
  await eventually(() => got >= size, 'transfer completed', 20_000);
  conn.end();
  await finished;
  await closing;
  t.equal(got, size + 'reviews-1 bye\n'.length, 'every byte arrived, and the answer to our FIN');
});

t.test(
  'issue 12: an idle tunnel does not hold the client-side agent past its drain period, and is reset',
  async (t) => {
    const w = await startWorld(t, { drainPeriodMs: 500 });
    const idle = await socks5Connect(w.socks('node-a'), { host: w.ip('20.1'), port: 9080 }, web(w));
    let how = 'open';
    idle.on('error', () => {
      how = 'reset';
    });
    idle.on('end', () => {
      how = how === 'open' ? 'fin' : how;
    });
    const closed = new Promise<void>((r) => idle.on('close', () => r()));
    const started = Date.now();
    await w.mesh.agents.get('node-a')!.close(500);
    const took = Date.now() - started;
    t.ok(took < 3_000, `the agent stopped ${took} ms after SIGTERM with a 500 ms drain period`);
    await closed;
    t.equal(how, 'reset', 'the idle client was reset, not told the data ended');
  },
);

t.test(
  'issue 12: SOCKS5 clients that vanish while their tunnel is set up leave nothing open',
  async (t) => {
    const w = await startWorld(t);
    const { connect } = await import('node:net');
    const socks = w.socks('node-a');
    const request = Buffer.concat([
      Buffer.from([5, 1, 0, 5, 1, 0, 1]),
      Buffer.from(w.ip('20.1').split('.').map(Number)),
      Buffer.from([9080 >> 8, 9080 & 255]),
    ]);
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const s = connect({ host: socks.host, port: socks.port, localAddress: w.ip('10.1') });
        s.on('error', () => {});
        return new Promise<void>((resolve) => {
          s.on('connect', () => {
            s.write(request);
            // Gone at once, or a little later: some while the tunnel is still opening.
            setTimeout(() => s.resetAndDestroy(), i % 6);
          });
          s.on('close', () => resolve());
        });
      }),
    );
    const a = w.mesh.agents.get('node-a')!;
    const b = w.mesh.agents.get('node-b')!;
    const tunnelsAtB = () =>
      (b.configDump() as { mtun: { inbound: { tunnels: number } } }).mtun.inbound.tunnels;
    await eventually(
      () => a.ctx.drain.size === 0 && a.ctx.hbone.stats().streams === 0 && tunnelsAtB() === 0,
      'nothing open',
      10_000,
    );
    t.equal(a.ctx.hbone.stats().streams, 0, 'the pool holds no stream');
    t.equal(tunnelsAtB(), 0, 'the server side holds no tunnel');
  },
);
