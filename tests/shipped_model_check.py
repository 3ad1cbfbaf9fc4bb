#!/usr/bin/env python3
"""The shipped model through two implementations: the C engine and codec (`rtci-model run`)
and the PyTorch reference (training/), on the same test images and setups. Their top-1 accuracy
must agree within 0.2 percentage points, and on the full test set both must match the table
the exporter wrote into the model file.

    tests/shipped_model_check.py RTCI_MODEL MODEL_FILE [--limit N] [--setups ID,ID,...]
Exits 77 (skipped) without torch or the Fashion-MNIST files.
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"


def c_accuracy(tool, model, c, L, limit):
    out = subprocess.run([tool, "run", model, "--setup", "%d,%d" % (c, L), "--limit", str(limit),
                          "--threads", "1", "--precision", "fp32"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"^top-1 accuracy ([0-9.]+) \((\d+)/(\d+)\)$", out, re.M)
    if not m or int(m.group(3)) != limit:
        raise SystemExit("unexpected rtci-model output:\n" + out)
    return int(m.group(2)) / limit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool")
    ap.add_argument("model")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--setups", default="4,13,23,37,44,45,49")
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("shipped_model: skipped: no torch")
        return 77
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")):
        print("shipped_model: skipped: Fashion-MNIST not installed")
        return 77
    sys.path.insert(0, ROOT)
    from training import data
    from training.loop import accuracy
    from training.modelfile import load_model, setups_from_metadata

    torch.set_num_threads(1)
    model, doc = load_model(a.model)
    setups = {s.id: s for s in setups_from_metadata(doc)}
    table = {s["id"]: s.get("accuracy") for s in doc["setups"]}
    te = data.load(DATA, "test", a.limit)
    worst = 0.0
    for sid in [int(x) for x in a.setups.split(",")]:
        s = setups[sid]
        py = accuracy(model, te, s, torch.device("cpu"))
        c = c_accuracy(a.tool, a.model, s.c, s.L, len(te))
        d = abs(py - c)
        worst = max(worst, d)
        extra = ""
        if len(te) == 10000 and table.get(sid) is not None:
            extra = ", table %.4f" % table[sid]
            if abs(table[sid] - py) > 1e-9:
                print("setup %d: PyTorch %.4f differs from the model's table %.4f"
                      % (sid, py, table[sid]))
                return 1
        print("setup %2d (c=%2d, L=%5d): C %.4f, PyTorch %.4f (%+.4f) on %d images%s"
              % (sid, s.c, s.L, c, py, c - py, len(te), extra))
        if d > 0.002:
            print("shipped_model: FAIL: setup %d differs by %.4f (> 0.002)" % (sid, d))
            return 1
    print("shipped_model: ok, largest difference %.4f" % worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
