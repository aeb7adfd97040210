// A TCP relay run inside a namespace: every connection to HOST:PORT is spliced onto the
// UNIX socket PATH. Filesystem sockets are not scoped by network namespace, so this is how
// processes in the topology reach a server in the test process. Prints one line once bound.
// Usage: node --import tsx relay.ts HOST PORT PATH
import { connect, createServer, type Socket } from 'node:net';

const [host, port, path] = process.argv.slice(2);
if (!host || !port || !path) {
  process.stderr.write('usage: relay.ts HOST PORT PATH\n');
  process.exit(2);
}

/** Both directions, half-closes passed on; either side failing ends both. */
function splice(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

createServer((client) => splice(client, connect(path)))
  .on('error', (err) => {
    process.stderr.write(`relay: ${err.message}\n`);
    process.exit(1);
  })
  .listen(Number(port), host, () => process.stdout.write(`relay listening on ${host}:${port}\n`));
