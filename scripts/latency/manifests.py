#!/usr/bin/env python3
"""Print the manifests of a mesh-vs-baseline latency study, for ``kubectl apply -f -``.

    python scripts/latency/manifests.py echo | kubectl apply -f -
    python scripts/latency/manifests.py jobs --tool fortio --rates 20,200,2000 --runs 3 --duration 60 > jobs.yaml

``echo``: namespaces bench-baseline (never injected) and bench-mesh (linkerd.io/inject:
enabled), each with the same fortio echo server. ``jobs``: one load Job per namespace, rate
and run, baseline and mesh interleaved (see run.sh, which applies them one at a time).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gwlib.latency import cluster  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--image", default=cluster.FORTIO_IMAGE)
    j = sub.add_parser("jobs")
    j.add_argument("--tool", choices=["fortio", "wrk2"], default="fortio")
    j.add_argument("--rates", default="20,200,2000")
    j.add_argument("--runs", type=int, default=3)
    j.add_argument("--duration", type=int, default=60, help="seconds per run")
    j.add_argument("--connections", type=int, default=32)
    j.add_argument("--image", default=None)
    a = ap.parse_args(argv)
    if a.what == "echo":
        objs = cluster.echo_manifests(image=a.image)
    else:
        objs = cluster.plan(a.tool, rates=[int(r) for r in a.rates.split(",")], runs=a.runs,
                            duration_s=a.duration, connections=a.connections, image=a.image)
    sys.stdout.write(cluster.to_yaml(objs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
