"""``gwlib cluster``: cluster-mode housekeeping.

    gwlib cluster clean [--context NAME] [--kubeconfig FILE] [--dry-run] [--wait] [-o text|json]

``clean`` deletes exactly what gwlib created in the cluster: its Namespaces (labelled
``app.kubernetes.io/managed-by: gwlib``, deleted with what is in them), its GatewayClasses
and ClusterAnalysisTemplates, and any other object carrying the label. ``--dry-run`` lists
them and deletes nothing. The context must be allowed (``kind-*``, ``k3d-*`` or named in
``GWLIB_ALLOW_CONTEXT``) — checked before any API call. Exit 0 on success, 1 when the
context is refused or the API server reports an error (one line on stderr, the API's own
message), 2 for usage errors.
"""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("cluster", help="cluster mode housekeeping (clean)",
                              description="Cluster mode housekeeping.")
    sub = p.add_subparsers(dest="cluster_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    c = sub.add_parser("clean", help="delete everything gwlib created in the cluster",
                       description="Delete exactly what gwlib created: objects labelled "
                                   "app.kubernetes.io/managed-by=gwlib (its namespaces with their contents).")
    c.add_argument("--context", metavar="NAME", help="kube context (default GWLIB_CONTEXT, else the current one)")
    c.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default KUBECONFIG or ~/.kube/config)")
    c.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    c.add_argument("--wait", action="store_true", help="wait until the objects are gone")
    c.add_argument("--timeout", type=float, default=180.0, metavar="SECONDS", help="for --wait (default 180)")
    c.add_argument("-o", "--output", choices=("text", "json"), default="text")
    c.set_defaults(func=run)
    return p


def _line(t: dict) -> str:
    where = f"{t['namespace']}/{t['name']}" if t.get("namespace") else t["name"]
    extra = " (and everything in it)" if t["kind"] == "Namespace" else ""
    return f"{t['kind']} {where}{extra}"


def run(args: argparse.Namespace) -> int:
    from ..cluster import ClusterConnection, ClusterError

    try:
        conn = ClusterConnection(context=args.context, kubeconfig=args.kubeconfig, progress=False)
    except ClusterError as exc:
        print(f"gwlib cluster {args.cluster_command}: {exc}", file=sys.stderr)
        return 1
    with conn:
        try:
            targets = conn.clean(dry_run=args.dry_run, wait=args.wait, timeout=args.timeout)
        except ClusterError as exc:
            print(f"gwlib cluster {args.cluster_command}: {exc}", file=sys.stderr)
            return 1
    if args.output == "json":
        print(json.dumps({"context": conn.context, "dry_run": bool(args.dry_run), "items": targets}, indent=2))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    if not targets:
        print(f"context {conn.context}: nothing gwlib created")
        return 0
    print(f"context {conn.context}: {verb} {len(targets)} object(s) gwlib created")
    for t in targets:
        print(f"  {_line(t)}")
    return 0
