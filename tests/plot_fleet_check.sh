#!/usr/bin/env bash
# edge/plot_fleet.py on a small synthetic --frames file: both pictures are written, the camera
# chosen is the one that switched most, and the fleet's deadline-hit rate is the share in time.
# Exits 77 (meson: skipped) without matplotlib.
#
#   tests/plot_fleet_check.sh <edge folder>
set -u
edge=${1:?edge folder}
py=/usr/bin/python3
$py -c 'import matplotlib, numpy' 2>/dev/null || { echo "plot_fleet: skipped: no matplotlib"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "plot_fleet: FAIL: $*"; exit 1; }

# 4 cameras x 50 frames; camera 2 alternates two setups (49 switches), the others switch once;
# every fifth frame is late: hit rate 0.8
{
	for d in 0 1 2 3; do echo "# device $d: tenant 1 device $((1000 + d)) trace t.csv offset 0.000 s deadline 200.0 ms"; done
	echo "device,t_s,link_mbps,setup,c,bits,status,latency_ms"
	for d in 0 1 2 3; do
		for k in $(seq 0 49); do
			if [ "$d" = 2 ]; then s=$(( k % 2 ? 7 : 47 )); else s=$(( k < 25 ? 47 : 48 )); fi
			case $s in 47) cb="32,4" ;; 48) cb="32,2" ;; 7) cb="2,4" ;; esac
			st=in_time; [ $(( k % 5 )) = 4 ] && st=late
			echo "$d,$(( k / 5 )).$(( k % 5 * 2 ))00,$(( d + 1 )).5,$s,$cb,$st,42.000"
		done
	done
} > "$work/frames.csv"
$py "$edge/plot_fleet.py" "$work/frames.csv" "$work" > "$work/out" || { cat "$work/out"; fail "plot_fleet.py"; }
cat "$work/out"
grep -q "4 cameras, deadline-hit rate 0.8000" "$work/out" || fail "fleet summary"
grep -q "switched most (49 switches)" "$work/out" || fail "camera choice"
[ -s "$work/fleet.png" ] && [ -s "$work/camera.png" ] || fail "pictures missing"
echo "plot_fleet: ok"
