// The target server in its own process, so that it does not share the load client's event
// loop: echo for round trips, a byte-counting sink for bulk (bench/lib/load.ts).
// Usage: node --import tsx bench/suite/target.ts IP PORT
import { startTarget } from '../lib/load.js';

const [ip, port] = process.argv.slice(2);
await startTarget(ip!, Number(port));
console.log('target ready');
setInterval(() => {}, 1 << 30); // stopped by the suite (SIGTERM), killed with it
