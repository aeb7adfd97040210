#!/bin/sh
# Installs the C peers that `npm run bench` compares mtun with (Debian packages); as root.
# A peer that is still missing afterwards is reported by the bench, not skipped silently.
set -eu
if [ "$(id -u)" != 0 ]; then echo "bench/setup.sh: run as root (apt-get)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends stunnel4 haproxy nginx-light libnginx-mod-stream iperf3 ||
  apt-get install -y -qq stunnel4 haproxy nginx libnginx-mod-stream iperf3
# The packages' own services are not wanted: the bench runs its own instances.
for s in haproxy nginx stunnel4; do (service "$s" stop || true) >/dev/null 2>&1; done
