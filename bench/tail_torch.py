"""PyTorch side of bench/tail: the same model file's tail (block1 .. classifier) in eager mode and
as frozen TorchScript (torch.jit.trace + torch.jit.freeze + optimize_for_inference), images/s per
(threads, batch), medians of several timed repeats. Prints CSV rows kind,threads,batch,median_img_s.

    /usr/bin/python3 bench/tail_torch.py MODEL --batches 1,8,32,64 --threads 1,2 --runs 5
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from training.modelfile import load_model, setups_from_metadata  # noqa: E402


class Tail(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.tail(x)


def measure(fn, x, runs):
    with torch.no_grad():
        fn(x)   # warm-up
        t0 = time.perf_counter()
        fn(x)
        one = time.perf_counter() - t0
        iters = 1 if one > 0.2 else int(0.2 / max(one, 1e-6)) + 1
        vals = []
        for _ in range(runs):
            t0 = time.perf_counter()
            for _ in range(iters):
                fn(x)
            vals.append(x.shape[0] * iters / (time.perf_counter() - t0))
    return statistics.median(vals)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batches", default="1,8,32,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    model, doc = load_model(a.model)
    model.eval()
    setup = max(setups_from_metadata(doc), key=lambda s: (s.c, s.L))   # (32 ch, 16 bit)
    model.set_slot(setup.bn_slot)
    g = doc["geometry"]
    batches = [int(b) for b in a.batches.split(",")]
    print("kind,threads,batch,median_img_s")
    for th in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(th)
        h = (g["input"][1] + 2 * g["stem"]["pad"] - g["stem"]["kernel"]) // g["stem"]["stride"] + 1
        w = (g["input"][2] + 2 * g["stem"]["pad"] - g["stem"]["kernel"]) // g["stem"]["stride"] + 1
        for b in batches:
            x = torch.rand(b, g["stem"]["out"], h, w) * 6
            tail = Tail(model).eval()
            eager = measure(tail, x, a.runs)
            with torch.no_grad():
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(tail, x).eval()))
                ref = tail(x)
                got = frozen(x)
            err = float((got - ref).norm() / ref.norm())
            if err > 1e-3:
                print("frozen TorchScript differs from eager: rel L2 %.3g" % err, file=sys.stderr)
            fr = measure(frozen, x, a.runs)
            print("torch_eager,%d,%d,%.2f" % (th, b, eager))
            print("torch_frozen,%d,%d,%.2f" % (th, b, fr))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
