"""``gwlib rollout run``: run a Rollout's canary steps with analysis (design §4.1).

    gwlib rollout run -f FILE [-f FILE ...] [--dataplane reference|envoy|traefik] [--seed N]
                      [--fault VERSION:error-rate=0.05,latency-ms=50] [--requests-per-step N] [-o json|table]

Reads the Rollout, its AnalysisTemplates, the Services and the routes, runs the steps on a
simulated clock against the chosen data plane (``reference``: gwlib's router, the default;
``envoy``/``traefik``: a lab with a real proxy and echo backends, started for this command
and stopped before it exits) and prints the timeline as JSON (or a table).

``--fault`` (repeatable) injects faults into every pod of a version (the pod template's
``version`` label; ``canary`` and ``stable`` name the two sides): ``error-rate`` (0–1, the
share of answers that are 500) and ``latency-ms`` (added to every answer).

Exit 0 when the rollout ends Healthy, 1 when it ends Degraded (aborted) or Paused, 2 on bad
input (unreadable or invalid manifests, a Rollout or AnalysisTemplate gwlib cannot run, a
bad ``--fault``) — one line per problem on stderr, naming file, object and field.
"""
from __future__ import annotations

import argparse
import sys

DATAPLANES = ("reference", "envoy", "traefik")
FAULT_KEYS = {"error-rate": "error_rate", "latency-ms": "latency_ms"}


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "rollout", help="progressive delivery: run a Rollout's canary steps with analysis",
        description="Argo Rollouts canaries (Gateway API plugin, AnalysisTemplates) on gwlib's data planes.")
    sub = p.add_subparsers(dest="rollout_command", metavar="SUBCOMMAND", parser_class=type(p))
    sub.required = True
    r = sub.add_parser(
        "run", help="run a Rollout's canary steps with analysis and print the timeline",
        description="Run the canary steps of the Rollout in the manifests against a data plane, with "
                    "simulated time, and print the timeline. Exit 0 Healthy, 1 Degraded or Paused, 2 bad input.")
    r.add_argument("-f", "--filename", dest="files", action="append", required=True, metavar="FILE",
                   help="manifest file or folder (repeatable): Rollout, AnalysisTemplates, Services, routes")
    r.add_argument("--dataplane", choices=DATAPLANES, default="reference",
                   help="reference (gwlib's router, default); envoy and traefik start a lab")
    r.add_argument("--seed", type=_int, default=0, metavar="N", help="seed of weighted picks and faults (default 0)")
    r.add_argument("--fault", action="append", default=[], metavar="VERSION:error-rate=0.05,latency-ms=50",
                   help="inject faults into a version's pods (repeatable)")
    r.add_argument("--requests-per-step", type=_positive_int, default=1000, metavar="N",
                   help="requests sent during each step (default 1000)")
    r.add_argument("-o", "--output", choices=("json", "table"), default="json")
    r.set_defaults(func=run)
    return p


def parse_fault(text: str) -> tuple[str, dict]:
    """``"v2:error-rate=0.05,latency-ms=50"`` → ``("v2", {"error_rate": 0.05, "latency_ms": 50.0})``;
    raises ValueError with a one-line reason."""
    version, sep, settings = text.partition(":")
    version = version.strip()
    if not sep or not version:
        raise ValueError(f"--fault {text!r}: expected VERSION:error-rate=R,latency-ms=MS")
    out: dict = {}
    for part in settings.split(","):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in FAULT_KEYS:
            raise ValueError(f"--fault {text!r}: unknown setting {key!r} (use {', '.join(FAULT_KEYS)})")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--fault {text!r}: {key} must be a number, not {value.strip()!r}") from None
        if key == "error-rate" and not 0.0 <= number <= 1.0:
            raise ValueError(f"--fault {text!r}: error-rate must be between 0 and 1")
        if key == "latency-ms" and number < 0:
            raise ValueError(f"--fault {text!r}: latency-ms must be >= 0")
        out[FAULT_KEYS[key]] = number
    if not out:
        raise ValueError(f"--fault {text!r}: give error-rate and/or latency-ms")
    return version, out


def _err(message: str) -> int:
    print(f"gwlib rollout run: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from ._common import load_inputs
    from ..rollout import RolloutError, RolloutRun, RolloutSpecError

    faults = []
    for text in args.fault:
        try:
            faults.append(parse_fault(text))
        except ValueError as exc:
            return _err(str(exc))
    objects = load_inputs(args.files)
    if objects is None:
        return 2
    if args.dataplane == "reference":
        from ..connection import ReferenceConnection
        conn = ReferenceConnection(seed=args.seed)
    else:
        from ..lab import Lab
        try:
            conn = Lab(dataplane=args.dataplane, seed=args.seed)
        except (RuntimeError, ValueError, ImportError, OSError) as exc:
            return _err(str(exc).splitlines()[0])
    with conn:
        try:
            conn.apply(objects)
        except ValueError as exc:   # InvalidManifest
            for p in getattr(exc, "problems", None) or [exc]:
                print(p.line() if hasattr(p, "line") else f"gwlib rollout run: {p}", file=sys.stderr)
            return 2
        except Exception as exc:  # noqa: BLE001 - a data plane that fails to start: one line
            return _err(f"the {args.dataplane} lab did not start: {str(exc).splitlines()[0]}")
        try:
            ro = RolloutRun(conn, seed=args.seed, requests_per_step=args.requests_per_step)
            for version, settings in faults:
                ro.set_fault(version, **settings)
        except RolloutSpecError as exc:
            for p in exc.problems:
                print(p.line(), file=sys.stderr)
            return 2
        except (RolloutError, ValueError) as exc:
            return _err(str(exc))
        try:
            timeline = ro.run()
        except Exception as exc:  # noqa: BLE001 - never a traceback: one line, exit 2
            return _err(f"the rollout could not run: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    if args.output == "table":
        print(timeline.table())
    else:
        print(timeline.to_json(indent=2))
    return 0 if timeline.phase == "Healthy" else 1
