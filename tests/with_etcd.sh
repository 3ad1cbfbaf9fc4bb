#!/usr/bin/env bash
# Runs a command next to a fresh single-member etcd on loopback, with its client URL in
# RTCI_ETCD_ENDPOINTS; stops etcd and removes its data afterwards.
#   tests/with_etcd.sh <command> [args...]
# Exits 77 (meson: skipped) when etcd is not installed.
set -u
command -v etcd >/dev/null 2>&1 || { echo "with_etcd: skipped: no etcd (Debian etcd-server)"; exit 77; }
dir=$(mktemp -d)
port=$(( 20000 + (($$ * 7 + RANDOM) % 20000) ))
peer=$(( port + 1 ))
etcd --name t --data-dir "$dir/data" \
	--listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
	--listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
	--initial-cluster "t=http://127.0.0.1:$peer" --log-level error > "$dir/etcd.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
	ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$port" --dial-timeout 1s endpoint health \
		>/dev/null 2>&1 && break
	sleep 0.1
done
RTCI_ETCD_ENDPOINTS="http://127.0.0.1:$port" "$@"
