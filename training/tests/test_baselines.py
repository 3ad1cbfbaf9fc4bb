"""SPINN's table, CLIO's and the exit's training steps, and adding blocks to a model file."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from training import clio, config as C, exit_head, spinn
from training import baselines
from training.geometry import get_geometry
from training.model import SWCNN
from training.modelfile import default_metadata, export_model, load_model, read_tensors
from training.modelfile import read_raw
from training.rawfile import write_raw

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def small_model(path):
    torch.manual_seed(0)
    g = get_geometry("fmnist")
    m = SWCNN(g, 50)
    export_model(m, path, default_metadata(g))
    return path


def test_spinn_table_counts_coverage_accuracy_and_rest():
    conf = np.array([0.95, 0.9, 0.6, 0.4])
    exit_ok = np.array([True, False, True, False])
    # setup 0 is right on the two hard frames only, setup 1 everywhere
    setups = np.array([[False, False, True, True], [True, True, True, True]])
    pts = spinn.table(conf, exit_ok, setups, [0.5, 0.85, 0.99])
    assert [p["threshold"] for p in pts] == [0.5, 0.85, 0.99]
    assert pts[0]["coverage"] == 0.75 and pts[0]["exit_accuracy"] == pytest.approx(2 / 3)
    assert pts[1]["coverage"] == 0.5 and pts[1]["exit_accuracy"] == 0.5
    # not covered at 0.85: frames 2 and 3; setup 0: 1.0 / 0.5, setup 1: 1.0 / 1.0
    assert pts[1]["rest_factor"] == pytest.approx((2.0 + 1.0) / 2)
    assert pts[2]["coverage"] == 0 and pts[2]["exit_accuracy"] == 0
    assert pts[2]["rest_factor"] == pytest.approx(1.0)
    # uploads at 0.8: at 0.5 expected 0.75 * 2/3 + 0.25 * 0.8 * rest, rest = 2 (setup 0: 1.0/0.5)
    assert spinn.expected_accuracy(pts[0], 0.8) == pytest.approx(0.5 + 0.25 * 0.8 * 1.5)
    assert spinn.choose_threshold(pts, 0.8, 0.0) == 0.5
    assert spinn.choose_threshold(pts, 1.0, 0.0) == 0.85  # 0.25 + 0.5 * 1.5 = 1.0
    assert spinn.choose_threshold(pts, 1.0, -0.5) == 0.99  # none within: the largest
    b = spinn.block(pts, 0.85, 0.3)
    assert b["threshold"] == 0.85 and b["points"] == pts and b["exit_ms"] == 0.3
    assert (b["coverage"], b["exit_accuracy"], b["rest_factor"]) == \
        (pts[1]["coverage"], pts[1]["exit_accuracy"], pts[1]["rest_factor"])


def test_spinn_table_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        spinn.table(np.ones(3), np.ones(3, bool), np.ones((2, 4), bool))


def test_exit_input_setup_is_all_channels_most_levels():
    doc = default_metadata(get_geometry("fmnist"))
    s = exit_head.exit_input_setup(doc)
    assert (s.c, s.L) == (32, 65535)


def test_exit_tensors_round_trip():
    g = get_geometry("fmnist")
    h = exit_head.build(g)
    names = [n for n, _ in exit_head.exit_tensors(h)]
    assert names == ["exit.conv1.weight", "exit.bn1.weight", "exit.bn1.bias",
                     "exit.bn1.running_mean", "exit.bn1.running_var", "exit.conv2.weight",
                     "exit.bn2.weight", "exit.bn2.bias", "exit.bn2.running_mean",
                     "exit.bn2.running_var", "exit.fc.weight", "exit.fc.bias"]
    h2 = exit_head.load_exit_tensors(exit_head.build(g), {n: t.numpy() + 1 for n, t in
                                                          exit_head.exit_tensors(h)})
    assert torch.equal(h2.fc.bias, h.fc.bias + 1)


def test_add_to_file_keeps_what_it_does_not_own(tmp_path):
    src = small_model(str(tmp_path / "m.rtcm"))
    doc, entries = read_raw(src)
    # a tensor of another dtype that this step knows nothing about
    entries.append(("other.int8", "I8", [3], b"\x01\x02\x03"))
    doc["other_block"] = {"x": 1}
    write_raw(src, doc, entries)
    h = exit_head.build(get_geometry("fmnist"))
    dst = str(tmp_path / "out.rtcm")
    baselines.add_to_file(src, dst, {"local_exit": {"accuracy": 0.5, "ms": 0.2}},
                          exit_head.exit_tensors(h))
    baselines.add_to_file(dst, dst, {"local_exit": {"accuracy": 0.6, "ms": 0.3}},
                          exit_head.exit_tensors(h))  # again: replaced, not duplicated
    doc2, entries2 = read_raw(dst)
    assert doc2["other_block"] == {"x": 1} and doc2["local_exit"]["accuracy"] == 0.6
    before = {e[0]: e for e in entries}
    after = {e[0]: e for e in entries2}
    for name, e in before.items():
        assert after[name] == e
    assert sum(1 for n in after if n.startswith("exit.")) == 12
    assert len(entries2) == len(entries) + 12


def tiny_cfg(tmp_path):
    cfg = C.load(os.path.join(ROOT, "training", "configs", "tiny.yaml"))
    cfg["common"]["runs_dir"] = str(tmp_path / "runs")
    cfg["common"]["limit_test"] = 64
    cfg["common"]["eval_batch_size"] = 64
    cfg["clio"]["widths"] = [2]
    return cfg


def test_exit_and_clio_train_a_few_batches(tmp_path, fmnist_available):
    path = small_model(str(tmp_path / "m.rtcm"))
    model, doc = load_model(path)
    cfg = tiny_cfg(tmp_path)
    head, st = baselines.train_exit(cfg, model, doc)
    assert st["done"] and st["step"] == 4
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = baselines.train_clio(cfg, model, doc)
    assert res["L"] == 255 and [w["c"] for w in res["widths"]] == [2]
    assert 0 <= res["widths"][0]["accuracy"] <= 1
    # the SW-CNN the device runs stays as it was
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_clio_server_model_takes_the_widths_bn_slot():
    g = get_geometry("fmnist")
    m = SWCNN(g, 50)
    with torch.no_grad():
        m.block1.bn1.running_mean[7] = 3.0
    s = clio.server_model(m, 7)
    assert s.bn_slots == 1 and float(s.block1.bn1.running_mean[0, 0]) == 3.0


RTCI_MODEL = os.path.join(ROOT, "build", "inference", "rtci-model")


@pytest.mark.skipif(not os.path.exists(RTCI_MODEL), reason="rtci-model not built")
def test_c_reader_wants_exit_tensors_with_the_block(tmp_path):
    src = small_model(str(tmp_path / "m.rtcm"))
    doc, entries = read_raw(src)
    doc["local_exit"] = {"accuracy": 0.8, "ms": 0.2}
    bad = str(tmp_path / "bad.rtcm")
    write_raw(bad, doc, entries)
    r = subprocess.run([RTCI_MODEL, "info", bad], capture_output=True, text=True)
    assert r.returncode != 0 and "exit.conv1.weight" in r.stderr
    good = str(tmp_path / "good.rtcm")
    baselines.add_to_file(src, good, {"local_exit": {"accuracy": 0.8, "ms": 0.2}},
                          exit_head.exit_tensors(exit_head.build(get_geometry("fmnist"))))
    r = subprocess.run([RTCI_MODEL, "exit", good, "--limit", "20", "--runs", "5"],
                       capture_output=True, text=True)
    if not os.path.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"):
        return
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["images"] == 20 and out["width"] == 128 and out["median_ms"] > 0


def test_ablation_report_keeps_the_baselines_section(tmp_path):
    from training import ablation
    doc = tmp_path / "ablation.md"
    assert ablation.kept_tail(str(doc)) == ""
    doc.write_text("# generated\n\nold table\n\n## SPINN, CLIO and the local exit\n\nfigures\n")
    assert ablation.kept_tail(str(doc)) == "\n## SPINN, CLIO and the local exit\n\nfigures\n"
    doc.write_text("# generated only\n")
    assert ablation.kept_tail(str(doc)) == ""


def header(js):
    import struct
    return struct.pack("<Q", len(js)) + js  # no data section: any tensor lies outside


def test_read_raw_rejects_malformed_files(tmp_path):
    from training.modelfile import ModelFileError
    p = tmp_path / "bad.rtcm"
    for blob in [b"\x01", b"\x05\x00\x00\x00\x00\x00\x00\x00{oops",
                 b"\x02\x00\x00\x00\x00\x00\x00\x00{}",
                 header(b'{"__metadata__":{"format":"rtci-swcnn","rtci":"{}"},'
                        b'"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
                 header(b'{"__metadata__":{"format":"rtci-swcnn","rtci":"{}"},"t":{"shape":[2]}}')]:
        p.write_bytes(blob)
        with pytest.raises(ModelFileError):
            read_raw(str(p))
