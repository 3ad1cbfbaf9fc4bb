#!/usr/bin/env bash
# rtci-model end to end: synth, info, run on real Fashion-MNIST images (head -> codec -> tail),
# and a damaged file rejected with its name and the reason.
#   tests/rtci_model_cli.sh PATH/TO/rtci-model
set -euo pipefail
tool="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$tool" synth --geometry fmnist --seed 5 -o "$dir/fm.rtcm"
"$tool" info "$dir/fm.rtcm" > "$dir/info.txt"
grep -q "geometry: fmnist, input 1x28x28, classes 10" "$dir/info.txt"
grep -q "setups: 50" "$dir/info.txt"
images=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [ -r "$images" ]; then
	"$tool" run "$dir/fm.rtcm" --setup 8,255 --batch 16 --limit 100 > "$dir/run.txt"
	grep -Eq "^top-1 accuracy 0\.[0-9]{4} \([0-9]+/100\)$" "$dir/run.txt"
	grep -Eq "^codec mean bytes per frame [0-9.]+ \(raw 1632\)$" "$dir/run.txt"
	if "$tool" run "$dir/fm.rtcm" --setup 9,255 --limit 10 2> "$dir/err.txt"; then
		echo "a setup outside the space must fail"; exit 1
	fi
	grep -q "no setup (c=9, L=255)" "$dir/err.txt"
	# the two BN modes answer alike on the shipped model; an unknown mode is a usage error
	model="$(dirname "$0")/../models/fmnist-swcnn.rtcm"
	for m in affine folded; do
		"$tool" run "$model" --setup 4,3 --limit 300 --mode "$m" > "$dir/$m.txt"
		grep -q "tail mode $m)" "$dir/$m.txt"
	done
	[ "$(grep top-1 "$dir/affine.txt")" = "$(grep top-1 "$dir/folded.txt")" ]
	if "$tool" run "$dir/fm.rtcm" --setup 8,255 --limit 10 --mode mixed 2> /dev/null; then
		echo "the mixed mode is gone"; exit 1
	fi
fi
head -c 5000 "$dir/fm.rtcm" > "$dir/cut.rtcm"
if "$tool" info "$dir/cut.rtcm" 2> "$dir/err.txt"; then
	echo "a truncated file must fail"; exit 1
fi
grep -q "cut.rtcm: " "$dir/err.txt"
echo ok
