"""``gwlib convert [--provider ingress-nginx|traefik] FILE``: Ingress → Gateway API (design §4.1).

The Gateway API YAML goes to stdout; the report of what did not survive goes to stderr, one
line per finding (``error|warning|info: <object>: <annotation>: <what was lost and why>``)
and a summary line. Invalid input documents (not an Ingress, schema errors such as an
unknown pathType, a path without a backend service) are listed first on stderr, one line
each (``file:doc Kind ns/name: field.path: message``), and nothing is written for them.

FILE is a manifest file, a folder of them, or ``-`` for stdin; put the Services (for named
ports), Secrets and Traefik Middlewares next to the Ingresses. Exit 0 when every document
could be read (even if the report has errors: those are about the conversion, not the
input); 1 when some input is invalid; 2 for usage errors.
"""
from __future__ import annotations

import argparse
import sys

PROVIDERS = ("ingress-nginx", "traefik")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert", help="convert Ingresses (+ ingress-nginx or Traefik annotations) to Gateway API",
        description="Convert networking.k8s.io/v1 Ingresses to a Gateway per ingress class and HTTPRoutes "
                    "(GRPCRoutes, TLSRoutes), following the annotations of the provider. The YAML goes to "
                    "stdout, the report of what could not be carried over to stderr.")
    p.add_argument("--provider", choices=PROVIDERS, default=None,
                   help="whose annotations and matching rules to follow (default: guessed from the "
                        "IngressClasses and annotations, else ingress-nginx)")
    p.add_argument("file", metavar="FILE", help="manifest file or folder ('-' reads stdin)")
    p.set_defaults(func=run)
    return p


def one_line(text: str) -> str:
    """Problems are one line each, even when the input put a newline in a name."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def run(args: argparse.Namespace) -> int:
    from ..ingress import convert

    source = args.file
    if source == "-":
        source = sys.stdin.read()
        if not source.strip():
            print("gwlib convert: stdin is empty", file=sys.stderr)
            return 1
    try:
        conv = convert(source, provider=args.provider)
    except (TypeError, ValueError) as exc:   # never a traceback for bad input
        print(f"gwlib convert: {exc}", file=sys.stderr)
        return 1
    for problem in conv.problems:
        print(one_line(problem.line()), file=sys.stderr)
    if conv.objects:
        sys.stdout.write(conv.yaml())
        sys.stdout.flush()
    if conv.report.findings or conv.report.converted:
        sys.stderr.write(conv.report.text())
    return 1 if conv.problems else 0
