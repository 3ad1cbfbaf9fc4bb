"""SPINN's table: confidence threshold -> (coverage, exit accuracy, rest factor).

A frame whose exit confidence (max softmax probability) is >= the threshold is answered on the
device; the others are uploaded with a setup of the controller's choice. rest_factor tells how
much harder the uploaded frames are: the mean over setups of the setup's accuracy on the frames
not covered divided by its accuracy on all frames (docs/model-format.md, `spinn`).
"""
import numpy as np

THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999]


def table(conf, exit_correct, setup_correct, thresholds=THRESHOLDS):
    """conf [N] float, exit_correct [N] bool, setup_correct [S, N] bool -> points (ascending)."""
    conf = np.asarray(conf, dtype=np.float64)
    exit_correct = np.asarray(exit_correct, dtype=bool)
    setup_correct = np.asarray(setup_correct, dtype=bool)
    if setup_correct.ndim != 2 or setup_correct.shape[1] != conf.shape[0]:
        raise ValueError("setup_correct must be [setups, %d]" % conf.shape[0])
    acc_all = setup_correct.mean(axis=1)
    points = []
    for t in sorted(thresholds):
        cov = conf >= t
        n_cov = int(cov.sum())
        rest = ~cov
        if rest.any():
            ratios = setup_correct[:, rest].mean(axis=1) / np.maximum(acc_all, 1e-12)
            rf = float(ratios.mean())
        else:
            rf = 1.0  # nothing is uploaded; the factor multiplies nothing
        points.append({"threshold": float(t),
                       "coverage": n_cov / len(conf),
                       "exit_accuracy": float(exit_correct[cov].mean()) if n_cov else 0.0,
                       "rest_factor": rf})
    return points


def expected_accuracy(point, upload_accuracy):
    """Accuracy when covered frames take the exit's answer and the rest are uploaded with a
    setup of accuracy `upload_accuracy` (on all frames) that arrives in time."""
    return point["coverage"] * point["exit_accuracy"] + \
        (1 - point["coverage"]) * upload_accuracy * point["rest_factor"]


def choose_threshold(points, upload_accuracy, tolerance):
    """SPINN's operating point: the smallest threshold (most frames answered on the device) whose
    expected accuracy, uploads at `upload_accuracy`, is within `tolerance` of uploading every
    frame; the largest threshold when none is."""
    for p in points:
        if expected_accuracy(p, upload_accuracy) >= upload_accuracy - tolerance:
            return p["threshold"]
    return points[-1]["threshold"]


def block(points, threshold, exit_ms):
    """The model file's `spinn` block; the operating point's values also stand at the top level,
    the flat form that readers of one point take."""
    op = next(p for p in points if p["threshold"] == threshold)
    return {"exit_ms": float(exit_ms), "points": points, "threshold": float(threshold),
            "coverage": op["coverage"], "exit_accuracy": op["exit_accuracy"],
            "rest_factor": op["rest_factor"]}
