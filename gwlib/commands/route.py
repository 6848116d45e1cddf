"""``gwlib route``: answer requests with a data plane (design §4.1).

    gwlib route -f FILE [-f FILE ...] [--dataplane reference|envoy|traefik]
                (--requests FILE.jsonl | --gateway NS/NAME --host H --path P [--method M] [--header K=V ...])
                [-o json|table]

One JSON request per line in, one JSON answer per line out, in order (``--requests -``
reads stdin). A malformed line gets ``{"error": "..."}`` and the rest continue. Exit 0;
1 when the manifests are invalid, the requests file cannot be read or the data plane does
not start; 2 for usage errors. ``--dataplane envoy|traefik`` starts a lab (a real proxy and
echo backends on 127.0.0.1) for this command and stops it before exiting.
"""
from __future__ import annotations

import argparse
import json
import sys

DATAPLANES = ("reference", "envoy", "traefik")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "route", help="answer requests (JSON lines) as the Gateway would",
        description="Route requests through the Gateways of the manifests and print one JSON "
                    "answer per request, in order.")
    p.add_argument("-f", "--filename", dest="files", action="append", required=True, metavar="FILE",
                   help="manifest file or folder (repeatable)")
    p.add_argument("--dataplane", choices=DATAPLANES, default="reference",
                   help="reference (gwlib's router, default); envoy and traefik need the lab")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--requests", metavar="FILE.jsonl", help="one JSON request per line ('-' = stdin)")
    src.add_argument("--gateway", metavar="NS/NAME", help="a single request to this Gateway")
    p.add_argument("--host", metavar="H", help="Host header of the single request")
    p.add_argument("--path", metavar="P", help="path (and query) of the single request")
    p.add_argument("--method", metavar="M", help="method of the single request (default GET)")
    p.add_argument("--header", metavar="K=V", action="append", default=[],
                   help="a header of the single request (repeatable)")
    p.add_argument("-o", "--output", choices=("json", "table"), default="json")
    p.set_defaults(func=run)
    return p


def _single_request(args: argparse.Namespace) -> tuple[dict | None, str | None]:
    headers: dict = {}
    for h in args.header:
        name, sep, value = h.partition("=")
        if not sep or not name.strip():
            return None, f"--header {h!r}: expected NAME=VALUE"
        name = name.strip()
        if name in headers:
            headers[name] = headers[name] + "," + value
        else:
            headers[name] = value
    req: dict = {"gateway": args.gateway}
    if args.host is not None:
        req["host"] = args.host
    req["method"] = args.method or "GET"
    req["path"] = args.path or "/"
    if headers:
        req["headers"] = headers
    return req, None


def _read_lines(path: str) -> list[str] | None:
    try:
        if path == "-":
            return sys.stdin.read().splitlines()
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read requests: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return None


def answer_lines(router, lines: list[str]) -> list[tuple[dict | None, dict]]:
    """[(request or None, answer)] for the non-blank lines, in order."""
    from ..router import RequestError

    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append((None, {"error": f"line {n}: not JSON: {exc.msg} (column {exc.colno})"}))
            continue
        if not isinstance(req, dict):
            out.append((None, {"error": f"line {n}: a request must be a JSON object"}))
            continue
        try:
            out.append((req, router.route(req)))
        except RequestError as exc:
            out.append((req, {"error": f"line {n}: {exc}"}))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # never a traceback
            out.append((req, {"error": f"line {n}: invalid request: {exc}"}))
    return out


def _table(rows: list[tuple[dict | None, dict]]) -> str:
    head = ["#", "request", "status", "backend", "location", "route", "rule"]
    body = []
    for i, (req, ans) in enumerate(rows, 1):
        if req is None:
            what = "-"
        elif req.get("grpc"):
            g = req["grpc"]
            what = f"gRPC {req.get('host') or '-'} {g.get('service', '')}/{g.get('method', '')}"
        elif req.get("service"):
            what = f"{req.get('method') or 'GET'} svc {req['service']} {req.get('path') or '/'}"
        else:
            scheme = req.get("scheme") or "http"
            port = f":{req['port']}" if req.get("port") and {"http": 80, "https": 443}.get(scheme) != req["port"] else ""
            what = (f"{req.get('method') or 'GET'} {scheme}://{req.get('host') or '(gateway address)'}"
                    f"{port}{req.get('path') or '/'}")
        if "error" in ans and ans.get("status") is None:
            body.append([str(i), what, "error", "-", "-", ans.get("route") or "-", "-", ans["error"]])
            continue
        b = ans.get("backend")
        status = str(ans.get("status"))
        if "grpc_status" in ans:
            status += f" grpc={ans['grpc_status']}"
        body.append([str(i), what, status, f"{b['namespace']}/{b['name']}:{b['port']}" if b else "-",
                     ans.get("location") or "-", ans.get("route") or "-",
                     "-" if ans.get("rule") is None else str(ans["rule"])])
    widths = [max(len(r[c]) for r in [head] + body) for c in range(len(head))]

    def fmt(r: list[str]) -> str:
        line = "  ".join(x.ljust(w) for x, w in zip(r, widths))
        return (line + "  " + r[len(head)] if len(r) > len(head) else line).rstrip()
    return "\n".join([fmt(head)] + [fmt(r) for r in body])


def _through_lab(dataplane: str, objects: list, lines: list[str]) -> list | None:
    """Answer the requests through a real data plane started for this command only."""
    from ..lab import Lab

    try:
        lab = Lab(dataplane=dataplane, seed=0)
    except (RuntimeError, ValueError, ImportError) as exc:
        print(f"gwlib route: {exc}", file=sys.stderr)
        return None
    with lab:
        try:
            lab.apply(objects)
        except Exception as exc:  # noqa: BLE001 - a data plane that fails to start: one line
            print(f"gwlib route: the {dataplane} lab did not start: {str(exc).splitlines()[0]}", file=sys.stderr)
            return None

        class _Adapter:
            route = staticmethod(lab.request)
        return answer_lines(_Adapter, lines)


def run(args: argparse.Namespace) -> int:
    from ._common import load_inputs
    from ..router import Router

    if args.requests is None:
        req, err = _single_request(args)
        if err:
            print(f"gwlib route: {err}", file=sys.stderr)
            return 2
        lines = [json.dumps(req)]
    else:
        if any(v for v in (args.host, args.path, args.method)) or args.header:
            print("gwlib route: --host, --path, --method and --header go with --gateway, not --requests",
                  file=sys.stderr)
            return 2
        lines = _read_lines(args.requests)
        if lines is None:
            return 1
    objects = load_inputs(args.files)
    if objects is None:
        return 1
    if args.dataplane == "reference":
        rows = answer_lines(Router(objects, seed=0), lines)
    else:
        rows = _through_lab(args.dataplane, objects, lines)
        if rows is None:
            return 1
    if args.requests is None and rows and "error" in rows[0][1] and rows[0][1].get("status") is None \
            and "status" not in rows[0][1]:
        print(f"gwlib route: {rows[0][1]['error'].removeprefix('line 1: ')}", file=sys.stderr)
        return 1
    if args.output == "table":
        print(_table(rows))
    else:
        for _, ans in rows:
            print(json.dumps(ans))
    return 0
