// The outcome table (agent/outcome.ts): every failure has one row, and what each observer
// sees follows from it: Istio's response_flags (only ztunnel's flags, else CONNECT), the
// HBONE status inbound answers with, the SOCKS5 reply; and errors from the dial and the
// HBONE client become the failures their rows describe.
import t from 'tap';
import {
  ConnectionFailure,
  FAILURES,
  type FailureCode,
  failureOf,
  responseFlagOf,
  socksReplyOf,
  tunnelRefusalOf,
} from '../../agent/outcome.js';
import { REPLY } from '../../agent/proxy/socks5-protocol.js';
import {
  ClientClosedError,
  ConnectFailedError,
  IdentityMismatchError,
  OpenAbortedError,
  ServerInternalError,
  statusOf,
  TimeoutError,
  TunnelDeniedError,
  UpstreamFailedError,
} from '../../hbone/index.js';
import { DialError } from '../../lib/dial.js';

const ZTUNNEL_FLAGS = ['DENY', 'CONNECT', 'TLS_FAILURE', 'IDENTITY_ERROR'];

t.test('each row maps to a ztunnel flag, an HBONE status and a SOCKS5 reply', async (t) => {
  for (const [code, row] of Object.entries(FAILURES)) {
    t.ok(ZTUNNEL_FLAGS.includes(row.responseFlag), `${code}: ${row.responseFlag}`);
    t.equal(responseFlagOf(code), row.responseFlag);
    const f = new ConnectionFailure(code as FailureCode, 'x');
    t.equal(socksReplyOf(f), row.socksReply);
    const refusal = tunnelRefusalOf(f, '10.0.0.1:80');
    t.equal(statusOf(refusal), row.status, `${code}: answered ${row.status}`);
  }
  t.equal(responseFlagOf(undefined), '-', 'no failure: "-"');
  t.equal(responseFlagOf('SOMETHING_ELSE'), 'CONNECT', 'unknown codes count as CONNECT');
  t.type(tunnelRefusalOf(new ConnectionFailure('DENY', 'x'), 't'), TunnelDeniedError);
  t.type(tunnelRefusalOf(new ConnectionFailure('CONNECT', 'x'), 't'), UpstreamFailedError);
  t.type(tunnelRefusalOf(new ConnectionFailure('INTERNAL', 'x'), 't'), ServerInternalError);
  t.equal(socksReplyOf(new ConnectionFailure('DENY', 'x')), REPLY.notAllowed);
});

t.test('errors from the path become failures by class', async (t) => {
  const rows: [unknown, FailureCode][] = [
    [new DialError('DIAL_FAILED', 'refused'), 'CONNECT'],
    [new DialError('DIAL_TIMEOUT', 'slow'), 'CONNECT'],
    [new DialError('DIAL_ABORTED', 'gone'), 'CONNECTION_RESET'],
    [new TunnelDeniedError('no'), 'DENY'],
    [new UpstreamFailedError('down'), 'CONNECT'],
    [new ConnectFailedError('unreachable'), 'UNREACHABLE'],
    [new TimeoutError('slow'), 'UNREACHABLE'],
    [new IdentityMismatchError('who'), 'TLS_FAILURE'],
    [new OpenAbortedError('gone'), 'CONNECTION_RESET'],
    [new ClientClosedError('stopping'), 'CONNECTION_RESET'],
    [new TypeError('a bug'), 'INTERNAL'],
    ['a string', 'INTERNAL'],
  ];
  for (const [err, code] of rows) {
    const f = failureOf(err);
    t.equal(f.code, code, `${(err as Error).constructor?.name ?? typeof err} → ${code}`);
    if (err instanceof Error) t.equal(f.message, err.message, 'the message is kept');
  }
  const own = new ConnectionFailure('SELF_CALL', 'loop');
  t.equal(failureOf(own), own, 'a ConnectionFailure is itself');
});
