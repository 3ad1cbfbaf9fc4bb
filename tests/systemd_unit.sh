#!/usr/bin/env bash
# tools/systemd/rtci-gateway.service.in, with the paths of this build filled in: systemd-analyze
# verify says nothing, the hardening keeps the exposure score at or below 3.0, the capabilities
# are DPDK's three and no more, reload checks the config then sends SIGHUP, stop drains (SIGTERM).
# Exits 77 (meson: skipped) without systemd-analyze.
#
#   tests/systemd_unit.sh <rtci-gateway> <tools/systemd folder>
set -u
gateway=${1:?rtci-gateway path}
dir=${2:?tools/systemd folder}
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd_unit: skipped: no systemd-analyze"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "systemd_unit: FAIL: $*"; exit 1; }

unit="$work/rtci-gateway.service"
sed -e "s#@bindir@#$(cd "$(dirname "$gateway")" && pwd)#g" -e "s#@docdir@#$work#g" \
	"$dir/rtci-gateway.service.in" > "$unit"
# warnings (unknown keys, bad values) do not change the exit status: any output fails
systemd-analyze verify "$unit" > "$work/verify" 2>&1
rc=$?
cat "$work/verify"
[ "$rc" -eq 0 ] && [ ! -s "$work/verify" ] || fail "systemd-analyze verify"

systemd-analyze security --offline=true --threshold=30 "$unit" > "$work/security" 2>&1 ||
	{ tail -n 40 "$work/security"; fail "exposure above 3.0"; }
grep 'Overall exposure' "$work/security"

value() { sed -n "s/^$1=//p" "$unit"; }
[ "$(value CapabilityBoundingSet)" = "CAP_NET_RAW CAP_NET_ADMIN CAP_IPC_LOCK" ] ||
	fail "capability bounding set: $(value CapabilityBoundingSet)"
[ "$(value AmbientCapabilities)" = "$(value CapabilityBoundingSet)" ] || fail "ambient capabilities"
[ "$(value KillSignal)" = SIGTERM ] || fail "stop must drain with SIGTERM"
value ExecReload | grep -q -- '--check-config' || fail "reload does not check the config first"
value ExecReload | grep -q 'kill -HUP \$MAINPID' || fail "reload does not send SIGHUP"
value ExecStartPre | grep -q -- '--check-config' || fail "start does not check the config first"
grep -q '^RTCI_CONFIG=' "$dir/rtci-gateway.env" || fail "example environment file without RTCI_CONFIG"
echo "systemd_unit: ok"
