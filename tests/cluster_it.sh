#!/usr/bin/env bash
# A cluster of rtci-gateways on etcd, each in a network namespace of its own, joined with the
# camera fleet's namespace and etcd's by a bridge:
#
#   tests/cluster_it.sh <rtci-gateway> <rtci-fleet> <rtci-model> <rtci-cluster> <rtci-edge>
#
# Checks, with three gateways (and a fourth added) and a fleet of 60 cameras:
#   1. every device ends up at its rendezvous home (rtci-cluster home), wherever it said hello;
#      rtci-edge follows a redirect too;
#   2. tenants changed in etcd reach every gateway within 1 s;
#   3. kill -9 of a gateway: its devices are back in session elsewhere and the only frames lost
#      are those captured between the kill and shortly after its lease expired;
#   4. a fourth gateway takes between 15% and 35% of the devices;
#   5. drain (SIGUSR1) moves every device of the drained gateway, answers every frame it took
#      in, and the gateway exits 0;
#   6. etcd stopped for 10 s: no frame lost, the gateways carry on.
# Exits 77 (meson: skipped) without root, `ip netns` or etcd. Removes what it created.
set -u
skip() { echo "cluster: skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"
command -v etcd >/dev/null 2>&1 || skip "no etcd (Debian etcd-server)"
gateway=${1:?rtci-gateway}
fleet=${2:?rtci-fleet}
modeltool=${3:?rtci-model}
cluster=${4:?rtci-cluster}
edge=${5:?rtci-edge}

. "$(dirname "$0")/../scripts/cluster-env.sh"
cluster_env_init ci
work=$(mktemp -d)
KEY=5f1d3a9c0b7e42d8a6c4e1f09b3d7a2c8e5f60718293a4b5c6d7e8f901a2b3c4
NET=$CL_NET ETCD=$CL_ETCD PREFIX=$CL_PREFIX NS_E=$CL_NS_E NS_D=$CL_NS_D
declare -A gw_pid

cleanup() {
	local rc=$?
	for i in "${!gw_pid[@]}"; do kill -9 "${gw_pid[$i]}" 2>/dev/null; done
	[ -n "${fleet_pid:-}" ] && kill "$fleet_pid" 2>/dev/null
	[ -n "${cl_etcd_pid:-}" ] && { kill -CONT "$cl_etcd_pid"; kill "$cl_etcd_pid"; } 2>/dev/null
	wait 2>/dev/null
	if [ "$rc" -ne 0 ]; then
		for f in "$work"/*.log "$work"/*.out; do
			[ -e "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
		done
	fi
	cluster_down
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "cluster: FAIL: $*"; exit 1; }

cluster_net_up 4
case $? in
0) ;;
2) skip "cannot create network namespaces" ;;
*) fail "network" ;;
esac
cluster_etcd_start "$work" || fail "etcd did not start"
etcd_pid=$cl_etcd_pid
"$modeltool" synth --geometry fmnist --seed 3 -o "$work/fmnist.rtcm" >/dev/null || fail "model synth"
tenants() { # COUNT: tenant 1, and tenant 2 when COUNT is 2
	echo "tenants:"
	for t in $(seq "$1"); do
		cat <<EOF
  - id: $t
    name: t$t
    key: $KEY
    deadline_ms: 500
    fps: 5
    quotas: {devices: 1000, frames_per_s: 100000}
    derive: {first: 1000, last: 1999}
EOF
	done
}
tenants 1 > "$work/tenants.yaml"
ip netns exec "$NS_E" "$cluster" --etcd "$ETCD" --prefix "$PREFIX" put-tenants "$work/tenants.yaml" \
	|| fail "rtci-cluster put-tenants"

# ---- gateways ----
start_gateway() { # I
	local i=$1
	cluster_gateway_config "$i" fmnist.rtcm "$work/gw$i.yaml" 1000
	ip netns exec "$(cluster_gw_ns "$i")" "$gateway" --config "$work/gw$i.yaml" \
		--final-metrics "$work/gw$i.prom" > "$work/gw$i.log" 2>&1 &
	gw_pid[$i]=$!
	for _ in $(seq 300); do
		grep -q "registered in etcd" "$work/gw$i.log" && return 0
		kill -0 "${gw_pid[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	fail "gateway $i did not register"
}
members() { ip netns exec "$NS_E" "$cluster" --etcd "$ETCD" --prefix "$PREFIX" status | tail -1; }
wait_members() { # N
	for _ in $(seq 100); do
		[ "$(members | awk '{print $1}')" = "$1" ] && return 0
		sleep 0.1
	done
	fail "membership never reached $1 ($(members))"
}
seeds="$NET.0.1:47000,$NET.0.2:47000,$NET.0.3:47000"
run_fleet() { # TAG DURATION [more rtci-fleet options]: in the background, pid in fleet_pid
	local tag=$1 dur=$2
	shift 2
	ip netns exec "$NS_D" "$fleet" --gateway "$seeds" --tenant "1:$KEY" --first-device 1000 \
		--model "$work/fmnist.rtcm" --devices 60 --threads 1 --duration "$dur" --fps 5 \
		--deadline-ms 500 --n-images 100 --csv "$work/$tag.csv" "$@" > "$work/$tag.out" 2>&1 &
	fleet_pid=$!
	for _ in $(seq 300); do
		grep -q '^t=' "$work/$tag.out" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "fleet $tag did not start"
}
wait_fleet() { wait "$fleet_pid" || fail "rtci-fleet exit status $?"; fleet_pid=; }
# column numbers in rtci-fleet's CSV
C_DEV=2 C_CAP=7 C_SENT=8 C_RES=12 C_INTIME=14 C_STATE=24 C_GW=28 C_MOVES=30

for i in 1 2 3; do start_gateway "$i"; done
wait_members 3

# 1 + 2: placement, and tenants changed in etcd
run_fleet place 6
sleep 2
tenants 2 > "$work/tenants2.yaml"
ip netns exec "$NS_E" "$cluster" --etcd "$ETCD" --prefix "$PREFIX" put-tenants "$work/tenants2.yaml" \
	>/dev/null || fail "second put-tenants"
t0=$(date +%s.%N)
for _ in $(seq 50); do
	n=0
	for i in 1 2 3; do grep -q "reload ok: 2 tenants" "$work/gw$i.log" && n=$((n + 1)); done
	[ "$n" = 3 ] && break
	sleep 0.02
done
reload_s=$(echo "$(date +%s.%N) - $t0" | bc -l)
[ "$n" = 3 ] || fail "new tenants reached $n of 3 gateways"
printf 'cluster: tenants reached all 3 gateways in %.2f s\n' "$reload_s"
wait_fleet
awk -F, -v c="$C_GW" -v s="$C_STATE" 'NR > 1 { print $2, $c, $s }' "$work/place.csv" > "$work/place.txt"
misplaced=0
while read -r dev gw state; do
	home=$(ip netns exec "$NS_E" "$cluster" --etcd "$ETCD" --prefix "$PREFIX" home 1 "$dev" | awk '{print $2}')
	[ "$gw" = "$home" ] && [ "$state" = active ] || { misplaced=$((misplaced + 1)); echo "device $dev at $gw ($state), home $home"; }
done < "$work/place.txt"
[ "$misplaced" = 0 ] || fail "$misplaced of 60 devices not at their rendezvous home"
echo "cluster: 60 of 60 devices at their rendezvous home"
# rtci-edge, seeded with gw1, for a device whose home is another gateway
for dev in $(seq 1100 1199); do
	home=$(ip netns exec "$NS_E" "$cluster" --etcd "$ETCD" --prefix "$PREFIX" home 1 "$dev" | awk '{print $2}')
	[ "$home" != "$NET.0.1:47000" ] && break
done
ip netns exec "$NS_D" "$edge" --gateway "$NET.0.1:47000" --tenant 1 --device "$dev" --key "$KEY" \
	--model "$work/fmnist.rtcm" --frames 20 --fps 10 --deadline-ms 500 > "$work/edge.out" \
	2> "$work/edge.err" || fail "rtci-edge exit status $?"
grep -q "to gateway $home" "$work/edge.err" || fail "rtci-edge did not follow the redirect to $home"
answered=$(sed -n 's/^results: \([0-9]*\).*/\1/p' "$work/edge.out" | tail -1)
echo "cluster: rtci-edge device $dev redirected from gw1 to $home, ${answered:-0} of 20 frames answered"
[ "${answered:-0}" -ge 15 ] || fail "rtci-edge got too few results after the redirect"

# 3: kill -9 of gw2
run_fleet kill 14
sleep 3
kill -9 "${gw_pid[2]}"
unset "gw_pid[2]"
echo "cluster: gw2 killed"
wait_fleet
# gw2's devices: at most the frames of the kill + lease (2 s) + re-home window lost
awk -F, -v cap="$C_CAP" -v it="$C_INTIME" -v gw="$C_GW" -v g2="$NET.0.2:47000" 'NR > 1 {
	if ($gw == g2) { print "device " $2 " still at gw2"; bad = 1 }
	lost = $cap - $it
	if (lost > worst) worst = lost
	if (lost > 35) { print "device " $2 ": " lost " frames lost"; bad = 1 }
}
END { print "cluster: after kill -9, worst device lost " worst " frames (5 fps)"; exit bad }' \
	"$work/kill.csv" || fail "devices of the killed gateway not re-homed in time"

# 4: a fourth gateway
start_gateway 2 # gw2 comes back first: three members again
wait_members 3
run_fleet add 10
sleep 3
start_gateway 4
wait_members 4
wait_fleet
moved=$(awk -F, -v m="$C_MOVES" 'NR > 1 && $m > 0 { n++ } END { print n + 0 }' "$work/add.csv")
at4=$(awk -F, -v gw="$C_GW" -v g4="$NET.0.4:47000" 'NR > 1 && $gw == g4 { n++ } END { print n + 0 }' "$work/add.csv")
echo "cluster: a fourth gateway moved $moved of 60 devices ($at4 now on it)"
[ "$moved" -ge 9 ] && [ "$moved" -le 21 ] || fail "$moved devices moved (expected 15-35%)"

# 5: drain gw1
run_fleet drain 10
sleep 3
kill -USR1 "${gw_pid[1]}"
wait "${gw_pid[1]}"
rc=$?
unset "gw_pid[1]"
[ "$rc" = 0 ] || fail "drained gateway exited with $rc"
wait_fleet
grep -q "drained: every device moved" "$work/gw1.log" || fail "gw1 did not report its drain"
awk -F, -v gw="$C_GW" -v g1="$NET.0.1:47000" -v sent="$C_SENT" -v res="$C_RES" 'NR > 1 {
	if ($gw == g1) { print "device " $2 " still at gw1"; bad = 1 }
	s += $sent; r += $res
}
END { print "cluster: drain: " s " frames sent, " r " answered"; exit bad || s != r }' \
	"$work/drain.csv" || fail "drain left devices behind or frames unanswered"
awk '/^rtci_ingest_frames_total/ { taken += $2 }
/^rtci_frames_inferred_total/ { done += $2 }
/^rtci_frame_drops_total/ { done += $2 }
/^rtci_ingest_drops_total.*reason="(not_admitted|quota_frames|overload|decode|late)"/ { done += $2 }
/^rtci_cluster_moves_total/ { moves += $2 }
END { print "cluster: gw1 took in " taken " frames, answered or counted " done ", moved " moves " devices"
      exit !(taken == done && moves > 0) }' "$work/gw1.prom" || fail "drained gateway lost frames"

# 6: etcd stopped for 10 s
run_fleet etcd 16
sleep 3
kill -STOP "$etcd_pid"
echo "cluster: etcd stopped"
sleep 10
kill -CONT "$etcd_pid"
wait_fleet
awk -F, -v sent="$C_SENT" -v res="$C_RES" -v cap="$C_CAP" -v it="$C_INTIME" 'NR > 1 {
	s += $sent; r += $res; c += $cap; h += $it }
END { print "cluster: etcd down 10 s: " c " frames captured, " s " sent, " r " answered, " h " in time"
      exit !(s == r && s > 0) }' "$work/etcd.csv" || fail "frames lost while etcd was down"
for i in 2 3 4; do
	kill -0 "${gw_pid[$i]}" 2>/dev/null || fail "gw$i died while etcd was down"
	grep -q "etcd unreachable" "$work/gw$i.log" || fail "gw$i never said etcd was unreachable"
done
echo "cluster: ok"
