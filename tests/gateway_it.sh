#!/usr/bin/env bash
# Gateway end to end: rtci-gateway on DPDK net_af_packet in one namespace, the test client
# (io_uring uplinks, head, codec, local tail) in another, joined by a veth.
#
#   tests/gateway_it.sh <rtci-gateway> <gateway_client> <rtci-model>
#
# Checks: results of devices of two tenants match a local tail run; a scrape of the metrics
# endpoint passes `promtool check metrics`; bad traffic of every kind
# is dropped and counted; hellos at another pace than their tenant's are counted; a slow device
# gets a rate-switch command; SIGHUP adds and removes devices while kept devices keep their
# state; SIGTERM drains and exits 0.
# Exits 77 (meson: skipped) without root or `ip netns`. Always removes what it created.
set -u
. "$(dirname "$0")/../scripts/netns-pair.sh"

netns_requires gateway_it ethtool curl
gateway=${1:?rtci-gateway path}
client=${2:?gateway_client path}
modeltool=${3:?rtci-model path}

netns_pair_names gw dev rg rd 78
PORT=47000
PREFIX="rtci-gwit-$id"
RXQ=${RTCI_IT_RX_QUEUES:-1}   # RX queues = RX lcores (1..4); workers: one more lcore
work=$(mktemp -d)

cleanup() {
	local rc=$?
	if [ -n "${gw_pid:-}" ]; then
		kill "$gw_pid" 2>/dev/null
		wait "$gw_pid" 2>/dev/null
	fi
	netns_pair_down "$GW_NS" "$DEV_NS"
	if [ "$rc" -ne 0 ] && [ -e "$work/gateway.log" ]; then
		echo "--- gateway log"; tail -n 40 "$work/gateway.log"
	fi
	rm -rf "$work" "/var/run/dpdk/$PREFIX"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "gateway_it: FAIL: $*"; exit 1; }

netns_pair_up "$GW_NS" "$DEV_NS" "$GW_IF" "$DEV_IF" "$DEV_IP"
case $? in
0) ;;
2) skip "cannot create network namespaces" ;;
*) exit 1 ;;
esac

"$modeltool" synth --geometry fmnist --seed 1 -o "$work/fmnist.rtcm" >/dev/null || fail "model synth"

K1=5f1d3a9c0b7e42d8a6c4e1f09b3d7a2c8e5f60718293a4b5c6d7e8f901a2b3c4
K2=a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf
K100=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
# every lcore on the CPUs this process may use (the EAL pins lcores to them)
cpus=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)

cat > "$work/gateway.yaml" <<EOF
eal:
  args: [--no-huge, -m, "512", --no-pci, --no-shconf, --lcores, "(0-$((RXQ + 1)))@($cpus)",
         --log-level, "lib.eal:warning", --no-telemetry]
  file_prefix: $PREFIX
port:
  vdev: net_af_packet0,iface=$GW_IF,qpairs=$RXQ
  rx_queues: $RXQ
  tx_queues: $RXQ
  rx_descriptors: 512
  tx_descriptors: 512
  mbufs: 4095
  mbuf_cache: 64
  ipv4: $GW_IP
  udp_port: $PORT
  neighbors: 64
lcores:
  main: 0
  rx: [$(seq -s, 1 "$RXQ")]
  workers: [$((RXQ + 1))]
models:
  - name: fmnist
    file: fmnist.rtcm
batching:
  max_batch: 8
  max_wait_us: 2000
  queue_capacity: 256
control:
  policy: mpc
  horizon: 5
metrics:
  enabled: true
  listen: 127.0.0.1
  port: 0
  summary_interval_s: 2
tenants_file: tenants.yaml
EOF

tenants() { # $1: derive range of tenant 1, $2: extra device lines of tenant 1
	cat > "$work/tenants.yaml.new" <<EOF
tenants:
  - id: 1
    name: city
    key: $K1
    deadline_ms: 1000
    fps: 10
    policy: mpc
    quotas: {devices: 64, frames_per_s: 1000}
    derive: $1
    devices:
      - id: 100
        key: $K100
$2
  - id: 2
    name: retail
    key: $K2
    deadline_ms: 1000
    fps: 5
    policy: fixed
    derive: {first: 1, last: 5}
EOF
	mv "$work/tenants.yaml.new" "$work/tenants.yaml"
}
tenants "{first: 1, last: 10}" ""

# RTCI_IT_UNIT=<unit file>: run the gateway as nobody with only the capabilities the systemd
# unit grants (its CapabilityBoundingSet), as the unit would
runner=()
out="$work"
if [ -n "${RTCI_IT_UNIT:-}" ]; then
	command -v setpriv >/dev/null 2>&1 || skip "no setpriv"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$RTCI_IT_UNIT" | tr 'A-Z ' 'a-z,' | sed 's/cap_/+/g')
	[ -n "$caps" ] || fail "no CapabilityBoundingSet in $RTCI_IT_UNIT"
	echo "gateway_it: gateway as nobody with $caps"
	umask 022   # files written from here on (tenants files of the reloads) stay readable
	chmod -R a+rX "$work"
	out="$work/out"   # the gateway's writable folder: final metrics, EAL runtime files
	mkdir "$out" && chown nobody "$out"
	runner=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups --no-new-privs
		--inh-caps=-all,"$caps" --ambient-caps=-all,"$caps" --bounding-set=-all,"$caps"
		env XDG_RUNTIME_DIR="$out")
fi
ip netns exec "$GW_NS" "${runner[@]}" "$gateway" --config "$work/gateway.yaml" \
	--final-metrics "$out/final.prom" > "$work/gateway.log" 2>&1 &
gw_pid=$!
for _ in $(seq 600); do
	grep -q "running:" "$work/gateway.log" && break
	kill -0 "$gw_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q "running:" "$work/gateway.log" || fail "gateway did not start"

run_client() {
	ip netns exec "$DEV_NS" "$client" "$1" "$GW_IP" "$PORT" "$work/fmnist.rtcm" "$K1" "$K2" "$K100"
}
run_client phase1 || fail "client phase 1"

# a real scrape of the endpoint, linted as Prometheus would read it (skipped without promtool)
mport=$(sed -n 's/.*metrics port \([0-9]*\).*/\1/p' "$work/gateway.log" | head -n 1)
ip netns exec "$GW_NS" curl -sf "http://127.0.0.1:$mport/metrics" > "$work/scrape.prom" ||
	fail "scrape of the metrics endpoint (port $mport)"
grep -q '^rtci_frames_inferred_total{tenant="1"}' "$work/scrape.prom" || fail "scrape without frames"
if command -v promtool >/dev/null 2>&1; then
	promtool check metrics < "$work/scrape.prom" || fail "promtool check metrics on the scrape"
	echo "gateway_it: promtool check metrics: ok ($(grep -c '^rtci_' "$work/scrape.prom") series)"
else
	echo "gateway_it: no promtool, scrape not linted"
fi

# a tenants file that does not check is refused and counted; the tenants stay in force
cp "$work/tenants.yaml" "$work/tenants.good"
printf 'tenants:\n  - id: 1\n    fps: 10.5\n' > "$work/tenants.yaml"
kill -HUP "$gw_pid"
for _ in $(seq 100); do
	grep -q "reload failed" "$work/gateway.log" && break
	sleep 0.1
done
grep -q "reload failed, tenants kept: .*tenants.yaml:3: tenants\[0\].fps" "$work/gateway.log" ||
	fail "bad tenants file not refused with its line"
mv "$work/tenants.good" "$work/tenants.yaml"

# reload: device 2 leaves tenant 1 (derive range now 3..10), device 200 joins
tenants "{first: 3, last: 10}" "      - id: 1
      - id: 200"
kill -HUP "$gw_pid"
for _ in $(seq 100); do
	grep -q "reload ok" "$work/gateway.log" && break
	sleep 0.1
done
grep -q "reload ok" "$work/gateway.log" || fail "no reload"
run_client phase2 || fail "client phase 2"

run_client hardening || fail "client hardening"

# drain: stop the gateway while a device is sending
run_client phase3 > "$work/phase3.log" 2>&1 &
client_pid=$!
sleep 1.5
kill -TERM "$gw_pid"
wait "$gw_pid"
gw_rc=$?
gw_pid=
wait "$client_pid" || { cat "$work/phase3.log"; fail "client phase 3"; }
cat "$work/phase3.log"
cat "$work/gateway.log"
[ "$gw_rc" -eq 0 ] || fail "gateway exit status $gw_rc"
[ -s "$out/final.prom" ] || fail "no final metrics"

# value of one series in the final metrics (0 when absent)
metric() {
	awk -v k="$1" 'index($0, k " ") == 1 { v = $2 } END { print v + 0 }' "$out/final.prom"
}
check_ge() { # series, minimum
	local v
	v=$(metric "$1")
	echo "gateway_it: $1 = $v"
	awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }' || fail "$1 is $v, expected >= $2"
}
check_ge 'rtci_ingest_drops_total{tenant="none",reason="unknown_tenant"}' 1
check_ge 'rtci_ingest_drops_total{tenant="1",reason="unknown_device"}' 2
check_ge 'rtci_ingest_drops_total{tenant="1",reason="bad_mac"}' 1
check_ge 'rtci_ingest_drops_total{tenant="1",reason="replayed"}' 1
check_ge 'rtci_ingest_drops_total{tenant="none",reason="malformed"}' 2
check_ge 'rtci_commands_total{tenant="1"}' 1
# absurd capture times were late, not inferred; the unfinished frame expired and was counted
check_ge 'rtci_ingest_drops_total{tenant="1",reason="late"}' 1
check_ge 'rtci_ingest_drops_total{tenant="1",reason="clock"}' 1
check_ge 'rtci_ingest_drops_total{tenant="1",reason="expired"}' 1
lat_sum=$(metric 'rtci_frame_latency_seconds_sum{tenant="1"}')
lat_n=$(metric 'rtci_frame_latency_seconds_count{tenant="1"}')
awk -v s="$lat_sum" -v n="$lat_n" 'BEGIN { exit !(n > 0 && s / n < 5) }' ||
	fail "tenant 1 latency poisoned: sum $lat_sum over $lat_n frames"
check_ge 'rtci_frames_inferred_total{tenant="1"}' 19
check_ge 'rtci_frames_inferred_total{tenant="2"}' 6
check_ge 'rtci_reloads_total{result="ok"}' 1
check_ge 'rtci_reloads_total{result="failed"}' 1
# the test's deadline (1 s) is far from the loopback latency: nearly every answer is in time
check_ge 'rtci_frames_in_time_total{tenant="1"}' 19
# the client's hellos announce 10 fps and 1000 ms: tenant 1's pace, not tenant 2's (5 fps)
check_ge 'rtci_hellos_off_pace_total{tenant="2"}' 1
[ "$(metric 'rtci_hellos_off_pace_total{tenant="1"}')" = 0 ] ||
	fail "tenant 1's hellos counted off pace"
# loss below the parser is exported: the PMD's own counters, in the metrics and the summary
check_ge 'rtci_port_pmd_rx_packets_total{queue="0"}' 1
grep -q '^rtci_port_pmd_drops_total{reason="imissed"}' "$out/final.prom" ||
	fail "the PMD's missed packets are not exported"
grep "final " "$work/gateway.log" | grep -q "rtci_port_pmd_drops_total=" ||
	fail "the PMD's drops are not in the summary line"
grep -q "final " "$work/gateway.log" || fail "no final summary line"
# every frame taken into the batcher was answered or counted as dropped, also during the drain
submitted=$(metric 'rtci_frames_total{tenant="1"}')
answered=$(metric 'rtci_frames_inferred_total{tenant="1"}')
dropped=$(awk 'index($0, "rtci_frame_drops_total{tenant=\"1\"") == 1 { s += $2 } END { print s + 0 }' "$out/final.prom")
echo "gateway_it: tenant 1: $submitted frames submitted, $answered answered, $dropped dropped"
[ "$submitted" -ge 25 ] || fail "the drain phase sent too few frames"
[ "$submitted" -eq $(( answered + dropped )) ] || fail "frames lost in the drain"
echo "gateway_it: ok"
