#!/usr/bin/env bash
# Runs a two-sided network test: a gateway namespace and a device namespace joined by a veth,
# with names unique to this run and addresses (10.77.<n>.0/24) that exist only inside them.
#
#   tests/netns.sh port-uplink <port_uplink program>
#       DPDK net_af_packet gateway on one end, io_uring uplink device on the other.
#   tests/netns.sh shell
#       Sets up the pair and starts a shell in the device namespace (manual experiments).
#
# Exits 77 (meson: skipped) without root or `ip netns`. Always removes what it created.
set -u
. "$(dirname "$0")/../scripts/netns-pair.sh"

netns_requires netns ethtool

mode=${1:-}
netns_pair_names gw dev rg rd 77
PORT=47000
work=$(mktemp -d)

cleanup() {
	local rc=$?
	[ -n "${gw_pid:-}" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
	netns_pair_down "$GW_NS" "$DEV_NS"   # deleting a namespace removes its veth end
	rm -rf "$work"
	# EAL keeps a runtime folder per file prefix even after rte_eal_cleanup()
	rm -rf "/var/run/dpdk/rtci-test-$id"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

netns_pair_up "$GW_NS" "$DEV_NS" "$GW_IF" "$DEV_IF" "$DEV_IP"
case $? in
0) ;;
2) skip "cannot create network namespaces" ;;
*) exit 1 ;;
esac

case "$mode" in
port-uplink)
	prog=${2:?program path}
	ip netns exec "$GW_NS" "$prog" gateway "$GW_IF" "$GW_IP" "$PORT" "rtci-test-$id" \
		"$work/ready" 60 &
	gw_pid=$!
	for _ in $(seq 300); do
		[ -e "$work/ready" ] && break
		kill -0 "$gw_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -e "$work/ready" ]; then
		echo "netns: gateway did not start"
		exit 1
	fi
	ip netns exec "$DEV_NS" "$prog" device "$DEV_IF" "$GW_IP" "$PORT"
	dev_rc=$?
	wait "$gw_pid"
	gw_rc=$?
	gw_pid=
	echo "netns: device exit $dev_rc, gateway exit $gw_rc"
	[ "$dev_rc" -eq 0 ] && [ "$gw_rc" -eq 0 ]
	;;
shell)
	echo "gateway namespace $GW_NS ($GW_IF, DPDK address $GW_IP), device namespace $DEV_NS ($DEV_IF $DEV_IP)"
	ip netns exec "$DEV_NS" "${SHELL:-bash}"
	;;
*)
	echo "usage: $0 port-uplink <program> | shell"
	exit 2
	;;
esac
