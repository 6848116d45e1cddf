"""Proof of equivalence: does the converted Gateway API configuration send every request
where the Ingress controller would?

    eq = gwlib.ingress.equivalence("my-ingress.yaml", provider="ingress-nginx")
    eq.ok            # True when every request gets the same outcome (or a difference the report predicted)
    eq.to_frame()    # one row per request: what the Ingress did, what the Gateway does
    eq.differences   # the rows that differ

For each request the :class:`~gwlib.ingress.router.IngressRouter` (the Ingress semantics of
the provider) and gwlib's reference router (Gateway API semantics, :mod:`gwlib.router`) on
the converted objects must agree on the *outcome*:

* forwarded: the same backend Service and port — for canaries the same exact split
  (``router.split``) — and the same path as the backend sees it;
* a redirect: the same status code and ``Location``;
* anything else: the same status (404 when nothing matches; a gRPC call nothing matches is
  ``grpc_status`` 12, counted as 404).

The reference router needs what a cluster would have: a GatewayClass named after each
ingress class (``controllerName: gwlib.dev/gateway-controller``), the Services (the given
ones, else stand-ins with the ports the Ingresses name) and the TLS Secrets (stand-ins with
placeholder PEM text). A difference whose cause the Ingress router noted *and* the report
predicted (same finding code) is **explained**; any other difference is a bug in the
converter (or in a model), and ``ok`` is False.

Without ``requests``, :func:`sample_requests` derives requests from the Ingresses: every
host (a wildcard as one concrete name) and path, a path below each prefix, an unknown path,
HTTPS for TLS hosts, the canary headers, and gRPC calls for gRPC backends.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from .convert import Conversion, _name, convert, gw_path_match, idiom_prefix
from .model import Inputs, Table, has_regex, read_inputs
from .router import IngressRouter

CONTROLLER = "gwlib.dev/gateway-controller"
_PEM_CERT = "-----BEGIN CERTIFICATE-----\nZ3dsaWIgcGxhY2Vob2xkZXI=\n-----END CERTIFICATE-----\n"
_PEM_KEY = "-----BEGIN PRIVATE KEY-----\nZ3dsaWIgcGxhY2Vob2xkZXI=\n-----END PRIVATE KEY-----\n"


@dataclass
class Equivalence:
    """Per-request comparison of the Ingress controller and the converted Gateway."""

    rows: list[dict] = field(default_factory=list)
    conversion: Conversion | None = None

    @property
    def differences(self) -> list[dict]:
        return [r for r in self.rows if not r["same"]]

    @property
    def unexplained(self) -> list[dict]:
        return [r for r in self.rows if not r["same"] and not r["explained_by"]]

    @property
    def ok(self) -> bool:
        """Every request has the same outcome, or a difference the report predicted."""
        return not self.unexplained

    def to_frame(self):
        import pandas as pd
        return pd.DataFrame(self.rows, columns=["request", "ingress", "gateway", "same", "explained_by"])

    def summary(self) -> str:
        n, same = len(self.rows), sum(1 for r in self.rows if r["same"])
        explained = len(self.differences) - len(self.unexplained)
        text = f"{same}/{n} requests have the same outcome"
        if explained:
            text += f"; {explained} differ as the report predicted"
        if self.unexplained:
            text += f"; {len(self.unexplained)} differ UNEXPECTEDLY"
        return text

    def __repr__(self) -> str:
        return f"<Equivalence: {self.summary()}>"


# =========================================================================== the reference side

def reference_objects(conv: Conversion) -> list:
    """The converted objects plus the GatewayClasses, Services and Secrets a cluster would have."""
    from ..validation import InvalidManifest, load

    inputs = conv.inputs or Inputs()
    docs: list[Any] = list(conv.objects)
    for table in conv.tables.values():
        docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                     "metadata": {"name": _name(table.ingress_class)}, "spec": {"controllerName": CONTROLLER}})
    # Services: the given ones, else stand-ins with every port the Ingresses name
    ports: dict[str, set[int]] = {}
    for table in conv.tables.values():
        for t in _targets(table):
            if t.number is not None:
                ports.setdefault(f"{t.namespace}/{t.name}", set()).add(t.number)
    objects = list(inputs.services.values()) + list(inputs.secrets.values())
    for key, nums in sorted(ports.items()):
        if key in inputs.services:
            continue
        ns, name = key.split("/", 1)
        docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                     "spec": {"ports": [{"name": f"p{n}", "port": n} for n in sorted(nums)]}})
    for obj in conv.objects:
        if obj["kind"] != "Gateway":
            continue
        gw_ns = obj["metadata"]["namespace"]
        for lis in obj["spec"]["listeners"]:
            for ref in ((lis.get("tls") or {}).get("certificateRefs") or []):
                key = f"{ref.get('namespace') or gw_ns}/{ref['name']}"
                if key in inputs.secrets:
                    continue
                docs.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                             "metadata": {"name": ref["name"], "namespace": ref.get("namespace") or gw_ns},
                             "stringData": {"tls.crt": _PEM_CERT, "tls.key": _PEM_KEY}})
    for d in docs:
        try:
            objects.extend(load(d))
        except InvalidManifest:
            continue
    return objects


def _targets(table: Table):
    for srv in table.servers.values():
        for loc in srv.locations:
            if loc.action.target is not None:
                yield loc.action.target
            if loc.action.canary is not None:
                yield loc.action.canary.target
    for r in table.routers:
        if r.action.target is not None:
            yield r.action.target


# =========================================================================== outcomes

def _ingress_outcome(ans: dict) -> tuple:
    status = ans.get("status")
    if status == 200 and ans.get("split"):
        split = tuple(sorted((k.rsplit(":", 1)[0], round(p, 6)) for k, p in ans["split"].items()))
        b = ans["backend"]
        port = b["port"] if len(split) == 1 else None
        return ("forward", split, port, (ans.get("request") or {}).get("path"))
    if status in (301, 302, 303, 307, 308):
        return ("redirect", status, ans.get("location"))
    return ("status", status)


def _gateway_outcome(ans: dict, split: dict, grpc: bool) -> tuple:
    if ans.get("status") is None:
        return ("error", (ans.get("error") or "").split(":", 1)[0])
    if grpc and ans.get("grpc_status") == 12:
        return ("status", 404)
    if ans.get("backend") and (not grpc or ans.get("grpc_status") == 0):
        s = tuple(sorted((k, round(p, 6)) for k, p in split.items())) if split else \
            ((f"{ans['backend']['namespace']}/{ans['backend']['name']}", 1.0),)
        port = ans["backend"]["port"] if len(s) == 1 else None
        return ("forward", s, port, (ans.get("request") or {}).get("path"))
    if ans.get("location"):
        return ("redirect", ans["status"], ans["location"])
    if grpc and ans.get("grpc_status") not in (None, 0):
        return ("status", 500 if ans.get("grpc_status") == 14 else ans.get("grpc_status"))
    return ("status", ans["status"])


def _show(o: tuple) -> str:
    if o[0] == "forward":
        split, port, path = o[1], o[2], o[3]
        if len(split) == 1:
            return f"{split[0][0]}:{port} {path}"
        return " + ".join(f"{k} {p:.0%}" for k, p in split) + f" {path}"
    if o[0] == "redirect":
        return f"{o[1]} → {o[2]}"
    if o[0] == "error":
        return f"no answer ({o[1]})"
    return str(o[1])


def describe(req: dict) -> str:
    if req.get("grpc"):
        g = req["grpc"]
        return f"gRPC {req.get('host') or '-'} {g.get('service')}/{g.get('method')}"
    scheme = req.get("scheme") or ("https" if req.get("port") == 443 else "http")
    hdrs = "".join(f" [{k}: {v}]" for k, v in sorted((req.get("headers") or {}).items()))
    return f"{req.get('method') or 'GET'} {scheme}://{req.get('host') or '(no host)'}{req.get('path') or '/'}{hdrs}"


# =========================================================================== public

def equivalence(source: Any, requests: list[dict] | str | os.PathLike | None = None, provider: str | None = None,
                ingress_class: str | None = None, seed: int = 0) -> Equivalence:
    """Convert ``source`` and compare, request by request, the Ingress controller's outcome
    with the reference router's on the converted objects (see the module docstring).
    ``requests``: a list of request dicts, a ``.jsonl`` file of them, or None (derived from
    the Ingresses by :func:`sample_requests`)."""
    from ..router import Router

    inputs = source if isinstance(source, Inputs) else read_inputs(source)
    conv = convert(inputs, provider=provider, ingress_class=ingress_class)
    irouter = IngressRouter(inputs, provider=conv.provider, ingress_class=ingress_class, seed=seed)
    router = Router(reference_objects(conv), seed=seed)
    if requests is None:
        requests = sample_requests(conv)
    elif isinstance(requests, (str, os.PathLike)):
        requests = read_requests(requests)
    codes = conv.report.codes()
    eq = Equivalence(conversion=conv)
    for req in requests:
        grpc = isinstance(req.get("grpc"), dict)
        ing = irouter._decide(req)
        gw = router.route(req)
        split = router.split(req) if gw.get("backend") else {}
        a, b = _ingress_outcome(ing), _gateway_outcome(gw, split, grpc)
        same = a == b
        explained = "" if same else next((n for n in ing.get("notes") or [] if n in codes), "")
        eq.rows.append({"request": describe(req), "ingress": _show(a), "gateway": _show(b), "same": same,
                        "explained_by": explained})
    return eq


def read_requests(path: str | os.PathLike) -> list[dict]:
    """One JSON request per line (the ``gwlib route --requests`` format); blank lines skipped."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sample_requests(conv: Conversion) -> list[dict]:
    """Requests that exercise every host and path of the converted Ingresses."""
    out: list[dict] = []
    seen: set = set()

    def add(req: dict) -> None:
        key = repr(sorted(req.items()))
        if key not in seen:
            seen.add(key)
            out.append(req)

    for cls, table in conv.tables.items():
        gw = f"{table.ingresses[0].namespace}/{_name(cls)}"
        https_hosts = {h for h, lis in table.tls.items() if not lis.passthrough
                       and (lis.secret is not None or table.provider == "traefik")}
        passthrough = {h for h, lis in table.tls.items() if lis.passthrough}

        def concrete(h: str) -> str:
            return ("app" + h[1:]) if h.startswith("*.") else (h or "unknown.example.com")

        def schemes(h: str) -> list[str]:
            return ["http"] + (["https"] if h in https_hosts or "" in https_hosts else [])

        entries = []   # (host, path variants, grpc?, canary)
        if table.provider == "ingress-nginx":
            for h, srv in sorted(table.servers.items()):
                if not h and not any(not l.root for l in srv.locations) and srv.root.action.target is None:
                    continue
                for loc in srv.locations:
                    entries.append((h, _paths(loc), loc.action.grpc, loc.action.canary, loc))
                used = [l for l in srv.locations if not l.root or l.action.target is not None]
                only_grpc = bool(used) and all(l.action.grpc for l in used)
                entries.append((h, ["/", "/no-such-path"] if not only_grpc else ["/"], only_grpc, None, None))
                if h in passthrough:
                    add({"gateway": gw, "port": 443, "scheme": "https", "host": concrete(h), "path": "/"})
        else:
            for r in table.routers:
                p = r.path or "/"
                paths = [p] if r.kind == "exact" else [p, p.rstrip("/") + "/sub"]
                entries.append((r.host, paths, False, None, None))
            for h in sorted({r.host for r in table.routers}):
                entries.append((h, ["/", "/no-such-path"], False, None, None))
        for h, paths, grpc, canary, loc in entries:
            for scheme in schemes(h) if not grpc else schemes(h)[-1:]:   # gRPC clients use TLS when they can
                for p in paths:
                    base = {"gateway": gw, "scheme": scheme, "host": concrete(h)}
                    if scheme == "https":
                        base["port"] = 443
                    if grpc:
                        parts = [x for x in p.split("/") if x]
                        if parts and "." not in parts[0]:
                            continue   # not a gRPC service name
                        svc = parts[0] if parts else "grpc.health.v1.Health"
                        method = parts[1] if len(parts) > 1 else "Check"
                        add({**base, "grpc": {"service": svc, "method": method}})
                        continue
                    add({**base, "path": p})
                    if canary is not None:
                        if canary.header:
                            for v in ([canary.header_value] if canary.header_value else ["always", "never"]):
                                add({**base, "path": p, "headers": {canary.header: v}})
                        if canary.cookie:
                            add({**base, "path": p, "headers": {"Cookie": f"{canary.cookie}=always"}})
    return out


def _paths(loc) -> list[str]:
    if loc.root:
        return ["/"]
    p = loc.path
    if loc.regex:
        prefix = idiom_prefix(p)
        if prefix:
            return [prefix, prefix + "/sub"]
        if has_regex(p):
            return []
    if loc.path_type == "Exact" and not loc.regex:
        return [p]
    m = gw_path_match(loc)
    return [p, p.rstrip("/") + "/sub"] if m["type"] != "Exact" else [p]
