"""`python3 -m training add-baselines`: trains SPINN's exit head and CLIO's server models on a
shipped SW-CNN, measures them, and adds the `spinn`, `clio` and `local_exit` blocks and the
`exit.*` tensors to the model file (docs/model-format.md). Everything else in the file (other
blocks, tensors of any dtype) is kept byte for byte, so the step can run on any model file.

    /usr/bin/python3 -m training add-baselines --config training/configs/fmnist-baselines.yaml \
        --model models/fmnist-swcnn.rtcm --rtci-model build/inference/rtci-model

Training resumes from training/runs/<name>/baselines/ like the recipe's steps; `--train exit` or
`--train clio` trains one part only (two lanes side by side), without writing the file.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

from . import clio, config as C, data, exit_head, spinn
from .loop import log, main_guard, pick_device, read_json, set_threads, train, write_json
from .modelfile import load_model, read_raw, setups_from_metadata
from .rawfile import write_raw


def _dirs(cfg):
    root = os.path.join(C.runs_dir(cfg), "baselines")
    os.makedirs(root, exist_ok=True)
    return root


def _env(sec):
    set_threads(sec.get("threads"))
    return pick_device(sec.get("device", "auto"))


def _splits(sec):
    return (data.load(sec["data_dir"], "train", sec.get("limit_train")),
            data.load(sec["data_dir"], "test", sec.get("limit_test")))


def train_exit(cfg, model, doc):
    """Trains (or resumes, or loads) the exit head. Returns (head, state of the run)."""
    sec = C.section(cfg, "exit")
    device = _env(sec)
    tr, te = _splits(sec)
    setup = exit_head.exit_input_setup(doc)
    head = exit_head.build(model.geometry).to(device)

    def batch_fn(h, x, y, step):
        out = h(exit_head.partition(model, x, setup))
        loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        return loss.item(), (out.argmax(1) == y).sum().item(), len(y)

    def eval_fn(h):
        _, pred = exit_head.predict(model, h, te, setup, int(sec["eval_batch_size"]))
        return (pred == te.labels).float().mean().item()

    st = train(os.path.join(_dirs(cfg), "exit"), "exit head", head, tr, sec, batch_fn, device,
               eval_fn if sec.get("eval_each_epoch", True) else None)
    head.eval()
    return head, st


def train_clio(cfg, model, doc):
    """Trains (or loads) one server model per width; returns [{"c", "accuracy"}, ...]."""
    sec = C.section(cfg, "clio")
    device = _env(sec)
    tr, te = _splits(sec)
    L = int(sec["L"])
    stem = clio.find_setup(doc, doc["geometry"]["stem"]["out"], L)
    out_path = os.path.join(_dirs(cfg), "clio.json")
    res = read_json(out_path) if os.path.exists(out_path) else {}
    for w in sec.get("widths", clio.WIDTHS):
        key = str(w)
        if key in res:
            continue
        own = clio.find_setup(doc, w, L)
        server = clio.server_model(model, own.bn_slot).to(device)
        st = train(os.path.join(_dirs(cfg), "clio-w%02d" % w), "clio width %d" % w, server, tr,
                   sec, clio.batch_fn(model, stem, w, L), device)
        acc = clio.accuracy(model, server, te, stem, w, L, int(sec["eval_batch_size"]))
        log("clio width %d: test accuracy %.4f (%s s)" % (w, acc, round(st["wall_s"])))
        res = read_json(out_path) if os.path.exists(out_path) else {}
        res[key] = {"c": w, "accuracy": acc, "wall_s": st["wall_s"], "epochs": st["epochs"],
                    "test_images": len(te)}
        write_json(out_path, res)
    return {"L": L, "widths": [{"c": int(k), "accuracy": v["accuracy"]}
                               for k, v in sorted(res.items(), key=lambda kv: int(kv[0]))]}


@torch.no_grad()
def setup_correctness(cfg, model, doc):
    """[setups, test images] bool: each setup of the SW-CNN right or wrong, codec quantizer."""
    sec = C.section(cfg, "spinn")
    _env(sec)
    _, te = _splits(sec)
    path = os.path.join(_dirs(cfg), "setup_correct.npy")
    if os.path.exists(path):
        m = np.load(path)
        if m.shape == (len(doc["setups"]), len(te)):
            return m
    model.eval()
    setups = setups_from_metadata(doc)
    out = np.zeros((len(setups), len(te)), dtype=bool)
    t0 = time.time()
    for b0 in range(0, len(te), int(sec["eval_batch_size"])):
        x = data.to_input(te.images[b0:b0 + int(sec["eval_batch_size"])])
        y = te.labels[b0:b0 + len(x)]
        sc = model.stem_conv(x)
        for s in setups:
            out[s.id, b0:b0 + len(x)] = (model.forward_from_stem(sc, s).argmax(1) == y).numpy()
    log("setup correctness: %d setups x %d images in %.0f s" % (len(setups), len(te),
                                                                 time.time() - t0))
    np.save(path, out)
    return out


def measure_exit_ms(tool, model_file, runs):
    """Median time of the exit head on the device, from the C tool (oneDNN)."""
    r = subprocess.run([tool, "exit", model_file, "--runs", str(runs)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("%s exit failed: %s" % (tool, r.stderr.strip()))
    return float(json.loads(r.stdout)["median_ms"])


def add_to_file(src, dst, blocks, tensors):
    """Copies src to dst with `blocks` set in the metadata and the `exit.*` tensors replaced."""
    doc, entries = read_raw(src)
    entries = [e for e in entries if not e[0].startswith("exit.")]
    for name, t in tensors:
        a = np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4")
        entries.append((name, "F32", list(a.shape), a.tobytes()))
    doc.update(blocks)
    write_raw(dst, doc, entries)


def run(cfg, model_file, out_file, tool, exit_ms, runs, train_only):
    model, doc = load_model(model_file, "cpu")
    if train_only == "exit":
        return train_exit(cfg, model, doc) and 0
    if train_only == "clio":
        return train_clio(cfg, model, doc) and 0
    head, _ = train_exit(cfg, model, doc)
    clio_block = train_clio(cfg, model, doc)
    sec = C.section(cfg, "spinn")
    _, te = _splits(sec)
    correct = setup_correctness(cfg, model, doc)
    conf, pred = exit_head.predict(model, head, te, exit_head.exit_input_setup(doc),
                                   int(sec["eval_batch_size"]))
    exit_correct = (pred == te.labels).numpy()
    points = spinn.table(conf.numpy(), exit_correct, correct,
                         sec.get("thresholds", spinn.THRESHOLDS))
    # SPINN's accuracy-loss tolerance against uploading every frame with the best setup
    thr = spinn.choose_threshold(points, float(correct.mean(axis=1).max()),
                                 float(sec.get("tolerance", 0.01)))
    tensors = exit_head.exit_tensors(head.cpu())
    out_file = out_file or model_file
    if exit_ms is None:
        # The C tool times the head on the file that carries it.
        tmp = out_file + ".exit-time.tmp"
        add_to_file(model_file, tmp, {"local_exit": {"accuracy": float(exit_correct.mean()),
                                                     "ms": 1.0}}, tensors)
        try:
            exit_ms = measure_exit_ms(tool, tmp, runs)
        finally:
            os.unlink(tmp)
    blocks = {"spinn": spinn.block(points, thr, exit_ms), "clio": clio_block,
              "local_exit": {"accuracy": float(exit_correct.mean()), "ms": float(exit_ms)}}
    add_to_file(model_file, out_file, blocks, tensors)
    log("add-baselines: exit accuracy %.4f, %.3f ms; SPINN threshold %.3f (coverage %.3f); "
        "CLIO %s -> %s" % (exit_correct.mean(), exit_ms, thr,
                           next(p["coverage"] for p in points if p["threshold"] == thr),
                           ", ".join("%d: %.4f" % (w["c"], w["accuracy"])
                                     for w in clio_block["widths"]), out_file))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="python3 -m training add-baselines", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--model", required=True, help="model file with a trained SW-CNN")
    ap.add_argument("--out", default=None, help="output model file (default: --model, in place)")
    ap.add_argument("--rtci-model", default="build/inference/rtci-model",
                    help="the C tool that times the exit head (oneDNN)")
    ap.add_argument("--exit-ms", type=float, default=None, help="use this time, measure nothing")
    ap.add_argument("--runs", type=int, default=2000, help="timed exit-head runs")
    ap.add_argument("--train", choices=["exit", "clio"], default=None,
                    help="train this part only, write nothing")
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    cfg = C.apply_overrides(C.load(a.config), a.runs_dir, a.threads)
    return main_guard(lambda: run(cfg, a.model, a.out, a.rtci_model, a.exit_ms, a.runs, a.train))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
