#!/usr/bin/env bash
# rtci-edge and rtci-fleet against the real rtci-gateway: the gateway on DPDK net_af_packet in
# one network namespace, the edge tools in another, joined by a veth.
#
#   tests/edge_gateway_it.sh <rtci-gateway> <rtci-edge> <rtci-fleet> <rtci-model> \
#                            <edge-check-results> <traces dir> <trained model>
#
# Checks: rtci-edge's answered frames carry the classes computed locally (head -> codec ->
# tail); on a slow emulated uplink the gateway's rate-switch commands take effect from the
# frames they name; rtci-edge keeps going across a gateway restart (re-hello, results again);
# rtci-fleet with 20 devices for 10 s on the trained model and real traces plus one with a
# bandwidth drop gets results, its statistics add up, the accuracy of the delivered frames
# matches the model's per-setup table for the setups used (within 3 points), and devices on the
# drop switch setups; a gateway configured for 10 devices refuses a second fleet with "busy",
# whose devices back off and get in once the first fleet has left, every frame taken in being
# answered or counted. Afterwards no namespace, link or DPDK runtime directory is left.
# Exits 77 (meson: skipped) without root or `ip netns`. Always removes what it created.
set -u
. "$(dirname "$0")/../scripts/netns-pair.sh"

netns_requires edge_gateway ethtool
gateway=${1:?rtci-gateway}
edge=${2:?rtci-edge}
fleet=${3:?rtci-fleet}
modeltool=${4:?rtci-model}
check=${5:?edge-check-results}
traces=${6:?traces dir}
trained=${7:?trained model file}

netns_pair_names egw edv eg ed 79
PORT=47000
PREFIX="rtci-egit-$id"
work=$(mktemp -d)

stop_gateway() {
	if [ -n "${gw_pid:-}" ]; then
		kill "$gw_pid" 2>/dev/null
		wait "$gw_pid" 2>/dev/null
		gw_pid=
	fi
}
cleanup() {
	local rc=$?
	stop_gateway
	[ -n "${edge_pid:-}" ] && kill "$edge_pid" 2>/dev/null && wait "$edge_pid" 2>/dev/null
	netns_pair_down "$GW_NS" "$DEV_NS"
	if [ "$rc" -ne 0 ]; then
		for f in gateway.log edge1.out edge1.err edge2.out edge2.err fleet.out fleet-a.out \
			fleet-b.out; do
			[ -e "$work/$f" ] && { echo "--- $f"; tail -n 25 "$work/$f"; }
		done
	fi
	rm -rf "$work" "/var/run/dpdk/$PREFIX"
	if ip netns list | grep -q -e "$GW_NS" -e "$DEV_NS" || ip link show "$GW_IF" >/dev/null 2>&1; then
		echo "edge_gateway: FAIL: namespaces or links left behind"
		rc=1
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "edge_gateway: FAIL: $*"; exit 1; }

netns_pair_up "$GW_NS" "$DEV_NS" "$GW_IF" "$DEV_IF" "$DEV_IP"
case $? in
0) ;;
2) skip "cannot create network namespaces" ;;
*) exit 1 ;;
esac

model="$work/fmnist.rtcm"
"$modeltool" synth --geometry fmnist --seed 3 -o "$model" >/dev/null || fail "model synth"
KEY=5f1d3a9c0b7e42d8a6c4e1f09b3d7a2c8e5f60718293a4b5c6d7e8f901a2b3c4
cpus=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)

cat > "$work/gateway.yaml" <<EOF
eal:
  args: [--no-huge, -m, "512", --no-pci, --no-shconf, --lcores, "(0-2)@($cpus)",
         --log-level, "lib.eal:warning"]
  file_prefix: $PREFIX
port:
  vdev: net_af_packet0,iface=$GW_IF,qpairs=1
  rx_queues: 1
  tx_queues: 1
  rx_descriptors: 1024
  tx_descriptors: 1024
  mbufs: 8191
  mbuf_cache: 64
  ipv4: $GW_IP
  udp_port: $PORT
  neighbors: 256
lcores:
  main: 0
  rx: [1]
  workers: [2]
models:
  - name: fmnist
    file: fmnist.rtcm
batching:
  max_batch: 8
  max_wait_us: 2000
  queue_capacity: 1024
control:
  policy: mpc
  horizon: 5
metrics:
  enabled: false
tenants_file: tenants.yaml
EOF
cat > "$work/tenants.yaml" <<EOF
tenants:
  - id: 1
    name: city
    key: $KEY
    deadline_ms: 500
    fps: 10
    policy: mpc
    quotas: {devices: 256, frames_per_s: 5000}
    derive: {first: 1000, last: 1199}
EOF

start_gateway() { # RUNNING_LINES_BEFORE [CONFIG]
	ip netns exec "$GW_NS" "$gateway" --config "${2:-$work/gateway.yaml}" \
		--final-metrics "$work/final.prom" >> "$work/gateway.log" 2>&1 &
	gw_pid=$!
	local n0
	n0=$(grep -c "running:" "$work/gateway.log")
	for _ in $(seq 600); do
		[ "$(grep -c "running:" "$work/gateway.log")" -gt "$1" ] && return 0
		kill -0 "$gw_pid" 2>/dev/null || break
		sleep 0.1
	done
	fail "gateway did not start"
}
: > "$work/gateway.log"
start_gateway 0

# 1. One camera on a slow emulated uplink (0.4 Mbit/s), starting with the largest setup: the
#    gateway's controller has to switch it down. Classes and switches are checked frame by frame.
printf '1 0.4\n2 0.4\n' > "$work/slow.trace"
biggest=$("$modeltool" info "$model" | awk '/^ *[0-9]+ +32 +65535/ {print $1; exit}')
biggest=${biggest:-49}
ip netns exec "$DEV_NS" "$edge" --gateway "$GW_IP:$PORT" --tenant 1 --device 1000 --key "$KEY" \
	--model "$model" --frames 60 --fps 10 --deadline-ms 500 --setup "$biggest" \
	--trace "$work/slow.trace" --csv "$work/edge1.csv" > "$work/edge1.out" 2> "$work/edge1.err" \
	|| fail "rtci-edge (slow link) exit status $?"
cat "$work/edge1.out"
"$check" "$model" "$work/edge1.csv" "$work/edge1.err" 30 || fail "edge results or switches"
grep -q "command " "$work/edge1.err" || fail "no rate-switch command on a slow link"

# 2. Gateway restart under a running camera: re-hello, then results again.
ip netns exec "$DEV_NS" "$edge" --gateway "$GW_IP:$PORT" --tenant 1 --device 1001 --key "$KEY" \
	--model "$model" --frames 240 --fps 20 --deadline-ms 250 --csv "$work/edge2.csv" \
	> "$work/edge2.out" 2> "$work/edge2.err" &
edge_pid=$!
sleep 2
stop_gateway
sleep 1.5   # longer than the device's silence timeout (max(1 s, 4 x deadline))
start_gateway 1
wait "$edge_pid" || fail "rtci-edge (restart) exit status $?"
edge_pid=
cat "$work/edge2.out"
rehellos=$(sed -n 's/.*re-hellos \([0-9]*\).*/\1/p' "$work/edge2.out")
[ "${rehellos:-0}" -ge 1 ] || fail "no re-hello after the gateway restart"
# results for frames captured in the last second (after the restart)
late=$(tail -n 20 "$work/edge2.csv" | awk -F, '$6 == "result"' | wc -l)
[ "$late" -ge 15 ] || fail "only $late of the last 20 frames answered after the restart"
"$check" "$model" "$work/edge2.csv" "$work/edge2.err" 100 || fail "edge results after restart"

# 3. A fleet of 20 devices for 10 s on the trained model: two real traces and one that runs at
#    4 Mbit/s for 3 s, then 0.04 Mbit/s for 9 s (a 32-channel frame needs 0.1-0.5 Mbit/s at
#    10 fps), so every 10 s window holds a drop long enough for a slow frame to be heard of.
#    A device whose every frame is too late for the link drops them all locally and sends no
#    frame; its drop report (sent at once) is what the controller hears: every device on the
#    drop trace must be switched.
cp "$trained" "$work/fmnist.rtcm"
stop_gateway
start_gateway 2
mkdir "$work/traces"
cp "$traces/norway_bus_12" "$traces/TMobile-UMTS-driving.up" "$work/traces/"
awk 'BEGIN { for (t = 0; t < 12; t += 0.5) print t, (t < 3 ? 4 : 0.04) }' \
	> "$work/traces/drop.trace"
ip netns exec "$DEV_NS" "$fleet" --gateway "$GW_IP:$PORT" --tenant "1:$KEY" --first-device 1100 \
	--model "$work/fmnist.rtcm" --devices 20 --threads 2 --duration 10 --fps 10 \
	--deadline-ms 500 --traces "$work/traces" --n-images 3000 --csv "$work/fleet.csv" \
	> "$work/fleet.out" 2>&1 || fail "rtci-fleet exit status $?"
cat "$work/fleet.out"
awk -F, 'NR > 1 {
	rows++
	# frames in local mode between probes are neither sent nor skipped (column local_mode_frames)
	if ($7 != $8 + $9 + $10 + $11 + $35) { print "device " $2 ": captured != sent + skipped + local"; bad = 1 }
	local += $35
	if ($12 > $8 || $13 > $12 || $14 > $13) { print "device " $2 ": results above sent"; bad = 1 }
	if ($12 == 0) { print "device " $2 ": no result"; bad = 1 }
	if ($3 ~ /\/drop\.trace$/) { on_drop++; if ($22 > 0) switched++ }
	cap += $7; hits += $14
}
END {
	if (rows != 20) { print rows " rows"; bad = 1 }
	if (on_drop == 0) { print "no device on the drop trace"; bad = 1 }
	else if (switched < on_drop) {
		print on_drop - switched " device(s) on the drop trace never switched setups"; bad = 1 }
	print "fleet rows: captured " cap ", in time " hits ", in local mode " local "; on the drop trace " \
		on_drop " devices, " switched " switched"
	exit bad
}' "$work/fleet.csv" || fail "fleet statistics"
# expected accuracy: the model's per-setup table weighted by the frames sent with each setup
"$modeltool" info "$work/fmnist.rtcm" | awk '/^ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +0\./ {
	print $1, $6 }' > "$work/table.txt"
[ "$(wc -l < "$work/table.txt")" -ge 50 ] || fail "no accuracy table in the model"
delivered=$(sed -n 's/^accuracy: .* delivered \([0-9.]*\).*/\1/p' "$work/fleet.out")
awk -F, -v delivered="$delivered" 'FNR == NR { acc[$1] = $2; next }
FNR > 1 {
	n = split($25, parts, ";")
	for (i = 1; i <= n; i++) {
		split(parts[i], kv, ":")
		if (!(kv[1] in acc)) { print "setup " kv[1] " not in the table"; exit 1 }
		frames += kv[2]; sum += kv[2] * acc[kv[1]]
	}
}
END {
	if (frames == 0 || delivered == "") { print "no frames or no delivered accuracy"; exit 1 }
	expect = sum / frames; d = delivered - expect
	printf "accuracy of delivered frames %.4f, model table for the setups used %.4f (%+.4f)\n", \
		delivered, expect, d
	exit (d > 0.03 || d < -0.03)
}' FS=' ' "$work/table.txt" FS=',' "$work/fleet.csv" || fail "delivered accuracy differs from the table"
cap=$(sed -n 's/^frames: captured \([0-9]*\).*/\1/p' "$work/fleet.out")
hits=$(sed -n 's/.*delivered by deadline \([0-9]*\).*/\1/p' "$work/fleet.out")
csv_cap=$(awk -F, 'NR > 1 { s += $7 } END { print s }' "$work/fleet.csv")
csv_hits=$(awk -F, 'NR > 1 { s += $14 } END { print s }' "$work/fleet.csv")
[ "$cap" = "$csv_cap" ] && [ "$hits" = "$csv_hits" ] || fail "totals differ from the per-device rows"

# 4. Admission. A gateway configured for 100 frames/s takes 10 devices at 10 fps. Fleet A (10
#    devices, 4 s) fills it; fleet B (10 devices, 12 s), started once A sends, is told "busy" at
#    once, backs off (retry-after 1 s plus up to 1 s of jitter: at most one hello a second), and
#    gets in once A has stopped and A's admissions were released (1 s of silence). Every frame
#    the gateway took in is answered or counted.
stop_gateway
sed -e 's/^metrics:/admission:\n  capacity_fps: 100\n  headroom_pct: 0\n  idle_timeout_ms: 1000\n  retry_after_ms: 1000\nmetrics:/' \
	"$work/gateway.yaml" > "$work/gateway-adm.yaml"
start_gateway 3 "$work/gateway-adm.yaml"
grep -q "admission: capacity 100 frames/s" "$work/gateway.log" || fail "admission capacity not logged"
adm_fleet() { # TAG FIRST_DEVICE DURATION
	ip netns exec "$DEV_NS" "$fleet" --gateway "$GW_IP:$PORT" --tenant "1:$KEY" \
		--first-device "$2" --model "$work/fmnist.rtcm" --devices 10 --threads 1 \
		--duration "$3" --fps 10 --deadline-ms 500 --n-images 200 --csv "$work/fleet-$1.csv" \
		> "$work/fleet-$1.out" 2>&1
}
adm_fleet a 1000 4 &
edge_pid=$!
for _ in $(seq 300); do
	grep -q '^t=' "$work/fleet-a.out" 2>/dev/null && break
	sleep 0.1
done
adm_fleet b 1100 12 || fail "rtci-fleet B exit status $?"
wait "$edge_pid" || fail "rtci-fleet A exit status $?"
edge_pid=
stop_gateway
cat "$work/fleet-a.out" "$work/fleet-b.out" | grep -e summary -e admission -e deadline-hit
# columns: 12 results, 24 state, 26 busy answers, 27 latest hello -> first answer (ms)
awk -F, 'NR > 1 && $26 != 0 { print "fleet A: device " $2 " was told busy"; bad = 1 }
NR > 1 && $12 == 0 { print "fleet A: device " $2 " got no result"; bad = 1 }
END { exit bad }' "$work/fleet-a.csv" || fail "fleet A was not admitted whole"
awk -F, 'NR > 1 {
	rows++
	if ($26 < 1) { print "fleet B: device " $2 " was never told busy"; bad = 1 }
	if ($26 > 10) { print "fleet B: device " $2 " was told busy " $26 " times: no back-off"; bad = 1 }
	if ($27 < 0 || $27 > 100) { print "fleet B: device " $2 " heard back after " $27 " ms"; bad = 1 }
	if ($24 != "active" || $12 == 0) { print "fleet B: device " $2 " never got in"; bad = 1 }
	busy += $26
}
END { if (rows != 10) { print rows " rows"; bad = 1 }
	print "fleet B: " busy " busy answers over 10 devices, all admitted later"; exit bad }' \
	"$work/fleet-b.csv" || fail "refusal, back-off or later admission"
# every frame taken in (ingest) was answered (inferred) or counted as dropped after ingest
awk '/^rtci_ingest_frames_total/ { taken += $2 }
/^rtci_frames_inferred_total/ { inferred += $2 }
/^rtci_frame_drops_total/ { dropped += $2 }
/^rtci_ingest_drops_total.*reason="(not_admitted|quota_frames|overload|decode|late)"/ { dropped += $2 }
/^rtci_hellos_refused_total.*reason="busy"/ { busy += $2 }
/^rtci_admission_expired_total/ { expired += $2 }
END {
	printf "gateway: %d frames taken in, %d inferred, %d dropped and counted; %d busy hellos, %d admissions expired\n", \
		taken, inferred, dropped, busy, expired
	exit !(taken > 0 && taken == inferred + dropped && busy >= 10 && expired >= 10)
}' "$work/final.prom" || fail "frames not accounted for, or no busy hellos / expiries counted"
echo "edge_gateway: ok"
