// The node:http2 engine, kept selectable while the own engine proves itself (issue 16),
// still passes the tunnel, fault and limit tests it was built against: the same files,
// run here with MTUN_HBONE_ENGINE=node (read when each client and server is made).
process.env.MTUN_HBONE_ENGINE = 'node';
await import('./tunnel.test.js');
await import('./faults.test.js');
await import('./limits.test.js');
