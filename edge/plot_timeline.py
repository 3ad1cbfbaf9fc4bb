"""Plots one device's timeline from rtci-fleet --timeline: link bandwidth, setup, latency.

usage: /usr/bin/python3 edge/plot_timeline.py TIMELINE.csv OUT.png
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot(title, rows, out):
    """One device's frames (dicts with the timeline columns) into a PNG at out."""
    t = [float(r["t_s"]) for r in rows]
    bw = [float(r["link_mbps"]) for r in rows]
    sent = [r for r in rows if int(r["setup"]) >= 0]
    fig, ax = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    ax[0].plot(t, bw, color="tab:blue")
    ax[0].set_ylabel("uplink capacity\n(Mbit/s, trace)")
    ax[0].set_title(title)
    ax[1].scatter([float(r["t_s"]) for r in sent],
                  [int(r["c"]) * int(r["bits"]) for r in sent], s=6, color="tab:green")
    ax[1].set_yscale("log", base=2)
    ax[1].set_ylabel("setup: channels x bits\n(payload size)")
    colors = {"in_time": "tab:green", "late": "tab:red", "sent": "tab:gray"}
    for status, color in colors.items():
        pts = [r for r in rows if r["status"] == status and r["latency_ms"]]
        ax[2].scatter([float(r["t_s"]) for r in pts], [float(r["latency_ms"]) for r in pts],
                      s=6, color=color, label=status.replace("_", " "))
    skipped = [float(r["t_s"]) for r in rows if r["status"] == "skipped"]
    if skipped:
        ax[2].scatter(skipped, [0] * len(skipped), marker="x", s=10, color="black",
                      label="skipped at the device")
    ax[2].set_ylabel("latency (ms)")
    ax[2].set_xlabel("time (s)")
    ax[2].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        title = f.readline().lstrip("# ").strip()
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit("plot_timeline: no frames in " + sys.argv[1])
    plot(title, rows, sys.argv[2])


if __name__ == "__main__":
    main()
