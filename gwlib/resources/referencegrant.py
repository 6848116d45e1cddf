"""ReferenceGrant (gateway.networking.k8s.io v1 and v1beta1) as in Gateway API v1.6.1."""
from __future__ import annotations

from typing import Annotated, ClassVar, Optional

from pydantic import Field

from .base import GWModel, Resource
from .common import Group, Kind, Namespace, ObjectName


class ReferenceGrantFrom(GWModel):
    """A kind of object, in one namespace, that is trusted to make references."""

    group: Group = Field(description="API group of the referring kind; `\"\"` is the core group. Required. "
                                     "Support: Core.")
    kind: Kind = Field(description="Referring kind. Core: `Gateway` (for certificate references), and "
                                   "`HTTPRoute`, `GRPCRoute`, `TLSRoute`, `TCPRoute`, `UDPRoute` (for backend "
                                   "references). Required.")
    namespace: Namespace = Field(description="Namespace the references come from. Required. Support: Core.")


class ReferenceGrantTo(GWModel):
    """A kind of object in this namespace that may be referenced."""

    group: Group = Field(description="API group of the referenced kind; `\"\"` is the core group. Required. "
                                     "Support: Core.")
    kind: Kind = Field(description="Referenced kind. Core: `Secret` (certificate references) and `Service` "
                                   "(backend references). Required.")
    name: Optional[ObjectName] = Field(None, description="Name of the one object that may be referenced; "
                                                         "when unset, every object of the kind in this "
                                                         "namespace.")


class ReferenceGrantSpec(GWModel):
    """Who may reference what in this namespace."""

    from_: Annotated[list[ReferenceGrantFrom], Field(min_length=1, max_length=16)] = Field(
        alias="from",
        description="Namespaces and kinds trusted to reference the objects in `to`; entries are ORed. "
                    "1-16. Required. Support: Core.")
    to: Annotated[list[ReferenceGrantTo], Field(min_length=1, max_length=16)] = Field(
        description="Objects of this namespace that may be referenced; entries are ORed. 1-16. Required. "
                    "Support: Core.")


class ReferenceGrant(Resource):
    """Allows references from other namespaces into this one (Route -> Service
    backend, Gateway -> Secret certificate). It lives in the namespace of the
    *target*. Every cross-namespace reference except Route -> Gateway
    attachment needs one; without it the reference is not permitted
    (`RefNotPermitted`), and removing it revokes the access."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1"
    KIND: ClassVar[str] = "ReferenceGrant"

    spec: ReferenceGrantSpec = Field(description="Desired state of the ReferenceGrant. Required.")


class ReferenceGrantV1Beta1(ReferenceGrant):
    """ReferenceGrant served as `gateway.networking.k8s.io/v1beta1` (same schema as v1)."""

    API_VERSION: ClassVar[str] = "gateway.networking.k8s.io/v1beta1"
