"""gRPC requests in cluster mode: one unary call with grpcio through "the Gateway" on a
127.0.0.1 port (as the kind port mapping gives it) — h2c for an HTTP listener, TLS with
ALPN h2 for an HTTPS listener — answered like the upstream echo-basic gRPC server
(``GRPC_ECHO_SERVER=1``) answers, and turned into the design's answer format.

The stand-in for echo-basic is a real grpcio server. Its replies are encoded here with a
few lines written from the upstream proto (kubernetes-sigs/gateway-api,
conformance/echo-basic/grpcecho.proto), independently of gwlib's decoder."""
from __future__ import annotations

import base64
import datetime as dt
import os
import socket
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import pytest

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")  # as gwlib does before importing grpc
import grpc  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "cluster"))

from fakeapi import FakeApiServer  # noqa: E402
from support import connect, reconcile  # noqa: E402

from gwlib.backends import grpcecho  # noqa: E402
from gwlib.cluster import ClusterWarning  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::gwlib.cluster.ClusterWarning")

# grpcecho.proto: "package gateway_api_conformance.echo_basic.grpcecho;" and "service GrpcEcho"
SERVICE = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
HOST = "grpc.example.com"
POD = ("rpc", "echo-grpc-7d9c8b6f5-kq2xw", "echo-grpc")

RPC = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: rpc}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: traefik}}
spec: {{controllerName: traefik.io/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: rpc}}
spec:
  gatewayClassName: traefik
  listeners:
  - {{name: http, protocol: HTTP, port: 80}}
  - name: https
    protocol: HTTPS
    port: 443
    hostname: {HOST}
    tls: {{mode: Terminate, certificateRefs: [{{name: grpc-cert}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo-grpc, namespace: rpc}}
spec:
  selector: {{app: echo-grpc}}
  ports: [{{name: grpc, port: 9000, targetPort: 9000, appProtocol: kubernetes.io/h2c}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: echo, namespace: rpc}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{HOST}]
  rules:
  - matches: [{{method: {{service: {SERVICE}}}}}]
    backendRefs: [{{name: echo-grpc, port: 9000}}]
"""

SLICE = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "echo-grpc-x1", "namespace": "rpc", "labels": {"kubernetes.io/service-name": "echo-grpc"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": ["10.244.0.31"], "conditions": {"ready": True},
                        "targetRef": {"kind": "Pod", "namespace": "rpc", "name": POD[1], "uid": "p9"}}],
         "ports": [{"name": "grpc", "port": 9000, "protocol": "TCP"}]}


# --------------------------------------------------------------- the upstream messages

def _varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def _len_field(number: int, raw: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(raw)) + raw


def _str(number: int, text: str) -> bytes:
    return _len_field(number, text.encode()) if text else b""


def echo_response(method: str, headers: list[tuple[str, str]], authority: str, ns: str, pod: str,
                  service_name: str, ingress: str = "") -> bytes:
    """EchoResponse{assertions: Assertions{fully_qualified_method = 1; repeated Header headers = 2
    (key = 1, value = 2); authority = 3; Context context = 4 (namespace = 1, ingress = 2,
    service_name = 3, pod = 4)}} — field numbers of grpcecho.proto."""
    context = _str(1, ns) + _str(2, ingress) + _str(3, service_name) + _str(4, pod)
    assertions = _str(1, method)
    assertions += b"".join(_len_field(2, _str(1, k) + _str(2, v)) for k, v in headers)
    assertions += _str(3, authority) + _len_field(4, context)
    return _len_field(1, assertions)


class FakeEchoBasic:
    """echo-basic's gRPC server behind the Gateway: ``Echo`` and ``EchoTwo`` of
    ``GrpcEcho`` answer with the request's metadata (``:authority`` first, as grpc-go's
    metadata has it) and the pod's context; everything else is UNIMPLEMENTED (grpcio's own
    answer for an unknown method). ``fail``: answer every call with that status instead.
    ``initial``: response metadata a route filter would add."""

    def __init__(self, pod=POD, fail: grpc.StatusCode | None = None, tls: tuple[bytes, bytes] | None = None,
                 initial: tuple = ()):
        self.calls: list[dict] = []
        ns, name, service = pod

        def handler(method):
            def answer(request: bytes, context):
                host = context._rpc_event.call_details.host.decode()  # the :authority (grpcio has no public getter)
                md = [(m.key, m.value) for m in context.invocation_metadata()]
                self.calls.append({"method": method, "request": request, "authority": host, "metadata": md,
                                   "auth": context.auth_context()})
                if fail is not None:
                    context.abort(fail, "injected")
                if initial:
                    context.send_initial_metadata(initial)
                headers = [(":authority", host), ("content-type", "application/grpc"), *md]
                return echo_response(f"/{SERVICE}/{method}", headers, host, ns, name, service)
            return grpc.unary_unary_rpc_method_handler(answer)

        self.pool = futures.ThreadPoolExecutor(4)
        self.server = grpc.server(self.pool)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {m: handler(m) for m in ("Echo", "EchoTwo")}),))
        if tls:
            creds = grpc.ssl_server_credentials([(tls[1], tls[0])])
            self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        else:
            self.port = self.server.add_insecure_port("127.0.0.1:0")

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(None).wait(5)
        self.pool.shutdown(wait=True)


class Http404Gateway:
    """Traefik without a matching route: an HTTP/2 (h2c) ``404 page not found``, no gRPC
    status at all (a test stand-in written with the ``h2`` library)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        import h2.config
        import h2.connection
        import h2.events

        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
                h2c.initiate_connection()
                conn.sendall(h2c.data_to_send())
                try:
                    while not self.stop.is_set():
                        data = conn.recv(65536)
                        if not data:
                            break
                        for ev in h2c.receive_data(data):
                            if isinstance(ev, h2.events.RequestReceived):
                                h2c.send_headers(ev.stream_id, [(":status", "404"), ("content-type", "text/plain")])
                                h2c.send_data(ev.stream_id, b"404 page not found\n", end_stream=True)
                        conn.sendall(h2c.data_to_send())
                except OSError:
                    pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def _cert(tmp_path: Path, host: str = HOST) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``host`` (as a learner's Secret would hold)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _secret(crt: bytes, key: bytes) -> str:
    return f"""
---
apiVersion: v1
kind: Secret
metadata: {{name: grpc-cert, namespace: rpc}}
type: kubernetes.io/tls
data: {{tls.crt: {base64.b64encode(crt).decode()}, tls.key: {base64.b64encode(key).decode()}}}
"""


_OPEN: list = []


def _cluster(api, tmp_path, ports, extra: str = ""):
    conn = connect(api, tmp_path, ports=ports)
    _OPEN.append(conn)
    conn.apply(RPC + extra, wait=False)
    reconcile(api)
    api.put(dict(SLICE))
    return conn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def no_threads_left():
    """Every test stops what it started: no server or thread outlives it."""
    before = set(threading.enumerate())
    yield
    while _OPEN:  # the API client's keep-alive connections (their server threads end with them)
        _OPEN.pop().close()
    deadline = time.monotonic() + 5
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, left


def call(method="Echo", service=SERVICE, **kw):
    return {"gateway": "rpc/gw", "host": HOST, "grpc": {"service": service, "method": method}, **kw}


# ----------------------------------------------------------------------------- tests

def test_a_grpc_answer_in_the_design_s_format(tmp_path):
    with FakeApiServer() as api, FakeEchoBasic() as srv:
        conn = _cluster(api, tmp_path, {80: srv.port})
        ans = conn.request(call(headers={"X-Env": "canary", "x-request-id": "r-1"}))
        assert set(ans) == {"status", "backend", "request", "headers", "location", "mirrored_to", "route", "rule",
                            "grpc_status"}
        assert ans["status"] == 200 and ans["grpc_status"] == 0, ans
        assert ans["backend"] == {"namespace": "rpc", "name": "echo-grpc", "port": 9000}
        req = ans["request"]
        assert req["method"] == "POST" and req["host"] == HOST and req["path"] == f"/{SERVICE}/Echo"
        assert req["headers"]["X-Env"] == "canary" and req["headers"]["X-Request-Id"] == "r-1"
        assert req["headers"]["Content-Type"] == "application/grpc"
        assert req["headers"]["User-Agent"].startswith("grpc-python/")
        assert not any(k.startswith(":") for k in req["headers"])      # :authority is the host
        assert ans["headers"] == {} and ans["location"] is None and ans["mirrored_to"] == []
        assert ans["route"] is None and ans["rule"] is None
        # what the server received: the empty EchoRequest, the host as :authority, the metadata
        (seen,) = srv.calls
        assert seen["request"] == b"" and seen["authority"] == HOST
        assert ("x-env", "canary") in seen["metadata"] and ("x-request-id", "r-1") in seen["metadata"]
        assert seen["auth"].get("transport_security_type") != [b"ssl"]     # h2c on the HTTP listener
        frame = conn.table([call()])
        assert frame.loc[0, "backend"] == "rpc/echo-grpc:9000" and frame.loc[0, "status"] == 200


def test_metadata_authority_and_method_reach_the_backend(tmp_path):
    with FakeApiServer() as api, FakeEchoBasic(initial=(("x-route", "echo"),)) as srv:
        conn = _cluster(api, tmp_path, {80: srv.port})
        ans = conn.request(call("EchoTwo", host=f"{HOST}:80",
                                headers={"X-Version": "v2", "Host": "ignored.example.com", "Content-Type": "x/y",
                                         "te": "trailers"}))
        assert ans["grpc_status"] == 0 and ans["request"]["path"] == f"/{SERVICE}/EchoTwo"
        assert ans["request"]["host"] == f"{HOST}:80"                   # a port in the host reaches the backend
        assert ans["request"]["headers"]["X-Version"] == "v2"
        assert ans["request"]["headers"]["Content-Type"] == "application/grpc"   # transport headers are gRPC's own
        assert ans["headers"] == {"X-Route": "echo"}                    # response metadata (a route filter's)
        names = [k for k, _ in srv.calls[0]["metadata"]]
        assert "x-version" in names and "host" not in names and "te" not in names
        bad = conn.request(call(headers={"X-Name": "é"}))
        assert bad["status"] is None and "printable ASCII" in bad["error"]
        binary = conn.request(call(headers={"X-Trace-Bin": "AAEC"}))
        assert binary["status"] is None and "-bin" in binary["error"]
        assert len(srv.calls) == 1                                       # nothing sent for bad metadata


def test_an_error_status_from_the_backend_is_the_answer_s_grpc_status(tmp_path):
    with FakeApiServer() as api, FakeEchoBasic(fail=grpc.StatusCode.UNAVAILABLE) as srv:
        conn = _cluster(api, tmp_path, {80: srv.port})
        ans = conn.request(call())
        assert ans["status"] == 200 and ans["grpc_status"] == 14, ans
        assert ans["backend"] is None and ans["request"] is None and "error" not in ans
        assert len(srv.calls) == 1


def test_a_service_echo_basic_does_not_serve_is_unimplemented_with_a_hint(tmp_path):
    with FakeApiServer() as api, FakeEchoBasic() as srv:
        conn = _cluster(api, tmp_path, {80: srv.port})
        with pytest.warns(ClusterWarning, match="implement only gateway_api_conformance"):
            ans = conn.request(call(service="gwlib.echo.EchoService"))
        assert ans["status"] == 200 and ans["grpc_status"] == 12 and ans["backend"] is None
        three = conn.request(call("EchoThree"))                          # declared upstream, never implemented
        assert three["grpc_status"] == 12


def test_a_gateway_404_is_unimplemented_with_http_status_404(tmp_path):
    with FakeApiServer() as api, Http404Gateway() as gw:
        conn = _cluster(api, tmp_path, {80: gw.port})
        ans = conn.request(call(host="nope.example.com"))
        assert ans["status"] == 404 and ans["grpc_status"] == 12, ans
        assert ans["backend"] is None and ans["request"] is None


def test_a_refused_connection_is_a_one_line_error(tmp_path):
    with FakeApiServer() as api:
        port = _free_port()
        conn = _cluster(api, tmp_path, {80: port})
        ans = conn.request(call())
        assert ans["status"] is None and ans["backend"] is None
        assert ans["error"].startswith("connection failed") and f"127.0.0.1:{port}" in ans["error"]
        assert "\n" not in ans["error"]
        assert conn.request(call(port=8000))["error"].startswith("connection refused: Gateway rpc/gw has no listener")
        assert "must be" in conn.request({"gateway": "rpc/gw", "grpc": "Echo"})["error"]


def test_grpc_over_tls_trusts_the_applied_secret(tmp_path):
    crt, key = _cert(tmp_path)
    with FakeApiServer() as api, FakeEchoBasic(tls=(crt, key)) as srv:
        conn = _cluster(api, tmp_path, {80: 1, 443: srv.port}, extra=_secret(crt, key))
        ans = conn.request(call(scheme="https", headers={"x-env": "tls"}))
        assert ans["status"] == 200 and ans["grpc_status"] == 0, ans
        assert ans["request"]["host"] == HOST and ans["request"]["headers"]["X-Env"] == "tls"
        assert ans["backend"] == {"namespace": "rpc", "name": "echo-grpc", "port": 9000}
        assert srv.calls[0]["auth"].get("transport_security_type") == [b"ssl"]
        other = conn.request(call(scheme="https", host="other.example.com"))
        assert other["status"] is None and other["error"].startswith("TLS handshake failed"), other
        assert len(srv.calls) == 1


def test_grpc_over_tls_without_a_secret_trusts_what_the_gateway_presents(tmp_path):
    crt, key = _cert(tmp_path)
    with FakeApiServer() as api, FakeEchoBasic(tls=(crt, key)) as srv:
        conn = _cluster(api, tmp_path, {80: 1, 443: srv.port})
        ans = conn.request(call(port=443))
        assert ans["status"] == 200 and ans["grpc_status"] == 0, ans
        other = conn.request(call(port=443, host="other.example.com"))   # the certificate does not name it
        assert other["status"] is None and other["error"].startswith("TLS handshake failed"), other
        assert "\n" not in other["error"]
    with FakeApiServer() as api, FakeEchoBasic() as plain:                # h2c where TLS was expected
        conn = _cluster(api, tmp_path, {80: 1, 443: plain.port})
        assert conn.request(call(scheme="https"))["error"].startswith("TLS handshake failed")


def test_the_echo_messages_match_the_upstream_wire_format():
    # EchoResponse{assertions{fully_qualified_method: "/a/B", headers: [{key: "k", value: "v"}], authority: "h"}}
    golden = bytes.fromhex("0a11" "0a042f612f42" "12060a016b120176" "1a0168")
    value = {"assertions": {"fully_qualified_method": "/a/B", "headers": [{"key": "k", "value": "v"}],
                            "authority": "h"}}
    assert grpcecho.encode(value) == golden
    got = grpcecho.decode(golden)
    assert got["assertions"]["headers"] == [{"key": "k", "value": "v"}] and got["assertions"]["authority"] == "h"
    assert got["assertions"]["context"] is None and got["request"] is None
    # unknown fields (varint, fixed64, fixed32, bytes) are skipped, as protobuf readers do
    assert grpcecho.decode(b"\x78\x96\x01" + b"\x79" + bytes(8) + b"\x7d" + bytes(4) + b"\x72\x01z" + golden) == got
    # the test server's encoder (written from the proto here) and gwlib's decoder agree
    raw = echo_response("/x/Echo", [(":authority", "a"), ("x", "1"), ("x", "2")], "a", "ns", "pod-1", "svc")
    a = grpcecho.decode(raw)["assertions"]
    assert a["context"] == {"namespace": "ns", "ingress": "", "service_name": "svc", "pod": "pod-1"}
    assert [h["value"] for h in a["headers"] if h["key"] == "x"] == ["1", "2"]
    for broken in (b"\x0a\x05ab", b"\x0a", b"\x08\xff", b"\x0b"):
        with pytest.raises(ValueError):
            grpcecho.decode(broken)
    # a known field number with another wire type is an unknown field to protobuf: skipped
    assert grpcecho.decode(b"\x08\x01")["assertions"] is None
    assert grpcecho.GRPC_ECHO_PATH == f"/{SERVICE}/Echo"
