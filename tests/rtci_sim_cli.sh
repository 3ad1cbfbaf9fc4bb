#!/usr/bin/env bash
# rtci-sim end to end: the prediction for a given fleet (--runs-from an rtci-fleet devices CSV)
# runs each device on its own trace from its own offset; link overheads cost what they should;
# a devices file naming a trace that is not loaded is refused with its line.
#   tests/rtci_sim_cli.sh PATH/TO/rtci-sim SOURCE_ROOT
set -euo pipefail
sim="$1"
src="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "rtci_sim_cli: FAIL: $*"; exit 1; }

cat > "$dir/devices.csv" <<CSV
tenant,device,trace,trace_offset_s,fps,deadline_ms,captured
1,1000,traces/norway_bus_14,12.500,10.000,200.0,50
1,1001,traces/ATT-LTE-driving-2016.up,88.328,10.000,200.0,50
1,1002,/elsewhere/ATT-LTE-driving-2016.up,3.000,10.000,200.0,50
,1003,traces/norway_bus_14,7.250,,,
CSV
common=(--traces "$src/traces" --setups "$src/configs/setups-fmnist.json" --duration-s 5
	--quiet)
"$sim" "${common[@]}" --policies mpc,fixed:0 --runs-from "$dir/devices.csv" \
	--runs-csv "$dir/runs.csv"
# one row per device and policy, each on its own trace and offset
[ "$(grep -c ',mpc,' "$dir/runs.csv")" -eq 4 ] || fail "not one mpc run per device"
grep -q ',norway_bus_14,0,12.500,mpc,' "$dir/runs.csv" || fail "device 1000's run"
grep -q ',ATT-LTE-driving-2016.up,1,88.328,mpc,' "$dir/runs.csv" || fail "device 1001's run"
grep -q ',ATT-LTE-driving-2016.up,2,3.000,fixed:0,' "$dir/runs.csv" || fail "device 1002's run"
grep -q ',norway_bus_14,3,7.250,mpc,' "$dir/runs.csv" || fail "device 1003's run (empty fields)"

# overheads: on a flat 1 Mbit/s link every frame of fixed setup 0 (one fragment) leaves, and
# each takes 76 + 16 link bytes more with the protocol's overheads
for i in $(seq 1 100); do echo "$i 1.0"; done > "$dir/flat"
printf 'trace,trace_offset_s\nflat,0\n' > "$dir/flat.csv"
flat=(--traces "$dir/flat" --setups "$src/configs/setups-fmnist.json" --duration-s 5 --quiet
	--policies fixed:0 --runs-from "$dir/flat.csv")
"$sim" "${flat[@]}" --runs-csv "$dir/plain.csv"
"$sim" "${flat[@]}" --frag-overhead 76 --frame-overhead 16 --runs-csv "$dir/ovh.csv"
plain=$(awk -F, 'NR == 2 { print $13 }' "$dir/plain.csv")
ovh=$(awk -F, 'NR == 2 { print $13 }' "$dir/ovh.csv")
frames=$(awk -F, 'NR == 2 { print $8 }' "$dir/plain.csv")
[ "$(awk -F, 'NR == 2 { print $10 }' "$dir/ovh.csv")" = 1.000000 ] || fail "frames missed"
[ "$(( ovh - plain ))" -eq "$(( frames * 92 ))" ] ||
	fail "overhead: $plain -> $ovh bytes for $frames one-fragment frames"

# a trace that is not among --traces
printf 'trace,trace_offset_s\ntraces/nowhere.up,1.0\n' > "$dir/bad.csv"
if "$sim" "${common[@]}" --policies mpc --runs-from "$dir/bad.csv" 2> "$dir/err.txt"; then
	fail "an unknown trace must be refused"
fi
grep -q "bad.csv:2: trace \"nowhere.up\" is not among the traces loaded" "$dir/err.txt" || fail "message: $(cat "$dir/err.txt")"
printf 'device,offset\n1,2\n' > "$dir/bad.csv"
if "$sim" "${common[@]}" --policies mpc --runs-from "$dir/bad.csv" 2> "$dir/err.txt"; then
	fail "a file without trace columns must be refused"
fi
grep -q "not an rtci-fleet devices CSV" "$dir/err.txt" || fail "message: $(cat "$dir/err.txt")"

# measured blocks (test data): SPINN's point by threshold, one that does not exist refused with
# the list; the local exit answers frames of an outage, --no-local-exit none
test_tab="$src/tests/data/setups-measured-test.json"
for i in $(seq 1 30); do echo "$i 0.0"; done > "$dir/outage"
for i in $(seq 31 40); do echo "$i 2.0"; done >> "$dir/outage"
printf 'trace,trace_offset_s\noutage,0\n' > "$dir/outage.csv"
loc=(--traces "$dir/outage" --setups "$test_tab" --duration-s 20 --quiet --policies mpc,spinn
	--runs-from "$dir/outage.csv")
"$sim" "${loc[@]}" --spinn-threshold 0.95 --runs-csv "$dir/loc.csv"
"$sim" "${loc[@]}" --no-local-exit --runs-csv "$dir/noloc.csv"
col() { awk -F, -v p="$2" -v c="$3" '$7 == p { print $c }' "$1"; }
[ "$(col "$dir/loc.csv" mpc 15)" = 1.000000 ] || fail "outage: mpc answered locally $(col "$dir/loc.csv" mpc 15)"
[ "$(col "$dir/loc.csv" mpc 9)" = 0.860000 ] || fail "outage: local credit $(col "$dir/loc.csv" mpc 9)"
[ "$(col "$dir/noloc.csv" mpc 15)" = 0.000000 ] || fail "--no-local-exit answered locally"
[ "$(col "$dir/noloc.csv" mpc 9)" = 0.000000 ] || fail "--no-local-exit earned in an outage"
# SPINN's exit at threshold 0.95 answers at 0.985 on about half of the frames
awk -F, '$7 == "spinn" { exit !($9 > 0.40 && $9 < 0.60) }' "$dir/loc.csv" ||
	fail "spinn at 0.95: $(col "$dir/loc.csv" spinn 9)"
if "$sim" "${loc[@]}" --spinn-threshold 0.6 2> "$dir/err.txt"; then
	fail "a threshold with no measured point must be refused"
fi
grep -q "no measured SPINN point at threshold 0.6 (0.5, 0.7, 0.8, 0.9, 0.95)" "$dir/err.txt" ||
	fail "message: $(cat "$dir/err.txt")"
echo ok
