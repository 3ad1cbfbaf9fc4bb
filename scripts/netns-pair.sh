# Two network namespaces joined by a veth (sourced, not run), as the integration tests,
# scripts/demo-e2e and bench/e2e use them: the gateway's end carries no kernel address (DPDK
# owns it), the device end gets DEV_IP/24; IPv6 and TX checksum offload are off on both ends
# so only the test's own IPv4/UDP traffic crosses the link.
#
#   netns_pair_up GW_NS DEV_NS GW_IF DEV_IF DEV_IP
#       returns 0 when up, 2 when namespaces cannot be created at all (callers skip), 1 on
#       any later failure
#   netns_pair_down GW_NS DEV_NS     deletes both namespaces (and with them the veth)

netns_pair_up() {
	local gw_ns=$1 dev_ns=$2 gw_if=$3 dev_if=$4 dev_ip=$5 ns
	ip netns add "$gw_ns" 2>/dev/null || return 2
	ip netns add "$dev_ns" || return 1
	ip link add "$gw_if" type veth peer name "$dev_if" || return 1
	ip link set "$gw_if" netns "$gw_ns" && ip link set "$dev_if" netns "$dev_ns" || return 1
	for ns in "$gw_ns" "$dev_ns"; do
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
		ip -n "$ns" link set lo up || return 1
	done
	ip -n "$gw_ns" link set "$gw_if" up || return 1
	ip -n "$dev_ns" addr add "$dev_ip/24" dev "$dev_if" || return 1
	ip -n "$dev_ns" link set "$dev_if" up || return 1
	ip netns exec "$dev_ns" ethtool -K "$dev_if" tx off >/dev/null 2>&1
	ip netns exec "$gw_ns" ethtool -K "$gw_if" tx off >/dev/null 2>&1
	return 0
}

netns_pair_down() {
	ip netns del "$1" 2>/dev/null
	ip netns del "$2" 2>/dev/null
	return 0
}

# Skips the calling test (exit 77, meson's "skipped") unless it runs as root with ip(8) and
# every command named; defines skip() for the test's own later checks.
#   netns_requires TEST_NAME [COMMAND...]
netns_requires() {
	NETNS_TEST=$1
	shift
	skip() { echo "$NETNS_TEST: skipped: $*"; exit 77; }
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	local c
	for c in ip "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "no $c command"
	done
}

# Names unique to this run: id, GW_NS=rtci-<gw>-<id>, DEV_NS=rtci-<dev>-<id>, GW_IF=<gw_if><id>,
# DEV_IF=<dev_if><id> (at most 15 characters), NET=10.<net>.<n>, GW_IP=$NET.1 (owned by DPDK,
# not by the kernel of the gateway namespace), DEV_IP=$NET.2.
#   netns_pair_names GW DEV GW_IF DEV_IF NET
netns_pair_names() {
	id=$(printf '%04x%02x' $(( $$ & 0xffff )) $(( RANDOM & 0xff )))
	GW_NS="rtci-$1-$id"
	DEV_NS="rtci-$2-$id"
	GW_IF="$3$id"
	DEV_IF="$4$id"
	NET="10.$5.$(( ($$ % 250) + 1 ))"
	GW_IP="$NET.1"
	DEV_IP="$NET.2"
}
