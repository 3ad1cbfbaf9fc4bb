# Network of a cluster on one machine (sourced, not run), as tests/cluster_it.sh, bench/cluster
# and `CLUSTER=N scripts/demo` use it: etcd's namespace holds a bridge, and every other
# namespace (one per gateway, one for the cameras) has a veth into it. A gateway's veth carries
# a kernel address NET.1.I (for etcd) next to the address its DPDK port answers for (NET.0.I);
# the cameras' namespace has NET.2.1; etcd listens on NET.1.100. IPv6 and TX checksum offload
# are off, so only the cluster's own IPv4 traffic crosses the bridge.
#
#   cluster_env_init TAG     names unique to this shell (CL_NS_E, CL_NS_D, CL_NET, CL_ETCD, ...)
#   cluster_net_up N         etcd's namespace, the cameras' and N gateways' (returns 2 when
#                            namespaces cannot be created at all, 1 on a later failure)
#   cluster_gw_ns I          the namespace of gateway I
#   cluster_etcd_start DIR   etcd in its namespace (data and log in DIR); waits until healthy
#   cluster_gateway_config I MODEL OUTFILE [CAPACITY_FPS]
#                            a gateway file for member gwI (tenants from TENANTS next to it)
#   cluster_down             stops etcd and deletes every namespace

cluster_env_init() {
	local id
	id=$(printf '%04x' $(( ($$ + RANDOM) & 0xffff )))
	CL_ID="$1$id"
	CL_NS_E="rtci-$1e-$id"
	CL_NS_D="rtci-$1d-$id"
	CL_NET=10.$(( 83 + ($$ + RANDOM) % 50 ))
	CL_ETCD="http://$CL_NET.1.100:2379"
	CL_PREFIX="/rtci-$CL_ID/"
	CL_N=0
	cl_etcd_pid=
}

cluster_gw_ns() { echo "rtci-$CL_ID-g$1"; }

cl_ns_setup() {
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	ip -n "$1" link set lo up
}

# cl_attach NS IFNAME KERNEL_IP: a veth from NS into the bridge
cl_attach() {
	ip netns add "$1" 2>/dev/null
	cl_ns_setup "$1"
	ip link add "$2" type veth peer name "b$2" || return 1
	ip link set "$2" netns "$1" && ip link set "b$2" netns "$CL_NS_E" || return 1
	ip -n "$CL_NS_E" link set "b$2" master br0 && ip -n "$CL_NS_E" link set "b$2" up || return 1
	ip -n "$1" addr add "$3/16" dev "$2" && ip -n "$1" link set "$2" up || return 1
	ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1
	return 0
}

cluster_net_up() {
	CL_N=$1
	ip netns add "$CL_NS_E" 2>/dev/null || return 2
	cl_ns_setup "$CL_NS_E"
	ip -n "$CL_NS_E" link add br0 type bridge && ip -n "$CL_NS_E" link set br0 up &&
		ip -n "$CL_NS_E" addr add "$CL_NET.1.100/16" dev br0 || return 1
	cl_attach "$CL_NS_D" "d$CL_ID" "$CL_NET.2.1" || return 1
	for i in $(seq "$1"); do
		cl_attach "$(cluster_gw_ns "$i")" "g$i$CL_ID" "$CL_NET.1.$i" || return 1
	done
	return 0
}

cluster_etcd_start() {
	ip netns exec "$CL_NS_E" etcd --name cl --data-dir "$1/etcd" \
		--listen-client-urls "$CL_ETCD" --advertise-client-urls "$CL_ETCD" \
		--listen-peer-urls "http://127.0.0.1:2380" \
		--initial-advertise-peer-urls "http://127.0.0.1:2380" \
		--initial-cluster "cl=http://127.0.0.1:2380" --log-level error > "$1/etcd.log" 2>&1 &
	cl_etcd_pid=$!
	for _ in $(seq 100); do
		ip netns exec "$CL_NS_E" etcdctl --endpoints "$CL_ETCD" --dial-timeout 1s \
			endpoint health >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

cluster_gateway_config() {
	local i=$1 cpus
	cpus=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)
	cat > "$3" <<EOF2
eal:
  args: [--no-huge, -m, "256", --no-pci, --no-shconf, --lcores, "(0-2)@($cpus)",
         --log-level, "lib.eal:warning"]
  file_prefix: rtci-$CL_ID-$i
port:
  vdev: net_af_packet0,iface=g$i$CL_ID,qpairs=1
  ipv4: $CL_NET.0.$i
  udp_port: 47000
  mbufs: 8191
  mbuf_cache: 64
  neighbors: 256
lcores: {main: 0, rx: [1], workers: [2]}
models:
  - name: fmnist
    file: $2
batching: {max_batch: 16, queue_capacity: 1024}
control: {rtt_us: 1000, head_us: 0}
admission:
  capacity_fps: ${4:-1000}
cluster:
  etcd: $CL_ETCD
  id: gw$i
  prefix: $CL_PREFIX
  lease_ttl_s: 2
metrics: {enabled: true, listen: $CL_NET.1.$i, port: 9464, summary_interval_s: 0}
tenants_file: tenants.yaml
EOF2
}

cluster_down() {
	if [ -n "$cl_etcd_pid" ]; then
		kill -CONT "$cl_etcd_pid" 2>/dev/null || true
		kill "$cl_etcd_pid" 2>/dev/null || true
		wait "$cl_etcd_pid" 2>/dev/null || true
	fi
	cl_etcd_pid=
	for i in $(seq "${CL_N:-0}"); do ip netns del "$(cluster_gw_ns "$i")" 2>/dev/null; done
	ip netns del "$CL_NS_D" 2>/dev/null
	ip netns del "$CL_NS_E" 2>/dev/null
	rm -rf /var/run/dpdk/rtci-"$CL_ID"-*
	return 0
}
