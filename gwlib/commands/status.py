"""``gwlib status -f FILE [-f FILE ...] [-o yaml|json]``: the status a conforming
controller would write for every GatewayClass, Gateway and Route (design §4.1).

Output is shaped like ``kubectl get -o json|yaml``: ``{"apiVersion": "v1", "kind":
"List", "items": [...]}``, each item the whole object (defaults applied) with its
computed ``status``. Exit 0; 1 when the input is invalid (one line per problem on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "status", help="the status a conforming controller would write for Gateways, classes and routes",
        description="Compute GatewayClass, Gateway and Route status (conditions, listeners, "
                    "attachedRoutes, route parents) as a conforming controller writes it.")
    p.add_argument("-f", "--filename", dest="files", action="append", required=True, metavar="FILE",
                   help="manifest file or folder (repeatable)")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    p.set_defaults(func=run)
    return p


def status_list(objects: list) -> dict:
    """The ``kubectl get -o json`` shaped List of every object with its computed status."""
    from ..controller import reconcile
    return {"apiVersion": "v1", "kind": "List", "items": reconcile(objects).statuses()}


def run(args: argparse.Namespace) -> int:
    from ._common import load_inputs

    objects = load_inputs(args.files)
    if objects is None:
        return 1
    doc = status_list(objects)
    if args.output == "json":
        print(json.dumps(doc, indent=2))
    else:
        import yaml
        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return 0
