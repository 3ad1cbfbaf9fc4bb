"""The fleet over time from rtci-fleet --frames, and the camera that switched setup most.

usage: /usr/bin/python3 edge/plot_fleet.py FRAMES.csv OUTDIR

Writes OUTDIR/fleet.png (share of cameras per setup, deadline-hit rate, uplink bandwidth
percentiles, per second) and OUTDIR/camera.png (bandwidth, setup and latency of the camera with
the most setup switches, as edge/plot_timeline.py draws one device), and prints one line per
picture.
"""
import collections
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_timeline  # noqa: E402

TOP_SETUPS = 8  # setups drawn on their own; the rest share one band


def load(path):
    titles, rows = {}, []
    with open(path) as f:
        lines = []
        for line in f:
            if line.startswith("# device "):
                dev, _, rest = line[len("# device "):].partition(": ")
                titles[int(dev)] = rest.strip()
            elif not line.startswith("#"):
                lines.append(line)
    for r in csv.DictReader(lines):
        r["device"] = int(r["device"])
        r["t"] = float(r["t_s"])
        rows.append(r)
    return titles, rows


def switches(frames):
    sent = [int(r["setup"]) for r in frames if int(r["setup"]) >= 0]
    return sum(1 for a, b in zip(sent, sent[1:]) if a != b)


def fleet_png(rows, out):
    by_sec = collections.defaultdict(list)
    for r in rows:
        by_sec[int(r["t"])].append(r)
    secs = sorted(by_sec)
    label, size = {}, {}
    count = collections.Counter()
    for r in rows:
        s = int(r["setup"])
        if s >= 0:
            count[s] += 1
            label[s] = "%d (c%s, %s bit)" % (s, r["c"], r["bits"])
            size[s] = int(r["c"]) * int(r["bits"])
    # the most used setups, largest payload at the bottom of the stack
    top = sorted((s for s, _ in count.most_common(TOP_SETUPS)), key=lambda s: -size[s])
    bands = {s: [] for s in top}
    other, skipped, hit, p10, p50, p90 = [], [], [], [], [], []
    for t in secs:
        fr = by_sec[t]
        n = len(fr)
        for s in top:
            bands[s].append(sum(1 for r in fr if int(r["setup"]) == s) / n)
        other.append(sum(1 for r in fr if int(r["setup"]) >= 0 and int(r["setup"]) not in bands) / n)
        skipped.append(sum(1 for r in fr if int(r["setup"]) < 0) / n)
        hit.append(sum(1 for r in fr if r["status"] == "in_time") / n)
        bw = np.array([float(r["link_mbps"]) for r in fr])
        p10.append(np.percentile(bw, 10))
        p50.append(np.percentile(bw, 50))
        p90.append(np.percentile(bw, 90))
    devices = len({r["device"] for r in rows})
    fig, ax = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    ys = [bands[s] for s in top] + [other, skipped]
    labels = ["setup " + label[s] for s in top] + ["other setups", "skipped at the camera"]
    colors = list(plt.cm.viridis(np.linspace(0.95, 0.1, len(top)))) + ["tab:gray", "black"]
    ax[0].stackplot(secs, ys, labels=labels, colors=colors)
    ax[0].set_ylim(0, 1)
    ax[0].set_ylabel("share of cameras per setup\n(frames captured)")
    ax[0].set_title("%d cameras: setups chosen, deadline hits, uplinks (per second)" % devices)
    ax[0].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax[1].plot(secs, hit, color="tab:green")
    ax[1].set_ylim(0, 1.02)
    ax[1].set_ylabel("deadline-hit rate\n(in time / captured)")
    ax[2].fill_between(secs, p10, p90, color="tab:blue", alpha=0.25, label="p10-p90")
    ax[2].plot(secs, p50, color="tab:blue", label="median")
    ax[2].set_yscale("log")
    plain = matplotlib.ticker.FormatStrFormatter("%g")
    ax[2].yaxis.set_major_formatter(plain)
    ax[2].yaxis.set_minor_formatter(plain)
    ax[2].tick_params(axis="y", which="minor", labelsize=7)
    ax[2].set_ylabel("uplink capacity\n(Mbit/s, traces)")
    ax[2].set_xlabel("time (s)")
    ax[2].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    total = len(rows)
    return devices, sum(1 for r in rows if r["status"] == "in_time") / total if total else 0.0


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    titles, rows = load(sys.argv[1])
    if not rows:
        sys.exit("plot_fleet: no frames in " + sys.argv[1])
    devices, hit = fleet_png(rows, os.path.join(sys.argv[2], "fleet.png"))
    print("fleet over time (%d cameras, deadline-hit rate %.4f): %s"
          % (devices, hit, os.path.join(sys.argv[2], "fleet.png")))
    per_dev = collections.defaultdict(list)
    for r in rows:
        per_dev[r["device"]].append(r)
    best = max(per_dev, key=lambda d: (switches(per_dev[d]), -d))
    n = switches(per_dev[best])
    title = "%s\n%d setup switches, the most in the fleet" % (titles.get(best, "device %d" % best), n)
    out = os.path.join(sys.argv[2], "camera.png")
    plot_timeline.plot(title, per_dev[best], out)
    print("the camera that switched most (%d switches): %s" % (n, out))


if __name__ == "__main__":
    main()
