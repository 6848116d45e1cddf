"""``EchoFleet``: the Python face of the echo server process.

One supervised process (``gwlib.backends.server``) hosts every endpoint; the fleet talks
to it over its control channel (HTTP + JSON on 127.0.0.1, see ``server.py``) and keeps
the desired state (endpoints with their local ports, faults) so that after a crash and an
automatic restart the same endpoints come back on the same ports with the same faults.
Request statistics live in the process and start over after a restart.
"""
from __future__ import annotations

import http.client
import json
import math
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..processes import FileProbe, ManagedProcess, ProcessError, Supervisor, TcpProbe, free_port
from ._common import TOKEN_ENV, TOKEN_HEADER, EchoEndpoint, Fault

_GWLIB_DIR = str(Path(__file__).resolve().parent.parent)

# Start the server without running gwlib/__init__.py (which imports pydantic and the
# validators: ~100 ms the echo server does not need): register a bare ``gwlib`` package
# whose __path__ is the real folder, then import the server module from it. The child runs
# with ``-S`` (no site module: its .pth processing costs ~15 ms at every start) and is given
# this interpreter's import path instead, so it finds the same h2 and grpcio.
_BOOT = ("import sys, types; sys.path[1:1] = {sys_path!r}; p = types.ModuleType('gwlib'); p.__path__ = [{path!r}]; "
         "sys.modules['gwlib'] = p; from gwlib.backends.server import main; sys.exit(main())")


def _import_path() -> list[str]:
    """This interpreter's import path beyond the standard library (site-packages and
    anything added to it), for a child started without the site module."""
    std = {os.path.normpath(p) for p in sys.path[1:] if p and "site-packages" not in p and "dist-packages" not in p
           and os.path.normpath(p).startswith(os.path.normpath(sys.base_prefix))}
    return [p for p in sys.path if p and os.path.isdir(p) and os.path.normpath(p) not in std]


class EchoError(RuntimeError):
    """The echo server refused a control request (e.g. a port it cannot listen on)."""


@dataclass
class VersionStats:
    """Requests answered by one version of one Service since the last reset."""

    namespace: str
    service: str
    version: str
    requests: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    pods: dict[str, int] = field(default_factory=dict)
    latency_ms: list[float] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        return None if not self.requests else (self.requests - self.errors) / self.requests

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100, linear interpolation) of the server-side latency
        (time from the request's arrival to its answer, injected delay included)."""
        xs = sorted(self.latency_ms)
        if not xs:
            return None
        pos = (len(xs) - 1) * q / 100.0
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class EchoFleet:
    """Echo endpoints for every Service the routes point at, in one supervised process.

    >>> with EchoFleet() as fleet:                                     # doctest: +SKIP
    ...     ports = fleet.ensure([EchoEndpoint("default", "echo", 8080, "http", version="v1")])
    ...     fleet.set_fault("default", "echo", "v1", error_rate=0.1, latency_ms=20)
    ...     fleet.stats()[("default", "echo", "v1")].success_rate

    ``supervisor``: the lab's :class:`~gwlib.processes.Supervisor` (default: the fleet
    makes and owns one). ``restart``: the restart policy for the server process
    (``"on-failure"`` by default: a crash brings the same endpoints back on the same
    ports). The process starts on first use (or :meth:`start`).
    """

    def __init__(self, supervisor: Supervisor | None = None, *, name: str = "echo", ingress: str = "",
                 restart: str = "on-failure", ready_timeout: float = 10.0, timeout: float = 30.0):
        self._own_supervisor = supervisor is None
        self.supervisor = supervisor if supervisor is not None else Supervisor("echo")
        self.name = name
        self.ingress = ingress
        self.restart = restart
        self.ready_timeout = ready_timeout
        self.timeout = timeout
        self._token = secrets.token_hex(16)
        self._lock = threading.RLock()
        self._proc: ManagedProcess | None = None
        self._control_port: int | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._endpoints: dict[str, EchoEndpoint] = {}
        self._ports: dict[str, int] = {}
        self._reserved: dict[str, int] = {}   # ports chosen by reserve(), not yet bound
        self._reserve_lock = threading.Lock()  # not self._lock, which start() holds while the process boots
        self._faults: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        self._ready_file = self.supervisor.log_dir / f"{name}-{secrets.token_hex(4)}.ready.json"
        self._restart_callbacks: list[Callable[[EchoFleet, dict[str, int]], None]] = []
        self.closed = False

    # ------------------------------------------------------------------ process
    @property
    def process(self) -> ManagedProcess | None:
        return self._proc

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def control_port(self) -> int | None:
        return self._control_port

    def start(self, wait: bool = True) -> EchoFleet:
        """Start the server process (idempotent) and wait until its control channel
        listens. With ``wait=False`` it returns at once (the lab starts the data plane
        meanwhile); the first call that needs the server, or :meth:`wait_ready`, waits."""
        with self._lock:
            if self.closed:
                raise EchoError("this EchoFleet is closed")
            if self._proc is not None and self._proc.alive:
                if wait:
                    self.wait_ready()
                return self
            argv = [sys.executable, "-S", "-c", _BOOT.format(path=_GWLIB_DIR, sys_path=_import_path()), "serve",
                    "--ready-file", str(self._ready_file), "--parent-pid", str(os.getpid())]
            if self.ingress:
                argv += ["--ingress", self.ingress]
            ready_file = self._ready_file

            def prepare() -> None:
                ready_file.unlink(missing_ok=True)

            self._proc = self.supervisor.start(
                self.name, argv, env={TOKEN_ENV: self._token, "PYTHONUNBUFFERED": "1"},
                ready=FileProbe(ready_file), ready_timeout=self.ready_timeout,
                restart=self.restart, prepare=prepare, grace=2.0, wait=False)
            self._proc.on_restart(self._after_restart)
            self._control_port = None
            if wait:
                self.wait_ready()
            return self

    def wait_ready(self) -> None:
        """Wait until the server process is ready (after ``start(wait=False)``); raises
        :class:`~gwlib.processes.ProcessError` with its log tail if it fails."""
        with self._lock:
            if self._proc is None:
                self.start()
                return
            if self._control_port is None:
                self._proc.wait_ready()
                self._read_ready()

    def _read_ready(self) -> None:
        info = json.loads(self._ready_file.read_text())
        self._control_port = int(info["control_port"])
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def on_restart(self, callback: Callable[[EchoFleet, dict[str, int]], None]) -> None:
        """After an automatic restart (endpoints and faults restored), call
        ``callback(fleet, changed)`` where ``changed`` maps the keys of endpoints that
        could not get their old port back to their new one (usually empty)."""
        self._restart_callbacks.append(callback)

    def _after_restart(self, proc: ManagedProcess) -> None:
        with self._lock:
            if self.closed:
                return
            self._read_ready()
            old = dict(self._ports)
            self._post_endpoints(list(self._endpoints.values()), prune=False, retry_conflicts=True)
            for key, body in self._faults.items():
                self._call("POST", "/faults", body)
            changed = {k: p for k, p in self._ports.items() if old.get(k) != p}
        for cb in list(self._restart_callbacks):
            cb(self, changed)

    # ------------------------------------------------------------------ control
    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        with self._lock:
            if self._proc is None or self._control_port is None:
                self.wait_ready()
            assert self._proc is not None and self._control_port is not None
            data = json.dumps(body).encode() if body is not None else None
            headers = {TOKEN_HEADER: self._token}
            if data is not None:
                headers["Content-Type"] = "application/json"
            for attempt in (0, 1):
                conn = self._conn
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self._control_port, timeout=self.timeout)
                try:
                    conn.request(method, path, body=data, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                    self._conn = conn
                    break
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    self._conn = None
                    if not self._proc.alive:
                        self._proc.check()  # raises ProcessError with the log tail
                    if attempt:
                        raise EchoError(f"echo server control channel: {exc}") from exc
            try:
                answer = json.loads(raw) if raw else {}
            except ValueError:
                answer = {"message": raw.decode("utf-8", "replace")}
            if resp.status >= 400:
                err = EchoError(f"echo server: {answer.get('message') or resp.status}")
                err.answer = answer  # type: ignore[attr-defined]
                raise err
            return answer

    # ------------------------------------------------------------------ endpoints
    def _post_endpoints(self, eps: list[EchoEndpoint], *, prune: bool, retry_conflicts: bool) -> dict[str, Any]:
        payload = {"endpoints": [dict(ep.to_json(), listen_port=self._ports.get(ep.key) or self._reserved.get(ep.key, 0))
                                 for ep in eps],
                   "prune": prune}
        try:
            answer = self._call("POST", "/endpoints", payload)
        except EchoError as exc:
            answer = getattr(exc, "answer", None)
            if not answer or not answer.get("errors"):
                raise
            if not retry_conflicts:
                for ep in eps:  # keep track of those that did start
                    if ep.key in answer.get("ports", {}):
                        self._endpoints[ep.key] = ep
                        self._ports[ep.key] = int(answer["ports"][ep.key])
                raise
            # a port taken meanwhile: take any free one for those endpoints
            failed = set(answer["errors"])
            for key in failed:
                self._ports.pop(key, None)
            retry = {"endpoints": [dict(ep.to_json(), listen_port=0) for ep in eps if ep.key in failed],
                     "prune": False}
            again = self._call("POST", "/endpoints", retry)
            answer["ports"].update(again["ports"])
        for key in answer.get("removed", []):
            self._endpoints.pop(key, None)
            self._ports.pop(key, None)
        for ep in eps:
            if ep.key in answer["ports"]:
                self._endpoints[ep.key] = ep
                self._ports[ep.key] = int(answer["ports"][ep.key])
        return answer

    def ensure(self, endpoints: Iterable[EchoEndpoint], *, prune: bool = False,
               verify: bool = True) -> dict[str, int]:
        """Make these endpoints answer; returns ``{endpoint.key: local port}``.

        Endpoints that already exist keep their port (a changed ``version`` is applied in
        place). With ``prune``, every other endpoint is removed. The server listens before
        it answers; with ``verify`` each new TCP-based endpoint is also connected to
        once (readiness checked before any traffic).
        """
        eps: dict[str, EchoEndpoint] = {}
        for ep in endpoints:
            eps[ep.key] = ep
        with self._lock:
            new = [k for k in eps if k not in self._ports]
            # a reserved port may have been taken meanwhile: then any free one (returned)
            reserved = any(k in self._reserved for k in new)
            try:
                self._post_endpoints(list(eps.values()), prune=prune, retry_conflicts=reserved)
            finally:
                with self._reserve_lock:
                    for k in eps:
                        self._reserved.pop(k, None)
            ports = {k: self._ports[k] for k in eps}
        if verify:
            for k in new:
                if eps[k].protocol != "udp" and not TcpProbe(ports[k])():
                    raise EchoError(f"echo endpoint {k} does not accept connections on 127.0.0.1:{ports[k]}")
        return ports

    def reserve(self, endpoints: Iterable[EchoEndpoint]) -> dict[str, int]:
        """Choose the local ports of endpoints now, before they run; returns
        ``{endpoint.key: port}``.

        Endpoints that run keep their port; for the others a free 127.0.0.1 port is chosen
        here (no call to the server process, which may still be starting), so a data plane
        can be programmed meanwhile. The next :meth:`ensure` binds exactly these ports —
        or, if another program took one in between, a free one, which it returns.
        """
        out: dict[str, int] = {}
        with self._reserve_lock:
            for ep in endpoints:
                if ep.key not in self._ports and ep.key not in self._reserved:
                    self._reserved[ep.key] = free_port("udp" if ep.protocol == "udp" else "tcp")
                out[ep.key] = self._ports.get(ep.key) or self._reserved[ep.key]
        return out

    @property
    def ready(self) -> bool:
        """Whether the server process is up and its control channel known (no waiting)."""
        return self._proc is not None and self._control_port is not None and self._proc.alive

    def remove(self, endpoints: Iterable[EchoEndpoint | str]) -> list[str]:
        """Stop these endpoints (objects or keys); returns the keys removed."""
        keys = [e.key if isinstance(e, EchoEndpoint) else str(e) for e in endpoints]
        with self._lock:
            answer = self._call("DELETE", "/endpoints", {"keys": keys})
            for key in answer["removed"]:
                self._endpoints.pop(key, None)
                self._ports.pop(key, None)
            return list(answer["removed"])

    @property
    def endpoints(self) -> dict[str, EchoEndpoint]:
        return dict(self._endpoints)

    @property
    def ports(self) -> dict[str, int]:
        return dict(self._ports)

    def port(self, endpoint: EchoEndpoint | str) -> int:
        key = endpoint.key if isinstance(endpoint, EchoEndpoint) else endpoint
        try:
            return self._ports[key]
        except KeyError:
            raise KeyError(f"no echo endpoint {key!r}; call ensure() first") from None

    def address(self, endpoint: EchoEndpoint | str) -> str:
        """``"127.0.0.1:PORT"`` of an endpoint."""
        return f"127.0.0.1:{self.port(endpoint)}"

    # ------------------------------------------------------------------ faults
    def set_fault(self, namespace: str, service: str, version: str | None = None, *,
                  error_rate: float = 0.0, latency_ms: Any = None, seed: int | None = None,
                  status: int = 500, grpc_status: int = 14) -> None:
        """Inject faults into one version (``version=None``: every version without its own
        setting) of a Service, at once, while traffic flows.

        ``error_rate``: probability of answering ``status`` (HTTP) / ``grpc_status``
        (gRPC) / resetting (TCP) / dropping (UDP). ``latency_ms``: a number (fixed) or a
        distribution, e.g. ``{"distribution": "lognormal", "mean_ms": 20, "p99_ms": 120}``
        (see :func:`gwlib.backends._common.latency_sampler`). ``seed`` makes the draws
        repeatable. ``error_rate=0, latency_ms=None`` turns the faults off.
        """
        Fault(error_rate=error_rate, latency_ms=latency_ms, seed=seed, status=status,
              grpc_status=grpc_status)  # validate here, with a clear ValueError
        body = {"namespace": namespace, "service": service, "version": version,
                "error_rate": error_rate, "latency_ms": latency_ms, "seed": seed,
                "status": status, "grpc_status": grpc_status}
        with self._lock:
            self._call("POST", "/faults", body)
            self._faults[(namespace, service, version)] = body

    def clear_faults(self, namespace: str | None = None, service: str | None = None,
                     version: str | None = None) -> None:
        """Remove fault settings (all of them, or those matching the given fields)."""
        body = {"namespace": namespace, "service": service, "version": version}
        with self._lock:
            if self._proc is not None:
                self._call("DELETE", "/faults", body)
            for k in list(self._faults):
                if all(w is None or w == v for w, v in zip((namespace, service, version), k)):
                    del self._faults[k]

    # ------------------------------------------------------------------ stats
    def stats(self, reset: bool = False) -> dict[tuple[str, str, str], VersionStats]:
        """Per ``(namespace, service, version)``: requests, errors, status counts, requests
        per pod and the latency samples (ms, server side; the last 100,000). ``reset``
        returns the counts and starts new ones atomically (one window per canary step)."""
        answer = self._call("GET", "/stats?reset=1" if reset else "/stats")
        out: dict[tuple[str, str, str], VersionStats] = {}
        for v in answer["versions"]:
            st = VersionStats(v["namespace"], v["service"], v["version"], v["requests"], v["errors"],
                              v["statuses"], v["pods"], v["latency_ms"])
            out[(st.namespace, st.service, st.version)] = st
        return out

    def seen(self, request_id: str) -> list[dict]:
        """Which endpoints received the HTTP requests carrying ``X-Gwlib-Request-Id:
        request_id`` (``{"namespace", "name", "port"}`` each — the Service — in arrival order)."""
        from urllib.parse import quote
        return list(self._call("GET", f"/seen?id={quote(request_id)}")["endpoints"])

    def reset_stats(self) -> None:
        self._call("GET", "/stats?reset=1")

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the server process (and the supervisor, if the fleet made it)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._own_supervisor:
                self.supervisor.close()
            elif self._proc is not None:
                self.supervisor.stop(self._proc.name)
            self._ready_file.unlink(missing_ok=True)

    def __enter__(self) -> EchoFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("running" if self._proc and self._proc.alive else "not started")
        return f"<EchoFleet {len(self._endpoints)} endpoints, {state}>"


__all__ = ["EchoError", "EchoFleet", "ProcessError", "VersionStats"]
