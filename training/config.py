"""Config files (YAML or JSON) for the training commands.

A config has a `common` section and one section per command (`init`, `cluster`, `swcnn`,
`individual`, `evaluate`, `export`, `ablation`); a command sees `common` overlaid with its own
section. See training/configs/fmnist.yaml for every key.
"""
import copy
import json
import os

DEFAULTS = {
    "common": {
        "name": "run",
        "geometry": "fmnist",
        "data_dir": "/usr/share/datasets/fashion-mnist",
        "runs_dir": None,            # default: training/runs/<name>
        "seed": 1,
        "threads": 1,
        "device": "auto",            # auto: CUDA when present, else CPU
        "checkpoint_every_s": 120,
        "log_every_s": 30,
        "limit_train": None,         # first N training images only (tiny runs)
        "limit_test": None,
        "eval_batch_size": 1000,
        "augment": True,
        "augment_pad": 2,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 1e-4,
        "warmup_epochs": 0,
    },
}


def load(path):
    with open(path) as f:
        text = f.read()
    if path.endswith(".json"):
        cfg = json.loads(text)
    else:
        import yaml
        cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict):
        raise ValueError("%s: a config is a mapping of sections" % path)
    cfg.setdefault("common", {})
    cfg["_path"] = os.path.abspath(path)
    return cfg


def apply_overrides(cfg, runs_dir=None, threads=None):
    """Command-line overrides: --runs-dir replaces common.runs_dir; --threads replaces the thread
    count of common and of every section that sets its own."""
    if runs_dir:
        cfg["common"]["runs_dir"] = runs_dir
    if threads:
        cfg["common"]["threads"] = threads
        for v in cfg.values():
            if isinstance(v, dict) and "threads" in v:
                v["threads"] = threads
    return cfg


def section(cfg, name):
    out = copy.deepcopy(DEFAULTS["common"])
    out.update(cfg.get("common") or {})
    out.update(cfg.get(name) or {})
    return out


def runs_dir(cfg):
    c = section(cfg, "common")
    if c.get("runs_dir"):
        return c["runs_dir"]
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "runs", c["name"])
