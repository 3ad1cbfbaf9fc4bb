"""The command line entry points, as a user runs them."""
import os
import subprocess
import sys

import pytest
import torch

from training.geometry import get_geometry
from training.model import SWCNN
from training.modelfile import default_metadata, export_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "training", "configs", "tiny.yaml")


def run(*args):
    return subprocess.run([sys.executable, "-m"] + list(args), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_bad_variant_is_rejected(tmp_path):
    r = run("training", "train-swcnn", "--config", TINY, "--runs-dir", str(tmp_path),
            "--variant", "I-X-C")
    assert r.returncode != 0 and "variant" in r.stderr


def test_missing_initialization_is_reported(tmp_path):
    r = run("training", "cluster", "--config", TINY, "--runs-dir", str(tmp_path))
    assert r.returncode != 0 and "run train-init first" in r.stderr


def test_report_only_writes_pending_rows(tmp_path):
    doc = tmp_path / "ab.md"
    r = run("training", "ablation", "--config", TINY, "--runs-dir", str(tmp_path),
            "--report-only", "--doc", str(doc))
    assert r.returncode == 0, r.stderr
    text = doc.read_text()
    for v in ["noI-D-C", "noI-noD-noC", "I-noD-C", "noI-noD-C", "I-noD-noC", "I-D-noC", "I-D-C"]:
        assert "| %s | pending" % v in text


def test_golden_cli_and_evaluate_model_file(tmp_path):
    torch.manual_seed(0)
    m = SWCNN(get_geometry("fmnist"), 50)
    mp = tmp_path / "m.rtcm"
    export_model(m, mp, default_metadata(m.geometry))
    r = run("training.golden", str(mp), str(tmp_path / "g"), "--batches", "2", "--setups", "0,49")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g" / "b2_s49_logits.f32").stat().st_size == 2 * 10 * 4
    r = run("training.golden", str(mp), str(tmp_path / "g"), "--setups", "50")
    assert r.returncode != 0
    if not os.path.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"):
        pytest.skip("Fashion-MNIST IDX files not installed")
    r = run("training", "evaluate", "--config", TINY, "--runs-dir", str(tmp_path), "--model",
            str(mp))
    assert r.returncode == 0, r.stderr
    assert "over 50 setups" in r.stdout


def test_overrides_reach_every_section_that_sets_threads():
    from training import config as C
    cfg = {"common": {"threads": 1}, "init": {"threads": 4, "epochs": 2}, "swcnn": {"epochs": 3}}
    C.apply_overrides(cfg, "/tmp/runs-x", 2)
    assert cfg["common"] == {"threads": 2, "runs_dir": "/tmp/runs-x"}
    assert cfg["init"]["threads"] == 2 and "threads" not in cfg["swcnn"]
    assert C.section(cfg, "swcnn")["threads"] == 2
    C.apply_overrides(cfg, None, None)
    assert cfg["common"]["runs_dir"] == "/tmp/runs-x" and cfg["init"]["threads"] == 2
