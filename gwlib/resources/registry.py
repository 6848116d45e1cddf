"""Which model validates which apiVersion/kind, and which versions the
Gateway API v1.6.1 CRDs serve in each channel."""
from __future__ import annotations

from typing import Optional

from .base import Resource
from .core import Deployment, Ingress, Namespace, Secret, Service
from .gateway import Gateway, GatewayClass, GatewayClassV1Beta1, GatewayV1Beta1
from .grpcroute import GRPCRoute
from .httproute import HTTPRoute, HTTPRouteV1Beta1
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

_MODELS: tuple[type[Resource], ...] = (
    GatewayClass, GatewayClassV1Beta1,
    Gateway, GatewayV1Beta1,
    HTTPRoute, HTTPRouteV1Beta1,
    GRPCRoute,
    TCPRoute, TCPRouteV1Alpha2,
    UDPRoute, UDPRouteV1Alpha2,
    TLSRoute, TLSRouteV1Alpha2, TLSRouteV1Alpha3,
    ReferenceGrant, ReferenceGrantV1Beta1,
    Namespace, Service, Secret, Deployment, Ingress,
)

_BY_KEY: dict[tuple[str, str], type[Resource]] = {(m.API_VERSION, m.KIND): m for m in _MODELS}

#: every (apiVersion, kind) gwlib has a model for
KINDS: tuple[tuple[str, str], ...] = tuple(_BY_KEY)

GATEWAY_GROUPS = ("gateway.networking.k8s.io", "gateway.networking.x-k8s.io")

# (group, kind) -> {version: channels serving it} at Gateway API v1.6.1
_BOTH = ("standard", "experimental")
_EXP = ("experimental",)
_SERVED: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("gateway.networking.k8s.io", "GatewayClass"): {"v1": _BOTH, "v1beta1": _BOTH},
    ("gateway.networking.k8s.io", "Gateway"): {"v1": _BOTH, "v1beta1": _BOTH},
    ("gateway.networking.k8s.io", "HTTPRoute"): {"v1": _BOTH, "v1beta1": _BOTH},
    ("gateway.networking.k8s.io", "GRPCRoute"): {"v1": _BOTH},
    ("gateway.networking.k8s.io", "ReferenceGrant"): {"v1": _BOTH, "v1beta1": _BOTH},
    ("gateway.networking.k8s.io", "BackendTLSPolicy"): {"v1": _BOTH, "v1alpha3": _EXP},
    ("gateway.networking.k8s.io", "ListenerSet"): {"v1": _BOTH},
    ("gateway.networking.k8s.io", "TLSRoute"): {"v1": _BOTH, "v1alpha2": _EXP, "v1alpha3": _EXP},
    ("gateway.networking.k8s.io", "TCPRoute"): {"v1": _BOTH, "v1alpha2": _EXP},
    ("gateway.networking.k8s.io", "UDPRoute"): {"v1": _BOTH, "v1alpha2": _EXP},
    ("gateway.networking.x-k8s.io", "XBackend"): {"v1alpha1": _EXP},
    ("gateway.networking.x-k8s.io", "XBackendTrafficPolicy"): {"v1alpha1": _EXP},
    ("gateway.networking.x-k8s.io", "XMesh"): {"v1alpha1": _EXP},
}


def model_for(api_version: str, kind: str) -> Optional[type[Resource]]:
    """The model class for ``apiVersion``/``kind``, or None (use GenericObject)."""
    return _BY_KEY.get((api_version, kind))


def served(api_version: str, kind: str, channel: str = "standard") -> bool:
    """Whether the Gateway API v1.6.1 CRDs of ``channel`` serve this version of
    this kind.  Kinds outside the Gateway API groups are not governed by those
    CRDs and are reported as served."""
    group, _, version = api_version.rpartition("/")
    if group not in GATEWAY_GROUPS:
        return True
    versions = _SERVED.get((group, kind))
    if versions is None:
        return False
    return channel in versions.get(version, ())
