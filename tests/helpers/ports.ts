// Free TCP ports for the tests' processes: see lib/free-ports.ts (below the ephemeral range,
// so that a port stays free for an agent restarted on it).
export { freePort, freePortBlock } from '../../lib/free-ports.js';
