// Free TCP ports for processes that must be told a fixed port (a CLI flag, a port shared by
// two addresses): asked of the kernel (port 0) and released, so free when asked, not reserved.
import { createServer } from 'node:net';

/** A port free on every one of `hosts` (the kernel picks it on the first; up to 20 tries). */
export async function freePort(hosts: readonly string[] = ['127.0.0.1']): Promise<number> {
  const [first, ...rest] = hosts;
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, first, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    let ok = true;
    for (const host of rest) {
      ok = await new Promise<boolean>((resolve) => {
        const s = createServer()
          .once('error', () => resolve(false))
          .listen(port, host, () => s.close(() => resolve(true)));
      });
      if (!ok) break;
    }
    if (ok) return port;
  }
  throw new Error('no free port');
}
