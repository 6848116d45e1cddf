"""The reference router: the spec's request → answer semantics over the IR, explained.

    router = Router(gwlib.load("data/manifests/talk"), seed=1)
    router.route({"gateway": "argocd/traefik", "host": "argocd.example.com", "path": "/"})
    router.split({...})        # {"ns/svc": 0.9, "ns/canary": 0.1} — exact weights
    router.explain({...})      # a trace: listener, candidates, winner, losers, filters, split

Requests and answers are exactly the design's route contract (design §4.1): HTTP, gRPC
(``"grpc": {"service", "method"}``), TCP/UDP (by listener port), TLS (by SNI), and mesh
requests (``{"service": "ns/name", "port": 80, "from": "client-ns", ...}``: GAMMA routes of
the caller's table, see :meth:`Router._mesh`). Weighted choices and percentage mirrors are
sampled from a seeded RNG: the same seed and the same requests give the same answers.

Mesh (east/west) requests use the same matching, filter and weighted-choice code as
north/south ones (:meth:`Router._respond`); only the table differs: the IR's
:meth:`~gwlib.ir.MeshPort.table` for the caller's namespace (consumer routes, else producer
routes), or the Service itself when no route applies or the caller is not meshed. A Service
port with routes but no matching rule answers 404 (gRPC: ``grpc_status`` 12), as a
Gateway's listener does: a route replaces the Service's implicit routing (GEP-1294 "Route
presence").

Connection-level outcomes (no listener on the port, a TLS handshake no listener accepts,
no L4 route) are answers with ``"status": None`` and an ``"error"``; malformed requests
(no gateway, an unknown Gateway, wrong field types) raise :class:`RequestError`.

Choices where the spec leaves room (the IR module lists the routing ones):

* gRPC requests are routed by GRPCRoutes only and HTTP requests by HTTPRoutes only (the
  two kinds are never merged); an unmatched gRPC call answers ``grpc_status`` 12, a gRPC
  call whose rule answers 500 (invalid backend) answers HTTP/2 200 with ``grpc_status`` 14.
  The echo backends answer as :mod:`gwlib.echo_model` says: a call to the upstream
  echo-basic's ``GrpcEcho`` for a method it does not implement (``EchoThree``) is
  forwarded and refused by the backend — ``grpc_status`` 12 with the route and rule but no
  ``backend`` (a gRPC error reply says nothing of who sent it), as the lab and a cluster
  answer it.
* The echo backends answer at once, so ``timeouts`` (kept in the IR) never fire here.
* Mirrors are copies: they never change the answer, they are listed in ``mirrored_to``.
* TCP/UDP/TLS-passthrough answers use ``status`` 200 for a connection that reached a
  backend; ``request`` then repeats what the client sent (the backend sees the stream).
"""
from __future__ import annotations

import bisect
import os
import random
from dataclasses import dataclass, field
from typing import Any

from . import echo_model, filters as F, matching as M
from .controller import ControllerResult, reconcile
from .ir import IR, Action, Backend, GatewayIR, ListenerIR, RouteEntry, build

_canon_cache: dict[str, str] = {}


def _canon(name: str) -> str:
    c = _canon_cache.get(name)
    if c is None:
        if len(_canon_cache) > 4096:
            _canon_cache.clear()
        c = _canon_cache[name] = F.canonical_header_name(name)
    return c


def _hdict(h: F.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in h.names():
        out[_canon(n)] = h.get(n) or ""
    return out


class RequestError(ValueError):
    """The request itself is malformed or names something that does not exist."""


class _MeshRefused(Exception):
    """A mesh request's connection-level outcome (no such Service or port): an answer."""


@dataclass
class _Req:
    gateway: str | None
    port: int | None
    scheme: str | None
    host_header: str | None     # as sent (may carry a port)
    host: str                   # for matching: lower-case, no port ("" = none given)
    method: str
    target: str                 # path + query as sent
    path: str
    query: dict
    headers: F.Headers
    grpc: dict | None
    raw: dict


def _parse(request: dict, ir: IR, mesh: bool = False) -> _Req:
    if not isinstance(request, dict):
        raise RequestError("a request must be a JSON object")
    gw = request.get("gateway") if not mesh else "mesh/-"
    if gw is None:
        if len(ir.gateways) == 1:
            gw = next(iter(ir.gateways))
        else:
            raise RequestError('the request has no "gateway" ("namespace/name")')
    if not isinstance(gw, str) or not gw:
        raise RequestError('"gateway" must be a string "namespace/name"')
    if "/" not in gw:
        gw = f"default/{gw}"
    port = request.get("port")
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, (int, str)) or not str(port).isdigit():
            raise RequestError(f'"port" must be an integer, not {port!r}')
        port = int(port)
    scheme = request.get("scheme")
    if scheme is not None:
        if not isinstance(scheme, str) or scheme.lower() not in ("http", "https", "tcp", "udp", "tls"):
            raise RequestError(f'"scheme" must be "http" or "https", not {scheme!r}')
        scheme = scheme.lower()
    host = request.get("host")
    if host is not None and not isinstance(host, str):
        raise RequestError(f'"host" must be a string, not {host!r}')
    headers = request.get("headers") or {}
    if not isinstance(headers, dict):
        raise RequestError('"headers" must be an object {"Name": "value"}')
    try:
        h = F.Headers(headers)
    except (TypeError, ValueError) as exc:
        raise RequestError(f'"headers": {exc}') from None
    grpc = request.get("grpc")
    if grpc is not None:
        if not isinstance(grpc, dict):
            raise RequestError('"grpc" must be an object {"service": ..., "method": ...}')
        svc, meth = grpc.get("service") or "", grpc.get("method") or ""
        target = f"/{svc}/{meth}"
        method = "POST"
    else:
        method = request.get("method") or "GET"
        target = request.get("path") or "/"
        if not isinstance(method, str) or not isinstance(target, str):
            raise RequestError('"method" and "path" must be strings')
    path, query = M.split_target(target)
    return _Req(gateway=gw, port=port, scheme=scheme, host_header=host,
                host=M.strip_port(host) if host else "", method=method, target=target,
                path=path, query=query, headers=h, grpc=grpc, raw=request)


def _answer(status, backend=None, request=None, headers=None, location=None, mirrored=None,
            route=None, rule=None) -> dict:
    return {"status": status, "backend": backend, "request": request, "headers": headers or {},
            "location": location, "mirrored_to": mirrored or [], "route": route, "rule": rule}


# --------------------------------------------------------------------------- explanation

@dataclass
class Candidate:
    """One route match considered for a request (one row of an explanation)."""
    rank: int
    route: str
    kind: str
    rule: int
    match: int
    hostname: str
    criteria: str               # the match, readable ("Exact /a, GET, 1 header")
    created: str | None
    matched: bool
    outcome: str                # "winner" | "lost: ..." | "no match: ..."
    rule_name: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Explanation:
    """A readable trace of one routing decision (``str(e)`` for text, ``e.to_frame()``)."""
    request: dict
    gateway: str | None = None
    listener: str | None = None
    listener_reason: str = ""
    virtual_host: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    winner: Candidate | None = None
    filters: list[str] = field(default_factory=list)
    split: dict[str, float] = field(default_factory=dict)
    answer: dict | None = None
    notes: list[str] = field(default_factory=list)
    mesh: dict | None = None    # mesh requests: {"service", "port", "from", "meshed", "table"}

    def to_frame(self):
        """The candidates as a pandas DataFrame (one row per route match, in precedence order)."""
        import pandas as pd
        cols = ["rank", "route", "rule", "match", "hostname", "criteria", "created", "matched", "outcome"]
        rows = [[getattr(c, k) if not (k == "created" and c.created is None) else "(not set)" for k in cols]
                for c in self.candidates]
        return pd.DataFrame(rows, columns=cols)

    def to_dict(self) -> dict:
        return {"request": self.request, "gateway": self.gateway, "listener": self.listener,
                "listener_reason": self.listener_reason, "virtual_host": self.virtual_host,
                "candidates": [c.to_dict() for c in self.candidates],
                "winner": self.winner.to_dict() if self.winner else None,
                "filters": list(self.filters), "split": dict(self.split), "answer": self.answer,
                "notes": list(self.notes), "mesh": dict(self.mesh) if self.mesh else None}

    def __str__(self) -> str:
        r = self.request
        lines = []
        if r.get("grpc"):
            what = f"gRPC {r['grpc'].get('service', '')}/{r['grpc'].get('method', '')}"
        else:
            what = f"{r.get('method') or 'GET'} {r.get('path') or '/'}"
        if self.mesh is not None:
            m = self.mesh
            who = "meshed" if m.get("meshed") else "unmeshed"
            lines.append(f"Request:   {what}  host={r.get('host') or '(none: the Service name)'}"
                         f"  from {who} client in {m.get('from')}")
            lines.append(f"Service:   {m.get('service')} port {m.get('port')}  ({self.listener_reason})")
            lines.append(f"Routes:    {m.get('table') or 'none'}"
                         + (f", {len(self.candidates)} candidate match(es) in precedence order"
                            if self.candidates else ""))
        else:
            lines.append(f"Request:   {what}  host={r.get('host') or '(none: Gateway address)'}"
                         f"  port={r.get('port') or '(first HTTP listener)'}  gateway={self.gateway}")
            lines.append(f"Listener:  {self.listener or '-'}  ({self.listener_reason})")
        if self.virtual_host is not None and self.mesh is None:
            lines.append(f"Hostname:  {self.virtual_host} table, {len(self.candidates)} candidate match(es)"
                         " in precedence order")
        if self.candidates:
            w = [max(len(str(getattr(c, k))) for c in self.candidates) for k in ("route", "hostname", "criteria")]
            if self.mesh is not None:
                w[1] = 0
            for c in self.candidates:
                host = f"{c.hostname:<{w[1]}}  " if self.mesh is None else ""
                lines.append(f"  {c.rank:>2}. {c.route:<{w[0]}} rule {c.rule} match {c.match}  "
                             f"{host}{c.criteria:<{w[2]}}  -> {c.outcome}")
        if self.winner:
            lines.append(f"Winner:    {self.winner.route} rule {self.winner.rule}"
                         + (f" ({self.winner.rule_name})" if self.winner.rule_name else "")
                         + f" match {self.winner.match}")
        else:
            lines.append("Winner:    none")
        for f in self.filters:
            lines.append(f"Filter:    {f}")
        if self.split:
            lines.append("Split:     " + ", ".join(f"{k} {v:.1%}" for k, v in self.split.items()))
        for n in self.notes:
            lines.append(f"Note:      {n}")
        if self.answer is not None:
            a = self.answer
            b = a.get("backend")
            tgt = f"{b['namespace']}/{b['name']}:{b['port']}" if b else (a.get("location") or "-")
            extra = f"  grpc_status={a['grpc_status']}" if "grpc_status" in a else ""
            err = f"  error: {a['error']}" if a.get("error") else ""
            lines.append(f"Answer:    {a.get('status')} -> {tgt}{extra}{err}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def _describe_match(e: RouteEntry) -> str:
    m = e.match
    parts = []
    if e.kind == "GRPCRoute":
        mm = m.get("method") or {}
        if mm.get("service") or mm.get("method"):
            t = mm.get("type") or "Exact"
            parts.append(f"{t} {mm.get('service') or '*'}/{mm.get('method') or '*'}")
        else:
            parts.append("any method")
    else:
        p = m.get("path") or {}
        parts.append(f"{p.get('type', 'PathPrefix')} {p.get('value', '/')}")
        if m.get("method"):
            parts.append(m["method"])
    hs = m.get("headers") or []
    if hs:
        parts.append(f"{len(hs)} header" + ("s" if len(hs) > 1 else ""))
    qs = m.get("queryParams") or []
    if qs:
        parts.append(f"{len(qs)} query param" + ("s" if len(qs) > 1 else ""))
    return ", ".join(parts)


def _why_no_match(e: RouteEntry, q: _Req) -> str:
    m = e.match
    if e.kind == "GRPCRoute":
        mm = m.get("method") or {}
        svc, meth = (q.grpc or {}).get("service") or "", (q.grpc or {}).get("method") or ""
        t = mm.get("type") or "Exact"
        if mm.get("service") and not M.grpc_match_matches({"method": {"type": t, "service": mm["service"]}}, svc, meth):
            return f"service {svc!r} does not match {t} {mm['service']!r}"
        if mm.get("method") and not M.grpc_match_matches({"method": {"type": t, "method": mm["method"]}}, svc, meth):
            return f"method {meth!r} does not match {t} {mm['method']!r}"
    else:
        p = m.get("path") or M.DEFAULT_PATH_MATCH
        if not M.path_matches(p, q.path):
            return f"path {q.path} does not match {p.get('type', 'PathPrefix')} {p.get('value', '/')}"
        if m.get("method") and not M.method_matches(m["method"], q.method):
            return f"method {q.method} is not {m['method']}"
    for h in m.get("headers") or []:
        if not M.headers_match([h], q.headers):
            got = q.headers.get(h.get("name", ""))
            return (f"header {h.get('name')}: {got!r} does not match "
                    f"{h.get('type') or 'Exact'} {h.get('value')!r}" if got is not None
                    else f"header {h.get('name')} is missing")
    for qp in m.get("queryParams") or []:
        if not M.query_matches([qp], q.query):
            got = (q.query.get(qp.get("name", "")) or [None])[0]
            return (f"query param {qp.get('name')}: {got!r} does not match "
                    f"{qp.get('type') or 'Exact'} {qp.get('value')!r}" if got is not None
                    else f"query param {qp.get('name')} is missing")
    return "does not match"


def _why_lost(w: RouteEntry, e: RouteEntry) -> str:
    a, b = w.precedence, e.precedence
    if a[0] != b[0]:
        return f"hostname {w.hostname} is more specific than {e.hostname}"
    if a[1] != b[1]:
        if w.kind == "GRPCRoute":
            names = ("more characters in the matched service", "more characters in the matched method",
                     "more header matches")
        else:
            names = ("path match type", "longer path",
                     "method match", "more header matches", "more query param matches")
        for i, (x, y) in enumerate(zip(a[1], b[1])):
            if x != y:
                if w.kind != "GRPCRoute" and i == 0:
                    wt = (w.match.get("path") or {}).get("type", "PathPrefix")
                    et = (e.match.get("path") or {}).get("type", "PathPrefix")
                    return f"winner's match has higher precedence: {wt} path beats {et}"
                return f"winner's match has higher precedence: {names[i] if i < len(names) else 'match'}"
        return "winner's match has higher precedence"
    if a[2] != b[2]:
        return f"winner's route is older (created {w.created or '-'} vs {e.created or 'not set'})"
    if a[3] != b[3]:
        return f"same precedence and age: {w.route} comes before {e.route} alphabetically"
    if a[4] != b[4]:
        return f"an earlier rule of the same route matched first (rule {w.rule})"
    if a[5] != b[5]:
        return f"an earlier match of the same rule matched first (match {w.match_index})"
    return "same entry for another hostname"


# --------------------------------------------------------------------------- router

class Router:
    """The reference data plane: ``route(request) -> answer``, ``split``, ``explain``.

    ``source``: an :class:`~gwlib.ir.IR`, a :class:`~gwlib.controller.ControllerResult`,
    a list of resources (``gwlib.load``) or anything ``gwlib.load`` accepts (a path, a
    folder, a YAML string). ``seed`` makes weighted choices and percentage mirrors
    reproducible.
    """

    def __init__(self, source: Any, seed: int | None = 0):
        if isinstance(source, IR):
            self.result, self.ir = None, source
        else:
            if isinstance(source, ControllerResult):
                self.result = source
            else:
                objects = source
                if not isinstance(source, (list, tuple)) or any(
                        isinstance(x, (str, bytes, os.PathLike)) for x in source):
                    from . import load
                    objects = load(source)
                self.result = reconcile(list(objects))
            self.ir = build(self.result)
        self.seed = seed
        self.rng = random.Random(seed)

    # -- public ---------------------------------------------------------------------------

    def route(self, request: dict) -> dict:
        """The answer to one request (design §4.1 answer format)."""
        if isinstance(request, dict) and "service" in request and "gateway" not in request:
            try:
                return self._mesh(request)
            except _MeshRefused as exc:
                return _err(str(exc))
        return self._decide(_parse(request, self.ir), None, sample=True)

    def _mesh(self, request: dict, ex: Explanation | None = None) -> dict:
        """A mesh (east/west) request: GAMMA routes decide (design §4.1 mesh form).

        ``{"service": "ns/name", "port": 8080, "from": "client-ns", ...}`` is a request from
        a meshed workload in ``from`` (default: the Service's namespace) to that Service
        port (default: its first port). gwlib adds two optional fields: ``"workload"``
        (a Deployment in ``from``, whose ``linkerd.io/inject`` decides whether it is
        meshed) and ``"meshed"`` (true/false, overrides). An unmeshed caller has no
        sidecar: routes do not apply, the Service's endpoints answer (GEP-1294: some
        implementations "only apply routes on client-side proxies"; Linkerd does)."""
        q, svc, port, client_ns, meshed, why = self._parse_mesh(request)
        mp = self.ir.mesh[svc].ports[port]
        ns, name = svc.split("/", 1)
        table = mp.table(client_ns) if meshed else None
        if ex is not None:
            ex.gateway = None
            ex.listener = f"{svc}:{port}"
            label = (None if table is None else "producer routes" if table.group == "producer"
                     else f"consumer routes of namespace {table.namespace}")
            ex.mesh = {"service": svc, "port": port, "from": client_ns, "meshed": meshed, "table": label}
            ex.listener_reason = why
            if not meshed:
                ex.notes.append("the caller has no sidecar: GAMMA routes are applied by the client's proxy, so "
                                "this request bypasses them and goes to the Service's endpoints")
            elif table is None:
                ex.notes.append(f"no GAMMA route is attached to Service {svc} port {port} for clients in "
                                f"{client_ns}: the request goes to the Service")
            elif table.group == "producer" and any(t for n, t in mp.consumers.items() if n != client_ns):
                ex.notes.append("consumer routes of other namespaces ("
                                + ", ".join(sorted(n for n in mp.consumers if n != client_ns))
                                + ") do not apply to this client")
            elif table.group == "consumer" and mp.producer is not None:
                ex.notes.append(f"namespace {client_ns} has consumer routes for this Service port: the "
                                f"producer routes ({', '.join(mp.producer.routes)}) do not apply to it")
        if table is None:
            act = mp.default
            if ex is not None:
                ex.split = act.split_dict()
            return self._respond(q, ex, act, None, None, None, "http", port, name)
        grpc = q.grpc is not None
        entries = table.grpc if grpc else table.http
        winner = None
        for e in entries:
            if (M.grpc_match_matches(e.match, q.grpc.get("service") or "", q.grpc.get("method") or "", q.headers)
                    if grpc else M.http_match_matches(e.match, q.method, q.path, q.query, q.headers)):
                winner = e
                break
        if ex is not None:
            self._trace(ex, entries, winner, q)
            if not entries:
                other = "HTTPRoutes" if grpc else "GRPCRoutes"
                ex.notes.append(f"only {other} attach to this Service port: "
                                + ("gRPC requests are routed by GRPCRoutes" if grpc
                                   else "HTTP requests are routed by HTTPRoutes"))
        if winner is None:
            if ex is not None:
                ex.notes.append("routes are attached but none matches: 404 (a route replaces the Service's "
                                "implicit routing, GEP-1294 'Route presence')")
            ans = _answer(200 if grpc else 404)
            if grpc:
                ans["grpc_status"] = 12
            return ans
        act = winner.action
        if ex is not None:
            if act.error_status is None and act.redirect is None:
                ex.split = act.split_dict()
            elif act.error_status is not None:
                ex.split = {str(act.error_status): 1.0}
        return self._respond(q, ex, act, winner.route, winner.rule, winner.matched_prefix, "http", port, name)

    def _parse_mesh(self, request: dict) -> tuple[_Req, str, int, str, bool, str]:
        """(request, "ns/svc", port, client namespace, meshed, why) of a mesh request;
        connection-level problems raise :class:`_MeshRefused`."""
        svc = request.get("service")
        if not isinstance(svc, str) or not svc:
            raise RequestError('"service" must be a string "namespace/name"')
        client_ns = request.get("from")
        if client_ns is not None and (not isinstance(client_ns, str) or not client_ns):
            raise RequestError('"from" must be the client\'s namespace (a string)')
        if "/" not in svc:
            svc = f"{client_ns or 'default'}/{svc}"
        client_ns = client_ns or svc.split("/", 1)[0]
        port = request.get("port")
        if port is not None and (isinstance(port, bool) or not str(port).isdigit()):
            raise RequestError(f'"port" must be an integer, not {port!r}')
        q = _parse(request, self.ir, mesh=True)
        ms = self.ir.mesh.get(svc)
        if ms is None:
            raise _MeshRefused(f"connection refused: Service {svc} does not exist")
        if port is None:
            if not ms.ports:
                raise _MeshRefused(f"connection refused: Service {svc} has no ports")
            port = next(iter(ms.ports))
        port = int(port)
        if port not in ms.ports:
            raise _MeshRefused(f"connection refused: Service {svc} has no port {port}")
        meshed, why = True, f"a meshed workload in namespace {client_ns} (the mesh request form)"
        workload = request.get("workload")
        if workload is not None:
            if not isinstance(workload, str) or not workload:
                raise RequestError('"workload" must be the name of a Deployment in the "from" namespace')
            wkey = workload if "/" in workload else f"{client_ns}/{workload}"
            w = self.ir.workloads.get(wkey)
            if w is None:
                raise RequestError(f"no Deployment {wkey} (workloads: "
                                   f"{', '.join(sorted(self.ir.workloads)) or 'none'})")
            client_ns = w.namespace
            meshed, why = w.meshed, f"Deployment {wkey}: {'meshed' if w.meshed else 'not meshed'}, {w.reason}"
        if request.get("meshed") is not None:
            if not isinstance(request["meshed"], bool):
                raise RequestError('"meshed" must be true or false')
            meshed = request["meshed"]
            why = f"the request says meshed={str(meshed).lower()}"
        return q, svc, port, client_ns, meshed, why

    def connect_target(self, request: dict) -> tuple[str, int, str, str]:
        """Where a client connects for ``request``: (Gateway key, Gateway port, scheme,
        host for the Host header / SNI). The lab uses it to pick the local port that
        serves that Gateway port; raises :class:`RequestError` when nothing listens."""
        q = _parse(request, self.ir)
        gw = self._gateway(q)
        got = self._listeners(q, gw, None)
        if isinstance(got, dict):
            raise RequestError(got["error"])
        scheme, fam, port = got
        if scheme in ("https", "tls"):  # what the client speaks follows the listener's TLS mode
            idx = M.select_listener([l.hostname for l in fam], q.host or gw.address)
            if idx is not None:
                lis = fam[idx]
                scheme = "tls" if lis.protocol == "TLS" and lis.tls_mode == "Passthrough" else "https"
        return gw.key, port, scheme, q.host_header or gw.address

    def send(self, request: dict) -> dict:
        """Alias of :meth:`route`."""
        return self.route(request)

    def route_many(self, requests: list[dict]) -> list[dict]:
        return [self.route(r) for r in requests]

    def split(self, request: dict) -> dict[str, float]:
        """The exact traffic split for this request: ``{"ns/name": probability}`` (shares
        that answer 500 because their backend is invalid under the key ``"500"``). Empty
        when the request is not forwarded (404, redirect, preflight)."""
        if isinstance(request, dict) and "service" in request and "gateway" not in request:
            ex = self.explain(request)
            a = ex.answer or {}
            if a.get("status") is None or a.get("location"):
                return {}
            # 404, or a CORS preflight answered by the sidecar itself, was not forwarded; a
            # routed gRPC call the backend refused (UNIMPLEMENTED) was
            if a.get("backend") is None and not (a["status"] >= 500 or a.get("grpc_status") == 14
                                                 or (a.get("grpc_status") == 12 and a.get("route"))):
                return {}
            return dict(ex.split)
        q = _parse(request, self.ir)
        found = self._find(q, None)
        act = found[0]
        if act is None:
            return {}
        if act.error_status is not None:
            return {str(act.error_status): 1.0}
        if act.redirect is not None:
            return {}
        for f in act.filters:  # a preflight the gateway answers itself is not forwarded
            if f.get("type") == "CORS" and F.cors_preflight(f.get("cors") or {}, q.method, q.headers) is not None:
                return {}
        return act.split_dict()

    def explain(self, request: dict) -> Explanation:
        """A trace of the decision for ``request`` (listener, candidates, winner, losers,
        filters, split, answer). Uses its own RNG stream, so it does not disturb
        :meth:`route`'s sequence."""
        if isinstance(request, dict) and "service" in request and "gateway" not in request:
            ex = Explanation(request=dict(request), listener_reason="mesh request: no Gateway listener involved")
            saved = self.rng
            self.rng = random.Random(self.seed)
            try:
                ex.answer = self._mesh(request, ex)
            except _MeshRefused as exc:
                ex.answer = _err(str(exc))
                ex.listener_reason = str(exc)
            finally:
                self.rng = saved
            return ex
        q = _parse(request, self.ir)
        ex = Explanation(request=dict(request))
        saved = self.rng
        self.rng = random.Random(self.seed)
        try:
            ex.answer = self._decide(q, ex, sample=True)
        finally:
            self.rng = saved
        return ex

    # -- internals ------------------------------------------------------------------------

    def _gateway(self, q: _Req) -> GatewayIR:
        gw = self.ir.gateways.get(q.gateway)
        if gw is None:
            known = ", ".join(sorted(self.ir.gateways)) or "none"
            raise RequestError(f"Gateway {q.gateway} not found or not managed by gwlib "
                               f"(Gateways gwlib manages: {known})")
        return gw

    def _listeners(self, q: _Req, gw: GatewayIR, ex: Explanation | None):
        """-> (family, [ListenerIR] candidates on the port, port) or an error answer dict."""
        port = q.port
        scheme = q.scheme
        if port is None:
            want = ("HTTPS", "TLS") if scheme == "https" else ("HTTP",) if scheme in (None, "http") else \
                ("TCP",) if scheme == "tcp" else ("UDP",) if scheme == "udp" else ("TLS",)
            first = next((l for l in gw.listeners if l.protocol in want), None)
            if first is None and scheme is None:
                first = next((l for l in gw.listeners if l.protocol in ("HTTPS", "TLS")), None)
            if first is None:
                return _err(f"Gateway {gw.key} has no ready "
                            f"{'/'.join(want)} listener" + _not_ready(gw))
            port = first.port
        ls = gw.ports.get(port)
        if not ls:
            return _err(f"connection refused: Gateway {gw.key} has no ready listener on port {port}"
                        + _not_ready(gw))
        protos = {l.protocol for l in ls}
        if scheme is None:
            scheme = "http" if "HTTP" in protos else "https" if protos & {"HTTPS", "TLS"} else \
                "tcp" if "TCP" in protos else "udp"
        if scheme == "http":
            fam = [l for l in ls if l.protocol == "HTTP"]
        elif scheme in ("https", "tls"):
            fam = [l for l in ls if l.protocol in ("HTTPS", "TLS")]
        elif scheme == "tcp":
            fam = [l for l in ls if l.protocol == "TCP"]
        else:
            fam = [l for l in ls if l.protocol == "UDP"]
        if not fam:
            return _err(f"port {port} of Gateway {gw.key} serves {', '.join(sorted(protos))}, "
                        f"not {scheme}")
        return scheme, fam, port

    def _find(self, q: _Req, ex: Explanation | None):
        """-> (action or None, entry or None, listener, scheme, error answer or None)."""
        gw = self._gateway(q)
        if ex is not None:
            ex.gateway = gw.key
        got = self._listeners(q, gw, ex)
        if isinstance(got, dict):
            if ex is not None:
                ex.listener_reason = got["error"]
            return None, None, None, None, got
        scheme, fam, port = got
        host = q.host or gw.address
        idx = M.select_listener([l.hostname for l in fam], host)
        if idx is None:
            why = (f"no listener on port {port} matches host {host} "
                   f"(listeners: {', '.join(l.name + '=' + (l.hostname or '*') for l in fam)})")
            if ex is not None:
                ex.listener_reason = why
            if scheme in ("https", "tls"):
                return None, None, None, scheme, _err(f"TLS handshake failed: {why}")
            if scheme in ("tcp", "udp"):
                return None, None, None, scheme, _err(f"connection refused: {why}")
            return None, None, None, scheme, "404"
        lis = fam[idx]
        if ex is not None:
            ex.listener = lis.name
            hn = f"hostname {lis.hostname}" if lis.hostname else "no hostname: any host"
            others = [l.name for l in fam if l is not lis]
            ex.listener_reason = (f"port {port}, {lis.protocol}, {hn}; chosen for "
                                  f"{'SNI' if scheme in ('https', 'tls') else 'host'} {host}"
                                  + (f" as the most specific of {', '.join([lis.name] + others)}" if others else ""))
        if lis.protocol in ("TCP", "UDP", "TLS"):
            return self._find_l4(q, lis, host, scheme, ex)
        vh = lis.lookup(host)
        if ex is not None:
            ex.virtual_host = vh.hostname if vh is not None else None
            if vh is None:
                ex.notes.append(f"no route attached to listener {lis.name} serves host {host}")
        if vh is None:
            return None, None, lis, scheme, "404"
        if q.grpc is not None:
            svc, meth = q.grpc.get("service") or "", q.grpc.get("method") or ""
            entries = vh.grpc
            winner = None
            for e in entries:
                if M.grpc_match_matches(e.match, svc, meth, q.headers):
                    winner = e
                    break
            if ex is not None:
                self._trace(ex, entries, winner, q)
                if not entries and vh.http:
                    ex.notes.append("only HTTPRoutes serve this host: gRPC requests are routed by GRPCRoutes")
        else:
            entries = vh.http
            winner = None
            method, path, query, headers = q.method, q.path, q.query, q.headers
            for e in entries:
                if M.http_match_matches(e.match, method, path, query, headers):
                    winner = e
                    break
            if ex is not None:
                self._trace(ex, entries, winner, q)
                if not entries and vh.grpc:
                    ex.notes.append("only GRPCRoutes serve this host: HTTP requests are routed by HTTPRoutes")
        if winner is None:
            return None, None, lis, scheme, "404"
        return winner.action, winner, lis, scheme, None

    def _find_l4(self, q: _Req, lis: ListenerIR, host: str, scheme: str, ex):
        chosen = None
        for r in lis.l4:
            if r.kind != "TLSRoute" or any(M.hostname_matches(h, host) for h in r.hostnames):
                chosen = r
                break
        if ex is not None:
            for i, r in enumerate(lis.l4, 1):
                ok = r.kind != "TLSRoute" or any(M.hostname_matches(h, host) for h in r.hostnames)
                outcome = "winner" if r is chosen else (
                    f"lost: {chosen.route} has precedence (hostname, then age, then name)" if ok
                    else f"no match: SNI {host} not in {', '.join(r.hostnames)}")
                ex.candidates.append(Candidate(i, r.route, r.kind, 0, 0, ",".join(r.hostnames),
                                               "SNI" if r.kind == "TLSRoute" else "all connections",
                                               r.created, ok, outcome))
                if r is chosen:
                    ex.winner = ex.candidates[-1]
        if chosen is None:
            return None, None, lis, scheme, _err(f"connection reset: no {lis.protocol} route attached to "
                                                 f"listener {lis.name} accepts it")
        return chosen.action, chosen, lis, scheme, None

    def _trace(self, ex: Explanation, entries: list[RouteEntry], winner: RouteEntry | None, q: _Req):
        for i, e in enumerate(entries, 1):
            if q.grpc is not None:
                ok = M.grpc_match_matches(e.match, (q.grpc or {}).get("service") or "",
                                          (q.grpc or {}).get("method") or "", q.headers)
            else:
                ok = M.http_match_matches(e.match, q.method, q.path, q.query, q.headers)
            if e is winner:
                outcome = "winner"
            elif ok:
                outcome = "lost: " + _why_lost(winner, e)
            else:
                outcome = "no match: " + _why_no_match(e, q)
            c = Candidate(i, e.route, e.kind, e.rule, e.match_index, e.hostname, _describe_match(e),
                          e.created, ok, outcome, e.rule_name)
            ex.candidates.append(c)
            if e is winner:
                ex.winner = c

    def _pick(self, act: Action) -> Backend | None:
        cum = act.cumulative
        if len(cum) == 1:
            return cum[0][1]
        x = self.rng.random() * act.total_weight
        i = bisect.bisect_right([c[0] for c in cum], x)
        return cum[min(i, len(cum) - 1)][1]

    def _decide(self, q: _Req, ex: Explanation | None, sample: bool) -> dict:
        act, entry, lis, scheme, err = self._find(q, ex)
        grpc = q.grpc is not None
        if err is not None:
            if err == "404":
                ans = _answer(200 if grpc else 404)
                if grpc:
                    ans["grpc_status"] = 12
                return ans
            return err
        route_key, rule = entry.route, getattr(entry, "rule", 0)
        if ex is not None:
            if act.error_status is None and act.redirect is None:
                ex.split = act.split_dict()
            elif act.error_status is not None:
                ex.split = {str(act.error_status): 1.0}
        if lis.protocol in ("TCP", "UDP", "TLS"):
            return self._l4_answer(q, act, route_key, ex)
        return self._respond(q, ex, act, route_key, rule, entry.matched_prefix, scheme, lis.port,
                             self.ir.gateways[lis.gateway].address)

    def _respond(self, q: _Req, ex: Explanation | None, act: Action, route_key: str | None, rule: int | None,
                 prefix: str | None, scheme: str, port: int, address: str) -> dict:
        """What a matched HTTP/gRPC rule's action does with the request (north/south and
        mesh alike): filters in order, the weighted backend choice, mirrors, the echo's
        answer. ``port`` is the listener (or Service) port redirects derive from;
        ``address`` the Host a request without one carries."""
        grpc = q.grpc is not None
        host = q.host_header if q.host_header else address
        target = q.target
        headers = q.headers
        resp_mods: list[dict] = []
        cors_after: list[dict] = []
        mirrored: list[dict] = []

        def done(ans: dict) -> dict:
            if grpc:
                ans["grpc_status"] = 0 if ans["status"] == 200 and ans["backend"] else 14
                if ans["status"] >= 500:
                    ans["status"] = 200  # a gRPC error is an HTTP/2 200 with grpc-status
            return ans

        if act.error_status is not None and not any(f.get("type") == "CORS" for f in act.filters):
            if ex is not None:
                ex.notes.append(f"rule answers {act.error_status}: {act.error_reason}")
            return done(_answer(act.error_status, route=route_key, rule=rule))
        for f in act.filters:
            t = f.get("type")
            if t == "RequestHeaderModifier":
                headers = F.apply_header_modifier(headers, f.get("requestHeaderModifier"))
                if ex is not None:
                    ex.filters.append(f"RequestHeaderModifier {_short(f.get('requestHeaderModifier'))}")
            elif t == "URLRewrite":
                host, target = F.rewrite(host, target, f.get("urlRewrite"), prefix)
                if ex is not None:
                    ex.filters.append(f"URLRewrite -> host {host}, path {target}")
            elif t == "RequestRedirect":
                code, loc = F.redirect(scheme, host, target, port, f.get("requestRedirect"), prefix)
                if ex is not None:
                    ex.filters.append(f"RequestRedirect -> {code} {loc}")
                return done(_answer(code, headers={"Location": loc}, location=loc, route=route_key, rule=rule))
            elif t == "ResponseHeaderModifier":
                resp_mods.append(f.get("responseHeaderModifier") or {})
                if ex is not None:
                    ex.filters.append(f"ResponseHeaderModifier {_short(f.get('responseHeaderModifier'))}")
            elif t == "CORS":
                cors = f.get("cors") or {}
                pre = F.cors_preflight(cors, q.method, headers)
                if pre is not None:
                    code, h = pre
                    if ex is not None:
                        ex.filters.append(f"CORS: preflight answered by the gateway ({code})")
                    return done(_answer(code, headers=_hdict(h), route=route_key, rule=rule))
                cors_after.append(cors)
                if ex is not None:
                    ex.filters.append("CORS: not a preflight; CORS response headers added if the Origin is allowed")
            elif t == "RequestMirror":
                if ex is not None:
                    ex.filters.append(f"RequestMirror {_short(f.get('requestMirror'))}")
        if act.error_status is not None:
            if ex is not None:
                ex.notes.append(f"rule answers {act.error_status}: {act.error_reason}")
            return done(_answer(act.error_status, route=route_key, rule=rule))

        # --- backend choice (weighted, seeded); mirrors
        backend = self._pick(act)
        for m in act.mirrors:
            if m.fraction >= 1.0 or (m.fraction > 0.0 and self.rng.random() < m.fraction):
                mirrored.append(m.backend.ref())
        if backend is None:
            if ex is not None:
                ex.notes.append("the sampled share belongs to an invalid backend: 500")
            return done(_answer(500, mirrored=mirrored, route=route_key, rule=rule))
        for f in backend.filters:
            t = f.get("type")
            if t == "RequestHeaderModifier":
                headers = F.apply_header_modifier(headers, f.get("requestHeaderModifier"))
            elif t == "URLRewrite":
                host, target = F.rewrite(host, target, f.get("urlRewrite"), prefix)
            elif t == "ResponseHeaderModifier":
                resp_mods.append(f.get("responseHeaderModifier") or {})
            if ex is not None and t:
                ex.filters.append(f"backendRef {backend.key}: {t}")

        # --- the echo backend answers; response filters
        if grpc:
            refused = echo_model.grpc_error(q.grpc)
            if refused is not None:  # the backend's own gRPC error: a trailers-only reply
                if ex is not None:
                    ex.notes.append(f"the echo backend {backend.key} answers grpc_status {refused[0]}: {refused[1]}")
                ans = _answer(200, mirrored=mirrored, route=route_key, rule=rule)
                ans["grpc_status"] = refused[0]
                return ans
        resp = F.Headers(echo_model.response_headers(headers, q.grpc))
        for mod in resp_mods:
            resp = F.apply_header_modifier(resp, mod)
        for cors in cors_after:
            for n, v in F.cors_response_headers(cors, q.headers):
                resp.set(n, v)
        received = {"method": q.method, "host": host, "path": target, "headers": _hdict(headers)}
        return done(_answer(200, backend=backend.ref(), request=received, headers=_hdict(resp),
                            mirrored=mirrored, route=route_key, rule=rule))

    def _l4_answer(self, q: _Req, act: Action, route_key: str, ex) -> dict:
        if act.error_status is not None:
            return _err(f"connection reset: {act.error_reason}", route=route_key)
        backend = self._pick(act)
        if backend is None:
            return _err("connection reset: the sampled share belongs to an invalid backend", route=route_key)
        received = {"method": q.raw.get("method"), "host": q.host_header, "path": q.raw.get("path"),
                    "headers": _hdict(q.headers)}
        return _answer(200, backend=backend.ref(), request=received, route=route_key, rule=0)


def _err(message: str, route: str | None = None) -> dict:
    ans = _answer(None, route=route)
    ans["error"] = message
    return ans


def _not_ready(gw: GatewayIR) -> str:
    if not gw.not_ready:
        return ""
    return " (not ready: " + "; ".join(f"{k}: {v}" for k, v in gw.not_ready.items()) + ")"


def _short(d: Any) -> str:
    import json
    return json.dumps(d, separators=(",", ":"), sort_keys=True) if d else "{}"


def route(objects: Any, request: dict, seed: int | None = 0) -> dict:
    """One-shot: build a :class:`Router` and answer one request."""
    return Router(objects, seed=seed).route(request)
