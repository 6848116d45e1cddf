"""Small clients for the echo backends (and anything in front of them: Envoy, Traefik).

* :func:`http_request` / :class:`HttpClient`: HTTP/1.1 with keep-alive connection reuse
  (one connection per address per thread, reopened once if the server closed it).
* :func:`grpc_request`: one unary gRPC call through grpcio (channels are cached).
* :func:`tcp_request`, :func:`udp_request`: one line / one datagram.

Addresses are ``"127.0.0.1:8080"``, ``("127.0.0.1", 8080)`` or a bare port number.
"""
from __future__ import annotations

import os

import http.client
import json
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ._common import GRPC_ECHO_METHOD

HeadersArg = Mapping[str, str] | Iterable[tuple[str, str]] | None


def split_address(address: str | tuple[str, int] | int) -> tuple[str, int]:
    if isinstance(address, int):
        return "127.0.0.1", address
    if isinstance(address, tuple):
        return address[0], int(address[1])
    host, _, port = str(address).rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


def _pairs(headers: HeadersArg) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), str(v)) for k, v in items]


class Headers(dict):
    """Response headers: names as sent on the wire (first spelling seen), values of a
    repeated name joined with ``,``; lookups ignore case (``h["x-a"] == h["X-A"]``)."""

    def _key(self, name: object) -> object:
        if isinstance(name, str) and not dict.__contains__(self, name):
            low = name.lower()
            for k in self.keys():
                if k.lower() == low:
                    return k
        return name

    def __getitem__(self, name: object) -> str:
        return dict.__getitem__(self, self._key(name))

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, self._key(name))

    def get(self, name: object, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, self._key(name), default)


class HttpReply(NamedTuple):
    """``(status, headers, body)``: ``headers`` (:class:`Headers`) maps each name to its
    values joined with ``,``, case-insensitively; ``body`` is the parsed JSON, else the
    text, else None."""

    status: int
    headers: Headers
    body: Any


def _decode_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


class HttpClient:
    """A keep-alive HTTP/1.1 client. Thread-safe: each thread has its own connections."""

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout
        self._local = threading.local()

    def _pool(self) -> dict:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def request(self, address: str | tuple[str, int] | int, method: str = "GET", path: str = "/",
                headers: HeadersArg = None, *, host: str | None = None,
                body: bytes | str | None = None, timeout: float | None = None) -> HttpReply:
        """Send one request; ``host`` sets the ``Host`` header (default: the address)."""
        target = split_address(address)
        pool = self._pool()
        pairs = _pairs(headers)
        if host is not None:
            pairs = [(k, v) for k, v in pairs if k.lower() != "host"] + [("Host", host)]
        has_host = any(k.lower() == "host" for k, _ in pairs)
        data = body.encode("utf-8") if isinstance(body, str) else body
        if data is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in pairs):
            pairs.append(("Content-Length", str(len(data))))
        for attempt in (0, 1):
            conn = pool.get(target)
            reused = conn is not None and conn.sock is not None
            if conn is None:
                conn = pool[target] = http.client.HTTPConnection(
                    target[0], target[1], timeout=timeout or self.timeout)
            elif timeout is not None and conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.putrequest(method, path, skip_host=has_host, skip_accept_encoding=True)
                for k, v in pairs:
                    conn.putheader(k, v)
                conn.endheaders(data)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                conn.close()
                pool.pop(target, None)
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: retry once
                raise
            except BaseException:
                conn.close()
                pool.pop(target, None)
                raise
            if resp.will_close:
                conn.close()
            out = Headers()
            lower: dict[str, str] = {}
            for k, v in resp.getheaders():
                lk = k.lower()
                if lk in lower:
                    out[lower[lk]] += "," + v
                else:
                    lower[lk] = k
                    out[k] = v
            return HttpReply(resp.status, out, _decode_body(raw, resp.getheader("Content-Type") or ""))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close this thread's connections."""
        pool = self._pool()
        for conn in pool.values():
            conn.close()
        pool.clear()


_DEFAULT = HttpClient()


def http_request(address: str | tuple[str, int] | int, method: str = "GET", path: str = "/",
                 headers: HeadersArg = None, *, host: str | None = None,
                 body: bytes | str | None = None, timeout: float | None = None) -> HttpReply:
    """One HTTP/1.1 request on a reused keep-alive connection:
    ``status, headers, body = http_request("127.0.0.1:8080", "GET", "/p", {"X-A": "1"}, host="example.com")``."""
    return _DEFAULT.request(address, method, path, headers, host=host, body=body, timeout=timeout)


# ------------------------------------------------------------------------------- gRPC

class GrpcReply(NamedTuple):
    """``code`` is the numeric gRPC status (0 OK, 12 UNIMPLEMENTED, 14 UNAVAILABLE, ...);
    ``body`` is the echo reply — parsed JSON from the lab's ``gwlib.echo.EchoService``, the
    decoded ``EchoResponse`` (a dict, see :func:`gwlib.backends.grpcecho.decode`) from the
    upstream echo-basic's ``GrpcEcho`` — or None."""

    code: int
    details: str
    body: Any
    initial_metadata: dict[str, str]
    trailing_metadata: dict[str, str]


_CHANNELS: dict[tuple[str, str | None], Any] = {}
_CHANNELS_LOCK = threading.Lock()


def _md(md: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in md or ():
        k, v = item[0], item[1]
        v = v.decode("latin-1") if isinstance(v, bytes) else str(v)
        out[k] = out[k] + "," + v if k in out else v
    return out


def grpc_request(address: str | tuple[str, int] | int, method: str = GRPC_ECHO_METHOD,
                 message: Any = None, metadata: HeadersArg = None, *, authority: str | None = None,
                 timeout: float = 5.0, compression: str | None = None) -> GrpcReply:
    """One unary gRPC call with grpcio (JSON message in, JSON echo out; for the upstream
    conformance echo's service ``gateway_api_conformance.echo_basic.grpcecho.GrpcEcho``,
    an ``EchoRequest`` in and the decoded ``EchoResponse`` out).

    ``method`` is the full path (``/pkg.Service/Method``); ``message`` any JSON value
    (or bytes, sent as they are; for ``GrpcEcho`` None or ``{}``, the empty
    ``EchoRequest``); ``metadata`` header pairs (names are lower-cased, as gRPC
    requires); ``authority`` the ``:authority`` (the Host a GRPCRoute matches);
    ``compression`` ``"gzip"`` or ``"deflate"`` compresses the request message.
    RPC errors are returned (``code`` != 0), never raised.
    """
    # gwlib forks processes (the echo server, proxies) from a process that may hold gRPC
    # channels; grpcio's fork handlers then run in the child between fork and exec and can
    # abort it ("epoll_wait error: Bad file descriptor", SIGABRT). gwlib never uses gRPC in
    # a forked child, so it turns those handlers off before grpc is first imported.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    import grpc

    host, port = split_address(address)
    key = (f"{host}:{port}", authority)
    with _CHANNELS_LOCK:
        channel = _CHANNELS.get(key)
        if channel is None:
            options = [("grpc.default_authority", authority)] if authority else []
            channel = _CHANNELS[key] = grpc.insecure_channel(key[0], options=options)
    upstream = _is_upstream(method)
    if upstream:
        from .grpcecho import request_message
        payload = request_message(message)
    elif isinstance(message, (bytes, bytearray)):
        payload = bytes(message)
    elif message is None:
        payload = b""
    else:
        payload = json.dumps(message).encode("utf-8")
    md = [(k.lower(), v) for k, v in _pairs(metadata)]
    call = channel.unary_unary(method)
    kwargs: dict[str, Any] = {}
    if compression:
        kwargs["compression"] = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}[compression]
    try:
        raw, info = call.with_call(payload, metadata=md or None, timeout=timeout, **kwargs)
    except grpc.RpcError as exc:
        return GrpcReply(exc.code().value[0], exc.details() or "", None,  # type: ignore[attr-defined]
                         _md(exc.initial_metadata()), _md(exc.trailing_metadata()))  # type: ignore[attr-defined]
    if upstream:
        from .grpcecho import decode
        try:
            body = decode(raw)
        except ValueError:
            body = raw
    else:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
    return GrpcReply(info.code().value[0], info.details() or "", body,
                     _md(info.initial_metadata()), _md(info.trailing_metadata()))


def _is_upstream(method: str) -> bool:
    from .grpcecho import GRPC_ECHO_SERVICE, split_path
    parts = split_path(method)
    return parts is not None and parts[0] == GRPC_ECHO_SERVICE


def close_clients() -> None:
    """Close the default HTTP client's connections (this thread) and all gRPC channels."""
    _DEFAULT.close()
    with _CHANNELS_LOCK:
        for ch in _CHANNELS.values():
            ch.close()
        _CHANNELS.clear()


# --------------------------------------------------------------------------- TCP / UDP

def tcp_request(address: str | tuple[str, int] | int, data: bytes | str, *, timeout: float = 5.0) -> list[dict]:
    """Connect, send ``data`` (a newline is added if missing) and return the JSON line
    answered for each line sent. The client reads until it has one answer per line (or
    the connection closes: an injected fault resets it) and then closes; it does not
    half-close first, which some proxies (Traefik) treat as the end of the connection."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not raw.endswith(b"\n"):
        raw += b"\n"
    want = raw.count(b"\n")
    buf = b""
    with socket.create_connection(split_address(address), timeout=timeout) as s:
        s.sendall(raw)
        while buf.count(b"\n") < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return [json.loads(line) for line in buf.splitlines() if line.strip()]


def udp_request(address: str | tuple[str, int] | int, data: bytes | str, *, timeout: float = 2.0) -> dict:
    """Send one datagram and return the JSON datagram answered (``TimeoutError`` if none)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect(split_address(address))
        s.send(raw)
        return json.loads(s.recv(65536))
