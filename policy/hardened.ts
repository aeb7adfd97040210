// The hardened profile: one switch for "secure by default" (issue 17), as two policies the
// compiler adds for every mesh workload, in the root namespace:
//
//   <root>/mtun-hardened-strict         DENY  plaintext (no peer identity): STRICT mTLS
//                                              mesh-wide; PeerAuthentications are not
//                                              consulted (none can weaken it)
//   <root>/mtun-hardened-allow-nothing  ALLOW nothing: its presence turns on ztunnel's
//                                              "an ALLOW policy applies and none matched:
//                                              deny", so only what some ALLOW policy names
//                                              may connect
//
// The second is Charmed Istio's hardened mode (a global allow-nothing AuthorizationPolicy,
// not a DENY-all, so that ALLOW policies can still open what is needed); the first adds
// what it leaves to the operator: no plaintext at all. Exempt, as ambient exempts them:
// kubelet health probes. With mtun's capture they never reach the agent (the rules sit in
// PREROUTING; a probe is opened by the node itself and leaves through OUTPUT), and where
// probes are SNATed to istio-cni's probe address 169.254.7.127 (istio/istio
// cni/pkg/iptables/iptables.go, HostProbeSNATAddress) both policies let that address by.
// The node's own IP is not exempt: kube-proxy SNATs NodePort traffic to it. Pure data.
import { parseCidr } from './ip.js';
import { type CompiledPolicy, matchGroup } from './match.js';

/** istio-cni's SNAT source for kubelet probes into ambient pods. */
export const PROBE_SNAT_IP = '169.254.7.127';

const PROBE = [parseCidr(`${PROBE_SNAT_IP}/32`)!];

export interface HardenedPolicies {
  readonly strict: CompiledPolicy;
  readonly allowNothing: CompiledPolicy;
}

export const hardenedNames = {
  strict: 'mtun-hardened-strict',
  allowNothing: 'mtun-hardened-allow-nothing',
};

export function hardenedPolicies(rootNamespace: string): HardenedPolicies {
  const strict: CompiledPolicy = Object.freeze({
    key: `${rootNamespace}/${hardenedNames.strict}`,
    kind: 'HardenedProfile',
    namespace: rootNamespace,
    action: 'DENY',
    dryRun: false,
    rules: [
      {
        index: 0,
        clauses: [[matchGroup({ notPrincipals: [{ kind: 'presence' }], notSourceIps: PROBE })]],
        summary: 'plaintext (no peer identity), except kubelet probes',
      },
    ],
    l7: [],
  });
  const allowNothing: CompiledPolicy = Object.freeze({
    key: `${rootNamespace}/${hardenedNames.allowNothing}`,
    kind: 'HardenedProfile',
    namespace: rootNamespace,
    action: 'ALLOW',
    dryRun: false,
    rules: [
      {
        index: 0,
        clauses: [[matchGroup({ notPrincipals: [{ kind: 'presence' }], sourceIps: PROBE })]],
        summary: `kubelet probes (plaintext from ${PROBE_SNAT_IP})`,
      },
    ],
    l7: [],
  });
  return { strict, allowNothing };
}
