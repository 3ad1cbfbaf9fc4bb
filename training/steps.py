"""The training recipe, one function per command (see training/README.md).

Run directory layout (training/runs/<name>/ unless `runs_dir` says otherwise):

    init/            train-init: checkpoint.pt, model.pt (final weights), state.json
    cluster/         groups.json (groups, eps search table, similarity matrix)
    swcnn-<V>/       train-swcnn for variant V (e.g. I-D-C): checkpoint.pt, model.pt, state.json
    individual/sNN/  train-individual for setup NN: checkpoint.pt, best.pt, state.json
    individual.json  every individual model's accuracy and schedule
    eval-<V>.json    evaluate: per-setup test accuracy of variant V
"""
import contextlib
import os
import random
import subprocess
import tempfile
import time

import numpy as np
import torch

from . import config as C
from . import data
from .geometry import (Setup, bits_of, get_geometry, largest_setup, setup_space,
                       smallest_setup)
from .loop import (accuracy, fmt_time, log, pick_device, read_json, save_atomic, set_threads,
                   soft_cross_entropy, train, write_json)
from .model import SWCNN, broadcast_bn_slots
from .quant import codec_levels

VARIANTS = ["noI-D-C", "noI-noD-noC", "I-noD-C", "noI-noD-C", "I-noD-noC", "I-D-noC", "I-D-C"]


def parse_variant(v):
    """'I-D-C' -> (init, distill, cluster). A tag after '@' names a separate run of the same
    variant with its own budget (e.g. 'I-D-C@ablation' in swcnn.variants)."""
    parts = v.split("@", 1)[0].split("-")
    if len(parts) != 3 or parts[0] not in ("I", "noI") or parts[1] not in ("D", "noD") or \
            parts[2] not in ("C", "noC"):
        raise ValueError("variant %r is not of the form [no]I-[no]D-[no]C" % v)
    return parts[0] == "I", parts[1] == "D", parts[2] == "C"


def run_name(variant):
    """Directory/file name of a variant's run ('I-D-C@ablation' -> 'I-D-C-ablation')."""
    return variant.replace("@", "-")


def swcnn_dir(p, variant):
    """Run directory of a variant's train-swcnn (checkpoint.pt, model.pt, state.json)."""
    return os.path.join(p["root"], "swcnn-" + run_name(variant))


def eval_path(p, variant):
    """A variant's evaluate output."""
    return os.path.join(p["root"], "eval-%s.json" % run_name(variant))


def _paths(cfg):
    root = C.runs_dir(cfg)
    return {
        "root": root,
        "init": os.path.join(root, "init"),
        "cluster": os.path.join(root, "cluster"),
        "groups": os.path.join(root, "cluster", "groups.json"),
        "individual": os.path.join(root, "individual"),
        "individual_json": os.path.join(root, "individual.json"),
    }


def _setup_env(sec):
    set_threads(sec.get("threads"))
    return pick_device(sec.get("device", "auto"))


def _splits(sec):
    tr = data.load(sec["data_dir"], "train", sec.get("limit_train"))
    te = data.load(sec["data_dir"], "test", sec.get("limit_test"))
    return tr, te


def _save_model(model, path):
    save_atomic({"geometry": model.geometry, "bn_slots": model.bn_slots,
                 "state_dict": model.state_dict()}, path)


def load_model_pt(path, device="cpu"):
    d = torch.load(path, map_location="cpu")
    m = SWCNN(d["geometry"], d["bn_slots"])
    m.load_state_dict(d["state_dict"])
    return m.to(device).eval()


def _teacher_targets(teacher, x):
    with torch.no_grad():
        return torch.softmax(teacher(x), dim=1)


# --------------------------------------------------------------------------------------------
# 1. Initialization: the uncompressed network (32 channels, no quantizer).

def train_init(cfg):
    sec = C.section(cfg, "init")
    device = _setup_env(sec)
    p = _paths(cfg)
    out = os.path.join(p["init"], "model.pt")
    tr, te = _splits(sec)
    torch.manual_seed(int(sec["seed"]))
    model = SWCNN(get_geometry(sec["geometry"]), 1).to(device)
    ls = float(sec.get("label_smoothing", 0.0))

    def batch_fn(m, x, y, step):
        logits = m(x)
        loss = torch.nn.functional.cross_entropy(logits, y, label_smoothing=ls)
        loss.backward()
        return loss.item(), (logits.argmax(1) == y).sum().item(), len(y)

    def eval_fn(m):
        return accuracy(m, te, None, device, int(sec["eval_batch_size"]))

    st = train(p["init"], "train-init", model, tr, sec, batch_fn, device, eval_fn)
    if not os.path.exists(out):
        _save_model(model, out)
    acc = st["history"][-1]["test_acc"] if st["history"] else None
    log("train-init: done, test accuracy %.4f, %s wall, model %s" % (acc, fmt_time(st["wall_s"]),
                                                                      out))
    return out


def _load_init(cfg, device):
    path = os.path.join(_paths(cfg)["init"], "model.pt")
    if not os.path.exists(path):
        raise SystemExit("no initialization model at %s: run train-init first" % path)
    return load_model_pt(path, device)


# --------------------------------------------------------------------------------------------
# 2. Clustering: gradient similarity of the setups, DBSCAN with a searched eps.

def _cluster_params(model):
    """Shared weights whose gradients describe a setup: everything after the sliced conv
    (block1.conv1 only sees c channels, so its gradient would mostly encode c)."""
    return [(n, p) for n, p in model.named_parameters()
            if p.dim() > 1 and not n.startswith("stem.") and n != "block1.conv1.weight"]


def gradient_similarity(model, teacher, setups, batches, device):
    """Mean over batches of the cosine similarity matrix of per-setup gradients."""
    params = _cluster_params(model)
    n = len(setups)
    sim = torch.zeros(n, n, dtype=torch.float64)
    model.train()
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        soft = _teacher_targets(teacher, x) if teacher is not None else None
        grads = []
        for s in setups:
            model.zero_grad(set_to_none=True)
            out = model(x, s)
            loss = soft_cross_entropy(out, soft) if soft is not None else \
                torch.nn.functional.cross_entropy(out, y)
            loss.backward()
            g = torch.cat([p.grad.reshape(-1) for _, p in params]).double().cpu()
            grads.append(g / max(g.norm().item(), 1e-30))
        G = torch.stack(grads)
        sim += G @ G.T
    model.zero_grad(set_to_none=True)
    return (sim / max(1, len(batches))).numpy(), [nm for nm, _ in params]


def dbscan_groups(dist, eps):
    from sklearn.cluster import DBSCAN
    labels = DBSCAN(eps=eps, min_samples=1, metric="precomputed").fit_predict(dist)
    return labels


def search_eps(dist, target):
    """Group count for every eps at which it changes (with min_samples=1 DBSCAN joins setups
    closer than eps transitively, so the count only falls as eps grows). Returns the chosen eps
    (middle of the widest interval giving `target` groups, else the nearest count) and the table
    of (eps, groups)."""
    iu = np.triu_indices(len(dist), 1)
    cand = np.unique(np.round(dist[iu], 12))
    # just below the smallest distance: every setup alone
    points = [max(cand[0] * 0.5, 1e-12)] if len(cand) else [1e-12]
    points += list(cand)
    table = []
    last = None
    for e in points:
        k = int(dbscan_groups(dist, float(e)).max()) + 1
        if k != last:
            table.append((float(e), k))
            last = k
    # intervals: table[i] holds for eps in [table[i].eps, table[i+1].eps)
    best = None
    for i, (e, k) in enumerate(table):
        hi = table[i + 1][0] if i + 1 < len(table) else e * 1.5 + 1e-6
        score = (abs(k - target), -(hi - e))
        if best is None or score < best[0]:
            best = (score, (e + hi) / 2, k)
    return best[1], best[2], table


def cluster(cfg):
    sec = C.section(cfg, "cluster")
    device = _setup_env(sec)
    p = _paths(cfg)
    os.makedirs(p["cluster"], exist_ok=True)
    if os.path.exists(p["groups"]) and not sec.get("force", False):
        log("cluster: %s exists" % p["groups"])
        return read_json(p["groups"])
    init = _load_init(cfg, device)
    model = broadcast_bn_slots(init, SWCNN(init.geometry, 50)).to(device)
    tr, _ = _splits(sec)
    setups = setup_space()
    nb = int(sec.get("batches", 4))
    bs = int(sec.get("batch_size", 128))
    import itertools
    batches = [(x, y) for _, x, y in itertools.islice(
        data.train_batches(tr, bs, int(sec["seed"]), 0, aug=False), nb)]
    t0 = time.time()
    log("cluster: gradients of %d setups on %d batches of %d" % (len(setups), len(batches), bs))
    sim, names = gradient_similarity(model, init if sec.get("distill", True) else None, setups,
                                     batches, device)
    dist = np.clip(1.0 - sim, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    target = int(sec.get("groups", 3))
    eps, k, table = search_eps(dist, target)
    log("cluster: group count as eps grows (DBSCAN, min_samples=1, distance = 1 - cosine):")
    for e, kk in table:
        log("  eps >= %.6f: %d groups" % (e, kk))
    labels = dbscan_groups(dist, eps)
    groups = [[s.id for s, lab in zip(setups, labels) if lab == g]
              for g in range(int(labels.max()) + 1)]
    groups.sort(key=lambda g: g[0])
    log("cluster: target %d groups, eps %.6f gives %d: %s" % (target, eps, len(groups), groups))
    res = {"target_groups": target, "eps": eps, "groups": groups,
           "eps_table": [[e, kk] for e, kk in table], "batches": len(batches), "batch_size": bs,
           "feature": "cosine similarity of loss gradients w.r.t. " + ", ".join(names[:3]) +
                      (" and %d more tensors" % (len(names) - 3) if len(names) > 3 else ""),
           "setups": [[s.id, s.c, s.L] for s in setups], "similarity": sim.tolist(),
           "wall_s": time.time() - t0}
    write_json(p["groups"], res)
    return res


# --------------------------------------------------------------------------------------------
# 3. The SW-CNN.

def sample_setups(setups, groups, use_groups, rng):
    big, small = largest_setup(setups), smallest_setup(setups)
    if not use_groups:
        return list(setups)
    by_id = {s.id: s for s in setups}
    out = [big, small]
    for g in groups:
        members = [i for i in g if i not in (big.id, small.id)] or list(g)
        out.append(by_id[rng.choice(members)])
    return out


@torch.no_grad()
def recalibrate_bn(model, split, setups, batches, batch_size, seed, device):
    """Recomputes every setup's BN statistics as exact averages over a few training batches
    (setups sampled rarely during training would otherwise keep stale statistics)."""
    from .model import SwitchBatchNorm2d
    bns = [m for m in model.modules() if isinstance(m, SwitchBatchNorm2d)]
    import itertools
    xs = [x for _, x, _ in itertools.islice(
        data.train_batches(split, batch_size, seed, 10**6, aug=False), batches)]
    model.train()
    for s in setups:
        for m in bns:
            m.running_mean[s.bn_slot].zero_()
            m.running_var[s.bn_slot].fill_(1.0)
        for j, x in enumerate(xs):
            for m in bns:
                m.momentum = 1.0 / (j + 1)  # running stats become the mean over the batches
            model(x.to(device), s)
    for m in bns:
        m.momentum = 0.1
    model.eval()


def train_swcnn(cfg, variant="I-D-C"):
    use_init, use_distill, use_groups = parse_variant(variant)
    sec = C.section(cfg, "swcnn")
    overrides = (sec.get("variants") or {}).get(variant) or {}
    sec.update(overrides)
    device = _setup_env(sec)
    p = _paths(cfg)
    run_dir = swcnn_dir(p, variant)
    out = os.path.join(run_dir, "model.pt")
    if os.path.exists(out):
        log("train-swcnn %s: %s exists" % (variant, out))
        return out
    setups = setup_space()
    groups = []
    if use_groups:
        if not os.path.exists(p["groups"]):
            raise SystemExit("no groups at %s: run cluster first" % p["groups"])
        groups = read_json(p["groups"])["groups"]
    geometry = get_geometry(sec["geometry"])
    init = _load_init(cfg, device) if (use_init or use_distill) else None
    torch.manual_seed(int(sec["seed"]))
    model = SWCNN(geometry, len(setups))
    if use_init:
        broadcast_bn_slots(init, model)
    model.to(device)
    tr, te = _splits(sec)
    seed = int(sec["seed"])
    per_batch = 2 + len(groups) if use_groups else len(setups)
    log("train-swcnn %s: %d setups per batch%s" % (variant, per_batch,
                                                   ", groups %s" % groups if groups else ""))

    def batch_fn(m, x, y, step):
        rng = random.Random(seed * 1000003 + step)
        chosen = sample_setups(setups, groups, use_groups, rng)
        soft = _teacher_targets(init, x) if use_distill else None
        tot = correct = 0.0
        for s in chosen:
            out = m(x, s)
            loss = soft_cross_entropy(out, soft) if use_distill else \
                torch.nn.functional.cross_entropy(out, y)
            loss.backward()
            tot += loss.item()
            correct += (out.argmax(1) == y).sum().item()
        return tot / len(chosen), correct / len(chosen), len(y)

    eval_ids = sec.get("eval_setups", [45, 4])
    by_id = {s.id: s for s in setups}

    def eval_fn(m):
        accs = [accuracy(m, te, by_id[i], device, int(sec["eval_batch_size"])) for i in eval_ids]
        return float(np.mean(accs))

    passes = per_batch + (1.0 / 3 if use_distill else 0.0)  # teacher: forward only
    st = train(run_dir, "train-swcnn " + variant, model, tr, sec, batch_fn, device,
               eval_fn if sec.get("eval_each_epoch", True) else None, passes_per_batch=passes)
    nb = int(sec.get("bn_recalibrate_batches", 0))
    if nb:
        t0 = time.time()
        recalibrate_bn(model, tr, setups, nb, int(sec["batch_size"]), seed, device)
        log("train-swcnn %s: BN statistics recalibrated on %d batches per setup (%.0f s)"
            % (variant, nb, time.time() - t0))
    _save_model(model, out)
    st["variant"] = variant
    st["setups_per_batch"] = per_batch
    st["bn_recalibrate_batches"] = nb
    write_json(os.path.join(run_dir, "state.json"), st)
    log("train-swcnn %s: done in %s, model %s" % (variant, fmt_time(st["wall_s"]), out))
    return out


# --------------------------------------------------------------------------------------------
# 4. Individually trained models, one per setup (the benchmark).

@contextlib.contextmanager
def _individual_lock(path):
    """individual.json and its claims are read and written by several processes: one flock."""
    import fcntl
    with open(path + ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        yield


def _merge_individual(path, key, rec):
    """Adds one setup's record to individual.json under the lock, so several train-individual
    processes can fill it at once."""
    with _individual_lock(path):
        results = read_json(path) if os.path.exists(path) else {}
        results[key] = rec
        write_json(path, results)
    return results


def _claim_individual(path, key, claim_key=None, done=None):
    """Work queue for parallel train-individual processes: a setup is taken by the first live
    process that claims it (claims of dead processes lapse, so a restart resumes their setup).
    `done(results)` says whether the work is already in the results (default: key present)."""
    claim_key = claim_key or key
    with _individual_lock(path):
        if os.path.exists(path):
            res = read_json(path)
            if done(res) if done else key in res:
                return False
        cpath = path + ".claims"
        claims = read_json(cpath) if os.path.exists(cpath) else {}
        pid = claims.get(claim_key)
        if pid and pid != os.getpid():
            try:
                os.kill(pid, 0)
                return False          # a live process is training it
            except ProcessLookupError:
                pass
        claims[claim_key] = os.getpid()
        write_json(cpath, claims)
    return True


def format_setup_list(ids):
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8' (what parse_setup_list reads back)."""
    out, ids = [], sorted(ids)
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else "%d-%d" % (ids[i], ids[j]))
        i = j + 1
    return ", ".join(out)


def parse_setup_list(text):
    """'0-24' or '3,7,45' or '0-4,40-49' -> sorted setup ids."""
    ids = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            ids.update(range(int(a), int(b) + 1))
        else:
            ids.add(int(part))
    n = len(setup_space())
    bad = [i for i in ids if not 0 <= i < n]
    if bad:
        raise ValueError("setup ids %s outside 0-%d" % (sorted(bad), n - 1))
    return sorted(ids)


def train_individual(cfg):
    sec = C.section(cfg, "individual")
    device = _setup_env(sec)
    p = _paths(cfg)
    init = _load_init(cfg, device)
    tr, te = _splits(sec)
    setups = setup_space()
    ids = sec.get("setups") or [s.id for s in setups]
    results = read_json(p["individual_json"]) if os.path.exists(p["individual_json"]) else {}
    distill = sec.get("loss", "soft") == "soft"
    # Every individual model sees the same batches (same seed), so the teacher's soft targets are
    # computed once per step and shared (in memory: epochs x 60k x classes floats).
    teacher_cache = {}

    def teacher(x, step):
        if step not in teacher_cache:
            teacher_cache[step] = _teacher_targets(init, x)
        return teacher_cache[step]

    t_all = time.time()
    # A retrain (--retrain-epochs N) trains the listed setups again on a longer schedule in
    # their own run directories and keeps the better of the two models as the benchmark.
    retrain = int(sec.get("retrain_epochs") or 0)
    if retrain:
        sec["epochs"] = retrain

    def done(res, key):
        return key in res and (not retrain or res[key].get("retrain_epochs") == retrain)

    for n, sid in enumerate(ids):
        key = str(sid)
        if done(results, key) or not _claim_individual(
                p["individual_json"], key, claim_key=key + ("@r%d" % retrain if retrain else ""),
                done=lambda res, key=key: done(res, key)):
            continue
        s = setups[sid]
        own = Setup(s.id, s.c, s.L, 0)  # a single-setup model has one BN slot
        run_dir = os.path.join(p["individual"], "s%02d" % sid + ("-r%d" % retrain if retrain else ""))
        model = SWCNN(init.geometry, 1)
        model.load_state_dict(init.state_dict())
        model.to(device)
        label = "train-individual s%02d (c=%d, L=%d) [%d/%d]" % (sid, s.c, s.L, n + 1, len(ids))

        def batch_fn(m, x, y, step, own=own):
            out = m(x, own)
            if distill:
                loss = soft_cross_entropy(out, teacher(x, step))
            else:
                loss = torch.nn.functional.cross_entropy(out, y)
            loss.backward()
            return loss.item(), (out.argmax(1) == y).sum().item(), len(y)

        def eval_fn(m, own=own):
            return accuracy(m, te, own, device, int(sec["eval_batch_size"]))

        acc0 = eval_fn(model)
        patience = int(sec.get("patience", 1))
        st = train(run_dir, label, model, tr, sec, batch_fn, device, eval_fn,
                   patience=patience,
                   passes_per_batch=1.0, baseline=acc0,
                   min_delta=float(sec.get("min_delta", 0.0)))
        best = st["best"] if st["best"] is not None and st["best"] >= acc0 else acc0
        results[key] = {"setup": sid, "c": s.c, "L": s.L, "accuracy": best,
                        "accuracy_before": acc0, "best_epoch": st["best_epoch"],
                        "epochs_run": st["epoch_done"], "stopped_early": st["stopped_early"],
                        "wall_s": st["wall_s"], "images": st["images"],
                        "schedule_epochs": int(sec["epochs"]), "patience": patience,
                        "history": st["history"]}
        if retrain:
            first = read_json(p["individual_json"]).get(key) if os.path.exists(
                p["individual_json"]) else None
            rec = results[key]
            rec["retrain_epochs"] = retrain
            rec["accuracy_retrain"] = best
            if first:
                rec["first_run"] = {k: v for k, v in first.items() if k != "history"}
                if first["accuracy"] > best:
                    rec["accuracy"] = first["accuracy"]
        results = _merge_individual(p["individual_json"], key, results[key])
        log("%s: accuracy %.4f (before fine-tuning %.4f), %d epoch(s), %s"
            % (label, best, acc0, st["epoch_done"], fmt_time(st["wall_s"])))
    log("train-individual: %d setups done (%s this run)" % (len(results),
                                                           fmt_time(time.time() - t_all)))
    return results


# --------------------------------------------------------------------------------------------
# 5. Evaluation of an SW-CNN on all setups.

def evaluate_model(model, te, setups, device, batch_size=1000, label="evaluate"):
    accs = {}
    for s in setups:
        accs[s.id] = accuracy(model, te, s, device, batch_size)
        log("%s: setup %2d (c=%2d, L=%5d): %.4f" % (label, s.id, s.c, s.L, accs[s.id]))
    return accs


def evaluate(cfg, variant="I-D-C", model_file=None):
    sec = C.section(cfg, "evaluate")
    device = _setup_env(sec)
    p = _paths(cfg)
    _, te = _splits(sec)
    if model_file:
        from .modelfile import load_model, setups_from_metadata
        model, doc = load_model(model_file, device)
        setups = setups_from_metadata(doc)
        out = None
    else:
        path = os.path.join(swcnn_dir(p, variant), "model.pt")
        if not os.path.exists(path):
            raise SystemExit("no SW-CNN at %s: run train-swcnn --variant %s" % (path, variant))
        model = load_model_pt(path, device)
        setups = setup_space()
        out = eval_path(p, variant)
        if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(path):
            res = read_json(out)
            log("evaluate %s: %s is up to date" % (variant, out))
            return res
    t0 = time.time()
    accs = evaluate_model(model, te, setups, device, int(sec["eval_batch_size"]),
                          "evaluate " + (variant if not model_file else model_file))
    res = {"variant": variant if not model_file else None, "model_file": model_file,
           "test_images": len(te), "accuracy": {str(k): v for k, v in accs.items()},
           "wall_s": time.time() - t0}
    if out:
        write_json(out, res)
    log("evaluate: mean %.4f, min %.4f, max %.4f over %d setups"
        % (np.mean(list(accs.values())), min(accs.values()), max(accs.values()), len(accs)))
    return res


# --------------------------------------------------------------------------------------------
# 6. Export: the model file with groups, accuracies and payload sizes.

def pack_levels(q, bits):
    """Bit-packs integer levels as the codec does: channel-major, one bit stream, each byte
    filled from its least significant bit; 16-bit codes little-endian."""
    q = q.astype(np.uint32).reshape(-1)
    if bits >= 8:
        return q.astype("<u2" if bits == 16 else "u1").tobytes()
    bitarr = ((q[:, None] >> np.arange(bits, dtype=np.uint32)[None, :]) & 1).astype(np.uint8)
    return np.packbits(bitarr.reshape(-1), bitorder="little").tobytes()


def frame_bytes(part, L):
    """A codec frame without entropy coding: 28-byte header (zeros here; only its size counts),
    per channel float32 (min, max), then the packed codes. part: [c, H, W]."""
    q, mn, rng = codec_levels(part[None], L)
    mx = part.reshape(part.shape[0], -1).amax(1)
    side = np.stack([mn.reshape(-1).numpy(), mx.numpy()], 1).astype("<f4")
    return bytes(28) + side.tobytes() + pack_levels(q[0].numpy(), bits_of(L))


BYTES_MAX_CODES = 8192  # RTCI_CODEC_BYTES_MAX_CODES: small narrow frames may carry byte codes


def _payload_zstd_cli(parts, setups, level):
    """Approximation without the C codec, following its rules: header + side info + the
    smallest of the stored packed codes, zstd of the packed codes and (bits < 8, at most 8192
    codes) zstd of the codes one per byte; zstd by the command line tool."""
    from shutil import which
    if not which("zstd"):
        return None
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s, part in zip(setups, parts):
            bits = bits_of(s.L)
            frames = []  # (header bytes, stored size, [files to compress])
            for i in range(len(part)):
                q, _, _ = codec_levels(part[i][None], s.L)
                q = q[0].numpy()
                packed = pack_levels(q, bits)
                f = os.path.join(tmp, "p%d" % i)
                with open(f, "wb") as fh:
                    fh.write(packed)
                files = [f]
                if bits < 8 and q.size <= BYTES_MAX_CODES:
                    fb = os.path.join(tmp, "b%d" % i)
                    with open(fb, "wb") as fh:
                        fh.write(q.astype(np.uint8).tobytes())
                    files.append(fb)
                frames.append((28 + 8 * s.c, len(packed), files))
            allfiles = [f for fr in frames for f in fr[2]]
            subprocess.run(["zstd", "-q", "-f", "--no-check", "-%d" % level] + allfiles,
                           check=True)
            sizes = [h + min([stored] + [os.path.getsize(f + ".zst") for f in files])
                     for h, stored, files in frames]
            out[s.id] = float(np.mean(sizes))
    return out


def measure_payload(model, te, setups, images, level=1, cache_dir=None):
    """Mean frame size per setup on `images` test images. With the C codec (built from
    inference/codec.c through ctypes) the sizes are exact; without it they are approximated with
    the zstd tool. Returns ({id: bytes}, method) or (None, None)."""
    from . import codec_ffi
    model.eval()
    x = data.to_input(te.images[:images])
    with torch.no_grad():
        conv = model.stem_conv(x)
        parts = []
        for s in setups:
            model.set_slot(s.bn_slot)
            parts.append(model.stem_finish(conv)[:, : s.c].contiguous())
    codec = codec_ffi.load(cache_dir, level=level)
    if codec is not None:
        out = {}
        for s, part in zip(setups, parts):
            a = part.numpy()
            out[s.id] = float(np.mean([len(codec.encode(a[i], s.c, s.L)) for i in range(len(a))]))
        codec.close()
        return out, "exact: frames from inference/codec.c (zstd level %d)" % level
    out = _payload_zstd_cli(parts, setups, level)
    if out is None:
        return None, None
    return out, "approximate: zstd -%d tool on the packed codes + header + side info" % level


def export(cfg, variant="I-D-C", out_path=None):
    from .modelfile import default_metadata, export_model, set_groups
    sec = C.section(cfg, "export")
    _setup_env(sec)  # threads; export runs on the CPU
    p = _paths(cfg)
    path = os.path.join(swcnn_dir(p, variant), "model.pt")
    if not os.path.exists(path):
        raise SystemExit("no SW-CNN at %s: run train-swcnn --variant %s" % (path, variant))
    model = load_model_pt(path, "cpu")
    meta = default_metadata(model.geometry)
    parse_variant(variant)
    if os.path.exists(p["groups"]):
        set_groups(meta, read_json(p["groups"])["groups"])
    ev = eval_path(p, variant)
    if not os.path.exists(ev):
        evaluate(cfg, variant)
    accs = read_json(ev)["accuracy"]
    _, te = _splits(sec)
    n_img = int(sec.get("payload_images", 100))
    level = int(sec.get("zstd_level", 1))
    payload, how = measure_payload(model, te, setup_space(), min(n_img, len(te)), level,
                                   os.path.join(p["root"], ".codec")) if n_img else (None, None)
    for s in meta["setups"]:
        s["accuracy"] = accs.get(str(s["id"]))
        if payload:
            s["payload_bytes"] = round(payload[s["id"]], 1)
    st = read_json(os.path.join(swcnn_dir(p, variant), "state.json"))
    meta["provenance"] = (
        "SW-CNN %s trained by training/ (python3 -m training, config %s): %d epochs x %d steps of "
        "batch %d, seed %s; accuracy = top-1 on the %d Fashion-MNIST test images with the codec's "
        "quantizer; payload_bytes = mean frame size over the first %d test images, %s"
        % (variant, os.path.basename(cfg.get("_path", "?")), st["epochs"], st["steps_per_epoch"],
           st["batch_size"], sec["seed"], len(te), n_img, how or "not measured"))
    out_path = out_path or sec.get("out") or os.path.join(p["root"], "%s.rtcm" % variant)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    export_model(model, out_path, meta)
    log("export: wrote %s (%d bytes)" % (out_path, os.path.getsize(out_path)))
    return out_path


# --------------------------------------------------------------------------------------------
# The whole shipped recipe, and throughput.

def recipe(cfg):
    train_init(cfg)
    cluster(cfg)
    train_swcnn(cfg, "I-D-C")
    evaluate(cfg, "I-D-C")
    train_individual(cfg)
    return export(cfg, "I-D-C")


def throughput(cfg, seconds=20.0):
    sec = C.section(cfg, "init")
    device = _setup_env(sec)
    geometry = get_geometry(sec["geometry"])
    bs = int(sec["batch_size"])
    torch.manual_seed(0)
    model = SWCNN(geometry, 50).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.rand([bs] + geometry["input"], device=device)
    y = torch.randint(0, geometry["classes"], (bs,), device=device)
    s = setup_space()[22]
    res = {}
    for label, train_mode in (("train", True), ("eval", False)):
        model.train(train_mode)
        n, t0 = 0, None
        while True:
            if train_mode:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x, s), y).backward()
                opt.step()
            else:
                with torch.no_grad():
                    model(x, s)
            n += 1
            if n == 2:
                t0 = time.time()
                n0 = n
            if t0 and time.time() - t0 > seconds / 2:
                break
        rate = (n - n0) * bs / (time.time() - t0)
        res[label] = rate
        log("throughput %s: %s batch %d, %d thread(s): %.0f images/s"
            % (geometry["name"], label, bs, torch.get_num_threads(), rate))
    return res
