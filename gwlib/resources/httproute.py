"""HTTPRoute (gateway.networking.k8s.io v1 and v1beta1) as in Gateway API v1.6.1."""
from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Optional

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .base import EXPERIMENTAL, ExperimentalOnly, GWModel, Resource, cel_error, channel_of, scalar_list_rules
from .common import (
    BackendObjectReference,
    BackendRef,
    CommonRouteSpec,
    Duration,
    Fraction,
    HeaderName,
    Hostname,
    LocalObjectReference,
    PortNumber,
    PreciseHostname,
    SectionName,
    SessionPersistence,
    check_header_value,
    duration_ms,
    rule_name_unique,
    total_matches,
)

PATH_CHARS = r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$"
_RE_PATH_CHARS = re.compile(PATH_CHARS)

FILTER_TYPES_STANDARD = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror",
                         "RequestRedirect", "URLRewrite", "ExtensionRef", "CORS")
FILTER_TYPES_EXPERIMENTAL = FILTER_TYPES_STANDARD + ("ExternalAuth",)


# --------------------------------------------------------------------------- matches
class HTTPPathMatch(GWModel):
    """How to match the request path. CEL: for Exact and PathPrefix the value
    must be an absolute, normalized path of URL-safe characters."""

    type: Optional[Literal["Exact", "PathPrefix", "RegularExpression"]] = Field(
        "PathPrefix",
        description="How `value` is compared with the path. `Exact`: the whole path, case-sensitive "
                    "(`/abc` matches neither `/abc/` nor `/abcd`). `PathPrefix`: element-wise prefix, "
                    "a trailing `/` ignored (`/abc` matches `/abc`, `/abc/`, `/abc/def` but not "
                    "`/abcd`). `RegularExpression`: dialect and precedence are up to the "
                    "implementation. Default `PathPrefix`. Support: Core (Exact, PathPrefix), "
                    "Implementation-specific (RegularExpression).")
    value: Optional[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        "/", description="The path (or regular expression) to match. Default `/`, max 1024 characters.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        t = self.type if self.type is not None else "PathPrefix"
        v = self.value if self.value is not None else "/"
        if t not in ("Exact", "PathPrefix"):
            return []
        e = []
        suffix = " when type one of ['Exact', 'PathPrefix']"
        if not v.startswith("/"):
            e.append(cel_error("value must be an absolute path and start with '/'" + suffix))
        for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
            if bad in v:
                e.append(cel_error(f"must not contain '{bad}'" + suffix))
        for bad in ("/..", "/."):
            if v.endswith(bad):
                e.append(cel_error(f"must not end with '{bad}'" + suffix))
        if not _RE_PATH_CHARS.match(v):
            e.append(cel_error("must only contain valid characters (matching " + PATH_CHARS
                               + ") for types ['Exact', 'PathPrefix']"))
        return e


class HTTPHeaderMatch(GWModel):
    """Matches one request header."""

    type: Optional[Literal["Exact", "RegularExpression"]] = Field(
        "Exact", description="How `value` is compared: `Exact` (default; Support: Core) or "
                             "`RegularExpression` (dialect up to the implementation; Support: "
                             "Implementation-specific).")
    name: HeaderName = Field(
        description="Header name, compared case-insensitively. When several entries name the same "
                    "header (`foo` and `Foo` are the same), only the first counts. Required.")
    value: Annotated[str, StringConstraints(min_length=1, max_length=4096),
                     AfterValidator(check_header_value)] = Field(
        description="Header value to match (1-4096 characters). The experimental CRD also requires "
                    "printable ASCII, optionally separated by single spaces or tabs. Required.")


class HTTPQueryParamMatch(GWModel):
    """Matches one query parameter. Support: Extended."""

    type: Optional[Literal["Exact", "RegularExpression"]] = Field(
        "Exact", description="How `value` is compared: `Exact` (default; Support: Extended) or "
                             "`RegularExpression` (Support: Implementation-specific).")
    name: HeaderName = Field(
        description="Parameter name, compared exactly (case-sensitive). When several entries name the "
                    "same parameter, only the first counts. If a request repeats the parameter, "
                    "implementations should match its first value. Required.")
    value: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description="Parameter value to match (1-1024 characters). Required.")


HTTPMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]


def _default_path() -> HTTPPathMatch:
    return HTTPPathMatch(type="PathPrefix", value="/")


class HTTPRouteMatch(GWModel):
    """Conditions a request must meet; all conditions given in one match are
    ANDed (a path, headers, query parameters and a method)."""

    path: Optional[HTTPPathMatch] = Field(
        default_factory=_default_path,
        description="Path matcher. Default `{type: PathPrefix, value: /}`, which matches every path.")
    LIST_KEYS: ClassVar[dict] = {"headers": ("name",), "query_params": ("name",)}

    headers: Optional[Annotated[list[HTTPHeaderMatch], Field(max_length=16)]] = Field(
        None, description="Header matchers; all must match. Names must be unique (list-map key "
                          "`name`). At most 16. Support: Core (Exact).")
    query_params: Optional[Annotated[list[HTTPQueryParamMatch], Field(max_length=16)]] = Field(
        None, description="Query parameter matchers; all must match. Names must be unique. At most 16. "
                          "Support: Extended.")
    method: Optional[HTTPMethod] = Field(
        None, description="Matches only requests with this HTTP method. Support: Extended.")


def _default_matches() -> list[HTTPRouteMatch]:
    return [HTTPRouteMatch(path=_default_path())]


# --------------------------------------------------------------------------- filters
class HTTPHeader(GWModel):
    """A header name and value."""

    name: HeaderName = Field(
        description="Header name, case-insensitive; when several entries name the same header only "
                    "the first counts. Required.")
    value: Annotated[str, StringConstraints(min_length=1, max_length=4096),
                     AfterValidator(check_header_value)] = Field(
        description="Header value (1-4096 characters). The experimental CRD also requires printable "
                    "ASCII, optionally separated by single spaces or tabs. Required.")


class HTTPHeaderFilter(GWModel):
    """Changes the headers of a request or response. Only one action per header
    name is allowed. Several values go in one comma-separated value."""

    LIST_KEYS: ClassVar[dict] = {"set": ("name",), "add": ("name",)}

    set: Optional[Annotated[list[HTTPHeader], Field(max_length=16)]] = Field(
        None, description="Headers to overwrite (or create) with the given value; e.g. `my-header: foo` "
                          "with set `my-header: bar` becomes `my-header: bar`. Names unique, at most 16.")
    add: Optional[Annotated[list[HTTPHeader], Field(max_length=16)]] = Field(
        None, description="Headers to append to: the value is added to any existing values, e.g. "
                          "`my-header: foo` with add `my-header: bar,baz` becomes `my-header: foo,bar,baz`. "
                          "Names unique, at most 16.")
    remove: Optional[Annotated[list[str], Field(max_length=16), scalar_list_rules(unique=True)]] = Field(
        None, description="Names of headers to remove (case-insensitive). A set: no duplicates; at most 16.")


class HTTPPathModifier(GWModel):
    """How a redirect or rewrite changes the path. CEL keeps `type` and the
    matching value field consistent."""

    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"] = Field(
        description="`ReplaceFullPath` replaces the whole path with `replaceFullPath`; "
                    "`ReplacePrefixMatch` replaces the part matched by the rule's PathPrefix match with "
                    "`replacePrefixMatch`. Required.")
    replace_full_path: Optional[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        None, description="The new path, for type ReplaceFullPath. Max 1024 characters.")
    replace_prefix_match: Optional[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        None,
        description="Replacement for the matched prefix, for type ReplacePrefixMatch, element-wise like "
                    "PathPrefix: `/foo/bar` matched by `/foo` with `/xyz` becomes `/xyz/bar`; with `\"\"` "
                    "it becomes `/bar`. Only valid with exactly one PathPrefix match in the rule. "
                    "Max 1024 characters.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        e = []
        if self.type == "ReplaceFullPath" and self.replace_full_path is None:
            e.append(cel_error("replaceFullPath must be specified when type is set to 'ReplaceFullPath'"))
        if self.replace_full_path is not None and self.type != "ReplaceFullPath":
            e.append(cel_error("type must be 'ReplaceFullPath' when replaceFullPath is set"))
        if self.type == "ReplacePrefixMatch" and self.replace_prefix_match is None:
            e.append(cel_error("replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'"))
        if self.replace_prefix_match is not None and self.type != "ReplacePrefixMatch":
            e.append(cel_error("type must be 'ReplacePrefixMatch' when replacePrefixMatch is set"))
        return e


class HTTPRequestRedirectFilter(GWModel):
    """Answers the request with an HTTP redirect (the `Location` header).
    Not combinable with URLRewrite in the same rule or backendRef."""

    scheme: Optional[Literal["http", "https"]] = Field(
        None, description="Scheme of the Location; when empty, the request's scheme. Also picks the "
                          "default port (see `port`). Support: Extended.")
    hostname: Optional[PreciseHostname] = Field(
        None, description="Hostname of the Location; when empty, the request's Host header. Support: Core.")
    path: Optional[HTTPPathModifier] = Field(
        None, description="How to change the path for the Location; when empty, the request path is "
                          "kept. Support: Extended.")
    port: Optional[PortNumber] = Field(
        None, description="Port of the Location. When unset: the well-known port of `scheme` (80 for "
                          "http, 443 for https) if a scheme is set, else the listener's port. The port is "
                          "left out of the Location for http:80 and https:443. Support: Extended.")
    status_code: Optional[Literal[301, 302, 303, 307, 308]] = Field(
        302, description="HTTP status of the redirect response. Default 302. Support: Core.")


class HTTPURLRewriteFilter(GWModel):
    """Rewrites the request on its way to the backend. Support: Extended.
    Not combinable with RequestRedirect in the same rule or backendRef."""

    hostname: Optional[PreciseHostname] = Field(
        None, description="Replaces the Host header sent to the backend. Support: Extended.")
    path: Optional[HTTPPathModifier] = Field(
        None, description="Rewrites the path sent to the backend. Support: Extended.")


class HTTPRequestMirrorFilter(GWModel):
    """Sends a copy of the request to another backend and ignores its answer.
    CEL: only one of `percent` and `fraction`."""

    backend_ref: BackendObjectReference = Field(
        description="Where the copies go (a single endpoint of it). If it cannot be resolved, or a "
                    "cross-namespace reference is not allowed by a ReferenceGrant, the Route's "
                    "ResolvedRefs condition is False and nothing is mirrored. Required. Support: "
                    "Extended for Service, Implementation-specific otherwise.")
    percent: Optional[Annotated[int, Field(ge=0, le=100)]] = Field(
        None, description="Percentage (0-100) of requests to mirror. With neither percent nor fraction, "
                          "100% are mirrored.")
    fraction: Optional[Fraction] = Field(
        None, description="Fraction of requests to mirror, e.g. `{numerator: 1, denominator: 1000}`. "
                          "With neither percent nor fraction, 100% are mirrored.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if self.percent is not None and self.fraction is not None:
            return [cel_error("Only one of percent or fraction may be specified in HTTPRequestMirrorFilter")]
        return []


def _star_rule(field: str, what: str):
    """CEL on a CORS list: `*` cannot be combined with other entries.  (The
    upstream message for allowHeaders also says "methods".)"""
    message = f"{field} cannot contain '*' alongside other {what}"

    def rule(items: list) -> list[InitErrorDetails]:
        return [cel_error(message, node_type="array")] if "*" in items and len(items) > 1 else []

    return rule


CORSOrigin = Annotated[str, StringConstraints(
    min_length=1, max_length=253, pattern=r"(^\*$)|(^([a-zA-Z][a-zA-Z0-9+\-.]+):\/\/([^:/?#]+)(:([0-9]{1,5}))?$)")]
HTTPMethodWithWildcard = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                                 "PATCH", "*"]


class HTTPCORSFilter(GWModel):
    """Cross-Origin Resource Sharing: answers preflight requests and adds the
    `Access-Control-*` response headers. Support: Extended."""

    allow_origins: Optional[Annotated[list[CORSOrigin], Field(max_length=64),
                                      scalar_list_rules(_star_rule("AllowOrigins", "origins"), unique=True)]] = Field(
        None, description="Origins (`scheme://host[:port]`) allowed to read the response; `*` alone allows "
                          "every origin, and a `*` in the host matches any labels to its left. A "
                          "matching origin is echoed in `Access-Control-Allow-Origin`. A set, at most "
                          "64; `*` cannot be combined with other entries. Support: Extended.")
    allow_credentials: Optional[bool] = Field(
        None, description="When true, responses carry `Access-Control-Allow-Credentials: true`, and "
                          "wildcards are answered with the concrete origin/method/headers of the request. "
                          "Support: Extended.")
    allow_methods: Optional[Annotated[list[HTTPMethodWithWildcard], Field(max_length=9),
                                      scalar_list_rules(_star_rule("AllowMethods", "methods"), unique=True)]] = Field(
        None, description="Methods allowed for the actual request (GET, HEAD and POST always are); `*` "
                          "alone allows all. A set, at most 9; `*` cannot be combined with others. "
                          "Support: Extended.")
    allow_headers: Optional[Annotated[list[HeaderName], Field(max_length=64),
                                      scalar_list_rules(_star_rule("AllowHeaders", "methods"), unique=True)]] = Field(
        None, description="Request headers allowed in the actual request (case-insensitive); `*` allows "
                          "all. A set, at most 64; `*` cannot be combined with others. Support: Extended.")
    expose_headers: Optional[Annotated[list[HeaderName], Field(max_length=64), scalar_list_rules(unique=True)]] = Field(
        None, description="Response headers that scripts may read besides the CORS-safelisted ones; `*` "
                          "exposes all (without credentials). A set, at most 64. Support: Extended.")
    max_age: Optional[Annotated[int, Field(ge=1)]] = Field(
        5, description="Seconds a client may cache the preflight answer (`Access-Control-Max-Age`). "
                       "Default 5, minimum 1. Support: Extended.")



class GRPCAuthConfig(GWModel):
    """Settings for an Envoy ext_authz gRPC authorization server."""

    allowed_headers: Optional[Annotated[list[str], scalar_list_rules(unique=True)]] = Field(
        None, description="Client request headers sent to the authorization server; empty means all.")


class HTTPAuthConfig(GWModel):
    """Settings for an HTTP authorization server."""

    path: Optional[Annotated[str, StringConstraints(max_length=1024, pattern=PATH_CHARS)]] = Field(
        None, description="Prefix added to the client's path when calling the authorization server; "
                          "empty means none.")
    allowed_headers: Optional[Annotated[list[str], scalar_list_rules(unique=True)]] = Field(
        None, description="Extra client request headers sent to the authorization server (Host, Method, "
                          "Path, Content-Length and Authorization are always sent).")
    allowed_response_headers: Optional[Annotated[list[str], scalar_list_rules(unique=True)]] = Field(
        None, description="Headers of the authorization response copied into the request to the "
                          "backend; empty means all except Authority/Host.")


class ForwardBodyConfig(GWModel):
    """Whether and how much of the request body goes to the authorization server."""

    max_size: Optional[Annotated[int, Field(ge=0, le=65535)]] = Field(
        None, description="Largest body (bytes) buffered and forwarded; 0 or unset forwards no body.")


class HTTPExternalAuthFilter(GWModel):
    """Asks an external service to authenticate (and possibly authorize) each
    request before it is forwarded; fails closed. Support: Extended. Channel:
    experimental only. CEL keeps `protocol` and `grpc`/`http` consistent."""

    protocol: Literal["HTTP", "GRPC"] = Field(
        description="Protocol spoken by the authorization server: `GRPC` (Envoy ext_authz) or `HTTP` "
                    "(a 200 answer allows the request). Required.")
    backend_ref: BackendObjectReference = Field(
        description="The authorization server. Required.")
    grpc: Optional[GRPCAuthConfig] = Field(None, description="Settings for protocol GRPC.")
    http: Optional[HTTPAuthConfig] = Field(None, description="Settings for protocol HTTP.")
    forward_body: Optional[ForwardBodyConfig] = Field(
        None, description="Forward (part of) the request body; unset forwards none.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        e = []
        if self.protocol == "GRPC" and self.grpc is None:
            e.append(cel_error("grpc must be specified when protocol is set to 'GRPC'"))
        if self.grpc is not None and self.protocol != "GRPC":
            e.append(cel_error("protocol must be 'GRPC' when grpc is set"))
        if self.protocol == "HTTP" and self.http is None:
            e.append(cel_error("http must be specified when protocol is set to 'HTTP'"))
        if self.http is not None and self.protocol != "HTTP":
            e.append(cel_error("protocol must be 'HTTP' when http is set"))
        return e


_FILTER_FIELDS = (
    ("request_header_modifier", "requestHeaderModifier", "RequestHeaderModifier"),
    ("response_header_modifier", "responseHeaderModifier", "ResponseHeaderModifier"),
    ("request_mirror", "requestMirror", "RequestMirror"),
    ("request_redirect", "requestRedirect", "RequestRedirect"),
    ("url_rewrite", "urlRewrite", "URLRewrite"),
    ("cors", "cors", "CORS"),
    ("external_auth", "externalAuth", "ExternalAuth"),
    ("extension_ref", "extensionRef", "ExtensionRef"),
)


def filter_pair_errors(f, fields, channel: str) -> list[InitErrorDetails]:
    """`filter.X must be nil / must be specified` rules of a filter union."""
    e = []
    for attr, json_name, type_name in fields:
        if attr == "external_auth" and channel != "experimental":
            continue
        value = getattr(f, attr, None)
        if value is not None and f.type != type_name:
            e.append(cel_error(f"filter.{json_name} must be nil if the filter.type is not {type_name}"))
        if value is None and f.type == type_name:
            e.append(cel_error(f"filter.{json_name} must be specified for {type_name} filter.type"))
    return e


class HTTPRouteFilter(GWModel):
    """One processing step for a matching request or its response. Exactly the
    field named by `type` must be set. Support depends on the type."""

    type: Literal["RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect",
                  "URLRewrite", "ExtensionRef", "CORS", "ExternalAuth"] = Field(
        description="Which filter this is. Core: RequestHeaderModifier, RequestRedirect. Extended: "
                    "ResponseHeaderModifier, RequestMirror, URLRewrite, CORS (and ExternalAuth, "
                    "experimental channel only). Implementation-specific: ExtensionRef (for custom "
                    "filters). A custom filter that cannot be resolved must not be skipped: matching "
                    "requests get an HTTP error. Required.")
    request_header_modifier: Optional[HTTPHeaderFilter] = Field(
        None, description="Changes request headers before forwarding. Support: Core (Extended inside a "
                          "backendRef).")
    response_header_modifier: Optional[HTTPHeaderFilter] = Field(
        None, description="Changes response headers before they reach the client. Support: Extended.")
    request_mirror: Optional[HTTPRequestMirrorFilter] = Field(
        None, description="Mirrors requests to another backend; may be repeated in a rule. Support: "
                          "Extended.")
    request_redirect: Optional[HTTPRequestRedirectFilter] = Field(
        None, description="Answers with a redirect instead of forwarding. Support: Core (Extended inside "
                          "a backendRef).")
    url_rewrite: Optional[HTTPURLRewriteFilter] = Field(
        None, description="Rewrites host and/or path while forwarding. Support: Extended.")
    cors: Optional[HTTPCORSFilter] = Field(
        None, description="Handles CORS (preflight answers and response headers). Support: Extended.")
    external_auth: Annotated[Optional[HTTPExternalAuthFilter], ExperimentalOnly] = Field(
        None, description="Sends request details to an external auth service first; fails closed. "
                          "Support: Extended. Channel: experimental only.",
        json_schema_extra=EXPERIMENTAL)
    extension_ref: Optional[LocalObjectReference] = Field(
        None, description="Points to an implementation-specific filter object in the same namespace "
                          "(e.g. group `networking.example.net`). Not for Core/Extended filters; may be "
                          "repeated. Support: Implementation-specific.")

    @field_validator("type")
    @classmethod
    def _type_in_channel(cls, v: str, info: ValidationInfo) -> str:
        if v == "ExternalAuth" and channel_of(info) != "experimental":
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": ", ".join(repr(t) for t in FILTER_TYPES_STANDARD[:-1])
                                       + " or " + repr(FILTER_TYPES_STANDARD[-1])})
        return v

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return filter_pair_errors(self, _FILTER_FIELDS, channel)


def http_filter_list_errors(filters: Optional[list[HTTPRouteFilter]]) -> list[InitErrorDetails]:
    """CEL rules upstream puts on a `filters` list (rule or backendRef)."""
    if not filters:
        return []
    types = [f.type for f in filters]
    e = []
    if "RequestRedirect" in types and "URLRewrite" in types:
        e.append(cel_error("May specify either httpRouteFilterRequestRedirect or "
                           "httpRouteFilterRequestRewrite, but not both", ".filters", node_type="array"))
    for t in ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "CORS"):
        if types.count(t) > 1:
            e.append(cel_error(f"{t} filter cannot be repeated", ".filters", node_type="array"))
    return e


HTTP_FILTERS_DESCRIPTION = (
    "Processing steps for matching requests, applied in order where possible. Core filters must be "
    "supported by every implementation, Extended ones are encouraged, custom (ExtensionRef) ones have no "
    "portability guarantee. RequestRedirect and URLRewrite cannot be combined; RequestHeaderModifier, "
    "ResponseHeaderModifier, RequestRedirect, URLRewrite and CORS may each appear once (RequestMirror and "
    "ExtensionRef may repeat). Incompatible or unsupported combinations may make the rule invalid "
    "(reason `IncompatibleFilters`). At most 16.")


class HTTPBackendRef(BackendRef):
    """A backend of an HTTPRoute rule, with optional filters for the requests
    sent to it. Invalid when it names an unknown kind (`InvalidKind`), a missing
    object (`BackendNotFound`), another namespace without a ReferenceGrant
    (`RefNotPermitted`) or a Service port with an incompatible appProtocol
    (`UnsupportedProtocol`); its share of requests then gets HTTP 500.
    Support: Core for Service; weight Core."""

    filters: Optional[Annotated[list[HTTPRouteFilter], Field(max_length=16)]] = Field(
        None, description="Filters applied only to requests forwarded to this backend. Support: "
                          "Implementation-specific (prefer the rule's filters). Same constraints as the "
                          "rule's filters; at most 16.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return super()._cel(channel) + http_filter_list_errors(self.filters)


class HTTPRouteTimeouts(GWModel):
    """Timeouts of a rule, as GEP-2257 durations; `0s` disables a timeout.
    Support: Extended. CEL: backendRequest <= request."""

    request: Optional[Duration] = Field(
        None, description="Longest time the gateway may take to answer the whole request; when it "
                          "expires the gateway answers with a timeout error (504). `0s` disables it; "
                          "unset is implementation-specific. Support: Extended.")
    backend_request: Optional[Duration] = Field(
        None, description="Longest time for one request from the gateway to a backend (a client request "
                          "may cause several, e.g. with retries). Must not exceed `request`. `0s` disables "
                          "it. Support: Extended.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        if (self.request is not None and self.backend_request is not None
                and duration_ms(self.request) != 0
                and duration_ms(self.backend_request) > duration_ms(self.request)):
            return [cel_error("backendRequest timeout cannot be longer than request timeout")]
        return []


class HTTPRouteRetry(GWModel):
    """When to retry a request to a backend (connection errors always
    qualify). Support: Extended. Channel: experimental only."""

    codes: Optional[Annotated[list[Annotated[int, Field(ge=400, le=599)]], scalar_list_rules(unique=True)]] = Field(
        None, description="HTTP status codes (400-599) that trigger a retry; 500, 502, 503 and 504 must be "
                          "supported. Unique. Support: Extended.")
    attempts: Optional[Annotated[int, Field(ge=1)]] = Field(
        None, description="Most retries of one backend request (>= 1); after that the gateway returns "
                          "an error. Unset is implementation-specific. Support: Extended.")
    backoff: Optional[Duration] = Field(
        None, description="Minimum wait between attempts (GEP-2257 duration). The whole sequence still "
                          "ends at the rule's request timeout. Support: Extended.")


def _prefix_rewrite(f) -> tuple[bool, bool]:
    """(redirect with replacePrefixMatch, rewrite with replacePrefixMatch)."""
    rr = f.request_redirect
    ur = f.url_rewrite
    r1 = bool(rr is not None and rr.path is not None and rr.path.type == "ReplacePrefixMatch"
              and rr.path.replace_prefix_match is not None)
    r2 = bool(ur is not None and ur.path is not None and ur.path.type == "ReplacePrefixMatch"
              and ur.path.replace_prefix_match is not None)
    return r1, r2


class HTTPRouteRule(GWModel):
    """Matches requests (`matches`), processes them (`filters`) and forwards
    them (`backendRefs`)."""

    name: Optional[SectionName] = Field(
        None, description="Name of the rule, unique within the Route when set; can be targeted as a "
                          "section. Support: Extended.")
    matches: Optional[Annotated[list[HTTPRouteMatch], Field(max_length=64)]] = Field(
        default_factory=_default_matches,
        description="Conditions; the rule applies when any one of them matches (they are ORed). Default "
                    "a single PathPrefix `/` match (every request). Across all Routes, precedence goes "
                    "to an Exact path, then the longest prefix, then a method match, then the most "
                    "header matches, then the most query matches; then the oldest Route, then "
                    "namespace/name order; within a Route, the first rule. At most 64 (128 per Route).")
    filters: Optional[Annotated[list[HTTPRouteFilter], Field(max_length=16)]] = Field(
        None, description=HTTP_FILTERS_DESCRIPTION + " Support: Core.")
    backend_refs: Optional[Annotated[list[HTTPBackendRef], Field(max_length=16)]] = Field(
        None, description="Backends for matching requests, chosen by weight. Requests that would go to an "
                          "invalid backend get HTTP 500 (503 is allowed for a Service without ready "
                          "endpoints); with no valid backend and no filters, all get 500. At most 16. "
                          "Support: Core for Service, Extended for ServiceImport, Implementation-specific "
                          "otherwise; weight Core.")
    timeouts: Optional[HTTPRouteTimeouts] = Field(
        None, description="Request and backend-request timeouts. Support: Extended.")
    retry: Annotated[Optional[HTTPRouteRetry], ExperimentalOnly] = Field(
        None, description="Retries of backend requests. Support: Extended. Channel: experimental only.",
        json_schema_extra=EXPERIMENTAL)
    session_persistence: Annotated[Optional[SessionPersistence], ExperimentalOnly] = Field(
        None, description="Session affinity for this rule. Support: Extended. Channel: experimental only.",
        json_schema_extra=EXPERIMENTAL)

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        e = []
        filters = self.filters or []
        backends = self.backend_refs or []
        matches = self.matches if self.matches is not None else _default_matches()

        def one_prefix_match() -> bool:
            return (len(matches) == 1 and matches[0].path is not None
                    and matches[0].path.type == "PathPrefix")

        if backends and any(f.request_redirect is not None for f in filters):
            e.append(cel_error("RequestRedirect filter must not be used together with backendRefs"))
        flags = [_prefix_rewrite(f) for f in filters]
        if sum(1 for a, _ in flags if a) == 1 and not one_prefix_match():
            e.append(cel_error("When using RequestRedirect filter with path.replacePrefixMatch, exactly one "
                               "PathPrefix match must be specified"))
        if sum(1 for _, b in flags if b) == 1 and not one_prefix_match():
            e.append(cel_error("When using URLRewrite filter with path.replacePrefixMatch, exactly one "
                               "PathPrefix match must be specified"))
        bflags = [[_prefix_rewrite(f) for f in (b.filters or [])] for b in backends]
        if sum(1 for fl in bflags if sum(1 for a, _ in fl if a) == 1) == 1 and not one_prefix_match():
            e.append(cel_error("Within backendRefs, when using RequestRedirect filter with "
                               "path.replacePrefixMatch, exactly one PathPrefix match must be specified"))
        if sum(1 for fl in bflags if sum(1 for _, b in fl if b) == 1) == 1 and not one_prefix_match():
            e.append(cel_error("Within backendRefs, When using URLRewrite filter with "
                               "path.replacePrefixMatch, exactly one PathPrefix match must be specified"))
        e.extend(http_filter_list_errors(self.filters))
        return e


def _default_rules() -> list[HTTPRouteRule]:
    return [HTTPRouteRule(matches=_default_matches())]


class HTTPRouteSpec(CommonRouteSpec):
    """Desired state of an HTTPRoute."""

    hostnames: Optional[Annotated[list[Hostname], Field(max_length=16)]] = Field(
        None,
        description="Hostnames matched against the Host header (its port ignored). A leading `*.` "
                    "label matches any subdomain (`*.example.com` matches `foo.example.com` and "
                    "`a.foo.example.com` but not `example.com`); IPs are not allowed. When both the "
                    "listener and the Route set hostnames, at least one must intersect or the Route is "
                    "not accepted, and Route hostnames outside the listener's are ignored. Between "
                    "Routes, the longest matching non-wildcard hostname wins, then the longest "
                    "matching hostname. At most 16. Support: Core.")
    rules: Optional[Annotated[list[HTTPRouteRule], Field(min_length=1, max_length=16)]] = Field(
        default_factory=_default_rules,
        description="Matchers, filters and backends. Default one rule matching every request (PathPrefix "
                    "`/`) with no backends. 1-16 rules, at most 128 matches in total; rule names must be "
                    "unique (checked by the experimental CRD).")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return super()._cel(channel) + total_matches(self.rules) + rule_name_unique(self.rules, channel)


class HTTPRoute(Resource):
    """Routes HTTP requests: matches them by hostname, path, headers, query
    parameters and method, processes them with filters and sends them to
    weighted backends. Attaches to Gateway listeners (or to Services for mesh
    traffic) through `spec.parentRefs`."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"
    KIND: ClassVar[str] = "HTTPRoute"

    spec: HTTPRouteSpec = Field(description="Desired state of the HTTPRoute. Required.")


class HTTPRouteV1Beta1(HTTPRoute):
    """HTTPRoute served as `gateway.networking.k8s.io/v1beta1` (same schema as v1)."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1beta1"
