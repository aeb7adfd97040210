#!/usr/bin/env bash
# From nothing to a working mesh on kind: create the cluster, build the image and load it
# into the nodes, apply mtun (CRDs, RBAC, CA, agents) and the sample app, put the sample
# namespaces in the mesh, wait until everything is ready, then check that a request is
# tunnelled (the server side's agent logs the caller's SPIFFE identity) and that a denied
# one is refused. Needs docker (or podman as KIND_EXPERIMENTAL_PROVIDER), kind and kubectl.
#
#   deploy/kind/up.sh            # cluster "mtun", image mtun:dev
#   CLUSTER=x IMAGE=mtun:try deploy/kind/up.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
CLUSTER=${CLUSTER:-mtun}
IMAGE=${IMAGE:-mtun:dev}
ENGINE=${ENGINE:-docker}
TIMEOUT=${TIMEOUT:-180s}
ctx="kind-$CLUSTER"

say() { printf '\n== %s\n' "$*"; }
die() {
  echo "up.sh: $*" >&2
  exit 1
}
for tool in "$ENGINE" kind kubectl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done

say "cluster $CLUSTER"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "exists; reusing it"
else
  kind create cluster --name "$CLUSTER" --config "$here/cluster.yaml" --wait "$TIMEOUT"
fi
k() { kubectl --context "$ctx" "$@"; }

say "image $IMAGE"
"$ENGINE" build -t "$IMAGE" "$root"
kind load docker-image "$IMAGE" --name "$CLUSTER"

say "mtun (CRDs, RBAC, CA, agents)"
k apply -f "$root/deploy/k8s/namespace.yaml" -f "$root/deploy/k8s/crds.yaml"
k wait --for=condition=Established --timeout="$TIMEOUT" \
  crd/authorizationpolicies.security.istio.io crd/peerauthentications.security.istio.io
k apply -k "$root/deploy/k8s"
if [[ "$IMAGE" != "mtun:dev" ]]; then
  k -n mtun-system set image deployment/mtun-ca ca="$IMAGE"
  k -n mtun-system set image daemonset/mtun-agent agent="$IMAGE"
fi
k -n mtun-system rollout status deployment/mtun-ca --timeout="$TIMEOUT"
k -n mtun-system rollout status daemonset/mtun-agent --timeout="$TIMEOUT"

say "sample app, in the mesh"
k apply -k "$root/deploy/k8s/sample"
k label namespace frontend shop istio.io/dataplane-mode=ambient --overwrite
# Pods that started before the label are captured too: the agents watch the label.
k -n shop rollout status deployment/details deployment/reviews deployment/ratings --timeout="$TIMEOUT"
k -n frontend rollout status deployment/client --timeout="$TIMEOUT"
# The agents are ready only with certificates for every local identity.
k -n mtun-system rollout status daemonset/mtun-agent --timeout="$TIMEOUT"

say "smoke check"
curl_from_client() {
  k -n frontend exec deploy/client -- curl -sS -m 5 -o /dev/null -w '%{http_code}' "$1"
}
ok=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if [[ "$(curl_from_client http://details.shop:9080/hostname || true)" == 200 ]]; then
    ok=1
    break
  fi
  sleep 3
done
[[ $ok == 1 ]] || die "frontend/client -> shop/details was not answered"
echo "allowed: frontend/client -> details.shop:9080 answered 200"
if k -n mtun-system logs -l app.kubernetes.io/name=mtun-agent --tail=500 |
  grep -F '"direction":"inbound"' | grep -qF 'spiffe://cluster.local/ns/frontend/sa/client'; then
  echo "tunnelled: an agent accepted it over HBONE from spiffe://cluster.local/ns/frontend/sa/client"
else
  die "no inbound HBONE record with the client's identity in the agents' access log"
fi
if code=$(curl_from_client http://ratings.shop:9080/hostname); then
  die "frontend/client -> shop/ratings should be denied, got HTTP $code"
fi
echo "denied: frontend/client -> ratings.shop:9080 was refused (AuthorizationPolicy DENY)"

say "done"
echo "kubectl --context $ctx -n mtun-system get pods    # the CA and one agent per node"
echo "deploy/kind/down.sh                                 # delete the cluster"
