// `mtun authz check`: loads the mesh YAML, finds the destination pod and prints the verdict
// the receiving agent would give a connection, with the deciding policy, rule and reason.
// Exit status like `kubectl auth can-i`: 0 allow, 1 deny, 2 bad input (error on stderr).
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { InvalidSpiffeIdError, SpiffeId } from '../identity/spiffe-id.js';
import { ConfigError } from '../lib/errors.js';
import { convertDocuments } from '../mesh/convert/index.js';
import { readDocuments } from '../mesh/file-source.js';
import { MeshSnapshot } from '../mesh/snapshot.js';
import type { Workload } from '../mesh/types.js';
import {
  authorize,
  compile,
  type Decision,
  type PolicyStatus,
  peerAuthentication,
  policyStatuses,
} from '../policy/index.js';

interface CheckOptions {
  readonly mesh: string[];
  readonly to: string;
  readonly port: string;
  readonly fromPrincipal?: string;
  readonly fromIp?: string;
  readonly json?: boolean;
  readonly rootNamespace: string;
  readonly hardened?: boolean;
}

export function registerAuthz(program: Command): void {
  const authz = program
    .command('authz')
    .description('evaluate Istio AuthorizationPolicy and PeerAuthentication as mtun enforces them');
  authz
    .command('check')
    .description('decide one connection to a pod: exit 0 allow, 1 deny, 2 bad input')
    .requiredOption(
      '--mesh <path...>',
      'YAML files or directories with Pods, Services and policies',
    )
    .requiredOption('--to <namespace/pod>', 'destination pod')
    .requiredOption('--port <n>', 'destination (container) port')
    .option('--from-principal <spiffe-id>', 'peer identity; omit for a plaintext connection')
    .option('--from-ip <ip>', 'source IP (default 0.0.0.0, inside no ipBlocks but 0.0.0.0/0)')
    .option('--root-namespace <ns>', 'Istio root namespace', 'istio-system')
    .option(
      '--hardened',
      "decide as agents with --hardened do: STRICT and deny-by-default mesh-wide (kubelet probes from istio-cni's 169.254.7.127 exempt)",
    )
    .option(
      '--json',
      'print {"verdict", "policy", "rule", "reason", "status"} as JSON (status: Istio\'s ZtunnelAccepted condition of each policy in scope that ztunnel would not enforce as written)',
    )
    .action(async (opts: CheckOptions) => {
      process.exitCode = (await check(opts)).verdict === 'allow' ? 0 : 1;
    });
}

function parseArgs(opts: CheckOptions) {
  const to = /^([a-z0-9][a-z0-9.-]*)\/([a-z0-9][a-z0-9.-]*)$/.exec(opts.to);
  if (!to) throw new ConfigError(`--to ${JSON.stringify(opts.to)}: expected NAMESPACE/POD`);
  if (!/^[0-9]{1,5}$/.test(opts.port) || Number(opts.port) < 1 || Number(opts.port) > 65535) {
    throw new ConfigError(`--port ${JSON.stringify(opts.port)}: expected a port number 1-65535`);
  }
  let identity: SpiffeId | undefined;
  try {
    identity = opts.fromPrincipal === undefined ? undefined : SpiffeId.parse(opts.fromPrincipal);
  } catch (err) {
    if (err instanceof InvalidSpiffeIdError)
      throw new ConfigError(`--from-principal: ${err.message}`);
    throw err;
  }
  if (opts.fromIp !== undefined && isIP(opts.fromIp) === 0) {
    throw new ConfigError(
      `--from-ip ${JSON.stringify(opts.fromIp)}: expected an IPv4 or IPv6 address`,
    );
  }
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(opts.rootNamespace)) {
    throw new ConfigError(
      `--root-namespace ${JSON.stringify(opts.rootNamespace)}: expected a namespace name`,
    );
  }
  return {
    namespace: to[1]!,
    pod: to[2]!,
    port: Number(opts.port),
    identity,
    sourceIp: opts.fromIp ?? '0.0.0.0',
  };
}

/** The pod address the connection is sent to: same family as the source when possible. */
function destinationIp(w: Workload, sourceIp: string): string | undefined {
  const v6 = isIP(sourceIp) === 6;
  return w.ips.find((ip) => (isIP(ip) === 6) === v6) ?? w.ips[0];
}

async function check(opts: CheckOptions): Promise<Decision> {
  const args = parseArgs(opts);
  const { docs } = await readDocuments(opts.mesh);
  const snapshot = new MeshSnapshot(convertDocuments(docs, { clusterDomain: 'cluster.local' }), 1);
  const workload = snapshot.workload(args.namespace, args.pod);
  if (!workload) throw new ConfigError(`pod ${opts.to} not found in ${opts.mesh.join(', ')}`);
  const notes: string[] = [];
  if (!workload.inMesh)
    notes.push(
      `pod ${opts.to} is not in the mesh (istio.io/dataplane-mode); no agent would enforce this`,
    );
  const dstIp = destinationIp(workload, args.sourceIp);
  if (!dstIp)
    notes.push(
      `pod ${opts.to} has no IP; destination.ip conditions were evaluated against 0.0.0.0`,
    );
  const policies = compile(snapshot, {
    rootNamespace: opts.rootNamespace,
    hardened: opts.hardened === true,
  });
  const decision = authorize(
    {
      source: { identity: args.identity, ip: args.sourceIp },
      destination: { workload, ip: dstIp ?? '0.0.0.0', port: args.port },
    },
    policies,
  );
  const status = inScopeStatus(snapshot.authorizationPolicies, policies, workload);
  if (opts.json) {
    const { verdict, policy, rule, reason } = decision;
    process.stdout.write(`${JSON.stringify({ verdict, policy, rule, reason, status })}\n`);
    for (const n of notes) process.stderr.write(`mtun: note: ${n}\n`);
    return decision;
  }
  const mtls = peerAuthentication(workload, args.port, policies);
  const lines = [
    decision.verdict,
    `  policy:  ${decision.policy ? `${decision.policy} (${decision.policyKind})` : '(none)'}`,
    `  rule:    ${decision.rule ?? '(none)'}`,
    `  reason:  ${decision.reason}`,
    `  source:  ${args.identity ? args.identity.toString() : 'plaintext (no identity)'} from ${args.sourceIp}`,
    `  mTLS:    port ${args.port} is ${mtls.mode}: ${mtls.reason}`,
    ...(opts.hardened ? ['  profile: hardened (STRICT and deny-by-default mesh-wide)'] : []),
    ...dryRunLines(decision),
    ...status.map(
      (s) =>
        `  status:  ${s.policy}: ${s.condition} ${s.reason} (${s.enforced === 'none' ? 'no L4 effect' : 'enforced in part'}): ${s.message}`,
    ),
    ...notes.map((n) => `  note:    ${n}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return decision;
}

/** Istio's condition for each policy in scope of the destination that ztunnel would not
 *  enforce as written (policy/status.ts), in name order. */
function inScopeStatus(
  all: Parameters<typeof policyStatuses>[0],
  policies: ReturnType<typeof compile>,
  workload: Workload,
): PolicyStatus[] {
  const a = policies.applicable(workload);
  const inScope = new Set([...a.deny, ...a.allow, ...a.dryRun, ...a.ignored].map((p) => p.key));
  return [...policyStatuses(all).values()]
    .filter((s) => inScope.has(s.policy))
    .sort((x, y) => (x.policy < y.policy ? -1 : 1));
}

function dryRunLines({ verdict, dryRun }: Decision): string[] {
  if (!dryRun || (dryRun.matched.length === 0 && dryRun.verdict === verdict)) return [];
  const matched = dryRun.matched.map((m) => `${m.policy} (${m.action} rule ${m.rule})`).join(', ');
  return [`  dry-run: matched ${matched || 'nothing'}; would ${dryRun.verdict}: ${dryRun.reason}`];
}
