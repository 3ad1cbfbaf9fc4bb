"""The shared training loop: SGD (Nesterov), linear-decay LR per step, progress lines,
checkpoints every few minutes and at epoch ends, exact resume, optional early stopping.

Every random choice is derived from (seed, epoch, step), so a run resumed from its checkpoint
sees the same batches, augmentations and sampled setups as an uninterrupted one.
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data


def log(msg):
    print(msg, flush=True)


def pick_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_threads(n):
    if n:
        torch.set_num_threads(int(n))


def make_optimizer(model, cfg):
    """Weight decay on conv and linear weights only (not depthwise convs, BN or biases), as the
    seed does."""
    decay, no_decay = [], []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            (no_decay if m.groups > 1 else decay).append(m.weight)
        elif isinstance(m, nn.Linear):
            decay.append(m.weight)
            no_decay.append(m.bias)
    seen = {id(p) for p in decay + no_decay}
    no_decay += [p for p in model.parameters() if id(p) not in seen]  # BN gamma/beta
    groups = [{"params": decay, "weight_decay": float(cfg["weight_decay"])},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=float(cfg["lr"]), momentum=float(cfg["momentum"]),
                           nesterov=bool(cfg["nesterov"]))


def lr_at(step, total, base, warmup_steps=0):
    if warmup_steps and step < warmup_steps:
        return base * (step + 1) / warmup_steps
    span = max(1, total - warmup_steps)
    return base * max(0.0, 1.0 - (step - warmup_steps) / span)


def soft_cross_entropy(logits, soft_target):
    return -(soft_target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


@torch.no_grad()
def accuracy(model, split, setup, device, batch_size=1000):
    """Top-1 on a split with the codec's exact quantizer (eval mode)."""
    model.eval()
    correct = 0
    for x, y in data.test_batches(split, batch_size):
        out = model(x.to(device), setup)
        correct += (out.argmax(1).cpu() == y).sum().item()
    return correct / len(split)


def fmt_time(s):
    s = int(max(0, s))
    return "%dh%02dm%02ds" % (s // 3600, s % 3600 // 60, s % 60) if s >= 3600 else \
        "%dm%02ds" % (s // 60, s % 60)


def train(run_dir, label, model, train_split, cfg, batch_fn, device, eval_fn=None,
          patience=None, passes_per_batch=1.0, baseline=None, min_delta=0.0):
    """Trains `model` in place for cfg['epochs'] epochs (resuming from run_dir/checkpoint.pt).

    batch_fn(model, x, y, step) computes the losses of one batch and calls backward() on them
    (gradients of several setups accumulate); it returns (loss, correct, count) for the progress
    line. eval_fn(model) -> accuracy, run after each epoch; with `patience`, training stops when
    the accuracy has not improved by more than `min_delta` for that many epochs, and
    run_dir/best.pt holds the best weights. `baseline` is the accuracy before training (epoch 0),
    so a first epoch that does not beat it counts as no improvement. Returns the state dict
    written to run_dir/state.json.
    """
    os.makedirs(run_dir, exist_ok=True)
    ckpt_path = os.path.join(run_dir, "checkpoint.pt")
    bs = int(cfg["batch_size"])
    spe = data.steps_per_epoch(train_split, bs)
    if spe < 1:
        raise ValueError("%s: %d training images are fewer than one batch of %d"
                         % (label, len(train_split), bs))
    # Fractional epochs are allowed (a budget given in image passes, e.g. 0.1 epoch).
    epochs_f = float(cfg["epochs"])
    epochs = int(epochs_f) if epochs_f == int(epochs_f) else epochs_f
    total = max(1, int(round(epochs_f * spe)))
    n_epochs = (total + spe - 1) // spe
    warmup = int(round(float(cfg.get("warmup_epochs", 0)) * spe))
    opt = make_optimizer(model, cfg)
    st = {"step": 0, "epoch_done": 0, "history": [], "best": None, "best_epoch": None,
          "wall_s": 0.0, "images": 0, "image_passes": 0.0, "stopped_early": False,
          "done": False, "steps_per_epoch": spe, "total_steps": total, "epochs": epochs,
          "batch_size": bs, "last_improved": 0}
    if baseline is not None:
        st["best"], st["best_epoch"] = float(baseline), 0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        st.update(ck["state"])
        log("%s: resumed at step %d/%d (epoch %d)" % (label, st["step"], total,
                                                      st["step"] // spe + 1))
    if st["done"]:
        log("%s: already finished" % label)
        return st

    def checkpoint():
        save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": st},
                    ckpt_path)

    seed = int(cfg["seed"])
    t_start = time.time()
    t_last_log = t_last_ckpt = t_start
    step0 = st["step"]
    run_loss = run_correct = run_count = 0.0
    while st["step"] < total and not st["stopped_early"]:
        epoch = st["step"] // spe
        start = st["step"] % spe
        model.train()
        for i, x, y in data.train_batches(train_split, bs, seed, epoch, start,
                                          aug=bool(cfg.get("augment", True)),
                                          pad=int(cfg.get("augment_pad", 2))):
            if st["step"] >= total:
                break
            lr = lr_at(st["step"], total, float(cfg["lr"]), warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss, correct, count = batch_fn(model, x.to(device), y.to(device), st["step"])
            opt.step()
            st["step"] += 1
            st["images"] += bs
            st["image_passes"] += bs * passes_per_batch
            run_loss += loss * count
            run_correct += correct
            run_count += count
            now = time.time()
            if now - t_last_log >= float(cfg["log_every_s"]) or st["step"] == total:
                rate = (st["step"] - step0) / max(1e-9, now - t_start)
                eta = (total - st["step"]) / max(1e-9, rate)
                log("%s: epoch %d/%d step %d/%d loss %.4f acc %.4f lr %.4g %.0f img/s ETA %s"
                    % (label, epoch + 1, n_epochs, i + 1, spe, run_loss / max(1, run_count),
                       run_correct / max(1, run_count), lr, rate * bs, fmt_time(eta)))
                run_loss = run_correct = run_count = 0.0
                t_last_log = now
            if now - t_last_ckpt >= float(cfg["checkpoint_every_s"]):
                st["wall_s"] += now - t_start
                t_start, step0 = now, st["step"]
                checkpoint()
                t_last_ckpt = now
        # end of epoch
        st["epoch_done"] = epoch + 1
        rec = {"epoch": epoch + 1, "step": st["step"]}
        if eval_fn is not None:
            acc = eval_fn(model)
            rec["test_acc"] = acc
            if st["best"] is None or acc > st["best"] + float(min_delta):
                st["last_improved"] = epoch + 1
            if st["best"] is None or acc > st["best"]:
                st["best"], st["best_epoch"] = acc, epoch + 1
                if patience is not None:
                    save_atomic(model.state_dict(), os.path.join(run_dir, "best.pt"))
            log("%s: epoch %d test accuracy %.4f (best %.4f at epoch %d)"
                % (label, epoch + 1, acc, st["best"], st["best_epoch"]))
            if patience is not None and epoch + 1 - st["last_improved"] >= patience \
                    and st["step"] < total:
                st["stopped_early"] = True
                log("%s: no improvement for %d epoch(s), stopping" % (label, patience))
        st["history"].append(rec)
        now = time.time()
        st["wall_s"] += now - t_start
        t_start, step0 = now, st["step"]
        checkpoint()
        t_last_ckpt = now
    st["done"] = True
    checkpoint()
    write_json(os.path.join(run_dir, "state.json"), st)
    return st


def main_guard(fn):
    import signal

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return fn()
    except KeyboardInterrupt:
        log("interrupted; the last checkpoint is kept, run the same command to resume")
        sys.exit(130)
