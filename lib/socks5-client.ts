// A minimal SOCKS5 client (RFC 1928 CONNECT, no auth) from a chosen local address, so the
// agent sees a pod IP as the source: used by `mtun demo` and the tests.
import { connect, isIP, type Socket } from 'node:net';

export class Socks5Refused extends Error {
  constructor(readonly replyCode: number) {
    super(`SOCKS5 reply ${replyCode}`);
  }
}

export function socks5Connect(
  proxy: { host: string; port: number },
  target: { host: string; port: number },
  opts: { localAddress?: string; timeoutMs?: number } = {},
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`SOCKS5 handshake with ${proxy.host}:${proxy.port} timed out`));
    }, opts.timeoutMs ?? 10_000);
    const s = connect({
      host: proxy.host,
      port: proxy.port,
      allowHalfOpen: true,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    let buf = Buffer.alloc(0);
    let phase = 0;
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('connect', () => s.write(Buffer.from([5, 1, 0])));
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (phase === 0 && buf.length >= 2) {
        if (buf[1] !== 0) return reject(new Error('no acceptable auth method'));
        buf = buf.subarray(2);
        phase = 1;
        const port = Buffer.from([target.port >> 8, target.port & 255]);
        const family = isIP(target.host);
        const addr =
          family === 4
            ? Buffer.from([1, ...target.host.split('.').map(Number)])
            : family === 6
              ? Buffer.concat([Buffer.from([4]), ipv6Bytes(target.host)])
              : Buffer.concat([Buffer.from([3, target.host.length]), Buffer.from(target.host)]);
        s.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, port]));
      }
      if (phase === 1 && buf.length >= 10) {
        clearTimeout(timer);
        // The 'error' listener stays (the settled promise ignores it): a late error must not
        // crash a caller that has not attached its own yet.
        s.off('data', onData);
        const rest = buf.subarray(10);
        if (buf[1] !== 0) {
          s.destroy();
          return reject(new Socks5Refused(buf[1]!));
        }
        if (rest.length) s.unshift(rest);
        resolve(s);
      }
    };
    s.on('data', onData);
  });
}

/** The 16 bytes of an IPv6 literal (`::ffff:10.0.0.5` included). */
function ipv6Bytes(ip: string): Buffer {
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), 2 * i);
  return out;
}
