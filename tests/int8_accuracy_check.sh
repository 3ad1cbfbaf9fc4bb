#!/usr/bin/env bash
# The shipped model's int8 tail against its fp32 one on the first 500 Fashion-MNIST test images
# (rtci-model run: head, codec, tail) for a spread of setups: top-1 within 1 point (5 images) on
# each; bench/int8_accuracy runs every setup on the full test set. Skips (77) without the images.
#   tests/int8_accuracy_check.sh PATH/TO/rtci-model MODEL_FILE
set -euo pipefail
tool="$1" model="$2"
[ -r /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || exit 77
# int8 is held to fp32's accuracy where oneDNN's int8 sums are exact (VNNI); elsewhere auto keeps
# fp32 (rtci_model_cli.sh checks that)
if "$tool" run "$model" --setup 1,1 --limit 1 | grep -q "no VNNI"; then
	echo "this CPU has no VNNI: int8 accuracy is not promised here"; exit 77
fi
top1() { "$tool" run "$model" --setup "$1" --limit 500 --precision "$2" | sed -n 's/^top-1 accuracy [0-9.]* (\([0-9]*\)\/500)$/\1/p'; }
for s in 1,65535 2,3 4,15 8,255 16,1 32,65535; do
	f=$(top1 "$s" fp32) q=$(top1 "$s" int8)
	[ -n "$f" ] && [ -n "$q" ] || { echo "setup $s: no accuracy line"; exit 1; }
	echo "setup $s: fp32 $f/500, int8 $q/500"
	d=$((q - f))
	if [ "${d#-}" -gt 5 ]; then
		echo "setup $s: int8 differs from fp32 by $d images of 500"; exit 1
	fi
done
echo ok
