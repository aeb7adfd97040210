// The access-log line as ztunnel writes it (src/proxy/metrics.rs record_internal): field
// names and meanings, the level (info when complete, error with the error text when failed)
// and mtun's own fields, for the shapes of connection the proxy records.
import t from 'tap';
import { AgentMetrics } from '../../agent/observe/metrics.js';
import {
  type AccessLogLevel,
  type ConnectionFields,
  ConnectionRecord,
  type Transfer,
} from '../../agent/observe/record.js';
import { ConnectionFailure } from '../../agent/outcome.js';

/** Runs one connection's path through a record; what the record wrote, and what the client
 *  was refused with. */
async function record(fields: ConnectionFields, path: (r: ConnectionRecord) => Promise<Transfer>) {
  const out: { line: Record<string, unknown>; level: AccessLogLevel | undefined }[] = [];
  const refused: ConnectionFailure[] = [];
  await ConnectionRecord.run(
    fields,
    new AgentMetrics(),
    { write: (line, level) => out.push({ line, level }) },
    path,
    { refuse: (f) => refused.push(f) },
  );
  return { out, refused };
}

t.test('outbound through HBONE: dst.addr dialed, dst.hbone_addr the target', async (t) => {
  const { out } = await record(
    {
      direction: 'outbound',
      src: {
        addr: '10.0.1.5:40000',
        workload: 'web-1',
        namespace: 'shop',
        identity: 'spiffe://cluster.local/ns/shop/sa/web',
      },
      dst: {
        addr: '10.0.2.7:9080',
        hboneAddr: '10.0.2.7:15008',
        workload: 'reviews-1',
        namespace: 'shop',
        identity: 'spiffe://cluster.local/ns/shop/sa/reviews',
        service: 'reviews.shop.svc.cluster.local',
      },
      security: 'mutual_tls',
    },
    // 100 bytes from the client, 2000 back to it.
    async () => ({ sent: 100, received: 2000, error: undefined }),
  );
  t.equal(out.length, 1, 'one line per connection');
  const { line, level } = out[0]!;
  t.equal(level, 'info');
  t.equal(line['dst.addr'], '10.0.2.7:15008');
  t.equal(line['dst.hbone_addr'], '10.0.2.7:9080');
  t.equal(line['direction'], 'outbound');
  t.equal(line['bytes_sent'], 100, 'outbound: what the client sent');
  t.equal(line['bytes_recv'], 2000, 'outbound: what came back');
  t.match(line['duration'], /^\d+ms$/);
  t.equal(line['src.identity'], 'spiffe://cluster.local/ns/shop/sa/web');
  t.equal(line['error'], undefined);
});

t.test('inbound: bytes from the server side; a failure at error level with its text', async (t) => {
  const { out } = await record(
    {
      direction: 'inbound',
      src: { addr: '10.0.1.5:40000', identity: 'spiffe://cluster.local/ns/shop/sa/web' },
      dst: { addr: '10.0.2.7:9080', hboneAddr: '10.0.2.7:15008' },
      security: 'mutual_tls',
      verdict: 'deny',
      policy: 'shop/deny-web',
      reason: 'DENY policy shop/deny-web rule 0 matched',
    },
    // Closed by a policy change after it carried bytes.
    async (r) => {
      r.fail('DENY', 'denied by policy shop/deny-web');
      return { sent: 7, received: 3, error: new Error('reset') };
    },
  );
  const { line, level } = out[0]!;
  t.equal(level, 'error');
  t.equal(line['error'], 'denied by policy shop/deny-web', "ztunnel's error: the text");
  t.equal(line['response_flags'], 'DENY');
  t.equal(line['error_code'], 'DENY');
  t.equal(line['bytes_recv'], 7, 'inbound: what the client sent');
  t.equal(line['bytes_sent'], 3, 'inbound: what went back');
  t.equal(line['verdict'], 'deny');
  t.equal(line['policy'], 'shop/deny-web');
  t.match(line['reason'], /DENY policy/);
});

t.test('plaintext: direction inbound, no identities, no hbone address', async (t) => {
  const { out, refused } = await record(
    {
      direction: 'inbound_plaintext',
      src: { addr: '10.0.9.9:5000', identity: 'spiffe://cluster.local/ns/x/sa/claimed' },
      dst: { addr: '10.0.2.7:8080', workload: 'web-2', namespace: 'strict' },
      security: 'none',
    },
    async () => {
      throw new ConnectionFailure('SELF_CALL', 'a loop');
    },
  );
  t.equal(refused[0]?.code, 'SELF_CALL', 'the client is refused with the failure');
  const { line } = out[0]!;
  t.equal(line['direction'], 'inbound');
  t.equal(line['security'], 'none');
  t.equal(line['dst.addr'], '10.0.2.7:8080');
  t.equal(line['dst.hbone_addr'], undefined);
  t.equal(line['src.identity'], undefined, 'identities only under mTLS');
  t.equal(line['response_flags'], 'CONNECT', 'a failure outside ztunnel’s flags is CONNECT');
  t.equal(line['error_code'], 'SELF_CALL', "mtun's precise code kept");
});
