"""python3 -m training COMMAND --config FILE [options]

Commands (each resumable: run the same command again after an interruption):
  train-init        the uncompressed network (Initialization)
  cluster           gradient-similarity groups of setups (DBSCAN, eps searched)
  train-swcnn       the SW-CNN; --variant [no]I-[no]D-[no]C (default I-D-C)
  train-individual  one fine-tuned model per setup (the benchmark)
  evaluate          per-setup test accuracy of an SW-CNN (--variant) or a model file (--model)
  export            the model file of an SW-CNN with groups, accuracies, payload sizes (--out)
  recipe            init, cluster, I-D-C, evaluate, individual, export
  ablation          the seven variants against the individual models -> docs/ablation.md
  throughput        training and inference images/s of the geometry
  add-baselines     SPINN, CLIO and the local exit added to a model file (own options, --help)
  calibrate         the int8 calibration of a model file (own options, --help)
"""
import argparse
import sys

from . import config as C
from .loop import main_guard


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["add-baselines"]:
        from . import baselines
        return baselines.main(argv[1:])
    if argv[:1] == ["calibrate"]:
        from . import calibrate
        return calibrate.main(argv[1:])
    ap = argparse.ArgumentParser(prog="python3 -m training", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["train-init", "cluster", "train-swcnn",
                                        "train-individual", "evaluate", "export", "recipe",
                                        "ablation", "throughput"])
    ap.add_argument("--config", required=True)
    ap.add_argument("--variant", default="I-D-C")
    ap.add_argument("--variants", default=None, help="ablation: comma-separated subset")
    ap.add_argument("--model", default=None, help="evaluate: a model file")
    ap.add_argument("--out", default=None, help="export: output model file")
    ap.add_argument("--runs-dir", default=None, help="override common.runs_dir")
    ap.add_argument("--setups", default=None,
                    help="train-individual: only these setup ids ('0-24', '3,7,45')")
    ap.add_argument("--retrain-epochs", type=int, default=None,
                    help="train-individual: train --setups again for this many epochs at most, "
                         "keep the better model")
    ap.add_argument("--patience", type=int, default=None,
                    help="train-individual: stop after this many epochs without a gain of "
                         "min_delta (override individual.patience)")
    ap.add_argument("--threads", type=int, default=None, help="override common.threads")
    ap.add_argument("--doc", default=None, help="ablation: output markdown (docs/ablation.md)")
    ap.add_argument("--report-only", action="store_true",
                    help="ablation: write the report from the runs that exist, train nothing")
    a = ap.parse_args(argv)
    cfg = C.apply_overrides(C.load(a.config), a.runs_dir, a.threads)
    from . import steps

    def run():
        if a.command == "train-init":
            steps.train_init(cfg)
        elif a.command == "cluster":
            steps.cluster(cfg)
        elif a.command == "train-swcnn":
            steps.parse_variant(a.variant)
            steps.train_swcnn(cfg, a.variant)
        elif a.command == "train-individual":
            if a.setups:
                cfg.setdefault("individual", {})["setups"] = steps.parse_setup_list(a.setups)
            if a.retrain_epochs:
                cfg.setdefault("individual", {})["retrain_epochs"] = a.retrain_epochs
            if a.patience:
                cfg.setdefault("individual", {})["patience"] = a.patience
            steps.train_individual(cfg)
        elif a.command == "evaluate":
            steps.evaluate(cfg, a.variant, a.model)
        elif a.command == "export":
            steps.export(cfg, a.variant, a.out)
        elif a.command == "recipe":
            steps.recipe(cfg)
        elif a.command == "ablation":
            from . import ablation
            variants = a.variants.split(",") if a.variants else None
            ablation.run(cfg, variants, a.doc, a.report_only)
        elif a.command == "throughput":
            steps.throughput(cfg)
        return 0

    return main_guard(run)


if __name__ == "__main__":
    sys.exit(main())
