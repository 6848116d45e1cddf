"""GRPCRoute (gateway.networking.k8s.io/v1) as in Gateway API v1.6.1."""
from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Optional

from pydantic import Field, StringConstraints
from pydantic_core import InitErrorDetails

from .base import EXPERIMENTAL, ExperimentalOnly, GWModel, Resource, cel_error
from .common import (
    BackendRef,
    CommonRouteSpec,
    HeaderName,
    Hostname,
    LocalObjectReference,
    SectionName,
    SessionPersistence,
    rule_name_unique,
    total_matches,
)
from .httproute import HTTPHeaderFilter, HTTPRequestMirrorFilter, filter_pair_errors

SERVICE_PATTERN = r"^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$"
METHOD_PATTERN = r"^[A-Za-z_][A-Za-z_0-9]*$"
_RE_SERVICE = re.compile(r"^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$", re.IGNORECASE)
_RE_METHOD = re.compile(METHOD_PATTERN)


class GRPCMethodMatch(GWModel):
    """Matches the gRPC service and/or method (the request path
    `/service/method`). At least one of them must be given."""

    type: Optional[Literal["Exact", "RegularExpression"]] = Field(
        "Exact", description="How service and method are compared: `Exact` (default; Support: Core with both "
                             "service and method, Implementation-specific with only a method) or "
                             "`RegularExpression` (Support: Implementation-specific).")
    service: Optional[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        None, description="Fully qualified service name, e.g. `pkg.EchoService`; empty matches every "
                          "service. Max 1024 characters.")
    method: Optional[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        None, description="Method name, e.g. `Echo`; empty matches every method. Max 1024 characters.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        e = []
        if self.type is not None and self.service is None and self.method is None:
            e.append(cel_error("One or both of 'service' or 'method' must be specified"))
        exact = self.type is None or self.type == "Exact"
        if exact and self.service is not None and not _RE_SERVICE.match(self.service):
            e.append(cel_error("service must only contain valid characters (matching " + SERVICE_PATTERN + ")"))
        if exact and self.method is not None and not _RE_METHOD.match(self.method):
            e.append(cel_error("method must only contain valid characters (matching " + METHOD_PATTERN + ")"))
        return e


class GRPCHeaderMatch(GWModel):
    """Matches one gRPC request header (metadata)."""

    type: Optional[Literal["Exact", "RegularExpression"]] = Field(
        "Exact", description="How `value` is compared: `Exact` (default; Support: Core) or `RegularExpression` "
                             "(Support: Implementation-specific).")
    name: HeaderName = Field(description="Header name, case-insensitive; when several entries name the same "
                                         "header only the first counts. Required.")
    value: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(
        description="Header value to match (1-4096 characters). Required.")


class GRPCRouteMatch(GWModel):
    """Conditions a gRPC request must meet; all given are ANDed."""

    method: Optional[GRPCMethodMatch] = Field(
        None, description="Service/method matcher; when unset every service and method matches.")
    LIST_KEYS: ClassVar[dict] = {"headers": ("name",)}

    headers: Optional[Annotated[list[GRPCHeaderMatch], Field(max_length=16)]] = Field(
        None, description="Header matchers; all must match. Names unique (list-map key `name`); at most 16.")


_GRPC_FILTER_FIELDS = (
    ("request_header_modifier", "requestHeaderModifier", "RequestHeaderModifier"),
    ("response_header_modifier", "responseHeaderModifier", "ResponseHeaderModifier"),
    ("request_mirror", "requestMirror", "RequestMirror"),
    ("extension_ref", "extensionRef", "ExtensionRef"),
)


class GRPCRouteFilter(GWModel):
    """One processing step for a matching gRPC request or its response.
    Exactly the field named by `type` must be set."""

    type: Literal["ResponseHeaderModifier", "RequestHeaderModifier", "RequestMirror", "ExtensionRef"] = Field(
        description="Which filter this is. Core: RequestHeaderModifier. Extended: ResponseHeaderModifier, "
                    "RequestMirror. Implementation-specific: ExtensionRef. A custom filter that cannot be "
                    "resolved must not be skipped. Required.")
    request_header_modifier: Optional[HTTPHeaderFilter] = Field(
        None, description="Changes request headers before forwarding. Support: Core.")
    response_header_modifier: Optional[HTTPHeaderFilter] = Field(
        None, description="Changes response headers. Support: Extended.")
    request_mirror: Optional[HTTPRequestMirrorFilter] = Field(
        None, description="Mirrors requests to another backend; may be repeated. Support: Extended.")
    extension_ref: Optional[LocalObjectReference] = Field(
        None, description="Points to an implementation-specific filter object in the same namespace. "
                          "Support: Implementation-specific.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return filter_pair_errors(self, _GRPC_FILTER_FIELDS, channel)


def grpc_filter_list_errors(filters) -> list[InitErrorDetails]:
    if not filters:
        return []
    types = [f.type for f in filters]
    return [cel_error(f"{t} filter cannot be repeated", ".filters", node_type="array")
            for t in ("RequestHeaderModifier", "ResponseHeaderModifier") if types.count(t) > 1]


class GRPCBackendRef(BackendRef):
    """A backend of a GRPCRoute rule. Invalid references get the same
    ResolvedRefs reasons as for HTTPRoute; their share of calls fails with
    UNAVAILABLE. Support: Core for Service."""

    filters: Optional[Annotated[list[GRPCRouteFilter], Field(max_length=16)]] = Field(
        None, description="Filters applied only to requests forwarded to this backend. Support: "
                          "Implementation-specific. At most 16.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return super()._cel(channel) + grpc_filter_list_errors(self.filters)


class GRPCRouteRule(GWModel):
    """Matches gRPC requests, processes them and forwards them."""

    name: Optional[SectionName] = Field(
        None, description="Name of the rule, unique within the Route when set. Support: Extended.")
    matches: Optional[Annotated[list[GRPCRouteMatch], Field(max_length=64)]] = Field(
        None, description="Conditions; the rule applies when any one matches. With none, every gRPC request "
                          "matches. Precedence: longest matching non-wildcard hostname, longest hostname, "
                          "longest service, longest method, most header matches; then oldest Route, then "
                          "namespace/name; then first rule. At most 64 (128 per Route).")
    filters: Optional[Annotated[list[GRPCRouteFilter], Field(max_length=16)]] = Field(
        None, description="Processing steps for matching requests. RequestHeaderModifier and "
                          "ResponseHeaderModifier may each appear once. Incompatible combinations may be "
                          "reported with reason IncompatibleFilters. At most 16. Support: Core.")
    backend_refs: Optional[Annotated[list[GRPCBackendRef], Field(max_length=16)]] = Field(
        None, description="Backends for matching requests, chosen by weight. Calls for invalid backends (or "
                          "all calls, when none is valid and there are no filters) fail with UNAVAILABLE. "
                          "At most 16. Support: Core for Service; weight Core.")
    session_persistence: Annotated[Optional[SessionPersistence], ExperimentalOnly] = Field(
        None, description="Session affinity for this rule. Support: Extended. Channel: experimental only.",
        json_schema_extra=EXPERIMENTAL)

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return grpc_filter_list_errors(self.filters)


class GRPCRouteSpec(CommonRouteSpec):
    """Desired state of a GRPCRoute."""

    hostnames: Optional[Annotated[list[Hostname], Field(max_length=16)]] = Field(
        None, description="Hostnames matched against the request authority (Host); a leading `*.` matches any "
                          "subdomain; no IPs. Must intersect with the listener hostname when both are set. "
                          "HTTPRoutes and GRPCRoutes on the same listener are not merged. At most 16. "
                          "Support: Core.")
    rules: Optional[Annotated[list[GRPCRouteRule], Field(max_length=16)]] = Field(
        None, description="Matchers, filters and backends. At most 16 rules and 128 matches in total; rule "
                          "names unique (checked by the experimental CRD).")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return super()._cel(channel) + total_matches(self.rules, absent=0) + rule_name_unique(self.rules, channel)


class GRPCRoute(Resource):
    """Routes gRPC calls by hostname, service, method and headers to weighted
    backends. Listeners must speak HTTP/2 (h2c on HTTP, ALPN on HTTPS).
    Support: Extended (the route kind as a whole)."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"
    KIND: ClassVar[str] = "GRPCRoute"

    spec: GRPCRouteSpec = Field(description="Desired state of the GRPCRoute. Required.")
