"""The reference router's model of the echo backends.

Like the upstream conformance echo server (``gateway-api/conformance/echo-basic``): the
backend reports what it received, and a request header
``X-Echo-Set-Header: Name:value,Other:value`` makes it set those response headers. For gRPC
the lab's own ``gwlib.echo.EchoService`` echoes any method (and honours
``X-Echo-Set-Header``); echo-basic's ``GrpcEcho`` (``gwlib.backends.grpcecho``) echoes
``Echo``/``EchoTwo``, answers other methods UNIMPLEMENTED and sets no response metadata.
"""
from __future__ import annotations

ECHO_SET_HEADER = "X-Echo-Set-Header"


def parse_set_header(value: str | None) -> list[tuple[str, str]]:
    """``"X-Foo:1,X-Bar: two"`` → ``[("X-Foo", "1"), ("X-Bar", "two")]`` (entries without
    a colon are ignored, as the echo server does)."""
    out: list[tuple[str, str]] = []
    if not value:
        return out
    for part in value.split(","):
        name, sep, val = part.partition(":")
        name = name.strip()
        if not sep or not name:
            continue
        out.append((name, val.strip()))
    return out


def response_headers(received_headers, grpc: dict | None = None) -> list[tuple[str, str]]:
    """The headers the echo backend sets on its response for the request it received.

    ``received_headers`` is a :class:`gwlib.filters.Headers` (or any object with ``get``);
    ``grpc`` the request's ``{"service", "method"}`` for a gRPC call. The upstream echo's
    gRPC service (:data:`gwlib.backends.grpcecho.GRPC_ECHO_SERVICE`) sets none: echo-basic's
    gRPC server ignores ``X-Echo-Set-Header``.
    """
    if grpc is not None and is_upstream_grpc(grpc):
        return []
    return parse_set_header(received_headers.get(ECHO_SET_HEADER))


def is_upstream_grpc(grpc: dict) -> bool:
    """Whether a gRPC call (``{"service", "method"}``) is for the upstream conformance echo's
    ``GrpcEcho`` (echo-basic's protobuf service) rather than the lab's own JSON echo."""
    from .backends.grpcecho import GRPC_ECHO_SERVICE
    return (grpc.get("service") or "") == GRPC_ECHO_SERVICE


def grpc_error(grpc: dict) -> tuple[int, str] | None:
    """``(grpc_status, message)`` the echo backend answers a gRPC call with instead of an
    echo, or None when it echoes. The lab's ``gwlib.echo.EchoService`` echoes any service
    and method; the upstream ``GrpcEcho`` echoes ``Echo`` and ``EchoTwo`` only — ``EchoThree``
    (declared, intentionally unimplemented) and unknown methods are UNIMPLEMENTED (12)."""
    if not is_upstream_grpc(grpc):
        return None
    from .backends.grpcecho import GRPC_UNIMPLEMENTED, unimplemented
    why = unimplemented(grpc.get("method") or "")
    return None if why is None else (GRPC_UNIMPLEMENTED, why)
