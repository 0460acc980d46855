#!/usr/bin/env python3
"""Renders `mrb bench --json` output as the Markdown tables of
docs/BENCHMARKS.md (throughput, ratios, targets, path cost, wake-up latency).

    /usr/bin/python3 tools/bench/markdown.py bench.json
"""

import argparse
import json
import math
import sys


def size_label(size):
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def number(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render(doc):
    sizes = doc["config"]["sizes"]
    header = [""] + [size_label(s) for s in sizes]
    out = []

    cells = {}
    labels = {}
    for result in doc["results"]:
        cells[(result["id"], result["size"])] = result
        labels.setdefault(result["id"], result["label"])
    rows = []
    for row_id, label in labels.items():
        row = [label]
        for size in sizes:
            cell = cells.get((row_id, size))
            if cell is None:
                row.append("n/a")
            elif not cell["ok"]:
                row.append("FAILED")
            else:
                row.append(
                    f"{number(cell['messages_per_second'] / 1e6)} "
                    f"({number(cell['gb_per_second'])})"
                )
        rows.append(row)
    config = doc["config"]
    out.append(
        "Million messages/s (GB/s of payload), best of "
        f"{config['repeats']} runs of {config['duration_ms']} ms:\n"
    )
    out.append(table(header, rows))

    out.append("\nRatios (same run):\n")
    out.append(
        table(
            header,
            [
                [r["label"]] + [number(r["values"].get(str(s))) for s in sizes]
                for r in doc["ratios"]
            ],
        )
    )

    out.append("\nTargets:\n")
    target_rows = []
    for t in doc["targets"]:
        met = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        wanted = f">= {t['minimum']:g}"
        target_rows.append([t["label"], number(t["value"]), wanted, met])
    out.append(table(["target", "measured", "wanted", ""], target_rows))

    if doc.get("path_cost"):
        out.append(
            "\nPath cost on one core (write then read in one process; the write-alone"
            " rows time only the writes), ns/message:\n"
        )
        names = {
            "minimal": "minimal ring write + read",
            "mrb_read": "mrb write + read",
            "mrb_read_batch": "mrb 16 x write + read_batch",
            "mrb_write_batch": "mrb write_batch(16) + read_batch",
            "minimal_write": "minimal ring write alone",
            "mrb_write": "mrb write alone",
        }
        by_size = {c["size"]: c for c in doc["path_cost"]}
        rows = []
        for key, label in names.items():
            row = [label]
            for size in sizes:
                cost = by_size.get(size)
                row.append(
                    number(cost["ns_per_message"][key]) if cost and cost["ok"] else "-"
                )
            rows.append(row)
        out.append(table(header, rows))

    out.append("\nWake-up latency of a blocked reader (write -> read returns):\n")
    rows = []
    for w in doc["wakeup_latency"]:
        if w["available"]:
            rows.append(
                [
                    w["label"],
                    f"{w['p50_ns'] / 1e3:.1f}",
                    f"{w['p99_ns'] / 1e3:.1f}",
                    str(w["samples"]),
                ]
            )
        else:
            rows.append([w["label"], "-", "-", f"unavailable: {w['error']}"])
    out.append(table(["", "p50 (us)", "p99 (us)", "samples"], rows))

    trips = doc["round_trip"]
    parts = []
    for key in ("start", "end"):
        if trips.get(key):
            parts.append(f"{key} {trips[key]['median_ns']:.0f} ns")
    out.append("\nCross-core round trip: " + ", ".join(parts) + ".")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="output of mrb bench --json (or --json-out)")
    args = parser.parse_args()
    with open(args.json) as f:
        doc = json.load(f)
    if doc.get("schema") != "mrb-bench/1":
        sys.exit(f"{args.json}: not mrb bench JSON")
    sys.stdout.write(render(doc))


if __name__ == "__main__":
    main()
