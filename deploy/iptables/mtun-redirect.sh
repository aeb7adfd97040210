#!/usr/bin/env bash
# mtun's capture rules for operators (DESIGN.md §7): the same rules `mtun agent --redirect
# iptables` installs, for nodes where something else (a DaemonSet init step, a CNI hook, a
# person) manages them and the agent runs with --redirect none. Run it as root in the
# node's network namespace.
#
#   mtun-redirect.sh sync POD_IP...   replace the rules with these mesh pods' (IPv4 and IPv6)
#   mtun-redirect.sh remove           remove every rule mtun owns
#   mtun-redirect.sh render POD_IP... print the iptables-restore input, change nothing
#   mtun-redirect.sh show             print mtun's chains
# Options (before the command): --outbound-port N (15001), --inbound-port N (15008),
#   --inbound-plaintext-port N (15006).
#
# Owned: the nat chain MTUN-PREROUTING and the jumps into it from PREROUTING, per family.
# Nothing else is read or changed. Idempotent: the chain is replaced atomically with
# iptables-restore --noflush, and the jump is added only when missing. Per pod IP, in order:
#   from the pod to a non-local address -> outbound capture port
#   to the pod, port 15008               -> inbound HBONE port
#   to the pod, any other TCP port       -> inbound plaintext port
# Keep in step with agent/capture/rules.ts: tests/namespaced/rules.test.ts compares the two.
set -euo pipefail

CHAIN=MTUN-PREROUTING
PARENT=PREROUTING
JUMP=(-m comment --comment "mtun: transparent capture" -j "$CHAIN")
OUTBOUND=15001
HBONE=15008
PLAINTEXT=15006

die() {
  echo "mtun-redirect: $*" >&2
  exit 2
}

port() {
  [[ "$2" =~ ^[0-9]{1,5}$ ]] && ((10#$2 >= 1 && 10#$2 <= 65535)) || die "$1: expected a port, got '$2'"
  echo "$((10#$2))"
}

while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --outbound-port) OUTBOUND=$(port "$1" "${2-}"); shift 2 ;;
    --inbound-port) HBONE=$(port "$1" "${2-}"); shift 2 ;;
    --inbound-plaintext-port) PLAINTEXT=$(port "$1" "${2-}"); shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[[ $# -ge 1 ]] || die "usage: mtun-redirect.sh [options] sync|remove|render|show [POD_IP...]"
cmd=$1
shift

ipt() { if [[ $1 == 4 ]]; then echo iptables; else echo ip6tables; fi; }

# The pod IPs of one family, sorted bytewise and without duplicates (as the agent does).
ips_of() {
  local family=$1 ip
  shift
  for ip in "$@"; do
    if [[ $family == 4 && "$ip" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]]; then
      echo "$ip"
    elif [[ $family == 6 && "$ip" == *:* && "$ip" =~ ^[0-9A-Fa-f:.]+$ ]]; then
      echo "$ip"
    fi
  done | LC_ALL=C sort -u
}

render() {
  local family=$1 bits=32 ip
  shift
  [[ $family == 6 ]] && bits=128
  echo '*nat'
  echo ":$CHAIN - [0:0]"
  while read -r ip; do
    [[ -n "$ip" ]] || continue
    echo "-A $CHAIN -s $ip/$bits -p tcp -m addrtype ! --dst-type LOCAL -m comment --comment \"mtun: outbound\" -j REDIRECT --to-ports $OUTBOUND"
    echo "-A $CHAIN -d $ip/$bits -p tcp -m tcp --dport $HBONE -m comment --comment \"mtun: inbound hbone\" -j REDIRECT --to-ports $HBONE"
    echo "-A $CHAIN -d $ip/$bits -p tcp -m comment --comment \"mtun: inbound plaintext\" -j REDIRECT --to-ports $PLAINTEXT"
  done < <(ips_of "$family" "$@")
  echo 'COMMIT'
}

sync_family() {
  local family=$1 tool
  shift
  tool=$(ipt "$family")
  render "$family" "$@" | "$tool-restore" -w --noflush
  "$tool" -w -t nat -C "$PARENT" "${JUMP[@]}" 2>/dev/null ||
    "$tool" -w -t nat -I "$PARENT" 1 "${JUMP[@]}"
}

remove_family() {
  local family=$1 tool line listing
  tool=$(ipt "$family")
  command -v "$tool" >/dev/null || return 0
  listing=$("$tool" -w -t nat -S "$PARENT" 2>/dev/null) || return 0 # no nat table: nothing ours
  # Every jump into our chain, whatever its comment (xargs splits the quoted words).
  while read -r line; do
    [[ "$line" == "-A $PARENT "* && "$line" == *" -j $CHAIN" ]] || continue
    echo "${line#"-A $PARENT "}" | xargs "$tool" -w -t nat -D "$PARENT"
  done <<<"$listing"
  if "$tool" -w -t nat -S "$CHAIN" >/dev/null 2>&1; then
    "$tool" -w -t nat -F "$CHAIN"
    "$tool" -w -t nat -X "$CHAIN"
  fi
}

case "$cmd" in
  render)
    render 4 "$@"
    [[ -z "$(ips_of 6 "$@")" ]] || render 6 "$@"
    ;;
  sync)
    for ip in "$@"; do
      [[ -n "$(ips_of 4 "$ip")$(ips_of 6 "$ip")" ]] || die "not an IP address: '$ip'"
    done
    sync_family 4 "$@"
    # IPv6 only once there is an IPv6 pod, or rules from an earlier sync to update.
    if [[ -n "$(ips_of 6 "$@")" ]] || ip6tables -w -t nat -S "$CHAIN" >/dev/null 2>&1; then
      sync_family 6 "$@"
    fi
    ;;
  remove)
    remove_family 4
    remove_family 6
    ;;
  show)
    iptables -w -t nat -S "$CHAIN" 2>/dev/null || echo "# no IPv4 chain $CHAIN"
    ip6tables -w -t nat -S "$CHAIN" 2>/dev/null || echo "# no IPv6 chain $CHAIN"
    ;;
  *) die "unknown command $cmd (sync, remove, render, show)" ;;
esac
