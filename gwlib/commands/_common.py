"""Shared by the status and route subcommands: reading -f inputs without tracebacks."""
from __future__ import annotations

import sys


def load_inputs(paths: list[str]) -> list | None:
    """Validate then load every -f path (file or folder). On problems print one line per
    problem on stderr and return None (the caller exits 1)."""
    from .. import load, validate

    try:
        problems = validate(*paths, channel="experimental")
    except (TypeError, ValueError) as exc:
        print(f"gwlib: {exc}", file=sys.stderr)
        return None
    if problems:
        for p in problems:
            print(p.line(), file=sys.stderr)
        return None
    try:
        return load(*paths, channel="experimental")
    except ValueError as exc:  # InvalidManifest: validation said yes, loading said no
        for p in getattr(exc, "problems", None) or [exc]:
            print(p.line() if hasattr(p, "line") else f"gwlib: {p}", file=sys.stderr)
        return None
