"""HTTP request/response transformations of the Gateway API filters (release v1.6.1).

Pure functions over plain values (CRD-shaped dicts, camelCase keys, defaults applied), used
by the reference router, and the yardstick the Envoy and Traefik translations are tested
against. Each function cites the doc comment of ``apis/v1/httproute_types.go`` it
implements; where the spec leaves a choice open the choice is stated in the docstring.

Header names on the wire keep the spelling they were first sent with; every comparison
of names is case-insensitive (RFC 9110 §5.1). Repeated values of one header read as one
string joined with ``","`` and no space (the route contract of the design, and what the
conformance tests expect: ``some-other-value,add-appends-values``).
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Union

from gwlib.matching import path_prefix_matches, strip_port

__all__ = [
    "Headers",
    "canonical_header_name",
    "apply_header_modifier",
    "replace_prefix",
    "modify_path",
    "rewrite",
    "redirect",
    "WELL_KNOWN_PORTS",
    "mirror_fraction",
    "origin_matches",
    "cors_origin_allowed",
    "is_cors_preflight",
    "cors_preflight",
    "cors_response_headers",
    "CORS_DEFAULT_MAX_AGE",
    "CORS_LIST_SEPARATOR",
]

HeadersInit = Union["Headers", Mapping[str, Any], Iterable[tuple[str, Any]], None]


# ---------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------

class Headers:
    """A case-insensitive, order-keeping multi-map of HTTP headers.

    * Each ``add`` keeps a separate (name, value) field, in order; :meth:`get` joins the
      values of one name with ``","`` (no space), :meth:`get_all` lists them.
    * The canonical spelling of a name is the one it was first sent with
      (``to_dict`` of ``x-env`` then ``X-ENV`` is ``{"x-env": ...}``).
    * Iteration yields the (name, value) fields as sent.

    ``Headers(init)`` accepts another Headers, a mapping name -> value (a value may be a
    list of values) or an iterable of (name, value) pairs. Values are converted to ``str``.
    """

    __slots__ = ("_fields",)

    def __init__(self, mapping_or_pairs: HeadersInit = None) -> None:
        self._fields: list[tuple[str, str]] = []
        if mapping_or_pairs is None:
            return
        if isinstance(mapping_or_pairs, Headers):
            self._fields = list(mapping_or_pairs._fields)
            return
        items = mapping_or_pairs.items() if isinstance(mapping_or_pairs, Mapping) else mapping_or_pairs
        for name, value in items:
            if isinstance(value, (list, tuple)):
                for v in value:
                    self.add(name, v)
            else:
                self.add(name, value)

    # -- reading -------------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """All values of ``name`` joined with ``","``; ``default`` when absent."""
        values = self.get_all(name)
        return ",".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        """The values of ``name`` in the order they were added."""
        key = name.lower()
        return [v for n, v in self._fields if n.lower() == key]

    def canonical(self, name: str) -> str | None:
        """The spelling ``name`` was first sent with, or ``None`` when absent."""
        key = name.lower()
        for n, _ in self._fields:
            if n.lower() == key:
                return n
        return None

    def names(self) -> list[str]:
        """Distinct header names (canonical spelling) in first-seen order."""
        seen: set[str] = set()
        out = []
        for n, _ in self._fields:
            if n.lower() not in seen:
                seen.add(n.lower())
                out.append(n)
        return out

    def to_dict(self) -> dict[str, str]:
        """``{canonical-name: "v1,v2"}`` in first-seen order."""
        return {n: self.get(n) or "" for n in self.names()}

    def items(self) -> list[tuple[str, str]]:
        """Same as ``to_dict().items()`` (one entry per distinct name)."""
        return list(self.to_dict().items())

    # -- writing -------------------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Replace every value of ``name`` with ``value``. An existing header keeps its
        spelling and position; a new one is appended with ``name`` as given."""
        key = name.lower()
        out: list[tuple[str, str]] = []
        done = False
        for n, v in self._fields:
            if n.lower() == key:
                if not done:
                    out.append((n, str(value)))
                    done = True
                continue
            out.append((n, v))
        if not done:
            out.append((name, str(value)))
        self._fields = out

    def add(self, name: str, value: Any) -> None:
        """Append a value to ``name`` (any existing values stay)."""
        self._fields.append((str(name), str(value)))

    def remove(self, name: str) -> None:
        """Remove every value of ``name`` (case-insensitive); absent names are fine."""
        key = name.lower()
        self._fields = [(n, v) for n, v in self._fields if n.lower() != key]

    def copy(self) -> Headers:
        return Headers(self)

    # -- protocol ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._fields))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self._fields)

    def __len__(self) -> int:
        """Number of distinct header names."""
        return len(self.names())

    def __bool__(self) -> bool:
        return bool(self._fields)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.remove(name)

    def __eq__(self, other: object) -> bool:
        """Equal when the same names (case-insensitively) have the same joined values."""
        if isinstance(other, Mapping):
            other = Headers(other)
        if not isinstance(other, Headers):
            return NotImplemented
        mine = {k.lower(): v for k, v in self.to_dict().items()}
        theirs = {k.lower(): v for k, v in other.to_dict().items()}
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


def _as_headers(headers: HeadersInit) -> Headers:
    return headers if isinstance(headers, Headers) else Headers(headers)


_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")


def canonical_header_name(name: str) -> str:
    """The conventional spelling of a header name: ``"x-env"`` -> ``"X-Env"``,
    ``"content-type"`` -> ``"Content-Type"`` (first letter and every letter after ``-``
    upper-case, the rest lower-case, as Go's ``http.CanonicalHeaderKey``). A name that is
    not a valid token (HeaderName pattern ``^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$``) is
    returned unchanged, as Go does."""
    if not _TOKEN.match(name or ""):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def apply_header_modifier(headers: HeadersInit, modifier: Mapping[str, Any] | None) -> Headers:
    """``HTTPHeaderFilter`` (RequestHeaderModifier / ResponseHeaderModifier) on a copy.

    * ``set``: "Set overwrites the request with the given header (name, value)"
      (``my-header: foo`` + set ``bar`` -> ``my-header: bar``).
    * ``add``: "It appends to any existing values associated with the header name"
      (``my-header: foo`` + add ``bar,baz`` -> ``my-header: foo,bar,baz``).
    * ``remove``: "Note that the header names are case-insensitive".

    Applied in the order set, add, remove. "Only one action for a given header name is
    permitted", so for a valid filter the order is unobservable; for an invalid one this
    is the order Envoy Gateway applies. Header names in the filter match the request's
    case-insensitively; a header that already exists keeps the spelling it was sent with.
    The input is not modified.
    """
    out = _as_headers(headers).copy()
    m = modifier or {}
    for h in m.get("set") or []:
        out.set(h["name"], h.get("value", ""))
    for h in m.get("add") or []:
        out.add(h["name"], h.get("value", ""))
    for name in m.get("remove") or []:
        out.remove(name)
    return out


# ---------------------------------------------------------------------------------------
# Paths, URL rewrite and redirect
# ---------------------------------------------------------------------------------------

def replace_prefix(path: str, prefix: str, replacement: str) -> str:
    """``ReplacePrefixMatch``: replace the matched prefix of ``path`` with ``replacement``.

    HTTPPathModifier.ReplacePrefixMatch: "a request to "/foo/bar" with a prefix match of
    "/foo" and a ReplacePrefixMatch of "/xyz" would be modified to "/xyz/bar" ... this
    matches full path elements ... When specified, a trailing `/` is ignored." Every row
    of the spec's table holds (a trailing ``/`` of the prefix and of the replacement is
    dropped, the remainder of the path is kept, an empty result is ``/``)::

        /foo/bar  /foo   /xyz   -> /xyz/bar      /foo/bar  /foo  ""  -> /bar
        /foo/bar  /foo   /xyz/  -> /xyz/bar      /foo/     /foo  ""  -> /
        /foo/bar  /foo/  /xyz   -> /xyz/bar      /foo      /foo  ""  -> /
        /foo/bar  /foo/  /xyz/  -> /xyz/bar      /foo/     /foo  /   -> /
        /foo      /foo   /xyz   -> /xyz          /foo      /foo  /   -> /
        /foo/     /foo   /xyz   -> /xyz/

    Not in the table (gwlib's reading of the same rule): ``/foo`` with ``/xyz/`` ->
    ``/xyz``; with the prefix ``/``, ``/`` -> ``/xyz`` (like ``/foo`` -> ``/xyz`` above: the
    root has no element left over) and ``/a`` -> ``/xyz/a``; a replacement without a
    leading ``/`` gets one. A query string on ``path``
    is kept. A path that the prefix does not match (the caller matched with another rule)
    is returned unchanged.
    """
    raw_path, sep, query = (path or "/").partition("?")
    raw_path = raw_path or "/"
    if not path_prefix_matches(prefix, raw_path):
        return path
    p = (prefix or "/").rstrip("/")
    remainder = raw_path[len(p):]            # "" or starts with "/"
    if p == "" and remainder == "/":
        remainder = ""                       # the root has no path element left over
    result = (replacement or "").rstrip("/") + remainder
    if not result.startswith("/"):
        result = "/" + result
    return result + (sep + query if sep else "")


def modify_path(path: str, modifier: Mapping[str, Any] | None, matched_prefix: str | None) -> str:
    """``HTTPPathModifier`` applied to a request target (path and query).

    ``ReplaceFullPath``: "the value with which to replace the full path of a request";
    ``ReplacePrefixMatch``: :func:`replace_prefix` with the rule's ``PathPrefix`` value
    (``matched_prefix``; ``"/"`` when unknown); no modifier: the path "is used as-is".
    The query string is kept in every case.
    """
    if not modifier:
        return path
    raw_path, sep, query = (path or "/").partition("?")
    kind = modifier.get("type")
    if kind == "ReplaceFullPath":
        new = modifier.get("replaceFullPath") or "/"
        if not new.startswith("/"):
            new = "/" + new
    elif kind == "ReplacePrefixMatch":
        new = replace_prefix(raw_path or "/", matched_prefix or "/", modifier.get("replacePrefixMatch") or "")
    else:
        return path
    return new + (sep + query if sep else "")


def rewrite(host: str, path: str, url_rewrite: Mapping[str, Any] | None,
            matched_prefix: str | None) -> tuple[str, str]:
    """``URLRewrite`` filter -> (Host header, request target) as the backend sees them.

    HTTPURLRewriteFilter.Hostname: "the value to be used to replace the Host header value
    during forwarding" (the whole header: a port on the original host is not carried
    over); without it the Host header is forwarded unmodified (HTTPRouteSpec.Hostnames:
    "MUST forward this header unmodified to the backend"), port included.
    ``path``: :func:`modify_path`; the query string is kept.
    """
    r = url_rewrite or {}
    new_host = r.get("hostname") or host
    return new_host, modify_path(path, r.get("path"), matched_prefix)


#: RequestRedirect.Port: ""http" to port 80 and "https" to port 443".
WELL_KNOWN_PORTS: dict[str, int] = {"http": 80, "https": 443}


def _format_host(hostname: str) -> str:
    try:
        if ipaddress.ip_address(hostname).version == 6:
            return f"[{hostname}]"
    except ValueError:
        pass
    return hostname


def redirect(scheme: str, host: str, path: str, listener_port: int,
             request_redirect: Mapping[str, Any] | None,
             matched_prefix: str | None) -> tuple[int, str]:
    """``RequestRedirect`` filter -> (status code, ``Location``).

    HTTPRequestRedirectFilter:

    * ``statusCode``: default 302.
    * ``scheme``: "When empty, the scheme of the request is used."
    * ``hostname``: "When empty, the hostname in the `Host` header of the request is
      used" — without the port of the Host header (the port is derived below).
    * ``path``: :func:`modify_path` ("When empty, the request path is used as-is"); the
      query string of the request is kept.
    * ``port``: "If no port is specified ... If redirect scheme is not-empty, the redirect
      port MUST be the well-known port associated with the redirect scheme ... If the
      redirect scheme does not have a well-known port, the listener port of the Gateway
      SHOULD be used. If redirect scheme is empty, the redirect port MUST be the Gateway
      Listener port." And "Implementations SHOULD NOT add the port number in the
      'Location' header" for http with 80 and https with 443.

    Conformance ``httproute-redirect-port-and-scheme``: on an HTTP listener on 8080 a
    redirect with neither scheme nor port goes to ``http://example.org:8080/...``; with
    ``scheme: https`` to ``https://example.org/...``; on 443 with ``port: 8443`` to
    ``https://example.org:8443/...``. An IPv6 hostname is bracketed.
    """
    r = request_redirect or {}
    status = int(r.get("statusCode") or 302)
    new_scheme = (r.get("scheme") or scheme or "http").lower()
    hostname = r.get("hostname") or strip_port(host)
    if r.get("port"):
        port = int(r["port"])
    elif r.get("scheme"):
        port = WELL_KNOWN_PORTS.get(new_scheme, int(listener_port))
    else:
        port = int(listener_port)
    authority = _format_host(hostname)
    if WELL_KNOWN_PORTS.get(new_scheme) != port:
        authority += f":{port}"
    new_path = modify_path(path or "/", r.get("path"), matched_prefix)
    if not new_path.startswith("/"):
        new_path = "/" + new_path
    return status, f"{new_scheme}://{authority}{new_path}"


# ---------------------------------------------------------------------------------------
# Request mirror
# ---------------------------------------------------------------------------------------

def mirror_fraction(request_mirror: Mapping[str, Any] | None) -> float:
    """Share of requests a ``RequestMirror`` filter copies, in [0, 1].

    HTTPRequestMirrorFilter: ``percent`` "Its minimum value is 0 (indicating 0% of
    requests) and its maximum value is 100"; ``fraction`` numerator / denominator
    (denominator default 100); "If neither field is specified, 100% of requests will be
    mirrored."
    """
    m = request_mirror or {}
    if m.get("percent") is not None:
        value = float(m["percent"]) / 100.0
    elif m.get("fraction") is not None:
        f = m["fraction"] or {}
        denominator = f.get("denominator")
        denominator = 100 if denominator in (None, 0) else denominator
        value = float(f.get("numerator") or 0) / float(denominator)
    else:
        value = 1.0
    return min(1.0, max(0.0, value))


# ---------------------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------------------

#: HTTPCORSFilter.MaxAge: "When the `MaxAge` field is unspecified, the gateway sets the
#: response header "Access-Control-Max-Age: 5" by default."
CORS_DEFAULT_MAX_AGE = 5

#: How gwlib joins the configured lists of CORS names into one header value. The spec only
#: says "separated by a comma"; the conformance test compares ignoring whitespace.
CORS_LIST_SEPARATOR = ", "

_ORIGIN = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<host>\[[^\]]*\]|[^:/?#]*)(?::(?P<port>[0-9]*))?/?$")


def _parse_origin(origin: str) -> tuple[str, str, int | None] | None:
    m = _ORIGIN.match((origin or "").strip())
    if not m:
        return None
    scheme = m.group("scheme").lower()
    host = m.group("host").lower()
    port_text = m.group("port")
    if port_text:
        port: int | None = int(port_text)
    else:
        port = WELL_KNOWN_PORTS.get(scheme)
    return scheme, host, port


def origin_matches(pattern: str, origin: str) -> bool:
    """Whether a request ``Origin`` is covered by one ``allowOrigins`` entry.

    HTTPCORSFilter.AllowOrigins: "The `Origin` consists of a scheme and a host, with an
    optional port ... if not included, port `80` is assumed for `http` scheme origins, and
    port `443` is assumed for `https` origins. This may affect origin matching." "The host
    part of the origin may contain the wildcard character `*` ... a greedy match to the
    _left_, including any number of DNS labels ... A wildcard by itself matches all
    hosts." "An origin value that includes _only_ the `*` character indicates requests
    from all `Origin`s are allowed."

    So ``https://*.bar.com`` matches ``https://www.bar.com`` and
    ``https://xpto.www.bar.com`` but not ``https://bar.com`` or ``http://www.bar.com``
    (conformance ``httproute-cors``). Scheme and host compare case-insensitively.
    """
    pat = (pattern or "").strip()
    if pat == "*":
        return bool(origin)
    want = _parse_origin(pat)
    got = _parse_origin(origin)
    if want is None or got is None:
        return False
    (ws, wh, wp), (gs, gh, gp) = want, got
    if ws != gs or wp != gp:
        return False
    if "*" not in wh:
        return wh == gh
    host_re = "".join("[^/:?#]+" if part == "*" else re.escape(part) for part in re.split(r"(\*)", wh))
    return re.fullmatch(host_re, gh) is not None


def cors_origin_allowed(cors: Mapping[str, Any] | None, origin: str | None) -> bool:
    """Whether ``origin`` matches any entry of ``allowOrigins`` (:func:`origin_matches`)."""
    if not origin:
        return False
    return any(origin_matches(p, origin) for p in ((cors or {}).get("allowOrigins") or []))


def is_cors_preflight(method: str, headers: HeadersInit) -> bool:
    """A CORS preflight is an ``OPTIONS`` request with ``Origin`` and
    ``Access-Control-Request-Method`` (Fetch standard, CORS-preflight request)."""
    h = _as_headers(headers)
    return (method or "").upper() == "OPTIONS" and "Origin" in h and "Access-Control-Request-Method" in h


def _credentials(cors: Mapping[str, Any]) -> bool:
    return bool(cors.get("allowCredentials"))


def _expose_headers(cors: Mapping[str, Any]) -> str | None:
    """ExposeHeaders: "If the configuration contains the wildcard `*` in `exposeHeaders`
    and `allowCredentials` is set to `true`, the gateway cannot use the `*`" — the header
    is then left out (there is no request header to echo)."""
    expose = list(cors.get("exposeHeaders") or [])
    if not expose:
        return None
    if "*" in expose and _credentials(cors):
        expose = [e for e in expose if e != "*"]
        if not expose:
            return None
    return CORS_LIST_SEPARATOR.join(expose)


def _allow_origin_headers(cors: Mapping[str, Any], origin: str) -> Headers:
    out = Headers()
    # AllowOrigins: "the gateway sets the response header `Access-Control-Allow-Origin` to
    # the same value as the `Origin` header provided by the client". With "*" and no
    # credentials the spec also allows "*"; gwlib always echoes (valid in both cases).
    out.set("Access-Control-Allow-Origin", origin)
    if _credentials(cors):
        # AllowCredentials: "the gateway will include the
        # `Access-Control-Allow-Credentials` response header with value true".
        out.set("Access-Control-Allow-Credentials", "true")
    return out


def cors_preflight(cors: Mapping[str, Any] | None, method: str, headers: HeadersInit, *,
                   disallowed: str = "ok") -> tuple[int, Headers] | None:
    """The gateway's own answer to a CORS preflight, or ``None`` when ``method`` and
    ``headers`` are not a preflight (:func:`is_cors_preflight`) — then the request goes
    on like any other.

    For an allowed ``Origin`` the answer is 200 ("The status code of a successful response
    to a "preflight" request is always an OK status (i.e., 204 or 200)"; conformance
    ``httproute-cors`` insists on 200 for some cases) with:

    * ``Access-Control-Allow-Origin``: the request's Origin (echoed, see
      :func:`origin_matches`), and ``Access-Control-Allow-Credentials: true`` when
      ``allowCredentials``;
    * ``Access-Control-Allow-Methods``: the ``allowMethods`` list; for ``*`` the
      requested method is echoed ("must return a single HTTP method matching the value
      of the `Access-Control-Request-Method` request header" with credentials; allowed
      without);
    * ``Access-Control-Allow-Headers``: the ``allowHeaders`` list; for ``*`` the
      ``Access-Control-Request-Headers`` value is echoed, and the header is omitted when
      the request has none ("the gateway must omit the `Access-Control-Allow-Headers`
      response header");
    * ``Access-Control-Expose-Headers``: the ``exposeHeaders`` list (``*`` dropped with
      credentials);
    * ``Access-Control-Max-Age``: ``maxAge``, default 5.

    Lists are joined with :data:`CORS_LIST_SEPARATOR`.

    For an Origin that is not allowed the spec gives a choice: "the gateway returns
    204/200 response but doesn't set the relevant cross-origin response headers.
    Alternatively, the gateway responds with 403". ``disallowed`` picks it: ``"ok"``
    (default: 200, no CORS headers), ``"forbidden"`` (403, no CORS headers) or
    ``"forward"`` (``None``: the request continues to the backend, as Envoy's CORS filter
    does).
    """
    h = _as_headers(headers)
    if not is_cors_preflight(method, h):
        return None
    c = cors or {}
    origin = h.get("Origin") or ""
    if not cors_origin_allowed(c, origin):
        if disallowed == "forward":
            return None
        return (403 if disallowed == "forbidden" else 200), Headers()
    out = _allow_origin_headers(c, origin)
    methods = list(c.get("allowMethods") or [])
    if methods:
        if "*" in methods:
            out.set("Access-Control-Allow-Methods", h.get("Access-Control-Request-Method") or "*")
        else:
            out.set("Access-Control-Allow-Methods", CORS_LIST_SEPARATOR.join(methods))
    allow_headers = list(c.get("allowHeaders") or [])
    if allow_headers:
        if "*" in allow_headers:
            requested = h.get("Access-Control-Request-Headers")
            if requested:
                out.set("Access-Control-Allow-Headers", requested)
        else:
            out.set("Access-Control-Allow-Headers", CORS_LIST_SEPARATOR.join(allow_headers))
    expose = _expose_headers(c)
    if expose:
        out.set("Access-Control-Expose-Headers", expose)
    max_age = c.get("maxAge")
    out.set("Access-Control-Max-Age", str(max_age if max_age else CORS_DEFAULT_MAX_AGE))
    return 200, out


def cors_response_headers(cors: Mapping[str, Any] | None, headers: HeadersInit) -> Headers:
    """Headers the CORS filter adds to a normal (non-preflight) response.

    For a request whose ``Origin`` is allowed: ``Access-Control-Allow-Origin`` (echoed),
    ``Access-Control-Allow-Credentials: true`` when ``allowCredentials`` (conformance:
    "Simple request with credentials auth should be allowed and always echo the origin"),
    and ``Access-Control-Expose-Headers`` ("this additional header will be exposed as
    part of the response to the client"). Nothing for a missing or disallowed Origin
    ("Simple request from a non-matching origin should not be allowed": no
    ``access-control-allow-origin``). The request itself is never blocked.
    """
    c = cors or {}
    h = _as_headers(headers)
    origin = h.get("Origin")
    if not origin or not cors_origin_allowed(c, origin):
        return Headers()
    out = _allow_origin_headers(c, origin)
    expose = _expose_headers(c)
    if expose:
        out.set("Access-Control-Expose-Headers", expose)
    return out
