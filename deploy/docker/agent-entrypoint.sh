#!/bin/sh
# Starts `mtun agent` with the iptables backend the node already uses (legacy or nft), the
# way kube-proxy's iptables-wrapper decides: the backend holding more rules wins. Rules in the
# other backend would be ignored by the kernel path kube-proxy and the CNI use. The root file
# system is read-only, so the choice is a PATH entry in /run/mtun (an emptyDir).
# MTUN_XTABLES_DIR, MTUN_SBIN and MTUN_MAIN exist for tests/deploy/scripts.test.ts.
set -eu

bin=${MTUN_XTABLES_DIR:-/run/mtun/xtables}
sbin=${MTUN_SBIN:-/usr/sbin}
mkdir -p "$bin"
count() {
  { "$sbin/iptables-$1-save" 2>/dev/null || true; "$sbin/ip6tables-$1-save" 2>/dev/null || true; } | grep -c '^-' || true
}
legacy=$(count legacy)
nft=$(count nft)
mode=nft
if [ "$legacy" -gt "$nft" ]; then mode=legacy; fi
for t in iptables ip6tables; do
  for suffix in "" -save -restore; do
    ln -sf "$sbin/$t-$mode$suffix" "$bin/$t$suffix"
  done
done
echo "mtun-agent-entrypoint: iptables backend $mode (rules: legacy $legacy, nft $nft)" >&2
PATH="$bin:$PATH"
export PATH
exec node "${MTUN_MAIN:-/app/dist/cli/main.js}" "$@"
