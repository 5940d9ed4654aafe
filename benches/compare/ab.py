#!/usr/bin/env python3
"""Medians (min-max) of the round-by-round ratios to raw, for every client in
run.sh's JSON lines, variants included (compare-nethttpold and the like,
which run.sh's own tables leave out).

    benches/compare/ab.py RESULTS.jsonl [MORE.jsonl ...]

Download modes compare MB/s, the others req/s; a round without a raw run is
skipped.
"""

import collections
import json
import statistics
import sys


def rate(row):
    return row["mb_per_s"] if row["mode"].startswith("download") else row["req_per_s"]


def main(paths):
    rows = [json.loads(line) for path in paths for line in open(path) if line.strip()]
    raw = {
        (r["mode"], r["placement"], r["round"]): rate(r)
        for r in rows
        if r["client"] == "raw" and rate(r) > 0
    }
    ratios = collections.defaultdict(list)
    clients = []
    for r in rows:
        base = raw.get((r["mode"], r["placement"], r["round"]))
        if base is None or r["client"] == "raw":
            continue
        if r["client"] not in clients:
            clients.append(r["client"])
        ratios[(r["mode"], r["placement"], r["client"])].append(rate(r) / base)
    modes = sorted({k[0] for k in ratios})
    print("| mode, placement | " + " | ".join(clients) + " |")
    print("|---" * (len(clients) + 1) + "|")
    for placement in ("two-cpu", "one-cpu"):
        for mode in modes:
            cells = []
            for c in clients:
                v = ratios.get((mode, placement, c))
                cells.append(
                    f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" if v else "–"
                )
            if any(cell != "–" for cell in cells):
                print(f"| {mode}, {placement} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
