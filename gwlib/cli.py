"""The ``gwlib`` command (design §4.1).

Exit codes: 0 success; 1 the input is invalid; 2 usage errors. Errors go to stderr, one
line each; bad input never produces a Python traceback.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from . import __version__
from .validation import CHANNELS, validate

#: Subcommands implemented in gwlib.commands.<name> (each has add_parser(subparsers)).
_COMMAND_MODULES = ("status", "route", "lab", "convert", "rollout", "compat", "cluster")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_validate(args: argparse.Namespace) -> int:
    problems = validate(*args.paths, channel=args.channel)
    if args.output == "json":
        print(json.dumps([p.to_dict() for p in problems], indent=2))
    else:
        for p in problems:
            print(p.line(), file=sys.stderr if problems else sys.stdout)
        if not problems:
            print(f"valid ({args.channel} channel, Gateway API v1.6.1)")
    return 1 if problems else 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from .fielddoc import ExplainError, explain_text
    try:
        print(explain_text(args.field, recursive=args.recursive))
    except ExplainError as exc:
        print(f"gwlib explain: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gwlib", description="Teach, check and measure the Kubernetes Gateway API.")
    parser.add_argument("--version", action="version", version=f"gwlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("validate", help="check manifests as the API server would (Gateway API v1.6.1)")
    p.add_argument("--channel", choices=CHANNELS, default="standard")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("explain", help="documentation of a field, like kubectl explain")
    p.add_argument("field", help="e.g. HTTPRoute.spec.rules.backendRefs.weight")
    p.add_argument("--recursive", action="store_true", help="list all nested fields")
    p.set_defaults(func=_cmd_explain)

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"gwlib.commands.{name}")
        except ImportError:
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `gwlib ... | head`
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
