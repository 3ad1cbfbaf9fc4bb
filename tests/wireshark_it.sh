#!/usr/bin/env bash
# The Wireshark dissector (tools/wireshark/rtci.lua) in tshark, on captures written by the
# project's own encoders (tests/wireshark_pcap.c):
#   good.pcap      every message type and variant: fields diffed against good.tsv (and, sent
#                  to another port, found by the heuristic dissector);
#   malformed.pcap one datagram per validation rule: expert infos diffed against
#                  malformed.tsv, and no Lua error anywhere in the full dissection.
#
#   tests/wireshark_it.sh <wireshark_pcap> <tools/wireshark folder>
#
# Exits 77 (meson: skipped) without tshark. RTCI_WIRESHARK_UPDATE=1 rewrites the expected files.
set -u
gen=${1:?wireshark_pcap path}
lua=${2:?tools/wireshark folder}/rtci.lua
expected="$(dirname "$0")/data/wireshark"

command -v tshark >/dev/null 2>&1 || { echo "wireshark: skipped: no tshark"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "wireshark: FAIL: $*"; exit 1; }
# no user preferences or profiles: the same output everywhere
export HOME="$work" XDG_CONFIG_HOME="$work"

shark() { # pcap, tshark arguments...
	local pcap=$1
	shift
	tshark -n -2 -r "$pcap" -X "lua_script:$lua" "$@" 2>"$work/stderr"
	local rc=$?
	grep -v 'Running as user "root"' "$work/stderr" >&2
	return $rc
}

good_fields=(frame.number rtci.type rtci.tenant rtci.device rtci.seq rtci.setup
	rtci.frag_index rtci.frag_count rtci.frag_size rtci.frame_len rtci.backlog rtci.capture_us
	rtci.flags.tag rtci.flags.ack_ext rtci.reasm.offset rtci.reasm.in rtci.reasm.length rtci.reasm.fragment
	rtci.hello.model rtci.hello.fps_milli rtci.hello.deadline_us rtci.hello.max_frag_size
	rtci.hello.setup rtci.ack.status rtci.ack.initial_setup rtci.ack.max_frag_size
	rtci.ack.retry_after_ms rtci.ack.min_frame_seq rtci.ack.redirect_ip rtci.ack.redirect_port
	rtci.ack.max_frame_len
	rtci.result.class rtci.result.status rtci.result.topk_count rtci.result.score
	rtci.result.queue_us rtci.result.inference_us rtci.result.total_us
	rtci.result.topk.class rtci.result.topk.score rtci.cmd.kind rtci.cmd.count rtci.cmd.setup
	rtci.cmd.apply_from_seq rtci.cmd.plan rtci.cmd.move_ip rtci.cmd.move_port
	rtci.report.bytes_sent rtci.report.frames_sent rtci.report.frames_dropped
	rtci.report.send_rate_bps rtci.report.backlog_bytes rtci.report.interval_us rtci.tag
	_ws.expert.message _ws.col.Info)
bad_fields=(frame.number rtci.type _ws.expert.message _ws.expert.severity _ws.col.Info)

check() { # name, pcap kind, fields...
	local name=$1 kind=$2
	shift 2
	local args=()
	for fld in "$@"; do args+=(-e "$fld"); done
	"$gen" "$kind" "$work/$name.pcap" || fail "$gen $kind"
	shark "$work/$name.pcap" -T fields -E header=y -E separator=/t "${args[@]}" \
		> "$work/$name.tsv" || fail "tshark on $name.pcap"
	shark "$work/$name.pcap" -V > "$work/$name.txt" || fail "tshark -V on $name.pcap"
	# a Lua error shows in the tree (and on stderr) instead of failing tshark
	if grep -qi 'lua error' "$work/$name.txt" "$work/stderr"; then
		grep -i -m5 'lua error' "$work/$name.txt" "$work/stderr"
		fail "Lua error dissecting $name.pcap"
	fi
	grep -q 'RTCoInfer' "$work/$name.txt" || fail "the dissector did not run on $name.pcap"
	if [ "${RTCI_WIRESHARK_UPDATE:-0}" = 1 ]; then
		cp "$work/$name.tsv" "$expected/$name.tsv"
	fi
	diff -u "$expected/$name.tsv" "$work/$name.tsv" || fail "$name.tsv differs"
	echo "wireshark: $name: $(($(wc -l < "$work/$name.tsv") - 1)) packets as expected"
}

check good good "${good_fields[@]}"
check malformed malformed "${bad_fields[@]}"
# on another port the heuristic dissector finds every datagram by its magic
"$gen" good "$work/port.pcap" 47111 || fail "$gen good (port 47111)"
n=$(shark "$work/port.pcap" -Y rtci | wc -l)
[ "$n" -eq "$(($(wc -l < "$work/good.tsv") - 1))" ] || fail "heuristic dissector: $n packets on port 47111"
# every packet of the malformed capture carries exactly one expert info, an error
n=$(awk -F'\t' 'NR > 1 && $4 == "8388608"' "$work/malformed.tsv" | wc -l)
total=$(($(wc -l < "$work/malformed.tsv") - 1))
[ "$n" -eq "$total" ] || fail "$n of $total malformed packets have exactly one expert info"
# and the good one none
! awk -F'\t' 'NR > 1 && $(NF-1) != ""' "$work/good.tsv" | grep -q . ||
	fail "expert info on a valid packet"
echo "wireshark: ok"
