#!/usr/bin/env python3
"""Read the finished load Jobs' logs back into gwlib's tidy schema.

    python scripts/latency/collect.py --save-logs results/logs -o results/latency.csv
    python scripts/latency/collect.py --from-logs results/logs -o results/latency.csv   # offline

Uses your kubeconfig (the ``kubernetes`` client). The CSV has the columns of
``gwlib.latency.SCHEMA`` plus ``mesh``; the notebook 08 section "Bring your own results"
shows how to compare baseline and mesh with confidence intervals.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gwlib.latency import cluster  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-logs", help="parse saved Job logs from this folder instead of the cluster")
    ap.add_argument("--save-logs", help="also write each Job's raw log to this folder")
    ap.add_argument("-o", "--output", default="-", help="CSV file (default: stdout)")
    a = ap.parse_args(argv)
    if a.from_logs:
        df, _ = cluster.from_logs(a.from_logs)
    else:
        df, _ = cluster.collect(save_dir=a.save_logs)
    if a.output == "-":
        df.to_csv(sys.stdout, index=False)
    else:
        Path(a.output).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(a.output, index=False)
        print(f"{len(df)} rows -> {a.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
