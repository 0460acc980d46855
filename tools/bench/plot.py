#!/usr/bin/env python3
"""Plots from `mrb bench --json` output: throughput against message size and
the wake-up latency distribution of a blocked reader.

    /usr/bin/python3 tools/bench/plot.py bench.json --out docs/bench

writes core-throughput.png and core-wakeup.png into --out. Needs matplotlib
(Debian: apt-get install python3-matplotlib).
"""

import argparse
import json
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
except ImportError:
    sys.exit("plot.py needs matplotlib: apt-get install python3-matplotlib")

# Baselines dashed, mrb solid, so the eye compares each mrb line with the
# baseline it is held against.
STYLES = {
    "pipe": dict(color="tab:gray", linestyle="--", marker="v"),
    "unix_stream": dict(color="tab:brown", linestyle="--", marker="^"),
    "minimal_per_message": dict(color="tab:blue", linestyle="--", marker="o"),
    "minimal_per_16k": dict(color="tab:green", linestyle="--", marker="s"),
    "mrb_read": dict(color="tab:blue", linestyle="-", marker="o"),
    "mrb_read_batch": dict(color="tab:green", linestyle="-", marker="s"),
    "mrb_read_batch_2p": dict(color="tab:red", linestyle="-", marker="D"),
    "mrb_write_batch": dict(color="tab:purple", linestyle="-", marker="P"),
    "mrb_write_batch_2p": dict(color="tab:brown", linestyle="-", marker="X"),
}


def size_label(size, _pos=None):
    size = int(size)
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def minor_tick_label(value, _pos=None):
    """Labels 2x and 5x minor ticks of a log axis, so microseconds read off."""
    leading = value / 10 ** int(f"{value:e}".split("e")[1])
    return f"{value:g}" if round(leading) in (2, 5) else ""


def series(doc):
    """{row id: (label, [sizes], [msgs/s], [GB/s])} for the cells that ran."""
    rows = {}
    for result in doc["results"]:
        if not result["ok"]:
            continue
        label, sizes, rates, gbs = rows.setdefault(
            result["id"], (result["label"], [], [], [])
        )
        sizes.append(result["size"])
        rates.append(result["messages_per_second"] / 1e6)
        gbs.append(result["gb_per_second"])
    return rows


def subtitle(doc):
    machine = doc["machine"]
    trip = doc["round_trip"].get("start") or {}
    median = trip.get("median_ns")
    trip_text = f", cross-core round trip {median:.0f} ns" if median else ""
    return (
        f"{machine['cpu_model']}, {machine['cpus_online']} CPUs{trip_text}; "
        f"{doc['config']['duration_ms']} ms per cell"
    )


def plot_throughput(doc, path):
    rows = series(doc)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    for row_id, (label, sizes, rates, gbs) in rows.items():
        style = STYLES.get(row_id, {})
        left.plot(sizes, rates, label=label, **style)
        right.plot(sizes, gbs, label=label, **style)
    for axis, ylabel in (
        (left, "million messages / s"),
        (right, "GB / s (payload)"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(doc["config"]["sizes"])
        axis.xaxis.set_major_formatter(FuncFormatter(size_label))
        axis.set_xlabel("message size")
        axis.set_ylabel(ylabel)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle("mrb bench: throughput against message size\n" + subtitle(doc))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_wakeup(doc, path):
    fig, axis = plt.subplots(figsize=(8, 5))
    plotted = False
    for wakeup in doc["wakeup_latency"]:
        samples = wakeup.get("samples_ns") or []
        if not wakeup["available"] or not samples:
            continue
        micros = sorted(s / 1e3 for s in samples)
        fraction = [(i + 1) / len(micros) for i in range(len(micros))]
        label = (
            f"{wakeup['label']}: p50 {wakeup['p50_ns'] / 1e3:.1f} us, "
            f"p99 {wakeup['p99_ns'] / 1e3:.1f} us"
        )
        axis.step(micros, fraction, where="post", label=label)
        plotted = True
    if not plotted:
        axis.text(0.5, 0.5, "no wake-up latency samples", ha="center")
    else:
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        axis.xaxis.set_minor_formatter(FuncFormatter(minor_tick_label))
        axis.legend()
    axis.set_xlabel("write -> blocked reader returns (us)")
    axis.set_ylabel("fraction of wake-ups")
    axis.grid(True, which="both", alpha=0.3)
    gap_us = doc["wakeup_latency"][0]["gap_ns"] / 1e3
    fig.suptitle(
        f"Wake-up latency of a blocked reader (CDF, one message every {gap_us:.0f} us)"
        "\n" + subtitle(doc),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="output of mrb bench --json (or --json-out)")
    parser.add_argument("--out", default=".", help="directory for the PNG files")
    parser.add_argument("--prefix", default="core", help="file name prefix")
    args = parser.parse_args()
    with open(args.json) as f:
        doc = json.load(f)
    if doc.get("schema") != "mrb-bench/1":
        sys.exit(f"{args.json}: not mrb bench JSON (schema {doc.get('schema')!r})")
    os.makedirs(args.out, exist_ok=True)
    outputs = [
        os.path.join(args.out, f"{args.prefix}-throughput.png"),
        os.path.join(args.out, f"{args.prefix}-wakeup.png"),
    ]
    plot_throughput(doc, outputs[0])
    plot_wakeup(doc, outputs[1])
    for path in outputs:
        print(path)


if __name__ == "__main__":
    main()
