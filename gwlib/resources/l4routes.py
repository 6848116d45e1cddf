"""TCPRoute, UDPRoute and TLSRoute as in Gateway API v1.6.1: the v1 versions
(standard channel) and the deprecated alpha versions that only the
experimental channel still serves."""
from __future__ import annotations

import re
from typing import Annotated, ClassVar, Optional

from pydantic import Field
from pydantic_core import InitErrorDetails

from .base import GWModel, Resource, cel_error, scalar_list_rules
from .common import BackendRef, CommonRouteSpec, Hostname, SectionName, is_ip

_RE_1123 = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$")

RULE_NAME_DESCRIPTION = "Name of the rule, unique within the Route when set."


# =========================================================================== TCPRoute
class TCPRouteRule(GWModel):
    """Where the connections of a TCPRoute go."""

    name: Optional[SectionName] = Field(None, description=RULE_NAME_DESCRIPTION)
    backend_refs: Annotated[list[BackendRef], Field(min_length=1, max_length=16)] = Field(
        description="Backends for the connections, chosen by weight. Connections for an invalid backend "
                    "(missing object, Service without endpoints) must be actively rejected, in proportion "
                    "to its weight. 1-16. Required. Support: Extended for Service; weight Extended.")


class TCPRouteSpec(CommonRouteSpec):
    """Desired state of a TCPRoute."""

    rules: Annotated[list[TCPRouteRule], Field(min_length=1, max_length=1)] = Field(
        description="Exactly one rule. Required.")


class TCPRoute(Resource):
    """Forwards TCP connections arriving on a Gateway listener (protocol TCP)
    to weighted backends. Standard channel since v1.6."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"
    KIND: ClassVar[str] = "TCPRoute"

    spec: TCPRouteSpec = Field(description="Desired state of the TCPRoute. Required.")


class TCPRouteSpecV1Alpha2(CommonRouteSpec):
    """Desired state of a v1alpha2 TCPRoute."""

    rules: Annotated[list[TCPRouteRule], Field(min_length=1, max_length=16)] = Field(
        description="Rules (1-16). Required.")


class TCPRouteV1Alpha2(TCPRoute):
    """Deprecated `v1alpha2` TCPRoute; served only by the experimental CRD."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1alpha2"

    spec: TCPRouteSpecV1Alpha2 = Field(description="Desired state of the TCPRoute. Required.")


# =========================================================================== UDPRoute
class UDPRouteRule(GWModel):
    """Where the datagrams of a UDPRoute go."""

    name: Optional[SectionName] = Field(None, description=RULE_NAME_DESCRIPTION)
    backend_refs: Annotated[list[BackendRef], Field(min_length=1, max_length=16)] = Field(
        description="Backends for the packets, chosen by weight. Packets for an invalid backend must be "
                    "dropped, in proportion to its weight. 1-16. Required. Support: Extended for Service; "
                    "weight Extended.")


class UDPRouteSpec(CommonRouteSpec):
    """Desired state of a UDPRoute."""

    rules: Annotated[list[UDPRouteRule], Field(min_length=1, max_length=1)] = Field(
        description="Exactly one rule. Required.")


class UDPRoute(Resource):
    """Forwards UDP datagrams arriving on a Gateway listener (protocol UDP) to
    weighted backends. Standard channel since v1.6."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"
    KIND: ClassVar[str] = "UDPRoute"

    spec: UDPRouteSpec = Field(description="Desired state of the UDPRoute. Required.")


class UDPRouteSpecV1Alpha2(CommonRouteSpec):
    """Desired state of a v1alpha2 UDPRoute."""

    rules: Annotated[list[UDPRouteRule], Field(min_length=1, max_length=16)] = Field(
        description="Rules (1-16). Required.")


class UDPRouteV1Alpha2(UDPRoute):
    """Deprecated `v1alpha2` UDPRoute; served only by the experimental CRD."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1alpha2"

    spec: UDPRouteSpecV1Alpha2 = Field(description="Desired state of the UDPRoute. Required.")


# =========================================================================== TLSRoute
class TLSRouteRule(GWModel):
    """Where the TLS streams of a TLSRoute go."""

    name: Optional[SectionName] = Field(None, description=RULE_NAME_DESCRIPTION)
    backend_refs: Annotated[list[BackendRef], Field(min_length=1, max_length=16)] = Field(
        description="Backends for the streams, chosen by weight. Streams for an invalid backend must be "
                    "rejected, in proportion to its weight. 1-16. Required. Support: Core for Service, "
                    "Extended for ServiceImport, Implementation-specific otherwise; weight Extended.")


TLS_HOSTNAMES_DESCRIPTION = (
    "SNI hostnames matched against the TLS ClientHello; a leading `*.` label matches any subdomain; IPs are "
    "not allowed. When the listener also has a hostname they must intersect, else the Route is not "
    "accepted for that listener. Core: a TLS listener in Passthrough mode; Extended: Terminate mode.")


def tls_hostname_errors(hostnames: Optional[list[str]]) -> list[InitErrorDetails]:
    if not hostnames:
        return []
    e = []
    p = None
    if not all(not is_ip(h) for h in hostnames):
        e.append(cel_error("Hostnames cannot contain an IP", p, node_type="array"))
    if not all(_RE_1123.match(h) for h in hostnames if "*" not in h):
        e.append(cel_error("Hostnames must be valid based on RFC-1123", p, node_type="array"))
    if not all(h.startswith("*.") and _RE_1123.match(h[2:]) for h in hostnames if "*" in h):
        e.append(cel_error("Wildcards on hostnames must be the first label, and the rest of hostname must be "
                           "valid based on RFC-1123", p, node_type="array"))
    return e


class TLSRouteSpec(CommonRouteSpec):
    """Desired state of a TLSRoute. A TLSRoute attaches to listeners of
    protocol TLS."""

    hostnames: Annotated[list[Hostname], Field(min_length=1, max_length=16),
                         scalar_list_rules(tls_hostname_errors)] = Field(
        description=TLS_HOSTNAMES_DESCRIPTION + " 1-16. Required.")
    rules: Annotated[list[TLSRouteRule], Field(min_length=1, max_length=1)] = Field(
        description="Exactly one rule. Required.")

    def _cel(self, channel: str) -> list[InitErrorDetails]:
        return super()._cel(channel)


class TLSRoute(Resource):
    """Routes TLS streams by SNI hostname, without (Passthrough) or after
    (Terminate) ending TLS at the Gateway. Standard channel since v1.5."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"
    KIND: ClassVar[str] = "TLSRoute"

    spec: TLSRouteSpec = Field(description="Desired state of the TLSRoute. Required.")


class TLSRouteV1Alpha3(TLSRoute):
    """Deprecated `v1alpha3` TLSRoute (schema as v1); served only by the
    experimental CRD."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1alpha3"


class TLSRouteSpecV1Alpha2(CommonRouteSpec):
    """Desired state of a v1alpha2 TLSRoute."""

    hostnames: Optional[Annotated[list[Hostname], Field(max_length=16)]] = Field(
        None, description=TLS_HOSTNAMES_DESCRIPTION + " At most 16.")
    rules: Annotated[list[TLSRouteRule], Field(min_length=1, max_length=16)] = Field(
        description="Rules (1-16). Required.")


class TLSRouteV1Alpha2(TLSRoute):
    """Deprecated `v1alpha2` TLSRoute; served only by the experimental CRD."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1alpha2"

    spec: TLSRouteSpecV1Alpha2 = Field(description="Desired state of the TLSRoute. Required.")
