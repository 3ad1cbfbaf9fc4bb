# Shared set-up of scripts/demo-e2e and bench/e2e (sourced, not run): two network namespaces
# joined by a veth, rtci-gateway on DPDK net_af_packet in one, the camera side in the other.
#
#   e2e_env_init           names (namespaces, interfaces, DPDK prefix) unique to this shell
#   e2e_netns_up           creates the namespaces and the veth
#   e2e_gateway_config MODEL OUTDIR [TENANTS]
#                          writes OUTDIR/gateway.yaml from configs/demo/gateway.yaml (and
#                          OUTDIR/tenants.yaml from TENANTS, default configs/demo/tenants.yaml)
#   e2e_gateway_start OUTDIR
#                          starts the gateway (log OUTDIR/gateway.log, final metrics
#                          OUTDIR/final.prom), waits until it runs; sets e2e_gw_pid
#   e2e_gateway_stop       SIGTERM, waits (the gateway writes its final metrics)
#   e2e_cleanup            stops what runs, deletes the namespaces
# Expects the repository root as the current folder.

. scripts/netns-pair.sh

e2e_env_init() {
	local id
	id=$(printf '%04x' $(( $$ & 0xffff )))
	E2E_GW_NS="rtci-demo-gw-$id"
	E2E_DEV_NS="rtci-demo-dev-$id"
	E2E_GW_IF="dg$id"
	E2E_DEV_IF="dd$id"
	E2E_GW_IP="10.80.0.1"
	E2E_DEV_IP="10.80.0.2"
	E2E_PREFIX="rtci-demo-$id"
	E2E_KEY=$(awk '/key:/ {print $2; exit}' configs/demo/tenants.yaml)
	e2e_gw_pid=
}

e2e_netns_up() {
	netns_pair_up "$E2E_GW_NS" "$E2E_DEV_NS" "$E2E_GW_IF" "$E2E_DEV_IF" "$E2E_DEV_IP"
}

e2e_gateway_config() {
	local model=$1 out=$2 tenants=${3:-configs/demo/tenants.yaml} cpus
	cpus=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)
	sed -e "s|@CPUS@|$cpus|" -e "s|@PREFIX@|$E2E_PREFIX|" -e "s|@IFACE@|$E2E_GW_IF|" \
	    -e "s|@GW_IP@|$E2E_GW_IP|" -e "s|@MODEL@|$model|" configs/demo/gateway.yaml \
		> "$out/gateway.yaml"
	cp "$tenants" "$out/tenants.yaml"
}

# e2e_tenants_pace FILE FPS DEADLINE_MS: the tenants' fps and deadline as the fleet runs them
# (the gateway's controller plans with the tenant's, not with what a device's hello says)
e2e_tenants_pace() {
	sed -i -e "s/^    fps: .*/    fps: $2/" -e "s/^    deadline_ms: .*/    deadline_ms: $3/" "$1"
}

e2e_gateway_start() {
	local out=$1
	: > "$out/gateway.log"
	ip netns exec "$E2E_GW_NS" "$bin/gateway/rtci-gateway" --config "$out/gateway.yaml" \
		--final-metrics "$out/final.prom" > "$out/gateway.log" 2>&1 &
	e2e_gw_pid=$!
	for _ in $(seq 600); do
		grep -q "running:" "$out/gateway.log" && return 0
		if ! kill -0 "$e2e_gw_pid" 2>/dev/null; then
			cat "$out/gateway.log" >&2
			echo "gateway failed" >&2
			e2e_gw_pid=
			return 1
		fi
		sleep 0.1
	done
	echo "gateway did not start" >&2
	return 1
}

e2e_gateway_stop() {
	[ -n "$e2e_gw_pid" ] || return 0
	kill -TERM "$e2e_gw_pid" 2>/dev/null
	wait "$e2e_gw_pid" 2>/dev/null || true
	e2e_gw_pid=
}

e2e_cleanup() {
	e2e_gateway_stop
	netns_pair_down "$E2E_GW_NS" "$E2E_DEV_NS"
	rm -rf "/var/run/dpdk/$E2E_PREFIX"
}
