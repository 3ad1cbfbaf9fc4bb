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
grep -qx "optional blocks: none" "$dir/info.txt"
images=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [ -r "$images" ]; then
	"$tool" run "$dir/fm.rtcm" --setup 8,255 --batch 16 --limit 100 > "$dir/run.txt"
	grep -Eq "^top-1 accuracy 0\.[0-9]{4} \([0-9]+/100\)$" "$dir/run.txt"
	grep -Eq "^codec mean bytes per frame [0-9.]+ \(raw 1632\)$" "$dir/run.txt"
	if "$tool" run "$dir/fm.rtcm" --setup 9,255 --limit 10 2> "$dir/err.txt"; then
		echo "a setup outside the space must fail"; exit 1
	fi
	grep -q "no setup (c=9, L=255)" "$dir/err.txt"
	# the two BN modes answer alike on the shipped model in fp32; an unknown mode is a usage error
	model="$(dirname "$0")/../models/fmnist-swcnn.rtcm"
	for m in affine folded; do
		"$tool" run "$model" --setup 4,3 --limit 300 --mode "$m" --precision fp32 > "$dir/$m.txt"
		grep -Eq "tail mode $m, precision fp32: 0 of 21 convolutions int8(; this CPU has no VNNI)?\)" "$dir/$m.txt"
	done
	[ "$(grep top-1 "$dir/affine.txt")" = "$(grep top-1 "$dir/folded.txt")" ]
	# int8 on the calibrated shipped model (auto, the default, runs every convolution int8 there);
	# refused on a model without calibration; auto falls back to fp32 there
	"$tool" run "$model" --setup 4,3 --limit 300 --precision int8 > "$dir/int8.txt"
	grep -Eq "precision int8: 21 of 21 convolutions int8(; this CPU has no VNNI)?\)" "$dir/int8.txt"
	"$tool" run "$model" --setup 4,3 --limit 300 > "$dir/auto.txt"
	if grep -q "no VNNI" "$dir/auto.txt"; then   # auto keeps fp32 there (docs/engine.md)
		grep -q "precision auto: 0 of 21 convolutions int8; this CPU has no VNNI)" "$dir/auto.txt"
	else
		grep -q "precision auto: 21 of 21 convolutions int8)" "$dir/auto.txt"
	fi
	if "$tool" run "$dir/fm.rtcm" --setup 8,255 --limit 10 --precision int8 2> "$dir/err.txt"; then
		echo "int8 on an uncalibrated model must fail"; exit 1
	fi
	grep -q "no int8 calibration: run python3 -m training calibrate" "$dir/err.txt"
	"$tool" run "$dir/fm.rtcm" --setup 8,255 --limit 10 > "$dir/fb.txt"
	grep -Eq "precision fp32: 0 of 21 convolutions int8(; this CPU has no VNNI)?\)" "$dir/fb.txt"
	if "$tool" run "$model" --setup 4,3 --limit 10 --precision int4 2> /dev/null; then
		echo "an unknown precision is a usage error"; exit 1
	fi
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
