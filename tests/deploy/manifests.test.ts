// Every manifest under deploy/ checked offline: against the Kubernetes and Istio schemas
// (kubernetes-models 4.5.1, @kubernetes-models/istio 2.3.0), for unknown fields (which those
// miss), against the CRDs we ship, through mtun's own converter; then the wiring between
// them (RBAC covers exactly what the code reads, token audience, Secret names, ports, probes,
// grace period vs drain, flags the CLI really has).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1';
import { PeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1beta1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { convertDocuments } from '../../mesh/convert/index.js';
import { AGENT_RESOURCES, CA_RESOURCES, RESOURCES } from '../../mesh/kube/resources.js';
import { run } from '../../testkit/exec.js';
import { modelOf, schemaProblems, unknownFields } from './schema.js';

// biome-ignore lint/suspicious/noExplicitAny: manifests are read as plain JSON
type Doc = Record<string, any>;

// biome-ignore lint/suspicious/noExplicitAny: each model takes its own shape
const MODELS: Record<string, new (d: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
  'security.istio.io/v1/AuthorizationPolicy': AuthorizationPolicy,
  // @kubernetes-models/istio 2.3.0 has PeerAuthentication only as v1beta1 (the same schema).
  'security.istio.io/v1/PeerAuthentication': PeerAuthentication,
};

function load(dir: string): { file: string; doc: Doc }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => {
        if (d.errors.length) throw new Error(`${f}: ${d.errors[0]!.message}`);
        return { file: join(dir, f), doc: d.toJS() as Doc };
      }),
    )
    .filter((d) => d.doc);
}

const manifests = [...load('deploy/k8s'), ...load('deploy/k8s/sample')].filter(
  (d) => d.doc['kind'] !== 'Kustomization',
);
const crds = manifests.filter((m) => m.doc['kind'] === 'CustomResourceDefinition');
const crdSchema = (kind: string, version: string) =>
  crds
    .find((c) => c.doc['spec'].names.kind === kind)!
    .doc['spec'].versions.find((v: Doc) => v['name'] === version).schema.openAPIV3Schema;

/** Every problem of one manifest: schema, unknown fields, CRD schema, mtun's converter. */
function problems(doc: Doc): string[] {
  const key = `${doc['apiVersion']}/${doc['kind']}`;
  const Model = MODELS[key];
  if (!Model) return [`${key}: no schema to check it against`];
  const out: string[] = [];
  try {
    const asModel =
      doc['kind'] === 'PeerAuthentication'
        ? { ...doc, apiVersion: 'security.istio.io/v1beta1' }
        : doc;
    new Model(asModel).validate();
  } catch (err) {
    out.push(`schema: ${(err as Error).message}`);
  }
  const model = modelOf(doc['apiVersion'], doc['kind']);
  if (model) out.push(...unknownFields(doc, model).map((p) => `unknown field ${p}`));
  else {
    out.push(...schemaProblems({ spec: doc['spec'] }, crdSchema(doc['kind'], 'v1')));
    try {
      convertDocuments([{ doc, origin: { source: 'deploy' } }], { clusterDomain: 'cluster.local' });
    } catch (err) {
      out.push(`mtun: ${(err as Error).message}`);
    }
  }
  return out;
}

t.test('every manifest passes the Kubernetes/Istio schemas and has no unknown field', async (t) => {
  t.ok(manifests.length >= 20, `${manifests.length} manifests`);
  for (const { file, doc } of manifests) {
    t.same(problems(doc), [], `${file}: ${doc['kind']} ${doc['metadata']?.name}`);
  }
});

t.test('the checks catch what they are for', async (t) => {
  const ds = structuredClone(manifests.find((m) => m.doc['kind'] === 'DaemonSet')!.doc);
  ds['spec'].template.spec.containers[0].imagePullPolicyy = 'Always';
  t.match(problems(ds), ['unknown field spec.template.spec.containers[0].imagePullPolicyy']);
  const noSelector = structuredClone(ds);
  delete noSelector['spec'].selector;
  delete noSelector['spec'].template.spec.containers[0].imagePullPolicyy;
  t.match(problems(noSelector), [/schema: .*selector/]);
  const crd = structuredClone(crds[0]!.doc);
  crd['spec'].versions[0].schemaa = {};
  t.match(problems(crd), ['unknown field spec.versions[0].schemaa']);
  const ap = structuredClone(manifests.find((m) => m.doc['kind'] === 'AuthorizationPolicy')!.doc);
  ap['spec'].actionn = 'DENY';
  const p = problems(ap);
  t.ok(
    p.some((x) => x === 'spec.actionn: unknown field'),
    'CRD schema',
  );
  t.ok(
    p.some((x) => /mtun: .*actionn/.test(x)),
    "mtun's converter",
  );
  const bad = structuredClone(manifests.find((m) => m.doc['kind'] === 'PeerAuthentication')!.doc);
  bad['spec'].mtls.mode = 'STRIKT';
  t.ok(
    problems(bad).some((x) => /schema: .*allowed values/.test(x)),
    'Istio schema enum',
  );
  t.ok(
    problems(bad).some((x) => /STRIKT/.test(x)),
    'CRD enum',
  );
});

t.test('kustomizations list every file of their directory', async (t) => {
  for (const dir of ['deploy/k8s', 'deploy/k8s/sample']) {
    const k = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]!.toJS();
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    t.same([...k.resources].sort(), files.sort(), dir);
  }
});

const find = (kind: string, name: string) =>
  manifests.find((m) => m.doc['kind'] === kind && m.doc['metadata'].name === name)?.doc as Doc;
const argsOf = (c: Doc) =>
  new Map(
    (c['args'] as string[])
      .filter((a) => a.startsWith('--'))
      .map((a) => [a.split('=')[0]!, a.split('=').slice(1).join('=')]),
  );

t.test('RBAC grants exactly what the code lists and watches', async (t) => {
  const rules = (name: string) => find('ClusterRole', name)['rules'] as Doc[];
  const granted = (name: string, verb: string) =>
    rules(name)
      .flatMap((r) => (r['verbs'].includes(verb) ? r['resources'] : []) as string[])
      .sort();
  t.same(granted('mtun-agent', 'list'), [...AGENT_RESOURCES].sort());
  t.same(granted('mtun-agent', 'watch'), [...AGENT_RESOURCES].sort());
  t.same(
    rules('mtun-agent')
      .flatMap((r) => r['verbs'])
      .filter((v: string) => v !== 'list' && v !== 'watch'),
    [],
    'agent: read-only',
  );
  for (const r of rules('mtun-agent')) {
    for (const res of r['resources']) {
      const group = RESOURCES[res as keyof typeof RESOURCES].apiVersion.split('/');
      t.equal(r['apiGroups'][0], group.length === 2 ? group[0] : '', `${res} in its API group`);
    }
  }
  t.same(granted('mtun-ca', 'watch'), [...CA_RESOURCES].sort());
  t.same(granted('mtun-ca', 'get'), ['pods'], 'CA gets the bound pod');
  t.same(granted('mtun-ca', 'create'), ['tokenreviews']);
  const secretRule = find('Role', 'mtun-ca-root')['rules'].find((r: Doc) =>
    r['verbs'].includes('get'),
  );
  t.same(secretRule['resourceNames'], ['mtun-ca-root']);
});

t.test('CA and agent agree: audience, service account, Secret, ports, probes, drain', async (t) => {
  const ca = find('Deployment', 'mtun-ca')['spec'].template.spec;
  const ds = find('DaemonSet', 'mtun-agent')['spec'];
  const agent = ds.template.spec;
  const caArgs = argsOf(ca.containers[0]);
  const agentArgs = argsOf(agent.containers[0]);
  const tokenVol = agent.volumes.find((v: Doc) => v['projected']);
  t.equal(
    tokenVol.projected.sources[0].serviceAccountToken.audience,
    caArgs.get('--token-audience'),
  );
  t.equal(caArgs.get('--agent-service-account'), `mtun-system/${agent.serviceAccountName}`);
  t.equal(
    caArgs.get('--root-secret'),
    `mtun-system/${agent.volumes.find((v: Doc) => v['secret']).secret.secretName}`,
  );
  const mountOf = (name: string) =>
    agent.containers[0].volumeMounts.find((m: Doc) => m['name'] === name).mountPath;
  t.equal(agentArgs.get('--ca-token-file'), `${mountOf(tokenVol.name)}/token`);
  t.equal(agentArgs.get('--ca-bundle'), `${mountOf('ca-root')}/root-cert.pem`);
  t.equal(
    new URL(agentArgs.get('--ca')!).port,
    String(find('Service', 'mtun-ca')['spec'].ports[0].port),
  );
  t.equal(caArgs.get('--listen'), `0.0.0.0:${ca.containers[0].ports[0].containerPort}`);
  t.equal(agent.hostNetwork, true);
  t.same(agent.containers[0].securityContext.capabilities.add, ['NET_ADMIN', 'NET_RAW']);
  t.equal(mountOf('xtables-lock'), '/run/xtables.lock');
  t.equal(
    agent.volumes.find((v: Doc) => v['name'] === 'xtables-lock').hostPath.path,
    '/run/xtables.lock',
  );
  t.equal(agent.containers[0].readinessProbe.httpGet.path, '/healthz/ready');
  t.equal(
    String(agent.containers[0].readinessProbe.httpGet.port),
    agentArgs.get('--readiness')!.split(':')[1],
    'the probe asks the readiness listener',
  );
  t.equal(agentArgs.get('--readiness'), '0.0.0.0:15021', "ztunnel's readiness port");
  t.equal(agentArgs.get('--metrics'), '0.0.0.0:15020');
  t.ok(agent.containers[0].resources.requests.cpu && agent.containers[0].resources.requests.memory);
  // ztunnel's chart sets no limits: a memory limit below the load peak kills the data path.
  t.notOk(agent.containers[0].resources.limits?.memory, 'no memory limit, as ztunnel');
  t.equal(ds.updateStrategy.type, 'RollingUpdate');
  const drainS = Number(/^(\d+)s$/.exec(agentArgs.get('--drain-period')!)![1]);
  t.ok(
    agent.terminationGracePeriodSeconds >= drainS + 5,
    `grace ${agent.terminationGracePeriodSeconds}s covers a ${drainS}s drain`,
  );
  t.equal(agentArgs.get('--redirect'), 'iptables');
  t.equal(agentArgs.get('--listen-ip'), '0.0.0.0');
  t.equal(find('Service', 'mtun-agent-metrics')['spec'].ports[0].name, 'http-metrics');
});

t.test('every flag in the manifests is one the CLI has', async (t) => {
  for (const [name, kind, cmd] of [
    ['mtun-ca', 'Deployment', 'ca'],
    ['mtun-agent', 'DaemonSet', 'agent'],
  ] as const) {
    const c = find(kind, name)['spec'].template.spec.containers[0];
    t.equal(c.args[0], cmd);
    const help = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', cmd, '--help']);
    t.equal(help.code, 0);
    for (const flag of argsOf(c).keys())
      t.match(help.stdout, new RegExp(`${flag} `), `${cmd} ${flag}`);
  }
});

t.test('the sample policies convert and the kind config has only known fields', async (t) => {
  const sample = load('deploy/k8s/sample').map(({ file, doc }) => ({
    doc,
    origin: { source: file },
  }));
  const objects = convertDocuments(sample, { clusterDomain: 'cluster.local' });
  t.equal(objects.authorizationPolicies.length, 3);
  t.equal(objects.peerAuthentications[0]?.mode, 'STRICT');
  const kind = load('deploy/kind')[0]!.doc;
  const known: Record<string, string[]> = {
    '': [
      'kind',
      'apiVersion',
      'name',
      'nodes',
      'networking',
      'featureGates',
      'runtimeConfig',
      'kubeadmConfigPatches',
      'containerdConfigPatches',
    ],
    nodes: ['role', 'image', 'extraMounts', 'extraPortMappings', 'labels', 'kubeadmConfigPatches'],
    networking: [
      'ipFamily',
      'apiServerAddress',
      'apiServerPort',
      'podSubnet',
      'serviceSubnet',
      'disableDefaultCNI',
      'kubeProxyMode',
      'dnsSearch',
    ],
  };
  t.same(
    Object.keys(kind).filter((k) => !known['']!.includes(k)),
    [],
  );
  t.same(
    Object.keys(kind['networking']).filter((k) => !known['networking']!.includes(k)),
    [],
  );
  for (const n of kind['nodes'])
    t.same(
      Object.keys(n).filter((k) => !known['nodes']!.includes(k)),
      [],
    );
  t.equal(kind['apiVersion'], 'kind.x-k8s.io/v1alpha4');
  t.equal(kind['networking'].disableDefaultCNI, false, 'kindnet: veth-wired pods');
  t.ok(
    kind['nodes'].filter((n: Doc) => n['role'] === 'worker').length >= 2,
    'two nodes for cross-node traffic',
  );
});
