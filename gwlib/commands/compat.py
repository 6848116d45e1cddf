"""``gwlib compat check``: version-skew findings for a planned or installed stack (design §4.1).

    gwlib compat check [--crds FILE_OR_DIR | --gateway-api VERSION [--channel standard|experimental]]
                       [--linkerd VERSION] [--traefik VERSION] [--argo-rollouts-plugin VERSION] [-o json|table]

``-o json`` prints a list of findings, each ``{"severity", "components", "kind", "message",
"fix", "source"}``; ``-o table`` (the default) one block per finding. Exit 1 when any finding
is an error, 0 otherwise, 2 for usage errors (including versions gwlib cannot read).
"""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compat", help="version skew between the Gateway API CRDs, Linkerd, Traefik and Argo Rollouts",
        description="Check which Gateway API kinds and versions each component reads against the "
                    "CRDs that are (or will be) installed.")
    sub = p.add_subparsers(dest="compat_command", metavar="COMMAND", parser_class=type(p))
    sub.required = True
    c = sub.add_parser("check", help="findings for a planned or installed stack",
                       description="Findings for a stack: the Gateway API CRDs (installed files, or a "
                                   "planned release and channel) and component versions.")
    src = c.add_mutually_exclusive_group()
    src.add_argument("--crds", metavar="FILE_OR_DIR",
                     help="installed CRDs (e.g. kubectl get crd -o yaml > crds.yaml, or a release's install YAML)")
    src.add_argument("--gateway-api", metavar="VERSION", help="a planned Gateway API release, e.g. v1.2.1")
    c.add_argument("--channel", choices=("standard", "experimental"), help="with --gateway-api (default standard)")
    c.add_argument("--linkerd", metavar="VERSION", help="2.17, 2.17.1 or an edge name such as edge-24.11.8")
    c.add_argument("--traefik", metavar="VERSION", help="e.g. v3.2 (installed with its Helm chart)")
    c.add_argument("--argo-rollouts-plugin", metavar="VERSION", help="the Gateway API plugin, e.g. v0.13.0")
    c.add_argument("-o", "--output", choices=("json", "table"), default="table")
    c.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..compat import CompatError, check, has_errors, text_table

    if args.channel is not None and args.gateway_api is None:
        print("gwlib compat check: --channel goes with --gateway-api", file=sys.stderr)
        return 2
    try:
        findings = check(crds=args.crds, gateway_api=args.gateway_api, channel=args.channel,
                         linkerd=args.linkerd, traefik=args.traefik,
                         argo_rollouts_plugin=args.argo_rollouts_plugin)
    except CompatError as exc:
        print(f"gwlib compat check: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        print(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        print(text_table(findings))
    return 1 if has_errors(findings) else 0
