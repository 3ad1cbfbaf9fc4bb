#!/usr/bin/python3
"""Plots rtci-sim's per-run CSV as curves: each policy's real-time accuracy (mean over the runs
in a bin) against the link's mean capacity over the run (`link_mbps`, log-spaced bins), one panel
per (table, fps, deadline), each with its own accuracy scale. The oracle's line is its bound. A run needs at least --min-runs in a
bin for the bin to be drawn.

usage: plot_curves.py RUNS_CSV OUT.png [POLICY,...] [--min-runs N]
"""
import csv
import math
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT = ["oracle", "mpc", "mpc-nolocal", "fastmpc", "rate", "bba", "spinn", "clio"]
BINS_PER_DECADE = 10
# one colour per policy in every panel
COLOURS = {"mpc": "tab:blue", "mpc-nolocal": "tab:cyan", "fastmpc": "tab:green", "rate": "tab:orange",
           "bba": "tab:purple", "spinn": "tab:brown", "clio": "tab:pink"}


def read(path):
    """{(table, fps, deadline): {policy: [(link_mbps, rt_accuracy)]}}; the oracle row's bound."""
    points = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if "link_mbps" not in r:
                raise SystemExit(f"{path}: no link_mbps column (an older rtci-sim's CSV)")
            key = (r["table"], float(r["fps"]), float(r["deadline_ms"]))
            acc = float(r["oracle_bound"] if r["policy"] == "oracle" else r["rt_accuracy"])
            points[key][r["policy"]].append((float(r["link_mbps"]), acc))
    return points


def binned(pairs, min_runs):
    """Mean accuracy per log-spaced bandwidth bin: (bin centres, means)."""
    bins = defaultdict(list)
    for mbps, acc in pairs:
        if mbps > 0:
            bins[math.floor(math.log10(mbps) * BINS_PER_DECADE)].append(acc)
    keys = sorted(k for k, v in bins.items() if len(v) >= min_runs)
    return ([10 ** ((k + 0.5) / BINS_PER_DECADE) for k in keys],
            [sum(bins[k]) / len(bins[k]) for k in keys])


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    min_runs = 3
    if "--min-runs" in argv:
        min_runs = int(argv[argv.index("--min-runs") + 1])
        args.remove(str(min_runs))
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    points = read(args[0])
    wanted = args[2].split(",") if len(args) > 2 else DEFAULT
    if not points:
        raise SystemExit(f"{args[0]}: no runs")
    keys = sorted(points)
    cols = min(len(keys), 4)
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for pol in wanted:
            if pol not in points[key]:
                continue
            x, y = binned(points[key][pol], min_runs)
            style = (dict(color="black", linestyle="--") if pol == "oracle"
                     else dict(color=COLOURS.get(pol, "tab:gray")))
            ax.plot(x, y, marker="o", markersize=3, label="oracle bound" if pol == "oracle"
                    else pol, **style)
        ax.set_xscale("log")
        ax.set_title(f"{key[0]}, {key[1]:g} fps, {key[2]:g} ms", fontsize=9)
        ax.set_xlabel("mean link capacity over the run (Mbit/s)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("real-time accuracy")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    for ax in list(axes.flat)[:len(keys)]:
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(args[1], dpi=110)
    print(f"{args[1]}: {len(keys)} operating points")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
