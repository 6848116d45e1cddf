"""The echo server process: one asyncio loop hosting many echo endpoints.

Run by :class:`gwlib.backends.EchoFleet` (or by hand: ``python -m gwlib.backends serve``).

Endpoints
---------
* ``http``: HTTP/1.1 with keep-alive and pipelining, and h2c on the same port (prior
  knowledge, detected from the connection preface, or ``Upgrade: h2c``). A request whose
  ``content-type`` starts with ``application/grpc`` gets the gRPC echo. The answer is
  echo-basic's JSON (``path``, ``host``, ``method``, ``proto``, ``headers`` as name ->
  list of values with Go-canonical names and without ``Host``, ``namespace``,
  ``ingress``, ``service``, ``pod``) plus ``version`` and ``port`` (the Service port).
  ``X-Echo-Set-Header: Name:value,Other:value`` sets response headers; ``/health``
  answers ``OK``, ``/status/NNN`` answers status NNN, ``?delay=100ms`` waits, as
  echo-basic does.
* ``grpc``: the same server; gRPC (unary, any method path, e.g.
  ``/gwlib.echo.EchoService/Echo``) over h2c. Messages are JSON (UTF-8) in gRPC's
  length-prefixed framing, so no codegen is needed; the reply is the HTTP echo object
  plus ``grpc: {service, method}`` and ``message`` (the request message). gRPC is served
  by this module's own HTTP/2 stack (``h2``) rather than grpcio's server because grpcio's
  server API does not expose the ``:authority`` a call arrived with, which the echo must
  report; clients (``gwlib.backends.grpc_request``, notebooks) use real grpcio.
  The upstream conformance echo's service ``gateway_api_conformance.echo_basic.grpcecho.GrpcEcho``
  is answered as echo-basic (``GRPC_ECHO_SERVER=1``) answers it, with protobuf messages
  (:mod:`gwlib.backends.grpcecho`): ``Echo``/``EchoTwo`` reply an ``EchoResponse`` (method,
  every incoming metadata entry as grpc-go passes it on, ``:authority``, and the
  endpoint's namespace, ingress, Service and pod); ``EchoThree`` and unknown methods are
  UNIMPLEMENTED; no response metadata is set (echo-basic's gRPC server sets none).
  protobuf is imported at the first such call, never at start-up.
* ``tcp``: every line received (``\\n``-terminated; the rest at EOF) is answered with one
  JSON line: identity plus ``request`` (the line, bytes as UTF-8 with surrogateescape).
* ``udp``: every datagram is answered with one JSON datagram, as for TCP.

Faults (per namespace/service/version) delay answers and replace a fraction of them by
errors: HTTP ``500``, gRPC ``UNAVAILABLE``, a reset TCP connection, a dropped datagram.

Control channel
---------------
HTTP/1.1 + JSON on its own 127.0.0.1 port, chosen by the kernel and reported, with the
pid, in the ``--ready-file`` (written atomically once the port listens: the readiness
signal). Every request must carry the header ``X-Gwlib-Token`` equal to the
``GWLIB_ECHO_TOKEN`` environment variable the process was started with (if set).

=======  ==================  ===================================================
method   path                body / answer
=======  ==================  ===================================================
GET      /healthz            ``{"ok": true, "pid": ..., "endpoints": N}``
GET      /endpoints          ``{"endpoints": [{...spec, "key", "listen_port"}]}``
POST     /endpoints          ``{"endpoints": [{...spec, "listen_port": 0}], "prune": false}``
                             -> ``{"ports": {key: port}, "removed": [...]}``
DELETE   /endpoints          ``{"keys": [...]}`` -> ``{"removed": [...]}``
GET      /faults             ``{"faults": [...]}``
POST     /faults             ``{"namespace", "service", "version" (null = all),
                             "error_rate", "latency_ms", "seed", "status", "grpc_status"}``
DELETE   /faults             ``{"namespace"?, "service"?, "version"?}`` (none = all)
GET      /seen?id=ID         ``{"endpoints": [{namespace, name, port}, ...]}``: who received
                             the HTTP requests carrying ``X-Gwlib-Request-Id: ID``
GET      /stats[?reset=1]    ``{"versions": [{namespace, service, version, requests,
                             errors, statuses, pods, latency_ms: [...]}]}``
POST     /shutdown           stops the process
=======  ==================  ===================================================

The process exits on SIGTERM, on ``/shutdown``, and when its parent (``--parent-pid``)
is gone (checked every 0.5 s: a last line of defence behind gwlib.processes).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._common import (
    ECHO_SET_HEADER,
    GRPC_INTERNAL,
    GRPC_OK,
    TOKEN_ENV,
    TOKEN_HEADER,
    EchoEndpoint,
    Fault,
    canonical_header_name,
    parse_set_header,
)
from .grpcecho import GRPC_ECHO_SERVICE, split_path

LOCALHOST = "127.0.0.1"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 204: "No Content",
           400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Content Too Large", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout", 505: "HTTP Version Not Supported"}
_H2_DROP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

_date_cache = [0, ""]
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _http_date() -> str:
    """RFC 9110 IMF-fixdate, cached per second."""
    now = int(time.time())
    if now != _date_cache[0]:
        t = time.gmtime(now)
        _date_cache[0] = now
        _date_cache[1] = (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
                          f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")
    return _date_cache[1]


def _go_duration(text: str) -> float:
    """Seconds in a Go duration string (``100ms``, ``1.5s``, ``2m``); ValueError if bad."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, num, i = 0.0, "", 0
    if not text:
        raise ValueError("empty duration")
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        for u in ("ns", "us", "µs", "ms", "s", "m", "h"):
            if text.startswith(u, i):
                if not num:
                    raise ValueError(f"bad duration {text!r}")
                total += float(num) * units[u]
                num, i = "", i + len(u)
                break
        else:
            raise ValueError(f"bad duration {text!r}")
    if num:
        if float(num) != 0:
            raise ValueError(f"missing unit in duration {text!r}")
    return total


class Request:
    __slots__ = ("method", "target", "proto", "headers", "body", "host", "keep_alive", "t0", "index")

    def __init__(self, method: str, target: str, proto: str, headers: list[tuple[str, str]],
                 body: bytes, host: str, keep_alive: bool = True,
                 index: dict[str, list[str]] | None = None):
        self.method, self.target, self.proto = method, target, proto
        self.headers, self.body, self.host, self.keep_alive = headers, body, host, keep_alive
        self.t0 = 0.0
        if index is None:
            index = {}
            for n, v in headers:
                index.setdefault(n.lower(), []).append(v)
        self.index = index  # lower-case name -> values

    def set_headers(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers
        self.index = {}
        for n, v in headers:
            self.index.setdefault(n.lower(), []).append(v)

    def header_values(self, name: str) -> list[str]:
        return self.index.get(name.lower(), [])

    def header(self, name: str) -> str | None:
        vals = self.header_values(name)
        return vals[0] if vals else None


class Response:
    __slots__ = ("status", "headers", "body", "trailers")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes = b"",
                 trailers: list[tuple[str, str]] | None = None):
        self.status, self.headers, self.body, self.trailers = status, headers, body, trailers


def _json_response(status: int, obj: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], _JSON(obj).encode("utf-8"))


# ------------------------------------------------------------------------------ stats

class VersionStats:
    __slots__ = ("namespace", "service", "version", "requests", "errors", "statuses", "pods", "latency")

    def __init__(self, namespace: str, service: str, version: str, max_samples: int):
        self.namespace, self.service, self.version = namespace, service, version
        self.requests = 0
        self.errors = 0
        self.statuses: dict[str, int] = {}
        self.pods: dict[str, int] = {}
        self.latency: collections.deque = collections.deque(maxlen=max_samples)

    def record(self, status: str, error: bool, pod: str, ms: float) -> None:
        self.requests += 1
        if error:
            self.errors += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.pods[pod] = self.pods.get(pod, 0) + 1
        self.latency.append(round(ms, 3))

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "service": self.service, "version": self.version,
                "requests": self.requests, "errors": self.errors, "statuses": dict(self.statuses),
                "pods": dict(self.pods), "latency_ms": list(self.latency)}

    def reset(self) -> None:
        self.requests = self.errors = 0
        self.statuses.clear()
        self.pods.clear()
        self.latency.clear()


# ---------------------------------------------------------------------------- endpoints

class Endpoint:
    """A live endpoint: its spec, its listening socket(s), resolved fault and stats."""

    def __init__(self, app: EchoApp, spec: EchoEndpoint):
        self.app = app
        self.spec = spec
        self.listen_port = 0
        self.server: asyncio.AbstractServer | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.conns: set = set()
        self.fault: Fault | None = None
        self.stats: VersionStats = app.stats_for(spec)
        self.identity: dict[str, Any] = {}
        self.set_spec(spec)

    def set_spec(self, spec: EchoEndpoint) -> None:
        self.spec = spec
        self.identity = {"namespace": spec.namespace, "ingress": self.app.ingress,
                         "service": spec.service, "pod": spec.pod, "version": spec.version,
                         "port": spec.port}
        self.stats = self.app.stats_for(spec)
        self.fault = self.app.fault_for(spec)

    def decide(self) -> tuple[bool, float]:
        f = self.fault
        return f.decide() if f is not None else (False, 0.0)

    def record(self, status: str, error: bool, t0: float) -> None:
        self.stats.record(status, error, self.spec.pod, (self.app.loop.time() - t0) * 1000.0)

    async def bind(self, port: int) -> int:
        loop = self.app.loop
        if self.spec.protocol == "udp":
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpEcho(self), local_addr=(LOCALHOST, port))
            self.udp = transport  # type: ignore[assignment]
            self.listen_port = transport.get_extra_info("sockname")[1]
        else:
            factory = (lambda: TcpEcho(self)) if self.spec.protocol == "tcp" else (lambda: HttpProtocol(self.app, self))
            self.server = await loop.create_server(factory, LOCALHOST, port, reuse_address=True, backlog=1024)
            self.listen_port = self.server.sockets[0].getsockname()[1]
        return self.listen_port

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.udp is not None:
            self.udp.close()
            self.udp = None
        for c in list(self.conns):
            c.abort()
        self.conns.clear()

    def to_json(self) -> dict[str, Any]:
        d = self.spec.to_json()
        d.update(key=self.spec.key, listen_port=self.listen_port)
        return d


# --------------------------------------------------------------------------- HTTP/1.1

class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 (keep-alive, pipelining, chunked bodies, 100-continue) that switches to
    HTTP/2 on the h2c preface or an ``Upgrade: h2c`` request. ``endpoint`` None means the
    control channel."""

    def __init__(self, app: EchoApp, endpoint: Endpoint | None):
        self.app = app
        self.ep = endpoint
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False
        self.closing = False
        self.h2: H2Session | None = None
        self.sniffed = endpoint is None
        self.pending: tuple | None = None  # parsed head waiting for its body
        self.sent_continue = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.ep is not None:
            self.ep.conns.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.ep is not None:
            self.ep.conns.discard(self.transport)
        if self.h2 is not None:
            self.h2.lost()

    def data_received(self, data: bytes) -> None:
        if self.h2 is not None:
            self.h2.feed(data)
            return
        self.buf += data
        if not self.sniffed:
            n = min(len(self.buf), len(H2_PREFACE))
            if self.buf[:n] == H2_PREFACE[:n]:
                if n == len(H2_PREFACE):
                    self._switch_h2(None, None)
                return
            self.sniffed = True
        if not self.busy:
            self._process()

    def _fail(self, status: int, message: str) -> None:
        body = _JSON({"message": message}).encode()
        self.transport.write(  # type: ignore[union-attr]
            f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        self.closing = True
        self.transport.close()  # type: ignore[union-attr]

    def _process(self) -> None:
        while not self.busy and not self.closing and self.h2 is None:
            req = self._parse()
            if req is None:
                return
            self._dispatch(req)

    def _parse(self) -> Request | None:
        buf = self.buf
        if self.pending is None:
            while buf[:2] == b"\r\n":  # tolerate empty lines before a request (RFC 9112 2.2)
                del buf[:2]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail(431, "request header too large")
                return None
            head = buf[:end].decode("latin-1")
            del buf[:end + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[0] or not parts[1]:
                self._fail(400, "malformed request line")
                return None
            method, target, version = parts
            if version not in ("HTTP/1.1", "HTTP/1.0"):
                self._fail(505 if version.startswith("HTTP/") else 400, "unsupported HTTP version")
                return None
            headers: list[tuple[str, str]] = []
            index: dict[str, list[str]] = {}
            clen = None
            chunked = False
            conn_tokens: list[str] = []
            host = None
            expect = False
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep or not name or name != name.strip() or line[:1] in " \t":
                    self._fail(400, "malformed header line")
                    return None
                value = value.strip(" \t")
                if not value.isascii():
                    value = value.encode("latin-1").decode("utf-8", "replace")
                headers.append((name, value))
                ln = name.lower()
                vals = index.get(ln)
                if vals is None:
                    index[ln] = [value]
                else:
                    vals.append(value)
                if ln == "content-length":
                    try:
                        n = int(value)
                    except ValueError:
                        n = -1
                    if n < 0 or (clen is not None and clen != n):
                        self._fail(400, "bad Content-Length")
                        return None
                    clen = n
                elif ln == "transfer-encoding":
                    chunked = value.lower().endswith("chunked")
                elif ln == "connection":
                    conn_tokens += [t.strip().lower() for t in value.split(",")]
                elif ln == "host":
                    if host is not None:
                        self._fail(400, "too many Host headers")
                        return None
                    host = value
                elif ln == "expect":
                    expect = value.lower() == "100-continue"
            if version == "HTTP/1.1":
                keep = "close" not in conn_tokens
                if host is None:
                    self._fail(400, "missing required Host header")
                    return None
            else:
                keep = "keep-alive" in conn_tokens
            if chunked:
                clen = None
                headers = [(n, v) for n, v in headers if n.lower() != "transfer-encoding"]
                index.pop("transfer-encoding", None)
            if clen is not None and clen > MAX_BODY:
                self._fail(413, "request body too large")
                return None
            if target.startswith(("http://", "https://")):  # absolute-form
                host = urlsplit(target).netloc or host
            self.pending = (method, target, version, headers, host or "", keep, chunked, clen or 0, expect, index)
            self.sent_continue = False
        method, target, version, headers, host, keep, chunked, clen, expect, index = self.pending
        if chunked:
            parsed = self._parse_chunked()
            if parsed is None:
                if expect and not self.sent_continue:
                    self.sent_continue = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
                return None
            body = parsed
        else:
            if len(buf) < clen:
                if expect and not self.sent_continue:
                    self.sent_continue = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
                return None
            body = bytes(buf[:clen])
            del buf[:clen]
        self.pending = None
        return Request(method, target, version, headers, body, host, keep, index)

    def _parse_chunked(self) -> bytes | None:
        buf = self.buf
        pos = 0
        out = bytearray()
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                self._fail(400, "bad chunk size")
                return None
            pos = eol + 2
            if size == 0:
                # trailers until an empty line
                while True:
                    eol = buf.find(b"\r\n", pos)
                    if eol < 0:
                        return None
                    if eol == pos:
                        del buf[:eol + 2]
                        return bytes(out)
                    pos = eol + 2
            if len(buf) < pos + size + 2:
                return None
            out += buf[pos:pos + size]
            if len(out) > MAX_BODY:
                self._fail(413, "request body too large")
                return None
            pos += size + 2

    def _dispatch(self, req: Request) -> None:
        req.t0 = self.app.loop.time()
        if self.ep is None:
            result: Any = self.app.handle_control(req)
        else:
            index = req.index
            if ("upgrade" in index and req.proto == "HTTP/1.1" and "http2-settings" in index
                    and "h2c" in index["upgrade"][0].lower()):
                self._upgrade_h2(req)
                return
            ct = req.header("Content-Type") or ""
            result = (self.app.handle_grpc(self.ep, req) if ct.startswith("application/grpc")
                      else self.app.handle_http(self.ep, req))
        if isinstance(result, Response):
            self._write(req, result)
        else:
            self.busy = True
            task = self.app.loop.create_task(result)
            task.add_done_callback(lambda t: self._done(req, t))

    def _done(self, req: Request, task: asyncio.Task) -> None:
        try:
            resp = task.result()
        except Exception as exc:  # noqa: BLE001
            resp = _json_response(500, {"message": f"echo server error: {exc}"})
        self.busy = False
        if self.closing:
            return
        self._write(req, resp)
        if self.buf and not self.busy:
            self._process()

    def _write(self, req: Request, resp: Response) -> None:
        if self.closing:
            return
        body = resp.body
        parts = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Status')}\r\n"]
        for n, v in resp.headers:
            parts.append(f"{n}: {v}\r\n")
        parts.append(f"Date: {_http_date()}\r\nContent-Length: {len(body)}\r\n")
        if not req.keep_alive:
            parts.append("Connection: close\r\n")
        elif req.proto == "HTTP/1.0":
            parts.append("Connection: keep-alive\r\n")
        parts.append("\r\n")
        head = "".join(parts).encode("utf-8")
        self.transport.write(head if req.method == "HEAD" else head + body)  # type: ignore[union-attr]
        if not req.keep_alive:
            self.closing = True
            self.transport.close()  # type: ignore[union-attr]

    # -- h2c
    def _upgrade_h2(self, req: Request) -> None:
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"  # type: ignore[union-attr]
                             b"Upgrade: h2c\r\n\r\n")
        settings = req.header("HTTP2-Settings") or ""
        drop = {"upgrade", "http2-settings", "connection"}
        req.set_headers([(n, v) for n, v in req.headers if n.lower() not in drop])
        req.proto = "HTTP/2.0"
        self._switch_h2(settings, req)

    def _switch_h2(self, settings: str | None, req: Request | None) -> None:
        rest = bytes(self.buf)
        self.buf.clear()
        self.h2 = H2Session(self, settings, req)
        if rest:
            self.h2.feed(rest)


# ------------------------------------------------------------------------------ HTTP/2

class H2Session:
    def __init__(self, proto: HttpProtocol, upgrade_settings: str | None, upgrade_req: Request | None):
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.proto = proto
        self.app = proto.app
        self.ep = proto.ep
        self.transport = proto.transport
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.streams: dict[int, list] = {}
        self.pending: dict[int, list] = {}
        self.closed = False
        if upgrade_settings is not None:
            self.conn.initiate_upgrade_connection(upgrade_settings)
        else:
            self.conn.initiate_connection()
        self.flush()
        if upgrade_req is not None:
            self.streams[1] = [None, bytearray()]
            self._run(1, upgrade_req)

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]

    def lost(self) -> None:
        self.closed = True

    def feed(self, data: bytes) -> None:
        import h2.events as ev
        from h2.exceptions import ProtocolError

        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.flush()
            self.transport.close()  # type: ignore[union-attr]
            return
        for e in events:
            if isinstance(e, ev.RequestReceived):
                self.streams[e.stream_id] = [e.headers, bytearray()]
            elif isinstance(e, ev.DataReceived):
                st = self.streams.get(e.stream_id)
                if st is not None:
                    st[1] += e.data
                self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            elif isinstance(e, ev.StreamEnded):
                st = self.streams.get(e.stream_id)
                if st is not None and st[0] is not None:
                    self._start(e.stream_id, st)
            elif isinstance(e, ev.StreamReset):
                self.streams.pop(e.stream_id, None)
                self.pending.pop(e.stream_id, None)
            elif isinstance(e, ev.WindowUpdated):
                for sid in list(self.pending):
                    self._pump(sid)
            elif isinstance(e, ev.ConnectionTerminated):
                self.flush()
                self.transport.close()  # type: ignore[union-attr]
                return
        self.flush()

    def _start(self, sid: int, st: list) -> None:
        raw, body = st
        method = target = host = ""
        scheme = "http"
        headers: list[tuple[str, str]] = []
        for n, v in raw:
            name = n.decode("latin-1") if isinstance(n, bytes) else n
            value = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            if name.startswith(":"):
                if name == ":method":
                    method = value
                elif name == ":path":
                    target = value
                elif name == ":authority":
                    host = value
                elif name == ":scheme":
                    scheme = value
                continue
            if name == "host":
                host = host or value
            headers.append((name, value))
        del scheme
        req = Request(method, target, "HTTP/2.0", headers, bytes(body), host)
        self._run(sid, req)

    def _run(self, sid: int, req: Request) -> None:
        req.t0 = self.app.loop.time()
        ct = req.header("content-type") or ""
        assert self.ep is not None
        result = (self.app.handle_grpc(self.ep, req) if ct.startswith("application/grpc")
                  else self.app.handle_http(self.ep, req))
        if isinstance(result, Response):
            self.send(sid, req, result)
        else:
            task = self.app.loop.create_task(result)
            task.add_done_callback(lambda t: self._done(sid, req, t))

    def _done(self, sid: int, req: Request, task: asyncio.Task) -> None:
        try:
            resp = task.result()
        except Exception as exc:  # noqa: BLE001
            resp = _json_response(500, {"message": f"echo server error: {exc}"})
        self.send(sid, req, resp)
        self.flush()

    def send(self, sid: int, req: Request, resp: Response) -> None:
        from h2.exceptions import H2Error

        if self.closed or sid not in self.streams:
            return
        hdrs = [(":status", str(resp.status))]
        for n, v in resp.headers:
            ln = n.lower()
            if ln not in _H2_DROP:
                hdrs.append((ln, v))
        body = b"" if req.method == "HEAD" else resp.body
        if not resp.trailers:
            hdrs.append(("content-length", str(len(resp.body))))
        hdrs.append(("date", _http_date()))
        trailers = [(n.lower(), v) for n, v in (resp.trailers or [])]
        try:
            if not body:
                self.conn.send_headers(sid, hdrs, end_stream=not trailers)
                if trailers:
                    self.conn.send_headers(sid, trailers, end_stream=True)
                self.streams.pop(sid, None)
            else:
                self.conn.send_headers(sid, hdrs)
                self.pending[sid] = [memoryview(body), trailers]
                self._pump(sid)
        except H2Error:
            self.streams.pop(sid, None)
            self.pending.pop(sid, None)

    def _pump(self, sid: int) -> None:
        from h2.exceptions import H2Error

        item = self.pending.get(sid)
        if item is None:
            return
        body, trailers = item
        try:
            while body:
                n = min(len(body), self.conn.local_flow_control_window(sid),
                        self.conn.max_outbound_frame_size)
                if n <= 0:
                    item[0] = body
                    return
                end = n == len(body) and not trailers
                self.conn.send_data(sid, bytes(body[:n]), end_stream=end)
                body = body[n:]
            if trailers:
                self.conn.send_headers(sid, trailers, end_stream=True)
        except H2Error:
            pass
        self.pending.pop(sid, None)
        self.streams.pop(sid, None)


# --------------------------------------------------------------------------- TCP / UDP

class TcpEcho(asyncio.Protocol):
    """Answers each line with one JSON line, in order (a delayed answer holds back the
    ones after it, as on a real connection)."""

    def __init__(self, ep: Endpoint):
        self.ep = ep
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.queue: collections.deque = collections.deque()  # (due, out, err, t0)
        self.timer: asyncio.TimerHandle | None = None
        self.eof = False
        self.dead = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ep.conns.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        self.ep.conns.discard(self.transport)
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            line = bytes(self.buf[:i])
            del self.buf[:i + 1]
            self._answer(line)

    def eof_received(self) -> bool:
        if self.buf:
            line = bytes(self.buf)
            self.buf.clear()
            self._answer(line)
        self.eof = True
        if not self.queue:
            self.transport.close()  # type: ignore[union-attr]
        return True

    def _answer(self, line: bytes) -> None:
        ep = self.ep
        t0 = ep.app.loop.time()
        err, delay = ep.decide()
        msg = dict(ep.identity, protocol="tcp", request=line.decode("utf-8", "surrogateescape"))
        out = json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        if delay <= 0 and not self.queue:
            self._emit(out, err, t0)
            return
        self.queue.append((t0 + delay, out, err, t0))
        if self.timer is None:
            self._arm()

    def _arm(self) -> None:
        self.timer = self.ep.app.loop.call_at(self.queue[0][0], self._fire)

    def _fire(self) -> None:
        self.timer = None
        now = self.ep.app.loop.time()
        while self.queue and self.queue[0][0] <= now and not self.dead:
            _, out, err, t0 = self.queue.popleft()
            self._emit(out, err, t0)
        if self.dead:
            self.queue.clear()
        elif self.queue:
            self._arm()
        elif self.eof:
            self.transport.close()  # type: ignore[union-attr]

    def _emit(self, out: bytes, err: bool, t0: float) -> None:
        if self.dead:
            return
        self.ep.record("reset" if err else "ok", err, t0)
        if err:
            self.dead = True
            self.transport.abort()  # type: ignore[union-attr]
        else:
            self.transport.write(out)  # type: ignore[union-attr]


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, ep: Endpoint):
        self.ep = ep
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        ep = self.ep
        loop = ep.app.loop
        t0 = loop.time()
        err, delay = ep.decide()
        msg = dict(ep.identity, protocol="udp", request=data.decode("utf-8", "surrogateescape"))
        out = json.dumps(msg, separators=(",", ":")).encode()
        if delay > 0:
            loop.call_later(delay, self._emit, out, addr, err, t0)
        else:
            self._emit(out, addr, err, t0)

    def _emit(self, out: bytes, addr: Any, err: bool, t0: float) -> None:
        self.ep.record("dropped" if err else "ok", err, t0)
        if not err and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)


# ---------------------------------------------------------------------------------- app

class EchoApp:
    def __init__(self, *, ingress: str = "", token: str | None = None, max_samples: int = 100_000):
        self.loop = asyncio.get_running_loop()
        self.ingress = ingress
        self.token = token
        self.max_samples = max_samples
        self.endpoints: dict[str, Endpoint] = {}
        self.faults: dict[tuple[str, str, str | None], Fault] = {}
        self.stats: dict[tuple[str, str, str], VersionStats] = {}
        #: (X-Gwlib-Request-Id, who answered) of recent HTTP requests, for GET /seen
        self.seen: collections.deque = collections.deque(maxlen=20_000)
        self.stopped = asyncio.Event()
        self.control: asyncio.AbstractServer | None = None

    # -- registries
    def stats_for(self, spec: EchoEndpoint) -> VersionStats:
        k = (spec.namespace, spec.service, spec.version)
        st = self.stats.get(k)
        if st is None:
            st = self.stats[k] = VersionStats(*k, self.max_samples)
        return st

    def fault_for(self, spec: EchoEndpoint) -> Fault | None:
        f = self.faults.get((spec.namespace, spec.service, spec.version))
        if f is None:
            f = self.faults.get((spec.namespace, spec.service, None))
        return f if f is not None and f.active else None

    def _refresh_faults(self) -> None:
        for ep in self.endpoints.values():
            ep.fault = self.fault_for(ep.spec)

    async def add(self, spec: EchoEndpoint, listen_port: int = 0) -> int:
        ep = self.endpoints.get(spec.key)
        if ep is not None:
            if ep.spec == spec and (listen_port in (0, ep.listen_port)):
                return ep.listen_port
            if ep.spec.protocol == spec.protocol and listen_port in (0, ep.listen_port):
                ep.set_spec(spec)  # a new version label etc.: no rebind
                return ep.listen_port
            ep.close()
            del self.endpoints[spec.key]
            listen_port = listen_port or ep.listen_port
        ep = Endpoint(self, spec)
        await ep.bind(listen_port)
        self.endpoints[spec.key] = ep
        return ep.listen_port

    def remove(self, key: str) -> bool:
        ep = self.endpoints.pop(key, None)
        if ep is None:
            return False
        ep.close()
        return True

    # -- echo handlers
    def _echo(self, ep: Endpoint, req: Request) -> dict[str, Any]:
        headers: dict[str, list[str]] = {}
        for n, v in req.headers:
            if n.lower() == "host":
                continue
            headers.setdefault(canonical_header_name(n), []).append(v)
        d: dict[str, Any] = {"path": req.target, "host": req.host, "method": req.method,
                             "proto": req.proto, "headers": headers}
        d.update(ep.identity)
        return d

    def handle_http(self, ep: Endpoint, req: Request) -> Any:
        ids = req.index.get("x-gwlib-request-id")
        if ids:  # the lab asks later who received a request (mirrors)
            self.seen.append((ids[0], {"namespace": ep.identity["namespace"], "name": ep.identity["service"],
                                    "port": ep.identity["port"]}))
        err, delay = ep.decide()
        target = req.target
        if "delay=" in target:
            q = parse_qs(urlsplit(target).query)
            if "delay" in q:
                try:
                    delay += _go_duration(q["delay"][0])
                except ValueError as exc:
                    resp = _json_response(500, {"message": str(exc)})
                    ep.record("500", True, req.t0)
                    return resp
        if delay > 0:
            return self._delayed(delay, self._http_response, ep, req, err)
        return self._http_response(ep, req, err)

    async def _delayed(self, delay: float, fn: Any, *args: Any) -> Response:
        await asyncio.sleep(delay)
        return fn(*args)

    def _http_response(self, ep: Endpoint, req: Request, err: bool) -> Response:
        path = req.target.split("?", 1)[0]
        if err:
            fault = ep.fault
            status = fault.status if fault is not None else 500
            d = self._echo(ep, req)
            d["message"] = "gwlib: injected fault"
            ep.record(str(status), status >= 500, req.t0)
            return Response(status, [("Content-Type", "application/json"),
                                     ("X-Content-Type-Options", "nosniff")], _JSON(d).encode("utf-8"))
        if path == "/health":
            ep.record("200", False, req.t0)
            return Response(200, [("Content-Type", "text/plain; charset=utf-8")], b"OK")
        if path.startswith("/status/"):
            code = path[len("/status/"):]
            status = int(code) if len(code) == 3 and code.isdigit() else 400
            ep.record(str(status), status >= 500, req.t0)
            return Response(status, [])
        echo_set = req.index.get("x-echo-set-header")
        if echo_set is None:
            headers = [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")]
        else:
            headers = parse_set_header(echo_set)
            lower = {n.lower() for n, _ in headers}
            if "content-type" not in lower:
                headers.append(("Content-Type", "application/json"))
            if "x-content-type-options" not in lower:
                headers.append(("X-Content-Type-Options", "nosniff"))
        body = _JSON(self._echo(ep, req)).encode("utf-8")
        ep.record("200", False, req.t0)
        return Response(200, headers, body)

    def handle_grpc(self, ep: Endpoint, req: Request) -> Any:
        err, delay = ep.decide()
        if delay > 0:
            return self._delayed(delay, self._grpc_response, ep, req, err)
        return self._grpc_response(ep, req, err)

    def _grpc_error(self, ep: Endpoint, req: Request, code: int, message: str) -> Response:
        ep.record(f"grpc-{code}", True, req.t0)
        return Response(200, [("content-type", "application/grpc"), ("grpc-status", str(code)),
                              ("grpc-message", message)])

    def _grpc_response(self, ep: Endpoint, req: Request, err: bool) -> Response:
        if err:
            fault = ep.fault
            return self._grpc_error(ep, req, fault.grpc_status if fault else 14, "gwlib: injected fault")
        data = req.body
        message: Any = None
        payload = b""
        if data:
            if len(data) < 5:
                return self._grpc_error(ep, req, GRPC_INTERNAL, "truncated gRPC message")
            n = int.from_bytes(data[1:5], "big")
            payload = data[5:5 + n]
            if len(payload) < n:
                return self._grpc_error(ep, req, GRPC_INTERNAL, "truncated gRPC message")
            if data[0] & 1:
                enc = (req.header("grpc-encoding") or "identity").lower()
                import gzip
                import zlib

                try:
                    if enc == "gzip":
                        payload = gzip.decompress(payload)
                    elif enc == "deflate":
                        payload = zlib.decompress(payload)
                    else:
                        return self._grpc_error(ep, req, 12, f"compression {enc!r} not supported")
                except (OSError, EOFError, zlib.error):
                    return self._grpc_error(ep, req, GRPC_INTERNAL, "bad compressed message")
        path = req.target
        upstream = split_path(path)
        if upstream is not None and upstream[0] == GRPC_ECHO_SERVICE:
            return self._grpc_upstream(ep, req, upstream[1], payload)
        if payload:
            try:
                message = json.loads(payload)
            except ValueError:
                message = payload.decode("utf-8", "surrogateescape")
        service, _, method = path.lstrip("/").rpartition("/")
        d = self._echo(ep, req)
        d["grpc"] = {"service": service, "method": method}
        d["message"] = message
        out = _JSON(d).encode("utf-8")
        headers = [("content-type", "application/grpc")]
        headers += [(n.lower(), v) for n, v in parse_set_header(req.header_values(ECHO_SET_HEADER))]
        ep.record(f"grpc-{GRPC_OK}", False, req.t0)
        return Response(200, headers, b"\x00" + len(out).to_bytes(4, "big") + out,
                        trailers=[("grpc-status", "0")])

    def _grpc_upstream(self, ep: Endpoint, req: Request, method: str, payload: bytes) -> Response:
        """The upstream echo-basic's gRPC service (:mod:`gwlib.backends.grpcecho`), answered
        as echo-basic (grpc-go) answers it: ``Echo``/``EchoTwo`` with an ``EchoResponse``
        (the method, every incoming metadata entry, the ``:authority``, the endpoint's
        namespace, ingress, Service and pod), ``EchoThree`` and unknown methods
        UNIMPLEMENTED, a request that is not an ``EchoRequest`` INTERNAL. Like echo-basic it
        sets no response metadata (no ``X-Echo-Set-Header``). protobuf is imported here, at
        the first such call, not when the server starts."""
        from . import grpcecho

        why = grpcecho.unimplemented(method)
        if why is not None and method not in grpcecho.GRPC_ECHO_DECLARED:
            return self._grpc_error(ep, req, grpcecho.GRPC_UNIMPLEMENTED, why)
        bad = grpcecho.check_request(payload)  # a declared method's handler decodes first
        if bad is not None:
            return self._grpc_error(ep, req, GRPC_INTERNAL, bad)
        if why is not None:
            return self._grpc_error(ep, req, grpcecho.GRPC_UNIMPLEMENTED, why)
        md = grpcecho.incoming_metadata(req.host, req.headers)
        if isinstance(md, str):
            return self._grpc_error(ep, req, GRPC_INTERNAL, md)
        ident = ep.identity
        out = grpcecho.echo_response(method, md, req.host, {
            "namespace": ident["namespace"], "ingress": ident["ingress"], "service_name": ident["service"],
            "pod": ident["pod"]})
        ep.record(f"grpc-{GRPC_OK}", False, req.t0)
        return Response(200, [("content-type", "application/grpc")],
                        b"\x00" + len(out).to_bytes(4, "big") + out,
                        trailers=[("grpc-status", "0"), ("grpc-message", "")])

    # -- control channel
    def handle_control(self, req: Request) -> Any:
        if self.token and req.header(TOKEN_HEADER) != self.token:
            return _json_response(401, {"message": f"missing or wrong {TOKEN_HEADER}"})
        return self._control(req)

    async def _control(self, req: Request) -> Response:
        url = urlsplit(req.target)
        path, method = url.path.rstrip("/") or "/", req.method
        try:
            body = json.loads(req.body) if req.body else {}
        except ValueError:
            return _json_response(400, {"message": "body is not JSON"})
        try:
            if path == "/healthz" and method == "GET":
                return _json_response(200, {"ok": True, "pid": os.getpid(), "endpoints": len(self.endpoints)})
            if path == "/endpoints":
                if method == "GET":
                    return _json_response(200, {"endpoints": [e.to_json() for e in self.endpoints.values()]})
                if method == "POST":
                    specs = [(EchoEndpoint.from_json(d), int(d.get("listen_port") or 0))
                             for d in body.get("endpoints", [])]
                    removed = []
                    if body.get("prune"):
                        want = {s.key for s, _ in specs}
                        for key in [k for k in self.endpoints if k not in want]:
                            self.remove(key)
                            removed.append(key)
                    ports: dict[str, int] = {}
                    errors: dict[str, str] = {}
                    for spec, port in specs:
                        try:
                            ports[spec.key] = await self.add(spec, port)
                        except OSError as exc:
                            errors[spec.key] = f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
                    status = 409 if errors else 200
                    return _json_response(status, {"ports": ports, "removed": removed, "errors": errors,
                                                   "message": "; ".join(f"{k}: {v}" for k, v in errors.items())})
                if method == "DELETE":
                    removed = [k for k in body.get("keys", []) if self.remove(k)]
                    return _json_response(200, {"removed": removed})
            if path == "/faults":
                if method == "GET":
                    return _json_response(200, {"faults": [
                        dict(namespace=k[0], service=k[1], version=k[2], **f.to_json())
                        for k, f in self.faults.items()]})
                if method == "POST":
                    key = (str(body["namespace"]), str(body["service"]),
                           None if body.get("version") is None else str(body["version"]))
                    fault = Fault(error_rate=body.get("error_rate") or 0.0,
                                  latency_ms=body.get("latency_ms"), seed=body.get("seed"),
                                  status=int(body.get("status") or 500),
                                  grpc_status=int(body.get("grpc_status") or 14))
                    self.faults[key] = fault
                    self._refresh_faults()
                    return _json_response(200, {"ok": True})
                if method == "DELETE":
                    for k in list(self.faults):
                        if all(body.get(f) is None or body.get(f) == v
                               for f, v in zip(("namespace", "service", "version"), k)):
                            del self.faults[k]
                    self._refresh_faults()
                    return _json_response(200, {"ok": True})
            if path == "/stats" and method == "GET":
                reset = parse_qs(url.query).get("reset", ["0"])[0] not in ("0", "", "false")
                out = {"versions": [s.to_json() for s in self.stats.values()], "time": time.time()}
                if reset:
                    for s in self.stats.values():
                        s.reset()
                return _json_response(200, out)
            if path == "/seen" and method == "GET":
                rid = parse_qs(url.query).get("id", [""])[0]
                return _json_response(200, {"endpoints": [who for r, who in list(self.seen) if r == rid]})
            if path == "/shutdown" and method == "POST":
                self.loop.call_soon(self.stopped.set)
                return _json_response(200, {"ok": True})
        except (KeyError, TypeError, ValueError) as exc:
            return _json_response(400, {"message": f"bad request: {exc}"})
        return _json_response(404, {"message": f"no such control endpoint: {method} {path}"})

    def close(self) -> None:
        for ep in self.endpoints.values():
            ep.close()
        self.endpoints.clear()
        if self.control is not None:
            self.control.close()


def _raise_fd_limit() -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover
        return
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        want = min(want, 65536)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def serve(*, ready_file: str | None, control_port: int = 0, ingress: str = "",
                parent_pid: int | None = None, endpoints: list[dict[str, Any]] | None = None) -> None:
    _raise_fd_limit()
    app = EchoApp(ingress=ingress, token=os.environ.get(TOKEN_ENV) or None)
    loop = app.loop
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, app.stopped.set)
    app.control = await loop.create_server(lambda: HttpProtocol(app, None), LOCALHOST, control_port,
                                           reuse_address=True)
    port = app.control.sockets[0].getsockname()[1]
    for d in endpoints or []:
        await app.add(EchoEndpoint.from_json(d), int(d.get("listen_port") or 0))
    info = {"pid": os.getpid(), "control_port": port,
            "ports": {k: e.listen_port for k, e in app.endpoints.items()}}
    if ready_file:
        tmp = f"{ready_file}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(info))
        os.replace(tmp, ready_file)
    else:
        print(json.dumps(info), flush=True)
    print(f"gwlib echo server pid {os.getpid()} control 127.0.0.1:{port}", file=sys.stderr, flush=True)

    async def watch_parent() -> None:
        while parent_pid:
            await asyncio.sleep(0.5)
            if os.getppid() != parent_pid:
                print("gwlib echo server: parent is gone, exiting", file=sys.stderr, flush=True)
                app.stopped.set()
                return

    watcher = loop.create_task(watch_parent())
    try:
        await app.stopped.wait()
    finally:
        watcher.cancel()
        app.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gwlib.backends",
                                 description="gwlib echo backends (one process, many endpoints)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the echo server")
    s.add_argument("--ready-file", help="write {pid, control_port, ports} here (atomically) when ready; "
                                        "default: print it as one JSON line on stdout")
    s.add_argument("--control-port", type=int, default=0)
    s.add_argument("--ingress", default="", help="the 'ingress' field of every answer")
    s.add_argument("--parent-pid", type=int, default=None, help="exit when this process is no longer the parent")
    s.add_argument("--endpoint", action="append", default=[], metavar="NS/SVC:PORT[/PROTO[/POD[/VERSION]]]",
                   help="an endpoint to start with (repeatable)")
    args = ap.parse_args(argv)
    eps = []
    for text in args.endpoint:
        nsvc, _, rest = text.partition(":")
        ns, _, svc = nsvc.partition("/")
        parts = rest.split("/")
        eps.append(EchoEndpoint(ns, svc, int(parts[0]), *(parts[1:4])).to_json())
    try:
        asyncio.run(serve(ready_file=args.ready_file, control_port=args.control_port,
                          ingress=args.ingress, parent_pid=args.parent_pid, endpoints=eps))
    except KeyboardInterrupt:  # pragma: no cover
        pass
    return 0
