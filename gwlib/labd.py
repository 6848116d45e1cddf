"""A long-running lab for shells and notebooks: ``gwlib lab up|down|status``.

``gwlib lab up`` starts this module as a background process that holds one
:class:`gwlib.lab.Lab` and answers a small JSON control API on 127.0.0.1 (its port and the
lab's Gateway ports are written to a state file in a per-user folder). ``gwlib lab status``
reads the state and asks the lab; ``gwlib lab down`` stops it, and with it every process
the lab started. The API:

    GET  /status              {"dataplane", "pid", "ports": {"ns/gw:80": local port}, "objects": [...]}
    POST /apply     (YAML)    {"applied": ["Kind ns/name", ...]}      400 {"problems": [...]}
    POST /delete    (YAML)    {"deleted": N}
    POST /request   (JSON)    the design's answer
    POST /shutdown            {"stopping": true}

Every request must carry the token from the state file (``Authorization: Bearer ...``),
so other local users cannot drive the lab.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .processes import atomic_write


def state_dir() -> Path:
    """``GWLIB_STATE_DIR``, else ``$XDG_STATE_HOME/gwlib``, else ``~/.local/state/gwlib``."""
    explicit = os.environ.get("GWLIB_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "gwlib"


def state_file() -> Path:
    return state_dir() / "lab.json"


def _serve(args: argparse.Namespace) -> int:
    from . import InvalidManifest
    from .lab import Lab

    token = secrets.token_hex(16)
    lab = Lab(dataplane=args.dataplane)
    if args.files:
        lab.apply(*args.files)
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:  # quiet
            pass

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {token}":
                self._reply(401, {"error": "missing or wrong token"})
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802
            if not self._authorized():
                return
            if self.path == "/status":
                self._reply(200, _status(lab))
            else:
                self._reply(404, {"error": f"no {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorized():
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
            try:
                if self.path == "/apply":
                    objs = lab.apply(body)
                    self._reply(200, {"applied": [f"{o.kind} {o.key}" for o in objs], **_status(lab)})
                elif self.path == "/delete":
                    self._reply(200, {"deleted": lab.delete(body)})
                elif self.path == "/request":
                    self._reply(200, lab.request(json.loads(body)))
                elif self.path == "/shutdown":
                    self._reply(200, {"stopping": True})
                    stop.set()
                else:
                    self._reply(404, {"error": f"no {self.path}"})
            except InvalidManifest as exc:
                self._reply(400, {"problems": [p.line() for p in exc.problems]})
            except (ValueError, KeyError) as exc:
                self._reply(400, {"error": str(exc)})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    state = {"pid": os.getpid(), "control_port": server.server_address[1], "token": token,
             "dataplane": lab.dataplane, "ports": lab.ports}
    path = Path(args.state)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(state, indent=2), mode=0o600)
    try:
        stop.wait()
    finally:
        server.shutdown()
        lab.close()
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass
    return 0


def _status(lab) -> dict:
    return {"dataplane": lab.dataplane, "pid": os.getpid(), "ports": lab.ports,
            "objects": [f"{o.kind} {o.key}" for o in lab.objects],
            "findings": [f"{f.route} rule {f.rule}: {f.feature}: {f.message}" for f in lab.findings]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gwlib.labd")
    p.add_argument("--state", required=True)
    p.add_argument("--dataplane", default=None)
    p.add_argument("files", nargs="*")
    return _serve(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
