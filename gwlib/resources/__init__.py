"""Typed models of the Kubernetes Gateway API (release v1.6.1) and of the core
objects used beside it, with the API server's validation: schema constraints,
defaults and every CEL rule of the CRDs.

Validate a dict exactly as the API server would (all problems at once)::

    from gwlib.resources import model_for
    cls = model_for(doc["apiVersion"], doc["kind"])
    obj = cls.model_validate(doc, context={"channel": "standard"})

``obj.to_dict()`` gives back what was written; ``obj.to_dict(defaults=True)``
gives the object with every default filled in, as the API server stores it.
"""
from __future__ import annotations

from .base import GenericObject, GWModel, ObjectMeta, Resource
from .common import (
    BackendObjectReference,
    BackendRef,
    CommonRouteSpec,
    Fraction,
    LabelSelector,
    LocalObjectReference,
    ObjectReference,
    ParentReference,
    SecretObjectReference,
    SessionPersistence,
    duration_ms,
)
from .core import Deployment, Ingress, Namespace, Secret, Service
from .gateway import (
    AllowedRoutes,
    Gateway,
    GatewayClass,
    GatewayClassSpec,
    GatewayClassV1Beta1,
    GatewaySpec,
    GatewayV1Beta1,
    Listener,
    ListenerTLSConfig,
    RouteGroupKind,
    RouteNamespaces,
)
from .grpcroute import GRPCBackendRef, GRPCRoute, GRPCRouteFilter, GRPCRouteMatch, GRPCRouteRule, GRPCRouteSpec
from .httproute import (
    HTTPBackendRef,
    HTTPHeaderFilter,
    HTTPPathMatch,
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
    HTTPRouteSpec,
    HTTPRouteV1Beta1,
)
from .l4routes import (
    TCPRoute,
    TCPRouteV1Alpha2,
    TLSRoute,
    TLSRouteV1Alpha2,
    TLSRouteV1Alpha3,
    UDPRoute,
    UDPRouteV1Alpha2,
)
from .referencegrant import ReferenceGrant, ReferenceGrantV1Beta1
from .registry import KINDS, model_for, served

__all__ = [
    "Resource", "GenericObject", "GWModel", "ObjectMeta", "model_for", "served", "KINDS",
    "GatewayClass", "GatewayClassV1Beta1", "Gateway", "GatewayV1Beta1",
    "HTTPRoute", "HTTPRouteV1Beta1", "GRPCRoute",
    "TCPRoute", "TCPRouteV1Alpha2", "UDPRoute", "UDPRouteV1Alpha2",
    "TLSRoute", "TLSRouteV1Alpha2", "TLSRouteV1Alpha3",
    "ReferenceGrant", "ReferenceGrantV1Beta1",
    "Namespace", "Service", "Secret", "Deployment", "Ingress",
    # nested models often used by builders and the controller
    "GatewayClassSpec", "GatewaySpec", "Listener", "ListenerTLSConfig", "AllowedRoutes", "RouteNamespaces",
    "RouteGroupKind", "HTTPRouteSpec", "HTTPRouteRule", "HTTPRouteMatch", "HTTPPathMatch", "HTTPRouteFilter",
    "HTTPHeaderFilter", "HTTPBackendRef", "GRPCRouteSpec", "GRPCRouteRule", "GRPCRouteMatch", "GRPCRouteFilter",
    "GRPCBackendRef", "ParentReference", "BackendObjectReference", "BackendRef", "LocalObjectReference",
    "SecretObjectReference", "ObjectReference", "LabelSelector", "Fraction", "SessionPersistence",
    "CommonRouteSpec", "duration_ms",
]
