"""Echo backends for the local lab: what every Service that routes point at answers.

Like the Gateway API conformance echo server (``echo-basic``), an endpoint reports who it
is (``namespace``, ``service``, ``pod``, plus ``version`` and the Service ``port``) and
exactly what it received (``path``, ``host``, ``method``, ``proto``, ``headers``), and
``X-Echo-Set-Header: Name:value,Other:value`` sets response headers. Protocols: HTTP/1.1,
h2c, gRPC, TCP, UDP. Faults (error rate, added latency) are set per version at runtime.
gRPC: the lab's own ``gwlib.echo.EchoService`` (JSON messages, any method) and, exactly as
echo-basic serves it, the upstream ``gateway_api_conformance.echo_basic.grpcecho.GrpcEcho``
(protobuf messages: :mod:`gwlib.backends.grpcecho`), which cluster mode's echo backends
answer too.

* :class:`EchoFleet` - one supervised process hosting many :class:`EchoEndpoint` s;
  ``ensure``, ``remove``, ``set_fault``, ``clear_faults``, ``stats``, ``close``.
* :func:`http_request`, :func:`grpc_request`, :func:`tcp_request`, :func:`udp_request` -
  small clients for tests, the lab and notebooks.

The server side is ``gwlib.backends.server`` (``python -m gwlib.backends serve``); its
control channel is documented there. Names are imported lazily so that the server process
imports only what it needs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._common import GRPC_ECHO_METHOD, GRPC_SERVICE, EchoEndpoint, Fault

if TYPE_CHECKING:  # pragma: no cover
    from .client import GrpcReply, HttpClient, HttpReply, close_clients, grpc_request, http_request, tcp_request, udp_request
    from .fleet import EchoError, EchoFleet, VersionStats

_LAZY = {
    "EchoFleet": "fleet", "EchoError": "fleet", "VersionStats": "fleet",
    "HttpClient": "client", "HttpReply": "client", "GrpcReply": "client", "http_request": "client",
    "grpc_request": "client", "tcp_request": "client", "udp_request": "client", "close_clients": "client",
}

__all__ = ["GRPC_ECHO_METHOD", "GRPC_SERVICE", "EchoEndpoint", "Fault", *_LAZY]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'gwlib.backends' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
