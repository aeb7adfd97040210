// Tiny TCP apps that stand in for pods: each listens on its pod IP and answers every line
// with "<pod> <line>", keeps half-close (answers after the client's FIN too), and can
// stream a fixed number of bytes on request ("stream N").
import { createServer, type Server, type Socket } from 'node:net';

export interface App {
  readonly name: string;
  readonly server: Server;
  readonly sockets: Set<Socket>;
}

export async function startApp(name: string, ip: string, port: number): Promise<App> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const m = /^stream (\d+)$/.exec(line);
        if (m) {
          streamBytes(s, Number(m[1]));
          continue;
        }
        s.write(`${name} ${line}\n`);
      }
    });
    s.on('end', () => {
      s.end(`${name} bye\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return { name, server, sockets };
}

function streamBytes(s: Socket, n: number): void {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let left = n;
  const pump = () => {
    while (left > 0) {
      const part = chunk.subarray(0, Math.min(chunk.length, left));
      left -= part.length;
      if (!s.write(part)) return void s.once('drain', pump);
    }
  };
  pump();
}

export async function stopApps(apps: App[]): Promise<void> {
  for (const a of apps) for (const s of a.sockets) s.destroy();
  await Promise.all(apps.map((a) => new Promise((r) => a.server.close(r))));
}

/** Sends lines and collects the answer until the server closes. */
export function converse(
  s: Socket,
  lines: string[],
  opts: { end?: boolean } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    for (const l of lines) s.write(`${l}\n`);
    if (opts.end !== false) s.end();
  });
}

/** Reads until `pattern` appears in what was received (or the socket closes). */
export function readUntil(s: Socket, pattern: RegExp, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; got ${JSON.stringify(out)}`)),
      timeoutMs,
    );
    const onData = (d: Buffer) => {
      out += d.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(out);
      }
    };
    s.on('data', onData);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}
