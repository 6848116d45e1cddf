"""``gwlib rollout run``: run a Rollout's canary steps with analysis (design §4.1).

    gwlib rollout run -f FILE [-f FILE ...] [--dataplane reference|envoy|traefik] [--seed N]
                      [--fault VERSION:error-rate=0.05,latency-ms=50] [--requests-per-step N] [-o json|table]
                      [--auto-promote] [--mode reference|lab|cluster]
                      [--context NAME] [--kubeconfig FILE] [--timeout SECONDS] [--poll SECONDS]

Reads the Rollout, its AnalysisTemplates, the Services and the routes, runs the steps on a
simulated clock against the chosen data plane (``reference``: gwlib's router, the default;
``envoy``/``traefik``: a lab with a real proxy and echo backends, started for this command
and stopped before it exits) and prints the timeline as JSON (or a table).

The mode: ``--dataplane`` picks ``reference`` or ``lab`` as before; ``--mode cluster`` (or
``GWLIB_MODE=cluster`` when neither ``--mode`` nor ``--dataplane`` is given) runs the same
manifests on a Kubernetes cluster (``--context``/``--kubeconfig``, allowed contexts only): they
are applied (server-side apply; objects outside gwlib's reach, such as the Argo Rollouts
install objects, are skipped with a warning), the update is started by changing the pod
template's version label, **Argo Rollouts runs the steps** and gwlib follows them, sends
``--requests-per-step`` requests through the real Gateway per step and reads the route
weights and AnalysisRuns back (:mod:`gwlib.rollout.cluster`); progress lines go to stderr,
the objects stay in the cluster (``gwlib cluster clean`` removes them). ``--timeout`` bounds
the wait (default: the steps' planned time plus 600 s), ``--poll`` is the seconds between
reads of the Rollout. ``--auto-promote`` releases ``pause: {}`` steps (every mode).

``--fault`` (repeatable) injects faults into every pod of a version (the pod template's
``version`` label; ``canary`` and ``stable`` name the two sides): ``error-rate`` (0–1, the
share of answers that are 500) and ``latency-ms`` (added to every answer).

Exit 0 when the rollout ends Healthy, 1 when it ends Degraded (aborted) or Paused, 2 on bad
input (unreadable or invalid manifests, a Rollout or AnalysisTemplate gwlib cannot run, a
bad ``--fault``, options that do not fit the mode) — one line per problem on stderr, naming
file, object and field. In cluster mode an API error (the API server's own message), a
refused context or a timeout is also one line and exit 2: the rollout did not end.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

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


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return v


class _Given(argparse.Action):
    """Store the value and remember that it was given (``<dest>_given``): ``--dataplane``
    keeps its contract default, ``reference``, and the mode still knows it was not asked for."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


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
    r.add_argument("--dataplane", choices=DATAPLANES, default="reference", action=_Given,
                   help="reference (gwlib's router, default); envoy and traefik start a lab")
    r.add_argument("--mode", choices=("reference", "lab", "cluster"), default=None,
                   help="cluster: Argo Rollouts in a Kubernetes cluster runs the steps (default: from "
                        "--dataplane, else GWLIB_MODE=cluster, else reference)")
    r.add_argument("--context", metavar="NAME", help="cluster mode: kube context (default GWLIB_CONTEXT, else current)")
    r.add_argument("--kubeconfig", metavar="FILE", help="cluster mode: kubeconfig file")
    r.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="cluster mode: how long to wait for the rollout (default: its planned time + 600 s)")
    r.add_argument("--poll", type=_seconds, default=2.0, metavar="SECONDS",
                   help="cluster mode: seconds between reads of the Rollout (default 2)")
    r.add_argument("--auto-promote", action="store_true",
                   help="promote pause steps without a duration at once (kubectl argo rollouts promote)")
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


def _mode(args: argparse.Namespace) -> str:
    """The mode, or raise ValueError (a usage error) for options that do not fit it."""
    mode = args.mode
    given = bool(getattr(args, "dataplane_given", False))
    if mode is None:
        if args.dataplane in ("envoy", "traefik"):
            mode = "lab"
        elif not given and os.environ.get("GWLIB_MODE", "").strip().lower() == "cluster":
            mode = "cluster"
        else:
            mode = "reference"
    if mode == "reference" and args.dataplane in ("envoy", "traefik"):
        raise ValueError(f"--dataplane {args.dataplane} runs a lab: use --mode lab (or leave --mode out)")
    if mode == "lab" and given and args.dataplane == "reference":
        raise ValueError("--dataplane reference is the reference mode, not a lab data plane (envoy, traefik)")
    if mode == "cluster":
        if given:
            raise ValueError("--dataplane is a lab setting: in cluster mode the cluster's own Gateway controller answers")
        if args.fault:
            raise ValueError("--fault cannot be used in cluster mode: the echo backends in the cluster have no fault "
                             "injection (roll out a failing canary image instead)")
    else:
        given = [o for o, v in (("--context", args.context), ("--kubeconfig", args.kubeconfig),
                                ("--timeout", args.timeout)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only with --mode cluster")
    return mode


def _run_cluster(args: argparse.Namespace, objects: list) -> int:
    from ..cluster import ClusterConnection, ClusterError
    from ..rollout import RolloutError, RolloutRun, RolloutSpecError

    try:
        conn = ClusterConnection(context=args.context, kubeconfig=args.kubeconfig, seed=args.seed,
                                 poll=args.poll if args.poll > 0 else 1.0)
    except (ClusterError, ValueError) as exc:
        return _err(str(exc).splitlines()[0])
    with conn:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                conn.apply(objects, skip_foreign=True)
            except ClusterError as exc:
                return _err(str(exc))
            except ValueError as exc:   # InvalidManifest
                for p in getattr(exc, "problems", None) or [exc]:
                    print(p.line() if hasattr(p, "line") else f"gwlib rollout run: {p}", file=sys.stderr)
                return 2
        for w in caught:
            print(f"gwlib rollout run: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
        try:
            ro = RolloutRun(conn, seed=args.seed, requests_per_step=args.requests_per_step,
                            auto_promote=args.auto_promote, timeout=args.timeout, poll=args.poll)
            timeline = ro.run()
        except RolloutSpecError as exc:
            for p in exc.problems:
                print(p.line(), file=sys.stderr)
            return 2
        except (RolloutError, ClusterError, ValueError) as exc:
            return _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - never a traceback: one line, exit 2
            return _err(f"the rollout could not be followed: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}")
    return _print(args, timeline)


def _print(args: argparse.Namespace, timeline) -> int:
    if args.output == "table":
        print(timeline.table())
    else:
        print(timeline.to_json(indent=2))
    return 0 if timeline.phase == "Healthy" else 1


def run(args: argparse.Namespace) -> int:
    from ._common import load_inputs
    from ..rollout import RolloutError, RolloutRun, RolloutSpecError

    try:
        mode = _mode(args)
    except ValueError as exc:
        return _err(str(exc))
    faults = []
    for text in args.fault:
        try:
            faults.append(parse_fault(text))
        except ValueError as exc:
            return _err(str(exc))
    objects = load_inputs(args.files)
    if objects is None:
        return 2
    if mode == "cluster":
        return _run_cluster(args, objects)
    if mode == "reference":
        from ..connection import ReferenceConnection
        conn = ReferenceConnection(seed=args.seed)
    else:
        from ..lab import Lab
        try:
            conn = Lab(dataplane=args.dataplane if args.dataplane != "reference" else None, seed=args.seed)
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
            lab = f"the {args.dataplane} lab" if args.dataplane in ("envoy", "traefik") else "the lab"
            return _err(f"{lab} did not start: {str(exc).splitlines()[0]}")
        try:
            ro = RolloutRun(conn, seed=args.seed, requests_per_step=args.requests_per_step,
                            auto_promote=args.auto_promote)
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
    return _print(args, timeline)
