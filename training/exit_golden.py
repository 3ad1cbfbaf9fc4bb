"""Golden data for the C local exit (tests/test_exit.c):

    /usr/bin/python3 -m training.exit_golden MODEL OUTDIR [--images 4]

For the first N Fashion-MNIST test images, raw little-endian float32 files (C order):
`input.f32` [N, C, H, W] (pixel/255), `partition.f32` [N, stem_out, H', W'] (the head with the
exit's input setup), `logits.f32` [N, classes] (the exit head on that partition), and
`index.json` naming the model, its sha256 and the shapes.
"""
import argparse
import hashlib
import json
import os

import numpy as np
import torch

from . import data, exit_head
from .modelfile import load_model, read_tensors


def write(model_path, outdir, n):
    model, doc = load_model(model_path)
    _, tensors = read_tensors(model_path)
    head = exit_head.load_exit_tensors(exit_head.build(model.geometry), tensors)
    setup = exit_head.exit_input_setup(doc)
    te = data.load(split="test", limit=n)
    x = data.to_input(te.images)
    with torch.no_grad():
        part = exit_head.partition(model, x, setup)
        logits = head(part)
    os.makedirs(outdir, exist_ok=True)
    files = {"input": x, "partition": part, "logits": logits}
    for k, v in files.items():
        np.ascontiguousarray(v.numpy(), dtype="<f4").tofile(os.path.join(outdir, k + ".f32"))
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    index = {"format": "rtci-exit-golden", "model": os.path.basename(model_path),
             "model_sha256": sha, "images": n, "input_setup": setup.id,
             "shapes": {k: list(v.shape) for k, v in files.items()},
             "labels": te.labels.tolist()}
    with open(os.path.join(outdir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("outdir")
    ap.add_argument("--images", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(1)
    write(a.model, a.outdir, a.images)


if __name__ == "__main__":
    main()
