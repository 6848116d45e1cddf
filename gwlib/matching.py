"""Pure matching rules of the Gateway API (release v1.6.1).

Every function here is a direct reading of the spec text (the Go doc comments of
``apis/v1/httproute_types.go``, ``grpcroute_types.go``, ``gateway_types.go`` and
``shared_types.go`` in kubernetes-sigs/gateway-api) and is shared by the controller, the
IR and the reference router. Data planes never re-derive these rules; they receive the
decisions through the IR.

Inputs are plain strings and dicts shaped like the CRD JSON (camelCase keys, defaults
applied), so this module depends on nothing else in gwlib. Missing defaults are applied
here too where the CRD would have applied them (``path`` -> ``PathPrefix "/"``, header and
query match ``type`` -> ``Exact``), so hand-written dicts work as well.

Implementation-specific choices (the spec leaves them open; each is documented where it
is made):

* ``RegularExpression`` matches (path, header, query param, gRPC service/method) use
  Python's :func:`re.fullmatch` — the whole value must match, as with Envoy's RE2
  ``safe_regex``. An invalid pattern never matches (and never raises).
* ``RegularExpression`` paths sort after ``Exact`` and before every ``PathPrefix`` path in
  :func:`http_match_precedence_key` (longer patterns first among themselves), as Envoy
  Gateway orders them.
* Paths are matched as received: no percent-decoding, no dot-segment or slash merging.
* Repeated request headers are compared as one value joined with ``","``.
* Query parameters are form-decoded (``%xx`` and ``+``) like Go's ``url.ParseQuery``.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus

__all__ = [
    "strip_port",
    "is_wildcard",
    "hostname_matches",
    "intersect_hostnames",
    "select_listener",
    "listener_precedence_key",
    "hostname_precedence_key",
    "split_target",
    "join_target",
    "path_prefix_matches",
    "path_matches",
    "headers_match",
    "query_matches",
    "method_matches",
    "http_match_matches",
    "http_match_precedence_key",
    "grpc_match_matches",
    "grpc_match_precedence_key",
    "DEFAULT_PATH_MATCH",
]

#: ``HTTPRouteMatch.path`` default: "If this field is not specified, a default prefix
#: match on the "/" path is provided."
DEFAULT_PATH_MATCH: dict[str, str] = {"type": "PathPrefix", "value": "/"}

_PATH_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}  # regex rank: as Envoy Gateway


# ---------------------------------------------------------------------------------------
# Regular expressions (implementation-specific dialect: Python ``re``, full match)
# ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _regex_fullmatch(pattern: str, value: str) -> bool:
    """``RegularExpression`` match types: "implementations can support POSIX, PCRE, RE2
    or any other regular expression dialect". gwlib uses Python ``re`` and requires the
    whole value to match (:func:`re.fullmatch`), the way Envoy's RE2 matcher does. A
    pattern that does not compile matches nothing."""
    compiled = _compile(pattern)
    return compiled is not None and compiled.fullmatch(value) is not None


# ---------------------------------------------------------------------------------------
# Hostnames
# ---------------------------------------------------------------------------------------

def strip_port(host: str) -> str:
    """The host of a ``Host`` header without its port, lower-cased.

    HTTPRouteSpec.Hostnames: "Implementations MUST ignore any port value specified in the
    HTTP Host header while performing a match". Host names compare case-insensitively
    (RFC 9110 §4.2.3), so the result is lower-cased.

    >>> strip_port("Foo.com:8080"), strip_port("[::1]:80"), strip_port("::1")
    ('foo.com', '::1', '::1')
    """
    h = (host or "").strip()
    if h.startswith("["):
        # IPv6 literal in brackets (RFC 3986 §3.2.2): "[::1]" or "[::1]:80".
        end = h.find("]")
        if end != -1:
            return h[1:end].lower()
        return h[1:].lower()
    if h.count(":") == 1:
        name, _, port = h.partition(":")
        if port == "" or port.isdigit():
            return name.lower()
    # No port, or a bare IPv6 address (several colons, no brackets): keep as is.
    return h.lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_wildcard(hostname: str | None) -> bool:
    """True for a wildcard hostname (``*.example.com``) or the catch-all ``*``."""
    return bool(hostname) and hostname.startswith("*")


def hostname_matches(pattern: str, host: str) -> bool:
    """Whether ``host`` (no port) is matched by the hostname ``pattern``.

    Hostname doc (shared_types.go / HTTPRouteSpec.Hostnames): "Hostnames that are prefixed
    with a wildcard label (`*.`) are interpreted as a suffix match. That means that a match
    for `*.example.com` would match both `test.example.com`, and `foo.test.example.com`,
    but not `example.com`." gateway_types.go: "The wildcard character will match any
    number of characters _and dots_ to the left". Comparison is case-insensitive.

    ``"*"`` (the "any host" marker returned by :func:`intersect_hostnames`) and an empty
    pattern match every host. An IP literal only ever matches itself: "IPs are not
    allowed" as hostnames, so no wildcard can cover one.
    """
    p = (pattern or "").strip().lower()
    h = (host or "").strip().lower()
    if p in ("", "*"):
        return True
    if not p.startswith("*."):
        return p == h
    if _is_ip(h):
        return False
    suffix = p[1:]  # ".example.com"
    # At least one character (one label) must stand in for the "*".
    return len(h) > len(suffix) and h.endswith(suffix) and not h.startswith(".")


def intersect_hostnames(listener_hostname: str | None,
                        route_hostnames: Iterable[str] | None) -> list[str]:
    """The hostnames a route serves on a listener.

    HTTPRouteSpec.Hostnames: "If a hostname is specified by both the Listener and
    HTTPRoute, there must be at least one intersecting hostname for the HTTPRoute to be
    attached to the Listener" and "any HTTPRoute hostnames that do not match the Listener
    hostname MUST be ignored". Of two overlapping names the more specific one is the
    intersection (conformance ``gateway-http-listener-isolation-with-hostname-
    intersection``: route ``*.example.com`` on listener ``*.foo.example.com`` "becomes
    *.foo.example.com").

    Returns ``["*"]`` when neither side restricts (any host), ``[]`` when both restrict and
    nothing intersects (the route is not accepted: ``NoMatchingListenerHostname``),
    otherwise the intersected names, de-duplicated, in route order.
    """
    lh = (listener_hostname or "").strip().lower()
    routes = [r.strip().lower() for r in (route_hostnames or []) if r and r.strip()]
    if lh in ("", "*"):
        if not routes:
            return ["*"]
        return _dedupe(routes)
    if not routes:
        return [lh]
    out: list[str] = []
    for r in routes:
        got = _intersect_one(lh, r)
        if got is not None:
            out.append(got)
    return _dedupe(out)


def _intersect_one(a: str, b: str) -> str | None:
    if a == b or b == "*":
        return a
    if a == "*":
        return b
    aw, bw = is_wildcard(a), is_wildcard(b)
    if aw and bw:
        # The wildcard with the longer suffix is contained in the other one.
        if b.endswith(a[1:]):
            return b
        if a.endswith(b[1:]):
            return a
        return None
    if aw:
        return b if hostname_matches(a, b) else None
    if bw:
        return a if hostname_matches(b, a) else None
    return None


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def listener_precedence_key(listener_hostname: str | None) -> tuple[int, int]:
    """Ascending sort key of a listener hostname for listener selection.

    GatewaySpec.Listeners: "Exact matches MUST be processed before wildcard matches, and
    wildcard matches MUST be processed before fallback (empty Hostname value) matches ...
    the higher the number of dots in the hostname to the right of the wildcard character,
    the higher the precedence."
    """
    h = (listener_hostname or "").strip().lower()
    if h in ("", "*"):
        return (2, 0)
    if is_wildcard(h):
        return (1, -h.count("."))
    return (0, 0)


def select_listener(listener_hostnames: list[str | None], host: str) -> int | None:
    """Index of the listener (all on one port) that a request for ``host`` goes to.

    Listeners distinct only by hostname: "inbound request hostnames MUST match from the
    most specific to least specific Hostname values to choose the correct Listener"
    (:func:`listener_precedence_key`). With listener isolation a request matches at most
    this one listener; ``None`` when none matches (the request gets a 404). The port of
    ``host`` is ignored. Among equally specific listeners (only possible when they
    conflict) the first one wins.
    """
    name = strip_port(host)
    best: tuple[tuple[int, int], int] | None = None
    for index, lh in enumerate(listener_hostnames):
        if not hostname_matches(lh or "", name):
            continue
        key = (listener_precedence_key(lh), index)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]


def hostname_precedence_key(route_hostname: str | None) -> tuple[int, int]:
    """Ascending sort key (first = highest precedence) for a matched route hostname.

    HTTPRouteSpec.Hostnames: "precedence must be given to rules from the HTTPRoute with the
    largest number of: Characters in a matching non-wildcard hostname. Characters in a
    matching hostname." A wildcard hostname has no characters in the first criterion, so
    every exact hostname precedes every wildcard; then longer names come first. ``"*"``
    and ``""`` (no hostname) come last.
    """
    h = (route_hostname or "").strip().lower()
    non_wildcard = 0 if (h == "" or is_wildcard(h)) else len(h)
    return (-non_wildcard, -len(h))


# ---------------------------------------------------------------------------------------
# Request target (path + query string)
# ---------------------------------------------------------------------------------------

def split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    """Split a request target into its path and its query parameters.

    ``"/p?q=1&q=2&r"`` -> ``("/p", {"q": ["1", "2"], "r": [""]})``. Names and values are
    form-decoded (``%xx`` and ``+``, as Go's ``url.ParseQuery``); repeated parameters keep
    their order (HTTPQueryParamMatch: "it is *recommended* that implementations should
    match against the first value of the param"). A fragment is dropped; an empty path is
    ``"/"``. The path itself is returned as received (not decoded).
    """
    t = target or ""
    t = t.split("#", 1)[0]
    path, sep, qs = t.partition("?")
    if not path:
        path = "/"
    query: dict[str, list[str]] = {}
    if sep:
        for part in qs.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            query.setdefault(unquote_plus(name), []).append(unquote_plus(value))
    return path, query


def join_target(path: str, query: Mapping[str, Iterable[str]] | None = None) -> str:
    """Inverse of :func:`split_target`: ``("/p", {"q": ["1"]})`` -> ``"/p?q=1"``.

    Names and values are form-encoded, so ``split_target(join_target(p, q)) == (p, q)``.
    """
    parts = []
    for name, values in (query or {}).items():
        for v in values:
            parts.append(f"{quote_plus(name)}={quote_plus(v)}")
    return path + ("?" + "&".join(parts) if parts else "")


# ---------------------------------------------------------------------------------------
# Path, header, query parameter and method matches
# ---------------------------------------------------------------------------------------

def path_prefix_matches(prefix: str, path: str) -> bool:
    """``PathPrefix`` semantics (PathMatchPathPrefix doc).

    "Matching is case-sensitive and done on a path element by element basis ... When
    specified, a trailing `/` is ignored. For example, the paths `/abc`, `/abc/`, and
    `/abc/def` would all match the prefix `/abc`, but the path `/abcd` would not."
    """
    p = (prefix or "/").rstrip("/")
    if p == "":
        return True  # prefix "/" matches every path
    return path == p or path.startswith(p + "/")


def path_matches(match: Mapping[str, Any] | None, path: str) -> bool:
    """One ``HTTPPathMatch`` against a request path.

    * ``Exact``: "an exact path match on `/abc` will only match requests to `/abc`, NOT
      `/abc/`, `/Abc`, or `/abcd`."
    * ``PathPrefix``: element-wise, trailing ``/`` of the value ignored
      (:func:`path_prefix_matches`).
    * ``RegularExpression`` (implementation-specific): Python :func:`re.fullmatch` on the
      path.

    ``match`` defaults to ``{"type": "PathPrefix", "value": "/"}`` and its ``type`` to
    ``PathPrefix`` (CRD defaults). A query string or fragment on ``path`` is ignored.
    An unknown type matches nothing ("Unknown values here must result in ...
    `UnsupportedValue`" — the controller rejects such routes).
    """
    m = match or DEFAULT_PATH_MATCH
    kind = m.get("type") or "PathPrefix"
    value = m.get("value")
    if value is None:
        value = "/"
    p = (path or "/").split("?", 1)[0].split("#", 1)[0] or "/"
    if kind == "Exact":
        return p == value
    if kind == "PathPrefix":
        return path_prefix_matches(value, p)
    if kind == "RegularExpression":
        return _regex_fullmatch(value, p)
    return False


def _header_value(headers: Any, name: str) -> str | None:
    """Value of header ``name`` (case-insensitive); repeated values joined with ","."""
    if headers is None:
        return None
    if hasattr(headers, "get_all"):  # gwlib.filters.Headers (case-insensitive already)
        return headers.get(name)
    lname = name.lower()
    found: list[str] = []
    items = headers.items() if isinstance(headers, Mapping) else headers
    for k, v in items:
        if str(k).lower() == lname:
            if isinstance(v, (list, tuple)):
                found.extend(str(x) for x in v)
            else:
                found.append(str(v))
    return ",".join(found) if found else None


def _first_by_name(matches: Iterable[Mapping[str, Any]] | None, *, fold: bool) -> list[Mapping[str, Any]]:
    """"If multiple entries specify equivalent ... names, only the first entry with an
    equivalent name MUST be considered for a match. Subsequent entries ... MUST be
    ignored." Header names are equivalent case-insensitively (``fold``); query param
    names only when identical."""
    seen: set[str] = set()
    out = []
    for m in matches or []:
        key = str(m.get("name", ""))
        key = key.lower() if fold else key
        if key in seen:
            continue
        seen.add(key)
        out.append(m)
    return out


def headers_match(matches: Iterable[Mapping[str, Any]] | None, headers: Any) -> bool:
    """All ``HTTPHeaderMatch`` entries (ANDed) against the request headers.

    HTTPHeaderMatch.Name: "Name matching MUST be case-insensitive ... If multiple entries
    specify equivalent header names, only the first entry with an equivalent name MUST be
    considered for a match." ``type`` defaults to ``Exact`` (case-sensitive value
    equality); ``RegularExpression`` is :func:`re.fullmatch`. A repeated request header
    ("implementation-specific behavior as to how this is represented") is compared as one
    value joined with ``","``. A missing header never matches.

    ``headers`` is a :class:`gwlib.filters.Headers`, a mapping name -> value (a value may
    be a list), or an iterable of (name, value) pairs.
    """
    for m in _first_by_name(matches, fold=True):
        actual = _header_value(headers, str(m.get("name", "")))
        if actual is None:
            return False
        if not _value_matches(m.get("type") or "Exact", str(m.get("value", "")), actual):
            return False
    return True


def _value_matches(kind: str, expected: str, actual: str) -> bool:
    if kind == "Exact":
        return actual == expected
    if kind == "RegularExpression":
        return _regex_fullmatch(expected, actual)
    return False


def query_matches(matches: Iterable[Mapping[str, Any]] | None,
                  query: Mapping[str, list[str]] | None) -> bool:
    """All ``HTTPQueryParamMatch`` entries (ANDed) against the parsed query.

    HTTPQueryParamMatch.Name: "This must be an exact string match" (names are
    case-sensitive: conformance ``httproute-query-param-matching`` sends ``ANIMAL=Whale``
    to a different backend than ``animal=whale``); "only the first entry with an
    equivalent name MUST be considered"; for a repeated parameter "implementations should
    match against the first value". ``type`` defaults to ``Exact``; ``RegularExpression``
    is :func:`re.fullmatch`. ``query`` is what :func:`split_target` returns.
    """
    q = query or {}
    for m in _first_by_name(matches, fold=False):
        values = q.get(str(m.get("name", "")))
        if not values:
            return False
        if not _value_matches(m.get("type") or "Exact", str(m.get("value", "")), values[0]):
            return False
    return True


def method_matches(method: str | None, request_method: str) -> bool:
    """``HTTPRouteMatch.Method``: "When specified, this route will be matched only if the
    request has the specified method." Methods are case-sensitive tokens (RFC 9110 §9.1;
    HTTPMethod: "The value is expected in upper case"); no method matches every request.
    """
    if not method:
        return True
    return method == request_method


def http_match_matches(match: Mapping[str, Any] | None, method: str, path: str,
                       query: Mapping[str, list[str]] | None = None, headers: Any = None) -> bool:
    """One ``HTTPRouteMatch``: "Multiple match types are ANDed together, i.e. the match
    will evaluate to true only if all conditions are satisfied" (path AND method AND
    headers AND queryParams).

    ``path`` may carry a query string; when ``query`` is ``None`` it is parsed from
    ``path`` with :func:`split_target`. An empty match (``{}``) is the default prefix
    match on ``/`` and matches every request.
    """
    m = match or {}
    if query is None:
        path, query = split_target(path)
    if not path_matches(m.get("path") or DEFAULT_PATH_MATCH, path):
        return False
    if not method_matches(m.get("method"), method):
        return False
    if not headers_match(m.get("headers"), headers):
        return False
    return query_matches(m.get("queryParams"), query)


def http_match_precedence_key(match: Mapping[str, Any] | None) -> tuple[int, int, int, int, int]:
    """Ascending sort key of an ``HTTPRouteMatch`` (first = highest precedence).

    HTTPRouteRule.Matches: "precedence must be given to the match having: "Exact" path
    match. "Prefix" path match with largest number of characters. Method match. Largest
    number of header matches. Largest number of query param matches." Characters are
    counted on the value as written. Header and query matches are counted after dropping
    ignored duplicate names.

    "The precedence of RegularExpression path matches are implementation-specific": gwlib
    ranks them as Envoy Gateway does — after Exact, before every PathPrefix, longer
    patterns first — so that a regex route is not shadowed by a ``/`` catch-all. The remaining ties
    (route age, namespace/name, rule order) are the caller's: sort stably.
    """
    m = match or {}
    p = m.get("path") or DEFAULT_PATH_MATCH
    kind = p.get("type") or "PathPrefix"
    value = p.get("value")
    if value is None:
        value = "/"
    rank = _PATH_RANK.get(kind, 3)
    return (
        rank,
        -len(value),
        0 if m.get("method") else 1,
        -len(_first_by_name(m.get("headers"), fold=True)),
        -len(_first_by_name(m.get("queryParams"), fold=False)),
    )


# ---------------------------------------------------------------------------------------
# gRPC
# ---------------------------------------------------------------------------------------

def grpc_match_matches(match: Mapping[str, Any] | None, service: str, method: str,
                       headers: Any = None) -> bool:
    """One ``GRPCRouteMatch`` (method AND headers).

    GRPCRouteMatch.Method: "If this field is not specified, all services and methods will
    match." GRPCMethodMatch: service / method "If left empty or omitted, will match any";
    ``Exact`` "Matches the method or service exactly and with case sensitivity";
    ``RegularExpression`` (implementation-specific) is :func:`re.fullmatch`. Headers as in
    :func:`headers_match` (GRPCHeaderMatch has the same first-name-wins rule).
    """
    m = match or {}
    mm = m.get("method") or {}
    kind = mm.get("type") or "Exact"
    for expected, actual in ((mm.get("service"), service), (mm.get("method"), method)):
        if expected and not _value_matches(kind, expected, actual or ""):
            return False
    return headers_match(m.get("headers"), headers)


def grpc_match_precedence_key(match: Mapping[str, Any] | None) -> tuple[int, int, int]:
    """Ascending sort key of a ``GRPCRouteMatch`` (first = highest precedence).

    GRPCRouteRule.Matches: after the hostname criteria, "Precedence MUST be given to the
    rule with the largest number of: ... Characters in a matching service. Characters in
    a matching method. Header matches."
    """
    m = match or {}
    mm = m.get("method") or {}
    return (
        -len(mm.get("service") or ""),
        -len(mm.get("method") or ""),
        -len(_first_by_name(m.get("headers"), fold=True)),
    )
