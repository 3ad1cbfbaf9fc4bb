"""Every training step end to end on a few hundred Fashion-MNIST images (configs/tiny.yaml)."""
import os

import numpy as np
import pytest
import torch

from training import config as C
from training import data, steps
from training.geometry import get_geometry, largest_setup, setup_space, smallest_setup
from training.loop import read_json, train
from training.model import SWCNN

TINY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "tiny.yaml")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not os.path.exists(os.path.join(data.DEFAULT_DIR, "train-images-idx3-ubyte.gz")):
        pytest.skip("Fashion-MNIST IDX files not installed")
    cfg = C.load(TINY)
    cfg["common"]["runs_dir"] = str(tmp_path_factory.mktemp("runs"))
    cfg["common"]["log_every_s"] = 1000
    # noC passes all 50 setups per batch: keep those variants to one small batch
    cfg["swcnn"]["variants"] = {"noI-noD-noC": {"limit_train": 64},
                                "I-noD-noC": {"limit_train": 64}}
    steps.train_init(cfg)
    return cfg


def test_init_model_and_resume_is_a_no_op(run, capsys):
    p = steps._paths(run)
    st = read_json(os.path.join(p["init"], "state.json"))
    assert st["done"] and st["epoch_done"] == 2 and len(st["history"]) == 2
    assert st["images"] == 2 * (256 // 64) * 64
    before = os.path.getmtime(os.path.join(p["init"], "model.pt"))
    steps.train_init(run)
    assert "already finished" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(p["init"], "model.pt")) == before
    m = steps.load_model_pt(os.path.join(p["init"], "model.pt"))
    assert m.bn_slots == 1


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    split = data.Split(np.random.RandomState(0).randint(0, 255, (96, 28, 28)).astype(np.uint8),
                       np.arange(96) % 10)
    cfg = C.section({"common": {"seed": 3, "checkpoint_every_s": 0, "log_every_s": 1000}},
                    "init")
    cfg.update({"epochs": 2, "batch_size": 32, "lr": 0.05})

    def fresh():
        torch.manual_seed(0)
        return SWCNN(get_geometry("fmnist"), 1)

    def make_fn(stop_at=None):
        def fn(m, x, y, step):
            if stop_at is not None and step == stop_at:
                raise KeyboardInterrupt
            loss = torch.nn.functional.cross_entropy(m(x), y)
            loss.backward()
            return loss.item(), 0, len(y)
        return fn

    a = fresh()
    train(str(tmp_path / "a"), "a", a, split, cfg, make_fn(), "cpu")
    b = fresh()
    with pytest.raises(KeyboardInterrupt):
        train(str(tmp_path / "b"), "b", b, split, cfg, make_fn(stop_at=4), "cpu")
    b = fresh()  # a new process: only the checkpoint survives
    st = train(str(tmp_path / "b"), "b", b, split, cfg, make_fn(), "cpu")
    assert st["step"] == 6
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k


def test_eps_search_on_known_clusters():
    pts = np.array([0.0, 0.01, 0.02, 1.0, 1.01, 3.0, 3.02, 3.03])
    dist = np.abs(pts[:, None] - pts[None, :])
    eps, k, table = steps.search_eps(dist, 3)
    assert k == 3 and 0.02 <= eps < 0.98
    counts = [kk for _, kk in table]
    assert counts == sorted(counts, reverse=True) and counts[0] == len(pts) and counts[-1] == 1
    labels = steps.dbscan_groups(dist, eps)
    assert len(set(labels[:3])) == 1 and len(set(labels[3:5])) == 1 and len(set(labels)) == 3


def test_cluster_partitions_all_setups(run):
    res = steps.cluster(run)
    ids = sorted(i for g in res["groups"] for i in g)
    assert ids == list(range(50))
    assert len(res["groups"]) == 3
    sim = np.array(res["similarity"])
    assert sim.shape == (50, 50) and np.allclose(np.diag(sim), 1.0)
    assert os.path.exists(steps._paths(run)["groups"])


def test_setup_sampling():
    setups = setup_space()
    groups = [[0, 1, 2, 3], [4, 5], [45, 46]]
    import random
    for seed in range(20):
        got = steps.sample_setups(setups, groups, True, random.Random(seed))
        assert got[0] is largest_setup(setups) and got[1] is smallest_setup(setups)
        assert got[2].id in groups[0] and got[3].id == 5 and got[4].id == 46
    assert len(steps.sample_setups(setups, groups, False, random.Random(0))) == 50


@pytest.mark.parametrize("variant", ["I-D-C", "noI-noD-noC"])
def test_swcnn_variant(run, variant):
    steps.cluster(run)
    out = steps.train_swcnn(run, variant)
    st = read_json(os.path.join(os.path.dirname(out), "state.json"))
    assert st["done"] and st["variant"] == variant
    assert st["setups_per_batch"] == (5 if variant.endswith("-C") else 50)
    m = steps.load_model_pt(out)
    assert m.bn_slots == 50
    if variant == "I-D-C":
        init = steps.load_model_pt(os.path.join(steps._paths(run)["init"], "model.pt"))
        assert not torch.equal(m.classifier.weight, init.classifier.weight)
        # every slot gets its own statistics (recalibrated per setup)
        assert not torch.equal(m.block1.bn1.running_mean[0], m.block1.bn1.running_mean[45])


def test_recalibration_sets_exact_batch_statistics():
    torch.manual_seed(0)
    m = SWCNN(get_geometry("fmnist"), 50)
    split = data.Split(np.random.RandomState(1).randint(0, 255, (64, 28, 28)).astype(np.uint8),
                       np.arange(64) % 10)
    s = setup_space()[7]
    steps.recalibrate_bn(m, split, [s], 1, 64, 0, "cpu")
    x = data.to_input(split.images[data.epoch_order(64, 0, 10**6)])
    with torch.no_grad():
        y = m.stem_conv(x)
    assert torch.allclose(m.stem.bn.running_mean[7], y.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.equal(m.stem.bn.running_mean[0], torch.zeros(32))


def test_individual_evaluate_export_and_ablation(run, tmp_path):
    res = steps.train_individual(run)
    assert sorted(res) == ["22", "4", "45"]
    for r in res.values():
        assert 0 <= r["accuracy"] <= 1 and 1 <= r["epochs_run"] <= 2
        assert r["accuracy"] >= r["accuracy_before"]
    # a longer retrain of one setup keeps the better model and records both runs
    import copy
    cfg2 = copy.deepcopy(run)
    cfg2["individual"].update({"setups": [4], "retrain_epochs": 1, "lr": 0.02})
    res2 = steps.train_individual(cfg2)
    r4 = res2["4"]
    assert r4["retrain_epochs"] == 1 and r4["first_run"]["accuracy"] == res["4"]["accuracy"]
    assert r4["accuracy"] == max(r4["accuracy_retrain"], res["4"]["accuracy"])
    assert os.path.isdir(os.path.join(steps._paths(run)["individual"], "s04-r1"))
    assert steps.train_individual(cfg2)["4"] == r4        # done: nothing trained again
    # a second retrain on another schedule keeps the chain of runs and its patience
    cfg3 = copy.deepcopy(cfg2)
    cfg3["individual"].update({"retrain_epochs": 2, "patience": 2})
    r4b = steps.train_individual(cfg3)["4"]
    assert r4b["retrain_epochs"] == 2 and r4b["patience"] == 2
    assert r4b["first_run"]["retrain_epochs"] == 1
    assert r4b["first_run"]["first_run"]["accuracy"] == res["4"]["accuracy"]
    assert r4b["accuracy"] == max(r4b["accuracy_retrain"], r4["accuracy"])
    res2["4"] = r4b
    res = res2
    steps.cluster(run)
    steps.train_swcnn(run, "I-D-C")
    ev = steps.evaluate(run, "I-D-C")
    assert len(ev["accuracy"]) == 50
    out = steps.export(run, "I-D-C", str(tmp_path / "m.rtcm"))
    from training.modelfile import load_model
    m, doc = load_model(out)
    groups = read_json(steps._paths(run)["groups"])["groups"]
    assert doc["groups"] == [sorted(g) for g in groups]
    for s in doc["setups"]:
        assert s["accuracy"] == ev["accuracy"][str(s["id"])]
        assert s["group"] >= 0
    from shutil import which
    if which("zstd"):
        assert all(s["payload_bytes"] > 0 for s in doc["setups"])
    # the exported file evaluates exactly like the checkpoint
    ev2 = steps.evaluate(run, model_file=out)
    assert ev2["accuracy"] == ev["accuracy"]
    from training import ablation
    doc_path = tmp_path / "ablation.md"
    rows = ablation.run(run, ["I-D-C", "noI-noD-noC"], str(doc_path))
    text = doc_path.read_text()
    assert "| I-D-C |" in text and "| noI-noD-noC |" in text
    assert "setups 4 up to 1 epochs, P = 1; setups 4 up to 2 epochs, P = 2" in text
    # first runs are described as they ran, even after the config plans another schedule
    isec = run["individual"]
    ep0, pat0 = int(isec["epochs"]), int(isec.get("patience", 1))
    assert res["22"]["schedule_epochs"] == ep0 and res["22"]["patience"] == pat0
    cfg4 = copy.deepcopy(run)
    cfg4["individual"].update({"epochs": ep0 + 5, "patience": pat0 + 1})
    ablation.run(cfg4, ["I-D-C"], str(doc_path), report_only=True)
    text = doc_path.read_text()
    assert "First run: N = %d, P = %d (the config now plans N = %d, P = %d" % (
        ep0, pat0, ep0 + 5, pat0 + 1) in text
    assert (tmp_path / "ablation.png").stat().st_size > 1000
    r = rows[0]
    for sid, loss in r["loss"].items():
        assert loss == pytest.approx(res[str(sid)]["accuracy"] - ev["accuracy"][str(sid)])


def test_payload_packing():
    q = np.array([1, 0, 1, 1, 0, 0, 0, 1, 1], dtype=np.uint32)
    assert steps.pack_levels(q, 1) == bytes([0b10001101, 0b1])
    q2 = np.array([3, 0, 2, 1], dtype=np.uint32)
    assert steps.pack_levels(q2, 2) == bytes([0b01100011])
    q16 = np.array([65535, 1], dtype=np.uint32)
    assert steps.pack_levels(q16, 16) == bytes([255, 255, 1, 0])
    part = torch.rand(3, 14, 14)
    assert len(steps.frame_bytes(part, 1)) == 28 + 3 * 8 + (3 * 196 + 7) // 8


def _tiny_split(n=96):
    return data.Split(np.random.RandomState(0).randint(0, 255, (n, 28, 28)).astype(np.uint8),
                      np.arange(n) % 10)


def _plain_fn(m, x, y, step):
    loss = torch.nn.functional.cross_entropy(m(x), y)
    loss.backward()
    return loss.item(), 0, len(y)


def _loop_cfg(**kw):
    cfg = C.section({"common": {"seed": 3, "checkpoint_every_s": 1000, "log_every_s": 1000}},
                    "init")
    cfg.update({"batch_size": 32, "lr": 0.01})
    cfg.update(kw)
    return cfg


def test_fractional_epochs_stop_at_the_step_budget(tmp_path):
    torch.manual_seed(0)
    st = train(str(tmp_path / "r"), "t", SWCNN(get_geometry("fmnist"), 1), _tiny_split(),
               _loop_cfg(epochs=0.5), _plain_fn, torch.device("cpu"))
    # 96 images / 32 = 3 steps per epoch; half an epoch rounds to 2 steps
    assert st["total_steps"] == 2 and st["step"] == 2 and st["images"] == 64


def test_early_stop_counts_the_baseline_and_min_delta(tmp_path):
    accs = iter([0.801, 0.9])

    torch.manual_seed(0)
    st = train(str(tmp_path / "a"), "t", SWCNN(get_geometry("fmnist"), 1), _tiny_split(),
               _loop_cfg(epochs=3), _plain_fn, torch.device("cpu"), lambda m: next(accs),
               patience=1, baseline=0.80, min_delta=0.002)
    # epoch 1 beats the baseline by only 0.001: kept as best, but training stops there
    assert st["epoch_done"] == 1 and st["stopped_early"]
    assert st["best"] == 0.801 and st["best_epoch"] == 1
    accs2 = iter([0.79, 0.85, 0.86])
    st = train(str(tmp_path / "b"), "t", SWCNN(get_geometry("fmnist"), 1), _tiny_split(),
               _loop_cfg(epochs=3), _plain_fn, torch.device("cpu"), lambda m: next(accs2),
               patience=2, baseline=0.80, min_delta=0.002)
    assert st["epoch_done"] == 3 and not st["stopped_early"] and st["best_epoch"] == 3


def test_setup_list_parsing_and_shared_individual_results(tmp_path):
    assert steps.parse_setup_list("0-3,7, 45") == [0, 1, 2, 3, 7, 45]
    with pytest.raises(ValueError):
        steps.parse_setup_list("48-50")
    path = str(tmp_path / "individual.json")
    steps._merge_individual(path, "3", {"accuracy": 0.5})
    # a second process that started with an empty view must not drop setup 3
    merged = steps._merge_individual(path, "9", {"accuracy": 0.6})
    assert sorted(merged) == ["3", "9"] and sorted(read_json(path)) == ["3", "9"]
    assert not steps._claim_individual(path, "3")      # done already
    assert steps._claim_individual(path, "4")          # free, now ours
    assert steps._claim_individual(path, "4")          # ours again after a restart
    claims = read_json(path + ".claims")
    claims["5"] = 1                                    # pid 1 is alive: someone else's
    claims["6"] = 2 ** 22 + 12345                      # no such process: lapsed
    with open(path + ".claims", "w") as f:
        import json
        json.dump(claims, f)
    assert not steps._claim_individual(path, "5")
    assert steps._claim_individual(path, "6")
    assert steps.run_name("I-D-C@ablation") == "I-D-C-ablation"
    assert steps.parse_variant("I-D-C@ablation") == (True, True, True)
