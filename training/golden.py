"""Golden inputs and outputs of the PyTorch reference, for checking the C runtime.

    /usr/bin/python3 -m training.golden MODEL OUTDIR [--batches 1,7,32] [--setups all|ID,ID,...]
                                        [--seed N] [--threads N] [--precision fp32|int8]

MODEL is a model file (docs/model-format.md), for example one written by `rtci-model synth`.
For every batch size B and setup id S it writes raw little-endian float32 files (C-order, no
header) into OUTDIR:

    b{B}_input.f32            [B, C, H, W]   input images, pixel/255 (k/255 for random k in 0..255),
                                             shared by all setups of that batch size
    b{B}_s{S}_partition.f32   [B, c, H', W'] stem output (BN with the setup's slot, ReLU6), first c
                                             channels, BEFORE quantization
    b{B}_s{S}_dequant.f32     [B, c, H', W'] the same after the codec's quantize + dequantize
    b{B}_s{S}_tail_logits.f32 [B, classes]   the tail (block1 .. classifier) run on the dequant file
    b{B}_s{S}_logits.f32      [B, classes]   the full pipeline (images -> stem -> codec -> tail),
                                             computed separately from the tail file
    b{B}_s{S}_tail_logits_int8.f32  [B, classes]  with --precision int8 only: the int8 tail's
                                             fake-quant reference (training/int8.py, the file's
                                             int8 scales) run on the dequant file

and OUTDIR/index.json:

    {"format": "rtci-golden", "version": 1, "model": "<path>", "model_sha256": "<hex>",
     "geometry": {...}, "seed": N, "dtype": "float32", "byte_order": "little",
     "cases": [{"setup": S, "c": c, "L": L, "bn_slot": k, "batch": B,
                "input": "b{B}_input.f32", "input_shape": [B, C, H, W],
                "partition": "...", "partition_shape": [B, c, H', W'],
                "dequant": "...", "tail_logits": "...", "logits": "...",
                "logits_shape": [B, classes], "tail_logits_int8": "..." (int8 only)}, ...]}

Paths in the index are relative to OUTDIR. Inputs depend only on (seed, B), so the same seed gives
the same files. The stem convolution is computed once per batch (it is shared by all setups).
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

from . import int8
from .modelfile import load_model, read_tensors, setups_from_metadata


def _write(path, t):
    a = np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4")
    with open(path, "wb") as f:
        f.write(a.tobytes())
    return list(a.shape)


def make_inputs(geometry, batch, seed):
    g = torch.Generator().manual_seed(seed * 1000003 + batch)
    shape = [batch] + list(geometry["input"])
    return torch.randint(0, 256, shape, generator=g).float() / 255.0


def parse_list(text, all_values):
    if text == "all":
        return list(all_values)
    vals = [int(v) for v in text.split(",") if v.strip()]
    bad = [v for v in vals if v not in all_values]
    if bad:
        raise SystemExit("unknown values %s (known: %s..%s)" % (bad, min(all_values),
                                                                 max(all_values)))
    return vals


def generate(model_path, outdir, batches=(1, 7, 32), setup_ids="all", seed=1, log=print,
             precision="fp32"):
    """Writes the files and index.json; precision "int8" adds the int8 tail's logits and raises
    int8.Int8Error when the file has no int8 calibration."""
    model, doc = load_model(model_path)
    model.eval()
    fq = None
    if precision == "int8":
        fq = int8.FakeQuant(model, int8.scales_from(*read_tensors(model_path)))
    elif precision != "fp32":
        raise ValueError("precision %r: fp32 or int8" % precision)
    setups = setups_from_metadata(doc)
    by_id = {s.id: s for s in setups}
    ids = parse_list(setup_ids, [s.id for s in setups]) if isinstance(setup_ids, str) \
        else list(setup_ids)
    os.makedirs(outdir, exist_ok=True)
    with open(model_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    index = {"format": "rtci-golden", "version": 1, "model": os.path.abspath(model_path),
             "model_sha256": digest, "geometry": doc["geometry"], "seed": seed,
             "dtype": "float32", "byte_order": "little", "cases": []}
    t0 = time.time()
    with torch.no_grad():
        for b in batches:
            x = make_inputs(doc["geometry"], b, seed)
            inp = "b%d_input.f32" % b
            in_shape = _write(os.path.join(outdir, inp), x)
            conv = model.stem_conv(x)
            for sid in ids:
                s = by_id[sid]
                model.set_slot(s.bn_slot)
                part = model.stem_finish(conv)[:, : s.c].contiguous()
                deq = model.quantize(part, s.L)
                tail = model.tail(deq)
                full = model(x, s)
                pre = "b%d_s%d_" % (b, sid)
                case = {"setup": sid, "c": s.c, "L": s.L, "bn_slot": s.bn_slot, "batch": b,
                        "input": inp, "input_shape": in_shape,
                        "partition": pre + "partition.f32", "dequant": pre + "dequant.f32",
                        "tail_logits": pre + "tail_logits.f32", "logits": pre + "logits.f32"}
                case["partition_shape"] = _write(os.path.join(outdir, case["partition"]), part)
                _write(os.path.join(outdir, case["dequant"]), deq)
                _write(os.path.join(outdir, case["tail_logits"]), tail)
                case["logits_shape"] = _write(os.path.join(outdir, case["logits"]), full)
                if fq is not None:
                    case["tail_logits_int8"] = pre + "tail_logits_int8.f32"
                    _write(os.path.join(outdir, case["tail_logits_int8"]), fq.tail(deq, s))
                index["cases"].append(case)
            log("golden: batch %d, %d setups done (%.1f s)" % (b, len(ids), time.time() - t0))
    with open(os.path.join(outdir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m training.golden", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("outdir")
    ap.add_argument("--batches", default="1,7,32")
    ap.add_argument("--setups", default="all", help="'all' or comma-separated setup ids")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32",
                    help="int8: also the int8 tail's reference (needs the file's int8 block)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    batches = [int(v) for v in a.batches.split(",") if v.strip()]
    if not batches or min(batches) < 1:
        ap.error("--batches needs positive integers")
    try:
        idx = generate(a.model, a.outdir, batches, a.setups, a.seed, precision=a.precision)
    except int8.Int8Error as e:
        print("golden: %s: %s" % (a.model, e), file=sys.stderr)
        return 2
    print("golden: %d cases in %s" % (len(idx["cases"]), a.outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
