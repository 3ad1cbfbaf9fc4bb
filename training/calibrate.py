"""`python3 -m training calibrate MODEL`: the int8 calibration of a model file.

Runs every setup's deployed pipeline in fp32 (head with the setup's BN slot, the codec's quantize
+ dequantize of the first c channels, tail) on N images, takes a statistic of |x| at each point
(the tail input, each residual chain) and writes the `int8.act_scale` tensor and the `int8` block
(docs/model-format.md). Every other tensor and metadata block is kept byte for byte.

    /usr/bin/python3 -m training calibrate models/fmnist-swcnn.rtcm
    /usr/bin/python3 -m training calibrate mnv2.rtcm --data synthetic --images 4   # random inputs

`--eval-images N` measures instead (writes nothing): fp32 and fake-quant int8 top-1 of every
setup on the first N Fashion-MNIST test images, with the scales the options give.
"""
import argparse
import sys
import time

import numpy as np
import torch

from . import data, golden, int8
from .loop import log
from .modelfile import ModelFileError, load_model, read_raw, setups_from_metadata
from .rawfile import write_raw

DEFAULT_METHOD = "max"


def image_batches(doc, source, n, data_dir, batch=256, seed=1):
    """N calibration images as batches of pixel/255 tensors."""
    if source == "train":
        if tuple(doc["geometry"]["input"]) != (1, 28, 28):
            raise int8.Int8Error("--data train is Fashion-MNIST (1x28x28); geometry %s takes "
                                 "--data synthetic" % doc["geometry"]["name"])
        tr = data.load(data_dir, "train", n)
        if len(tr) < n:
            raise int8.Int8Error("--images %d: the training set has %d" % (n, len(tr)))
        return [data.to_input(tr.images[i:i + batch]) for i in range(0, n, batch)]
    out = []
    for i in range(0, n, batch):
        x = golden.make_inputs(doc["geometry"], min(batch, n - i), seed + i)
        out.append(x)
    return out


def write_block(src, dst, scales, block):
    """Copies src to dst with the int8 block and tensor set (replaced when present)."""
    doc, entries = read_raw(src)
    entries = [e for e in entries if e[0] != "int8.act_scale"]
    a = np.ascontiguousarray(scales, dtype="<f4")
    entries.append(("int8.act_scale", "F32", list(a.shape), a.tobytes()))
    doc["int8"] = block
    write_raw(dst, doc, entries)


def evaluate(model, doc, tables, n, data_dir, batch=500):
    """fp32 top-1 [setups] and fake-quant int8 top-1 [tables, setups] on the first n test
    images. On the whole test set the fp32 figures are the file's own (`accuracy`, measured by
    the exporter with the same quantizer on the same images) when every setup has one."""
    te = data.load(data_dir, "test", n)
    setups = setups_from_metadata(doc)
    known = [s.get("accuracy") for s in doc["setups"]]
    fp32_known = n >= 10000 and len(te) == 10000 and all(a is not None for a in known)
    fqs = [int8.FakeQuant(model, torch.from_numpy(t)) for t in tables]
    fp32 = np.zeros(len(setups))
    q = np.zeros((len(tables), len(setups)))
    with torch.no_grad():
        for b0 in range(0, len(te), batch):
            x = data.to_input(te.images[b0:b0 + batch])
            y = te.labels[b0:b0 + batch]
            sc = model.stem_conv(x)
            for i, s in enumerate(setups):
                if not fp32_known:
                    fp32[i] += (model.forward_from_stem(sc, s).argmax(1) == y).sum().item()
                for j, fq in enumerate(fqs):
                    q[j, i] += (fq.forward(x, s, sc).argmax(1) == y).sum().item()
    fp32 = np.array(known, dtype=float) if fp32_known else fp32 / len(te)
    return setups, fp32, q / len(te)


def run(a):
    if a.images < 1:
        raise int8.Int8Error("--images must be >= 1")
    methods = [int8.parse_method(m) for m in a.method.split(",")]
    model, doc = load_model(a.model)
    setups = setups_from_metadata(doc)
    t0 = time.time()
    batches = image_batches(doc, a.data, a.images, a.data_dir, seed=a.seed)
    tables = int8.calibrate(model, setups, batches, [m[0] for m in methods])
    log("calibrate: %d setups x %d images, %d points in %.1f s" % (
        len(setups), a.images, int8.n_points(doc["geometry"]), time.time() - t0))
    if a.eval_images:
        setups, fp32, q = evaluate(model, doc, [tables[k] for k, _ in methods], a.eval_images,
                                   a.data_dir)
        for (key, text), qm in zip(methods, q):
            drop = fp32 - qm
            for s, f, v, d in zip(setups, fp32, qm, drop):
                log("  setup %2d (c %2d, L %5d): fp32 %.4f int8 %.4f drop %+.4f"
                    % (s.id, s.c, s.L, f, v, d))
            w = int(np.argmax(drop))
            log("method %s: %d test images, worst drop %.4f (setup %d), mean drop %.4f, "
                "mean fp32 %.4f int8 %.4f" % (text, a.eval_images, drop[w], setups[w].id,
                                               drop.mean(), fp32.mean(), qm.mean()))
        return 0
    if len(methods) != 1:
        raise int8.Int8Error("--method: one statistic to write (several only with --eval-images)")
    key, text = methods[0]
    src = "fashion-mnist train" if a.data == "train" else "synthetic"
    write_block(a.model, a.out or a.model, tables[key],
                int8.block(int8.n_points(doc["geometry"]), a.images, src, text))
    log("calibrate: %s, scales %.4g..%.4g -> %s" % (text, tables[key].min(), tables[key].max(),
                                                    a.out or a.model))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="python3 -m training calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model file (written in place unless --out)")
    ap.add_argument("--out", default=None, help="output model file")
    ap.add_argument("--images", type=int, default=1000, help="calibration images (default 1000)")
    ap.add_argument("--data", choices=["train", "synthetic"], default="train",
                    help="Fashion-MNIST training images (first N) or random pixels")
    ap.add_argument("--method", default=DEFAULT_METHOD,
                    help="statistic of |x|: 'max' or 'pNN.NN', a percentile (default %s); "
                         "comma-separated with --eval-images" % DEFAULT_METHOD)
    ap.add_argument("--eval-images", type=int, default=0,
                    help="measure fp32 and fake-quant int8 top-1 on N test images, write nothing")
    ap.add_argument("--data-dir", default=data.DEFAULT_DIR)
    ap.add_argument("--seed", type=int, default=1, help="--data synthetic: input seed")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        return run(a)
    except (int8.Int8Error, ModelFileError, FileNotFoundError, ValueError) as e:
        print("calibrate: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
