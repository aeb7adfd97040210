// Per-scope log levels (lib/logger.ts) and the admin /logging endpoint that sets them, as
// ztunnel's /logging does: `level=<level>` for the default, `level=<scope>:<level>,...` for
// scopes (a scope is a child logger's `module`), `reset`; a bad clause is a 400 that names it.
import { PassThrough } from 'node:stream';
import t from 'tap';
import { AdminServers } from '../../agent/admin.js';
import { createLogger, describeLogLevels, parseLogLevels } from '../../lib/logger.js';

function capture() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (b: Buffer) => {
    for (const l of b.toString().split('\n')) if (l) lines.push(JSON.parse(l));
  });
  return { stream, lines };
}

t.test('parse: ztunnel clauses, off, both separators; errors name the clause', async (t) => {
  t.same(parseLogLevels('info'), { level: 'info', scopes: [] });
  t.same(parseLogLevels('warn,access:debug,hbone=trace'), {
    level: 'warn',
    scopes: [
      ['access', 'debug'],
      ['hbone', 'trace'],
    ],
  });
  t.same(parseLogLevels('certs:off'), { level: undefined, scopes: [['certs', 'silent']] });
  t.throws(() => parseLogLevels('loud'), /level "loud" is invalid/);
  t.throws(() => parseLogLevels('access:loud'), /clause "access:loud" is invalid/);
  t.throws(() => parseLogLevels('access'), /level "access" is invalid/);
});

t.test('the admin /logging: a scope to debug, the rest unchanged; reset', async (t) => {
  const { stream, lines } = capture();
  const root = createLogger({ level: 'info', destination: stream });
  const access = root.child({ module: 'access' });
  const certs = root.child({ module: 'certs' });
  const admin = await AdminServers.create(
    {
      logger: root,
      configDump: () => ({}),
      notReadyReason: () => undefined,
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
      quit: () => {},
    },
    { host: '127.0.0.1', port: 0 },
    undefined,
  );
  t.teardown(() => admin.close());
  const at = admin.addresses()[0]!;
  const logging = async (query: string, method = 'POST') => {
    const res = await fetch(`http://127.0.0.1:${at.port}/logging${query}`, { method });
    return { status: res.status, body: await res.text() };
  };

  t.same(await logging(''), { status: 200, body: 'current log level is info\n' });
  t.same(await logging('?level=access:debug'), {
    status: 200,
    body: 'current log level is info,access:debug\n',
  });
  access.debug('a debug line of the access scope');
  certs.debug('a debug line of the certs scope');
  const late = root.child({ module: 'access' }); // made after the change: takes the level
  late.debug('a debug line of a later access logger');
  const msgs = () => lines.map((l) => l.msg);
  t.ok(msgs().includes('a debug line of the access scope'));
  t.ok(msgs().includes('a debug line of a later access logger'));
  t.notOk(msgs().includes('a debug line of the certs scope'), 'other scopes keep the default');

  const bad = await logging('?level=access:loud');
  t.equal(bad.status, 400);
  t.match(bad.body, /clause "access:loud" is invalid/);
  t.equal(describeLogLevels(root), 'info,access:debug', 'a bad request changes nothing');

  t.same(await logging('?level=warn,certs:off'), {
    status: 200,
    body: 'current log level is warn,access:debug,certs:off\n',
  });
  t.equal(access.level, 'debug');
  t.equal(certs.level, 'silent');
  t.equal(root.level, 'warn');
  t.same(await logging('?reset'), { status: 200, body: 'current log level is info\n' });
  t.equal(access.level, 'info');
  t.equal(certs.level, 'info');
  t.same(await logging('?level=debug', 'GET'), {
    status: 200,
    body: 'current log level is debug\n',
  });
  t.equal(certs.level, 'debug', 'the global level reaches every scope');
});
