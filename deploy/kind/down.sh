#!/usr/bin/env bash
# Deletes the kind cluster that up.sh made (and with it everything in it).
#   deploy/kind/down.sh          # cluster "mtun"
set -euo pipefail

CLUSTER=${CLUSTER:-mtun}
command -v kind >/dev/null 2>&1 || {
  echo "down.sh: kind is not installed" >&2
  exit 1
}
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind delete cluster --name "$CLUSTER"
else
  echo "no kind cluster named $CLUSTER"
fi
