"""``gwlib lab up|down|status|features``: a lab that outlives one command.

    gwlib lab up [--dataplane envoy|traefik] [-f FILE ...]   # start (or show) the lab
    gwlib lab status                                          # ports, objects, findings
    gwlib lab down                                            # stop it and all it started
    gwlib lab features                                        # what each data plane supports

The lab's state (process id, control port, token, Gateway ports) lives in a per-user folder
(``GWLIB_STATE_DIR``, else ``$XDG_STATE_HOME/gwlib``, else ``~/.local/state/gwlib``).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("lab", help="a long-running local lab (real Envoy or Traefik)")
    p.add_argument("action", choices=("up", "down", "status", "features"))
    p.add_argument("--dataplane", choices=("envoy", "traefik"), default=None)
    p.add_argument("-f", "--filename", dest="files", action="append", default=[], metavar="FILE")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the lab to start")
    p.set_defaults(func=run)
    return p


def _read_state() -> dict | None:
    from ..labd import state_file
    try:
        state = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None
    return state if _alive(state.get("pid")) else None


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def call(state: dict, method: str, path: str, body: str | None = None) -> tuple[int, dict]:
    """One call to the running lab's control API."""
    conn = http.client.HTTPConnection("127.0.0.1", state["control_port"], timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {state['token']}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def _print_status(info: dict) -> None:
    print(f"lab running: {info['dataplane']} (pid {info['pid']})")
    for name, port in info.get("ports", {}).items():
        print(f"  {name:<40} -> 127.0.0.1:{port}")
    if info.get("objects"):
        print(f"  {len(info['objects'])} objects: " + ", ".join(info["objects"]))
    for f in info.get("findings") or []:
        print(f"  warning: {f}")


def run(args: argparse.Namespace) -> int:
    from ..labd import state_file

    if args.action == "features":
        return _features()
    state = _read_state()
    if args.action == "status":
        if state is None:
            print("no lab is running (start one with: gwlib lab up)")
            return 1
        code, info = call(state, "GET", "/status")
        _print_status(info)
        return 0 if code == 200 else 1
    if args.action == "down":
        if state is None:
            print("no lab is running")
            return 0
        try:
            call(state, "POST", "/shutdown")
        except OSError:
            os.kill(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(state["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(state["pid"]):
            os.kill(state["pid"], signal.SIGKILL)
        state_file().unlink(missing_ok=True)
        print("lab stopped")
        return 0
    # up
    if state is not None:
        code, info = call(state, "GET", "/status")
        if args.files:
            import yaml

            from ._common import load_inputs
            objects = load_inputs(args.files)
            if objects is None:
                return 1
            code, out = call(state, "POST", "/apply", yaml.safe_dump_all([o.to_dict() for o in objects]))
            if code != 200:
                for line in out.get("problems") or [out.get("error")]:
                    print(line, file=sys.stderr)
                return 1
            code, info = call(state, "GET", "/status")
        _print_status(info)
        return 0
    from ._common import load_inputs
    if args.files and load_inputs(args.files) is None:
        return 1
    path = state_file()
    path.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "gwlib.labd", "--state", str(path)]
    if args.dataplane:
        argv += ["--dataplane", args.dataplane]
    argv += [os.path.abspath(f) for f in args.files]
    log = path.parent / "lab.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        state = _read_state()
        if state is not None:
            _, info = call(state, "GET", "/status")
            _print_status(info)
            return 0
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            print("gwlib lab: the lab did not start: " + (" | ".join(tail) or f"exit code {proc.returncode}"),
                  file=sys.stderr)
            return 1
        time.sleep(0.05)
    proc.terminate()
    print(f"gwlib lab: the lab did not start within {args.timeout:g} s (log: {log})", file=sys.stderr)
    return 1


def _features() -> int:
    import importlib
    rows = []
    for name in ("envoy", "traefik"):
        try:
            module = importlib.import_module(f"gwlib.dataplanes.{name}")
        except ImportError:
            continue
        for f in getattr(module, "features", lambda: [])():
            rows.append((name, f.get("feature", ""), str(f.get("supported", "")), f.get("note", "")))
    if not rows:
        print("no data plane driver is installed")
        return 1
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    return 0
