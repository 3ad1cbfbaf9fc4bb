#!/usr/bin/env bash
# rtci-gateway start-up errors that need no port or root: each names the gateway file, the
# line and the field, as config errors do.
#   tests/gateway_cli.sh PATH/TO/rtci-gateway
set -euo pipefail
gw="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/tenants.yaml" <<'Y'
tenants: []
Y
cat > "$dir/gw.yaml" <<'Y'
port:
  ipv4: 10.77.1.1
models:
  - name: fmnist
    file: /nonexistent/model.rtcm
lcores:
  rx: [1]
  workers: [2]
tenants_file: tenants.yaml
Y
if "$gw" --config "$dir/gw.yaml" > "$dir/out.txt" 2>&1; then
	echo "a missing model file must fail"; exit 1
fi
grep -q "$dir/gw.yaml:5: models\[0\].file: /nonexistent/model.rtcm: No such file or directory" \
	"$dir/out.txt" || { echo "unexpected message:"; cat "$dir/out.txt"; exit 1; }
sed -i 's/^  ipv4: 10.77.1.1$/  ipv4: 10.77.1.1\n  udp_port: 47000.9/' "$dir/gw.yaml"
if "$gw" --config "$dir/gw.yaml" > "$dir/out.txt" 2>&1; then
	echo "a fractional port must fail"; exit 1
fi
grep -q "$dir/gw.yaml:3: port.udp_port: '47000.9' is not an integer" "$dir/out.txt" ||
	{ echo "unexpected message:"; cat "$dir/out.txt"; exit 1; }
echo ok
