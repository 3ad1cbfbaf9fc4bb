#!/usr/bin/env bash
# rtci-gateway --check-config on the example configs (with a synthesized model in place of the
# model files): a valid set prints its summary and exits 0; a broken tenants file, a missing
# model file or a wrong lcore layout exits 1 with the usual "<file>:<line>: <field>: <reason>";
# nothing is started (no EAL runtime folder appears).
#
#   tests/check_config.sh <rtci-gateway> <rtci-model> <configs folder>
set -u
gateway=${1:?rtci-gateway path}
modeltool=${2:?rtci-model path}
configs=${3:?configs folder}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_config: FAIL: $*"; exit 1; }

"$modeltool" synth --geometry fmnist --seed 1 -o "$work/fmnist.rtcim" >/dev/null || fail "model synth"
prefix="rtci-check-$$"
# the example gateway file with one model (ours) and an EAL prefix of this run
sed -e '/name: mnv2-224/,+1d' -e 's#\.\./models/fmnist\.rtcim#fmnist.rtcim#' \
	-e "s#file_prefix: .*#file_prefix: $prefix#" "$configs/gateway.yaml" > "$work/gateway.yaml"
cp "$configs/tenants.yaml" "$work/tenants.yaml"

run() { # expected status, gateway file
	"$gateway" --check-config "$2" > "$work/out" 2> "$work/err"
	local rc=$?
	[ "$rc" -eq "$1" ] || { cat "$work/out" "$work/err"; fail "exit status $rc, expected $1"; }
}
expect() { # file, fixed string
	grep -qF -- "$2" "$work/$1" || { cat "$work/out" "$work/err"; fail "no '$2' in $1"; }
}

run 0 "$work/gateway.yaml"
cat "$work/out"
expect out "$work/gateway.yaml: ok"
expect out "model 0 fmnist: $work/fmnist.rtcim, geometry fmnist"
expect out "tenant 1 city-traffic: 4002 devices (2 listed, derived 1000..4999)"
expect out "tenants: 2 in $work/tenants.yaml, 4202 devices"
expect out "capacity: measured at start-up (tail of model fmnist on 2 workers), 20% headroom"
[ ! -s "$work/err" ] || fail "errors on a valid config: $(cat "$work/err")"
[ ! -e "/var/run/dpdk/$prefix" ] || fail "the EAL was started"

sed 's/capacity_fps: 0 /capacity_fps: 1200 /' "$work/gateway.yaml" > "$work/capacity.yaml"
run 0 "$work/capacity.yaml"
expect out "capacity: 1200 frames/s configured (admission.capacity_fps), 20% headroom: admits 960 frames/s"

expect out "cluster: off"
# a member of a cluster: checked without reaching etcd
{ sed '/^tenants_file:/d' "$work/gateway.yaml"
  printf 'cluster:\n  etcd: http://10.0.0.9:2379\n  id: gw-a\n  address: 10.77.0.1\n  prefix: /rtci/\ntenants_file: tenants.yaml\n'
} > "$work/cluster.yaml"
run 0 "$work/cluster.yaml"
expect out "cluster: member gw-a at 10.77.0.1, etcd http://10.0.0.9:2379, prefix /rtci/"

sed 's/key: 5f1d3a9c.*/key: 5f1d/' "$configs/tenants.yaml" > "$work/tenants.yaml"
run 1 "$work/gateway.yaml"
expect err "$work/tenants.yaml:8: tenants[0].key: must be 64 hex characters"
[ ! -s "$work/out" ] || fail "a summary for an invalid config"
cp "$configs/tenants.yaml" "$work/tenants.yaml"

sed 's#file: fmnist.rtcim#file: missing.rtcim#' "$work/gateway.yaml" > "$work/nomodel.yaml"
run 1 "$work/nomodel.yaml"
expect err "$work/nomodel.yaml:"
expect err "models[0].file: $work/missing.rtcim: No such file or directory"

sed 's/^  workers: .*/  workers: []/' "$work/gateway.yaml" > "$work/lcores.yaml"
run 1 "$work/lcores.yaml"
expect err "lcores: need 1..16 RX lcores"

"$gateway" --check-config "$work/gateway.yaml" --final-metrics "$work/m" >/dev/null 2>&1
[ $? -eq 2 ] || fail "--check-config with --final-metrics is not a usage error"
echo "check_config: ok"
