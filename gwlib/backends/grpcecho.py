"""The gRPC service of the upstream conformance echo server, for every side that speaks it.

The Gateway API's echo server (``echo-basic``, kubernetes-sigs/gateway-api
``conformance/echo-basic``) serves gRPC when started with ``GRPC_ECHO_SERVER=1``: the
service :data:`GRPC_ECHO_SERVICE` of ``grpcecho.proto``, whose methods ``Echo`` and
``EchoTwo`` take an empty ``EchoRequest`` and answer an ``EchoResponse``::

    EchoResponse{assertions: Assertions{
        fully_qualified_method: "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo",
        headers: [Header{key, value}, ...],   # every incoming metadata entry, :authority too
        authority: "grpc.example.com",        # the :authority
        context: Context{namespace, ingress, service_name, pod},
        tls_assertions: ...}}                 # only on its TLS port

``EchoThree`` is declared and intentionally UNIMPLEMENTED; any other method of the service
is UNIMPLEMENTED too (grpc-go's "unknown method").

Three parts of gwlib use this module, so it imports nothing heavy: the lab's echo server
(:mod:`gwlib.backends.server` answers the service as echo-basic does), the lab's client
(:func:`gwlib.backends.grpc_request`, :class:`gwlib.lab.Lab`) and cluster mode
(:mod:`gwlib.cluster.echo`, which reads the real echo-basic's replies). The messages are
built with the protobuf runtime from :data:`PROTO` (no generated code, no ``.proto`` file at
run time); ``google.protobuf`` is imported at the first message built or read, never at
import time, so the echo server process starts without it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: package and service of the upstream ``grpcecho.proto`` (not the lab's own
#: ``gwlib.echo.EchoService``, JSON messages, any method)
GRPC_ECHO_SERVICE = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
#: the methods echo-basic implements
GRPC_ECHO_METHODS = ("Echo", "EchoTwo")
#: every method the service declares (``EchoThree`` is intentionally UNIMPLEMENTED)
GRPC_ECHO_DECLARED = ("Echo", "EchoTwo", "EchoThree")
GRPC_ECHO_PATH = f"/{GRPC_ECHO_SERVICE}/Echo"

GRPC_UNIMPLEMENTED = 12
GRPC_INTERNAL = 13

#: grpcecho.proto (proto3): message -> field number -> (name, type, repeated). Types are
#: ``string`` or another message of this table; every field is length-delimited.
PROTO: dict[str, dict[int, tuple[str, str, bool]]] = {
    "Header": {1: ("key", "string", False), 2: ("value", "string", False)},
    "Context": {1: ("namespace", "string", False), 2: ("ingress", "string", False),
                3: ("service_name", "string", False), 4: ("pod", "string", False)},
    "TLSAssertions": {1: ("version", "string", False), 2: ("negotiated_protocol", "string", False),
                      3: ("server_name", "string", False), 4: ("cipher_suite", "string", False),
                      5: ("peer_certificates", "string", True)},
    "Assertions": {1: ("fully_qualified_method", "string", False), 2: ("headers", "Header", True),
                   3: ("authority", "string", False), 4: ("context", "Context", False),
                   5: ("tls_assertions", "TLSAssertions", False)},
    "EchoRequest": {},
    "EchoResponse": {1: ("assertions", "Assertions", False), 2: ("request", "EchoRequest", False)},
}

_PACKAGE = GRPC_ECHO_SERVICE.rsplit(".", 1)[0]
_CLASSES: dict = {}


def _message_class(message: str):
    """The protobuf class of a message of :data:`PROTO` (built once, from the table, in a
    descriptor pool of gwlib's own: no generated code, no .proto file at run time)."""
    if not _CLASSES:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        field = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(name="gwlib/grpcecho.proto", package=_PACKAGE,
                                                   syntax="proto3")
        for name, fields in PROTO.items():
            msg = proto.message_type.add(name=name)
            for number, (fname, typ, repeated) in fields.items():
                f = msg.field.add(name=fname, number=number,
                                  label=field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL)
                if typ == "string":
                    f.type = field.TYPE_STRING
                else:
                    f.type, f.type_name = field.TYPE_MESSAGE, f".{_PACKAGE}.{typ}"
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        classes = {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
                   for name in PROTO}
        _CLASSES.update(classes)
    return _CLASSES[message]


def _as_dict(msg) -> dict:
    out: dict = {}
    for f in msg.DESCRIPTOR.fields:
        value = getattr(msg, f.name)
        if f.message_type is None:
            out[f.name] = list(value) if f.is_repeated else value
        elif f.is_repeated:
            out[f.name] = [_as_dict(v) for v in value]
        else:
            out[f.name] = _as_dict(value) if msg.HasField(f.name) else None
    return out


def decode(data: bytes, message: str = "EchoResponse") -> dict:
    """A protobuf message of :data:`PROTO` as a dict (proto3 defaults: ``""`` for a
    missing string, ``[]`` for a repeated field, None for a missing message). Unknown
    fields are skipped, as protobuf readers do; malformed input raises ``ValueError``."""
    from google.protobuf.message import DecodeError

    try:
        return _as_dict(_message_class(message).FromString(bytes(data)))
    except DecodeError as exc:
        raise ValueError(f"not a {message}: {exc}") from None


def encode(value: dict, message: str = "EchoResponse") -> bytes:
    """The protobuf encoding of a dict shaped like :func:`decode`'s."""
    from google.protobuf import json_format

    def drop_none(v):
        if isinstance(v, dict):
            return {k: drop_none(x) for k, x in v.items() if x is not None}
        return [drop_none(x) for x in v] if isinstance(v, list) else v

    return json_format.ParseDict(drop_none(value), _message_class(message)()).SerializeToString()


# ------------------------------------------------------------------ the server's side

#: grpc-go's reserved request headers (``isReservedHeader``), which never reach a handler's
#: metadata — except ``content-type`` (kept when it is a gRPC content type) and
#: ``user-agent`` (whitelisted). Pseudo-headers are reserved too, but ``:authority`` is kept.
GRPC_RESERVED = frozenset({"content-type", "user-agent", "grpc-message-type", "grpc-encoding", "grpc-message",
                           "grpc-status", "grpc-timeout", "grpc-status-details-bin", "te"})
_KEPT = frozenset({"content-type", "user-agent"})


def split_path(path: str) -> tuple[str, str] | None:
    """``/pkg.Service/Method`` -> (service, method) as grpc-go splits it (one leading slash
    dropped, then at the last slash); None when there is no slash to split at."""
    sm = path[1:] if path.startswith("/") else path
    pos = sm.rfind("/")
    if pos < 0:
        return None
    return sm[:pos], sm[pos + 1:]


def unimplemented(method: str) -> str | None:
    """The UNIMPLEMENTED message echo-basic (grpc-go) answers for a method of
    :data:`GRPC_ECHO_SERVICE`, or None for a method it implements."""
    if method in GRPC_ECHO_METHODS:
        return None
    if method in GRPC_ECHO_DECLARED:  # the generated UnimplementedGrpcEchoServer's answer
        return f"method {method} not implemented"
    return f"unknown method {method} for service {GRPC_ECHO_SERVICE}"


def incoming_metadata(authority: str | None, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]] | str:
    """The request metadata a grpc-go handler sees (``metadata.FromIncomingContext``), in
    arrival order: ``:authority`` (else the ``host`` header, renamed), then every header that
    is not one of grpc-go's reserved ones (:data:`GRPC_RESERVED`; ``content-type`` and
    ``user-agent`` are kept), names lower-cased; ``-bin`` values base64-decoded. ``host`` is
    dropped. A string is the error grpc-go answers INTERNAL with."""
    out: list[tuple[str, str]] = []
    host: str | None = None
    for name, value in headers:
        key = name.lower()
        if key.startswith(":"):
            continue
        if key == "host":
            host = host if host is not None else value
            continue
        if key in GRPC_RESERVED and key not in _KEPT:
            continue
        if key.endswith("-bin"):
            import base64
            import binascii

            try:
                raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
            except (binascii.Error, ValueError) as exc:
                return f"malformed binary metadata {value!r} in header {key!r}: {exc}"
            try:  # a proto3 string must be UTF-8: grpc-go's marshaling fails otherwise
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                return "grpc: error while marshaling: string field contains invalid UTF-8"
        out.append((key, value))
    authority = authority or host
    return ([(":authority", authority)] if authority else []) + out


def check_request(payload: bytes) -> str | None:
    """None when ``payload`` parses as an ``EchoRequest`` (any valid protobuf does: the
    message has no fields), else the INTERNAL message grpc-go answers."""
    if not payload:
        return None
    from google.protobuf.message import DecodeError

    try:
        _message_class("EchoRequest").FromString(bytes(payload))
    except DecodeError as exc:
        return f"grpc: error unmarshalling request: {exc}"
    return None


def echo_response(method: str, metadata: Iterable[tuple[str, str]], authority: str, context: dict) -> bytes:
    """The serialized ``EchoResponse`` echo-basic answers ``method`` (``Echo`` or ``EchoTwo``)
    with: the fully-qualified method, every metadata entry as a ``Header``, the authority and
    the pod's ``context`` (``namespace``, ``ingress``, ``service_name``, ``pod``; always
    present, as echo-basic's is). No ``tls_assertions``: the lab's echo is plaintext."""
    msg = _message_class("EchoResponse")()
    a = msg.assertions
    a.fully_qualified_method = f"/{GRPC_ECHO_SERVICE}/{method}"
    for key, value in metadata:
        h = a.headers.add()
        h.key, h.value = key, value
    a.authority = authority or ""
    ctx = a.context
    ctx.SetInParent()
    ctx.namespace = context.get("namespace") or ""
    ctx.ingress = context.get("ingress") or ""
    ctx.service_name = context.get("service_name") or ""
    ctx.pod = context.get("pod") or ""
    return msg.SerializeToString()


# ------------------------------------------------------------------ the client's side

def request_message(message: Any) -> bytes:
    """The ``EchoRequest`` bytes for a call: raw bytes as they are, None or a dict shaped
    like the (empty) message encoded."""
    if isinstance(message, (bytes, bytearray)):
        return bytes(message)
    return encode(message or {}, "EchoRequest") if message is not None else b""


def received(assertions: dict, canonical: Callable[[str], str]) -> dict:
    """The design's ``request`` (what the backend received) from an ``EchoResponse``'s
    ``assertions``: ``POST``, the ``authority`` as host, the fully-qualified method as path,
    and the metadata as headers (``canonical`` names, repeated values joined with ``,``;
    pseudo-headers left out: ``:authority`` is the host)."""
    heads: dict[str, str] = {}
    for h in assertions.get("headers") or []:
        key, value = h.get("key") or "", h.get("value") or ""
        if not key or key.startswith(":"):
            continue
        name = canonical(key)
        heads[name] = f"{heads[name]},{value}" if name in heads else value
    return {"method": "POST", "host": assertions.get("authority") or None,
            "path": assertions.get("fully_qualified_method") or None, "headers": heads}
