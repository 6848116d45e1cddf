"""``gwlib.connect()``: one interface, three modes (design §2).

    conn = gwlib.connect()            # GWLIB_MODE, default "lab"
    conn.apply("data/manifests/talk")
    conn.status()                     # conditions as a conforming controller writes them
    conn.request(gateway="argocd/argocd-server-gateway", host="argocd.example.com", path="/")
    conn.explain({...})               # why that answer
    conn.set_weights("ns/route", {"stable": 90, "canary": 10})

This module holds what every mode shares — an in-memory object store that behaves like an
API server on ``apply`` (validation first and nothing half-applied, creationTimestamp set on
create, ``metadata.generation`` bumped when the spec changes) — and the ``reference`` mode,
where gwlib's pure-Python reference router answers. The lab mode (real Envoy/Traefik) and
the cluster mode build on the same surface.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from .validation import InvalidManifest, load

MODES = ("lab", "reference", "cluster")

#: The store's clock starts here and ticks one second per created object, so runs are
#: reproducible (precedence depends on creationTimestamp: oldest route wins ties).
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)

ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "UDPRoute", "TLSRoute")


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


class Store:
    """Objects keyed by (group, kind, namespace, name), kept in apply order."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, str | None, str], Any] = {}
        self._ticks = 0

    @staticmethod
    def key(obj: Any) -> tuple[str, str, str | None, str]:
        return (_group(obj.api_version), obj.kind, obj.namespace, obj.name)

    def objects(self) -> list:
        return list(self._objects.values())

    def get(self, kind: str, key: str) -> Any:
        ns, _, name = key.rpartition("/")
        for (_, k, n, nm), obj in self._objects.items():
            if k == kind and nm == name and (not ns or n == ns):
                return obj
        raise KeyError(f"no {kind} {key}")

    def apply(self, objects: list) -> list:
        """Create or update like a server-side apply; returns the stored objects."""
        stored = []
        for obj in objects:
            k = self.key(obj)
            data = obj.to_dict()
            meta = data.setdefault("metadata", {})
            old = self._objects.get(k)
            if old is None:
                if not meta.get("creationTimestamp"):
                    self._ticks += 1
                    stamp = EPOCH + timedelta(seconds=self._ticks)
                    meta["creationTimestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
                meta.setdefault("generation", 1)
            else:
                old_meta = old.to_dict().get("metadata", {})
                meta["creationTimestamp"] = old_meta.get("creationTimestamp")
                generation = old.generation
                if old.to_dict().get("spec") != data.get("spec"):
                    generation += 1
                meta["generation"] = generation
            (new,) = load(data)
            if obj.source:
                new.set_source(*obj.source)
            self._objects[k] = new
            stored.append(new)
        return stored

    def delete(self, objects: list) -> int:
        gone = 0
        for obj in objects:
            if self._objects.pop(self.key(obj), None) is not None:
                gone += 1
        return gone


class Connection:
    """What every mode offers (design §4.2): apply, delete, status, request/send, traffic,
    explain, split, set_weights. Subclasses decide who answers requests."""

    mode = "base"

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed
        self.store = Store()
        self._router = None

    # -- objects ----------------------------------------------------------------------------

    def apply(self, *sources: Any) -> list:
        """Validate and store manifests (paths, folders, YAML text, dicts, resources).

        Raises :class:`gwlib.InvalidManifest` listing every problem, and stores nothing,
        when any document is invalid."""
        objects = load(*sources)
        stored = self.store.apply(objects)
        self._changed()
        return stored

    def delete(self, *sources: Any) -> int:
        """Delete the objects the sources name; returns how many existed."""
        gone = self.store.delete(load(*sources))
        self._changed()
        return gone

    @property
    def objects(self) -> list:
        return self.store.objects()

    def _changed(self) -> None:
        self._router = None

    # -- what the controller says -----------------------------------------------------------

    @property
    def router(self):
        if self._router is None:
            from .router import Router
            self._router = Router(self.store.objects(), seed=self.seed)
        return self._router

    def status(self) -> StatusList:
        """The status a conforming controller writes, for every GatewayClass, Gateway and
        Route (whole objects, like ``kubectl get -o json`` items)."""
        return StatusList(self.router.result.statuses())

    # -- traffic ----------------------------------------------------------------------------

    def request(self, request: dict | None = None, **fields: Any) -> dict:
        """One request in the design's JSON form (or as keyword arguments) → the answer."""
        return self.router.route(_merge(request, fields))

    def send(self, requests: Iterable[dict]) -> list[dict]:
        """Several requests → answers, in order."""
        return [self.request(r) for r in requests]

    def table(self, requests: Iterable[dict]):
        """Send requests and tabulate the answers (a pandas DataFrame, one row each)."""
        return answers_frame(list(requests), self.send(requests))

    def sample(self, request: dict | None = None, n: int = 100, **fields: Any) -> dict[str, int]:
        """Send the same request ``n`` times; how many answers came from each backend
        (``"ns/name"``), or with each status when no backend answered (``"404"``, ``"error"``)."""
        req = _merge(request, fields)
        counts: dict[str, int] = {}
        for _ in range(n):
            ans = self.request(req)
            b = ans.get("backend")
            key = f"{b['namespace']}/{b['name']}" if b else ("error" if ans.get("status") is None
                                                             else str(ans["status"]))
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def traffic(self, request: dict | None = None, n: int = 100, rate: float | None = None,
                **fields: Any):
        """Send ``request`` ``n`` times (at ``rate`` requests/s when given, else back to back)
        and return one row per request: time sent (s), latency (ms), status, backend, error.

        For steady load and latency distributions against a lab port, see
        :mod:`gwlib.traffic` (open loop, latency from the intended send time)."""
        import time

        import pandas as pd

        req = _merge(request, fields)
        rows, start = [], time.perf_counter()
        for i in range(int(n)):
            if rate:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.perf_counter()
            ans = self.request(req)
            b = ans.get("backend")
            rows.append({"t_s": t0 - start, "latency_ms": (time.perf_counter() - t0) * 1000,
                         "status": ans.get("status"), "backend": f"{b['namespace']}/{b['name']}" if b else "",
                         "error": ans.get("error") or ""})
        return pd.DataFrame(rows)

    def split(self, request: dict | None = None, **fields: Any) -> dict[str, float]:
        """The exact traffic split for a request: ``{"ns/name": probability}``."""
        return self.router.split(_merge(request, fields))

    def explain(self, request: dict | None = None, **fields: Any):
        """Why the answer is what it is: listener, candidates, winner, losers, filters, split."""
        return self.router.explain(_merge(request, fields))

    # -- changes ----------------------------------------------------------------------------

    def set_weights(self, route: str, weights: dict[str, int], rule: int = 0,
                    kind: str = "HTTPRoute") -> Any:
        """Set the backendRef weights of one rule of a route, by backend name
        (``{"stable": 90, "canary": 10}``), as a canary controller patches the route.
        Names not in the rule are an error; backends not named keep their weight."""
        obj = self.store.get(kind, route)
        data = obj.to_dict()
        refs = _weighted_refs(data, kind, route, rule, weights)
        for ref in refs:
            if ref.get("name") in weights:
                ref["weight"] = int(weights[ref["name"]])
        (updated,) = load(data)
        if obj.source:
            updated.set_source(*obj.source)
        (stored,) = self.store.apply([updated])
        self._changed()
        return stored

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release what the connection holds (processes, in the lab)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gwlib {self.mode} connection: {len(self.store.objects())} objects>"


class ReferenceConnection(Connection):
    """Mode ``reference``: the controller plus the pure-Python reference router.

    ``dataplane`` is accepted (and has no effect) so that a notebook written as
    ``gwlib.connect(MODE, dataplane="envoy")`` also runs with ``GWLIB_MODE=reference``:
    the reference router answers, whichever data plane a lab would use."""

    mode = "reference"

    def __init__(self, seed: int | None = 0, dataplane: str | None = None) -> None:
        super().__init__(seed=seed)


class StatusList(list):
    """Objects with their computed ``status``; ``conditions()`` flattens them to rows."""

    def conditions(self) -> list[dict]:
        rows = []
        for item in self:
            kind = item["kind"]
            meta = item["metadata"]
            obj = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
            status = item.get("status") or {}
            for c in status.get("conditions") or []:
                rows.append(_row(kind, obj, "", c))
            for listener in status.get("listeners") or []:
                for c in listener.get("conditions") or []:
                    rows.append(_row(kind, obj, f"listener {listener['name']}", c))
            for parent in status.get("parents") or []:
                ref = parent.get("parentRef", {})
                where = f"parent {ref.get('namespace', meta.get('namespace'))}/{ref.get('name')}"
                if ref.get("sectionName"):
                    where += f" ({ref['sectionName']})"
                for c in parent.get("conditions") or []:
                    rows.append(_row(kind, obj, where, c))
        return rows

    def to_frame(self):
        import pandas as pd
        return pd.DataFrame(self.conditions(), columns=["kind", "object", "where", "type", "status", "reason"])


def answers_frame(requests: list[dict], answers: list[dict]):
    """Requests and their answers side by side, for notebooks."""
    import pandas as pd

    rows = []
    for r, a in zip(requests, answers):
        backend = a.get("backend")
        target = r.get("path") or ("/{service}/{method}".format(**r["grpc"]) if r.get("grpc") else "")
        rows.append({
            "method": "gRPC" if r.get("grpc") else (r["scheme"].upper() if r.get("scheme") in ("tcp", "udp", "tls")
                                                     else r.get("method", "GET")),
            "port": r.get("port", ""), "host": r.get("host", ""), "path": target,
            "headers": ", ".join(f"{k}: {v}" for k, v in (r.get("headers") or {}).items()),
            "status": "" if a.get("status") is None else a["status"],
            "backend": f"{backend['namespace']}/{backend['name']}:{backend['port']}" if backend else "",
            "location": a.get("location") or "",
            "error": a.get("error") or "",
        })
    frame = pd.DataFrame(rows)
    return frame.loc[:, [c for c in frame.columns if c in ("status", "path") or (frame[c] != "").any()]]


def _weighted_refs(route_obj: dict, kind: str, route: str, rule: int, weights: dict[str, int]) -> list[dict]:
    """The backendRefs of ``rule`` of a route (JSON), after checking that the rule exists and
    names every backend in ``weights``; a clear ValueError otherwise."""
    rules = (route_obj.get("spec") or {}).get("rules") or []
    if not 0 <= rule < len(rules):
        raise ValueError(f"{kind} {route} has no rule {rule} (it has {len(rules)})")
    refs = rules[rule].get("backendRefs") or []
    names = {r.get("name") for r in refs}
    unknown = sorted(set(weights) - names)
    if unknown:
        raise ValueError(f"{kind} {route} rule {rule} has no backendRef named "
                         f"{', '.join(unknown)} (it has {', '.join(sorted(n for n in names if n))})")
    return refs


def _row(kind: str, obj: str, where: str, c: dict) -> dict:
    return {"kind": kind, "object": obj, "where": where, "type": c.get("type"),
            "status": c.get("status"), "reason": c.get("reason")}


def _merge(request: dict | None, fields: dict) -> dict:
    out = dict(request or {})
    out.update(fields)
    return out


def _resolve_mode(name: str | None) -> str:
    """``name``, else ``GWLIB_MODE``, else ``"lab"``: trimmed, lower-cased and checked
    against :data:`MODES` (``ValueError`` naming the allowed modes otherwise)."""
    chosen = (name or os.environ.get("GWLIB_MODE") or "lab").strip().lower()
    if chosen not in MODES:
        raise ValueError(f"unknown mode {chosen!r}: use one of {', '.join(MODES)}")
    return chosen


def mode() -> str:
    """The mode ``GWLIB_MODE`` selects: ``"lab"`` (the default, also when the variable is
    unset or empty), ``"reference"`` or ``"cluster"``.

    It is the mode ``gwlib.connect()`` opens without an argument, read and checked the same
    way (case and surrounding spaces do not matter), so a notebook can read it once and
    pass it on::

        MODE = gwlib.mode()
        conn = gwlib.connect(MODE, dataplane="envoy")

    Nothing is started or contacted. Raises ``ValueError`` for any other value, with the
    message ``connect()`` gives.
    """
    return _resolve_mode(None)


def connect(mode: str | None = None, **options: Any) -> Connection:
    """Open a connection in ``mode`` (default: ``GWLIB_MODE``, else ``lab``; see :func:`mode`).

    ``reference``: the spec's answers from gwlib's own router. ``lab``: a real Envoy or
    Traefik on 127.0.0.1 (``dataplane="envoy"|"traefik"``, default ``GWLIB_DATAPLANE`` or
    Envoy when installed). ``cluster``: a Kubernetes cluster through the kubernetes client.
    """
    mode = _resolve_mode(mode)
    if mode == "reference":
        return ReferenceConnection(**options)
    if mode == "lab":
        from .lab import Lab  # noqa: PLC0415 - the lab pulls in process supervision
        return Lab(**options)
    from .cluster import ClusterConnection  # noqa: PLC0415 - the kubernetes client loads in cluster mode only
    return ClusterConnection(**options)


__all__ = ["Connection", "InvalidManifest", "ReferenceConnection", "StatusList", "connect", "mode"]


# -- shared by the modes that send real traffic (lab, cluster) ------------------------------

def _error_answer(message: str) -> dict:
    """The design's answer for a request that got no HTTP response at all."""
    return {"status": None, "backend": None, "request": None, "headers": {}, "location": None,
            "mirrored_to": [], "route": None, "rule": None, "error": message}


def _canonical(name: str) -> str:
    from .filters import canonical_header_name
    return canonical_header_name(name)


#: response headers that are the transport's, not Gateway behaviour (left out of answers)
TRANSPORT_RESPONSE_HEADERS = frozenset({"date", "server", "content-length"})
#: gRPC's own response metadata (left out of gRPC answers' ``headers``, in every mode)
GRPC_RESPONSE_METADATA = frozenset({"content-type", "grpc-accept-encoding", "grpc-encoding", "grpc-status",
                                    "grpc-message", "grpc-status-details-bin"})


def _joined(pairs, drop: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
    """Header pairs as an answer shows them: canonical names, a repeated header's values
    joined with ``,``; names in ``drop`` (lower case) left out."""
    out: dict[str, str] = {}
    for k, v in pairs:
        if str(k).lower() in drop:
            continue
        name = _canonical(str(k))
        out[name] = f"{out[name]},{v}" if name in out else v
    return out


def _json_body(raw: bytes, content_type: str | None) -> Any:
    """A response body as JSON when its Content-Type says so and it parses, else None."""
    if not raw or "json" not in (content_type or ""):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _echo_received(body: dict) -> dict:
    """The answer's ``request`` (what the backend received) from an echo server's HTTP
    report — gwlib's and echo-basic's share the shape: method, host, path and the
    headers (a list of values per name, joined with ``,``)."""
    heads = {_canonical(k): ",".join(vs) if isinstance(vs, list) else str(vs)
             for k, vs in (body.get("headers") or {}).items()}
    return {"method": body.get("method"), "host": body.get("host"), "path": body.get("path"), "headers": heads}


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to an address with the SNI (and certificate check) of the request's host."""

    def __init__(self, host: str, port: int, sni: str, **kw: Any):
        super().__init__(host, port, **kw)
        self._sni = sni

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        # as http.client does for plain HTTP: without it, the request waits behind the TLS
        # Finished message for the peer's delayed ACK (about 40 ms on every new connection)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._sni)
