#!/usr/bin/python3
"""Plots rtci-sim's per-frame CSV: for each (table, fps, deadline, trace, run) one PNG with the
link bandwidth, each policy's payload size and each policy's frame latency over time.

usage: plot_sim.py FRAMES_CSV OUTDIR [POLICY,...]
"""
import csv
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT = ["oracle", "mpc", "fastmpc", "rate", "bba", "spinn", "clio"]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, outdir = sys.argv[1], sys.argv[2]
    wanted = sys.argv[3].split(",") if len(sys.argv) > 3 else DEFAULT
    os.makedirs(outdir, exist_ok=True)
    runs = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = (r["table"], r["fps"], r["deadline_ms"], r["trace"], r["run"])
            runs[key][r["policy"]].append(r)
    written = []
    for (table, fps, dl, trace, run), pols in sorted(runs.items()):
        fig, ax = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
        any_pol = next(iter(pols.values()))
        t = [float(r["t_s"]) for r in any_pol]
        ax[0].plot(t, [float(r["link_mbps"]) for r in any_pol], color="black", lw=0.8)
        ax[0].set_ylabel("link (Mbit/s)")
        ax[0].set_title(f"{trace} run {run}: {table}, {fps} fps, deadline {dl} ms")
        for name in wanted:
            rows = pols.get(name)
            if not rows:
                continue
            tt = [float(r["t_s"]) for r in rows]
            size = [float(r["bytes"]) if float(r["bytes"]) > 0 else float("nan") for r in rows]
            lat = [float(r["latency_ms"]) if float(r["latency_ms"]) >= 0 else float("nan")
                   for r in rows]
            rt = sum(float(r["credit"]) for r in rows) / len(rows)
            ax[1].step(tt, size, where="post", lw=0.8, label=f"{name} (rt-acc {rt:.3f})")
            ax[2].plot(tt, lat, lw=0.6, label=name)
        ax[1].set_yscale("log")
        ax[1].set_ylabel("payload sent (bytes)")
        ax[1].legend(fontsize=7, ncol=4, loc="upper left")
        ax[2].axhline(float(dl), color="red", ls="--", lw=0.8)
        ax[2].set_yscale("log")
        ax[2].set_ylabel("frame latency (ms)")
        ax[2].set_xlabel("time (s)")
        fig.tight_layout()
        out = os.path.join(outdir, f"control-{table}-{fps}fps-{dl}ms-{trace}-{run}.png")
        fig.savefig(out, dpi=90)
        plt.close(fig)
        written.append(out)
    for w in written:
        print(w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
