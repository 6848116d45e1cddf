"""The upstream conformance echo's gRPC service (echo-basic's ``GrpcEcho``) across gwlib:
the shared message module, the reference router's model of it, and the lab's answers
through real Envoy and Traefik — which must agree with the reference and be built into the
same fields as cluster mode builds from the real echo-basic."""
from __future__ import annotations

from pathlib import Path

import pytest

import gwlib
from gwlib import binaries
from gwlib.backends import grpcecho
from gwlib.portability import compare

ROOT = Path(__file__).resolve().parent.parent
BEYOND = ROOT / "data" / "manifests" / "beyond-http"
SERVICE = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"   # grpcecho.proto's package + service
HOST = "grpc.example.com"


def call(method="Echo", service=SERVICE, **kw):
    return {"gateway": "apps/multi", "host": HOST, "grpc": {"service": service, "method": method}, **kw}


# ------------------------------------------------------------------ the shared module

def test_the_module_imports_no_protobuf_and_no_kubernetes():
    import subprocess
    import sys
    code = ("import sys, types; p = types.ModuleType('gwlib'); p.__path__ = [%r]; sys.modules['gwlib'] = p; "
            "import gwlib.backends.grpcecho; "
            "print(sorted(m for m in sys.modules if m.startswith(('google', 'kubernetes', 'grpc'))))"
            % str(ROOT / "gwlib"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_incoming_metadata_is_what_grpc_go_hands_the_handler():
    md = grpcecho.incoming_metadata("grpc.example.com", [
        ("content-type", "application/grpc"), ("user-agent", "ua"), ("te", "trailers"), ("grpc-timeout", "5S"),
        ("grpc-encoding", "identity"), ("grpc-accept-encoding", "gzip"), ("host", "h.example.com"),
        ("X-Env", "canary"), ("x-env", "two"), ("x-binary", "not -bin"), ("trace-bin", "AAEC")])
    assert md == [(":authority", "grpc.example.com"), ("content-type", "application/grpc"), ("user-agent", "ua"),
                  ("grpc-accept-encoding", "gzip"), ("x-env", "canary"), ("x-env", "two"),
                  ("x-binary", "not -bin"), ("trace-bin", "\x00\x01\x02")]
    # no :authority: the host header is renamed to it (gRFC A41, as grpc-go does)
    assert grpcecho.incoming_metadata("", [("host", "h.example.com")]) == [(":authority", "h.example.com")]
    assert "malformed binary metadata" in grpcecho.incoming_metadata("a", [("x-bin", "!!")])
    assert "invalid UTF-8" in grpcecho.incoming_metadata("a", [("x-bin", "//4")])


def test_methods_and_messages():
    assert grpcecho.split_path(f"/{SERVICE}/Echo") == (SERVICE, "Echo")
    assert grpcecho.split_path("/a.B/c/d") == ("a.B/c", "d") and grpcecho.split_path("nothing") is None
    assert [grpcecho.unimplemented(m) for m in ("Echo", "EchoTwo")] == [None, None]
    assert grpcecho.unimplemented("EchoThree") == "method EchoThree not implemented"
    assert grpcecho.unimplemented("X") == f"unknown method X for service {SERVICE}"
    raw = grpcecho.echo_response("EchoTwo", [(":authority", "a"), ("x-y", "1")], "a", {"namespace": "ns"})
    got = grpcecho.decode(raw)
    assert got["assertions"]["fully_qualified_method"] == f"/{SERVICE}/EchoTwo"
    # the context is always there (echo-basic's is a non-nil message), even when empty
    assert got["assertions"]["context"] == {"namespace": "ns", "ingress": "", "service_name": "", "pod": ""}
    empty = grpcecho.decode(grpcecho.echo_response("Echo", [], "", {}))
    assert empty["assertions"]["context"] == {"namespace": "", "ingress": "", "service_name": "", "pod": ""}
    assert grpcecho.check_request(b"") is None and grpcecho.check_request(b"\x0a\x00") is None
    assert grpcecho.check_request(b"\xff").startswith("grpc: error unmarshalling request")
    assert grpcecho.request_message(None) == b"" and grpcecho.request_message({}) == b""
    assert grpcecho.received(got["assertions"], str.title) == {
        "method": "POST", "host": "a", "path": f"/{SERVICE}/EchoTwo", "headers": {"X-Y": "1"}}


def test_lab_and_cluster_build_the_same_request_fields():
    """Cluster mode's answer from a real echo-basic reply and the lab's from its echo: the
    same ``request`` from the same EchoResponse bytes."""
    from gwlib.backends.client import GrpcReply
    from gwlib.cluster.connection import ClusterConnection
    from gwlib.connection import _canonical

    raw = grpcecho.echo_response("Echo", [(":authority", "h:80"), ("content-type", "application/grpc"),
                                          ("x-a", "1"), ("x-a", "2"), ("x-forwarded-proto", "http")],
                                 "h:80", {"namespace": "ns", "service_name": "svc", "pod": "svc-0"})
    conn = object.__new__(ClusterConnection)
    conn._backend = lambda req, body: {"namespace": body["namespace"], "name": body["service"], "port": 1}
    conn._warn_once = lambda msg: None
    cluster = conn._grpc_answer({}, GrpcReply(0, "", raw, {}, {}))
    lab = grpcecho.received(grpcecho.decode(raw)["assertions"], _canonical)
    assert cluster["request"] == lab
    assert lab["headers"] == {"Content-Type": "application/grpc", "X-A": "1,2", "X-Forwarded-Proto": "http"}


# ------------------------------------------------------------------ the reference model

def test_reference_models_the_upstream_echo():
    ref = gwlib.connect("reference")
    ref.apply(BEYOND)
    ok = ref.request(call("EchoTwo", headers={"X-Echo-Set-Header": "X-A:1", "X-Env": "c"}))
    assert (ok["grpc_status"], ok["route"], ok["backend"]) == (0, "apps/echo", {"namespace": "apps",
                                                                                "name": "echo-grpc", "port": 9000})
    assert ok["request"]["path"] == f"/{SERVICE}/EchoTwo" and ok["request"]["method"] == "POST"
    assert ok["headers"] == {}            # echo-basic's gRPC server ignores X-Echo-Set-Header
    three = ref.request(call("EchoThree"))
    assert (three["grpc_status"], three["status"], three["backend"], three["request"]) == (12, 200, None, None)
    assert (three["route"], three["rule"]) == ("apps/echo", 0)   # routed, then refused by the backend
    assert ref.split(call("EchoThree")) == {"apps/echo-grpc": 1.0}
    assert "method EchoThree not implemented" in str(ref.explain(call("EchoThree")))
    other = ref.request(call(service="other.Service"))
    assert (other["grpc_status"], other["route"]) == (12, None)   # refused by the Gateway: no route


def test_reference_keeps_the_lab_echo_service_as_it_was():
    ref = gwlib.connect("reference")
    ref.apply(BEYOND)
    ref.apply(GRPC_BOTH)
    ans = ref.request(call("Anything", service="gwlib.echo.EchoService", headers={"X-Echo-Set-Header": "X-A:1"}))
    assert ans["grpc_status"] == 0 and ans["headers"] == {"X-A": "1"}


def test_mesh_split_of_a_call_the_backend_refuses():
    ref = gwlib.connect("reference")
    ref.apply(ROOT / "data" / "manifests" / "talk-mesh")
    mesh = {"service": "demo/api", "port": 9090, "from": "demo", "grpc": {"service": SERVICE, "method": "EchoThree"}}
    ans = ref.request(mesh)
    assert (ans["grpc_status"], ans["route"], ans["backend"]) == (12, "demo/api", None)
    assert ref.split(mesh) == {"demo/api": 1.0}


# ------------------------------------------------------------------ the lab, for real

#: a second route: two gRPC ports of one Service, and the lab's own JSON echo service
GRPC_BOTH = """
apiVersion: v1
kind: Service
metadata: {name: two-ports, namespace: apps}
spec:
  ports: [{name: a, port: 9001, appProtocol: kubernetes.io/h2c}, {name: b, port: 9002, appProtocol: kubernetes.io/h2c}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: both, namespace: apps}
spec:
  parentRefs: [{name: multi, sectionName: grpc}]
  hostnames: [grpc.example.com]
  rules:
  - matches: [{method: {service: gateway_api_conformance.echo_basic.grpcecho.GrpcEcho, method: Echo},
               headers: [{name: x-two-ports, value: "yes"}]}]
    backendRefs: [{name: two-ports, port: 9001}]
  - matches: [{method: {service: gateway_api_conformance.echo_basic.grpcecho.GrpcEcho, method: EchoTwo},
               headers: [{name: x-two-ports, value: "yes"}]}]
    backendRefs: [{name: two-ports, port: 9002}]
  - matches: [{method: {service: gwlib.echo.EchoService}}]
    backendRefs: [{name: echo-grpc, port: 9000}]
"""

TWO = {"x-two-ports": "yes"}
REQUESTS = [
    call("Echo", headers={"X-Env": "canary"}),
    call("EchoTwo", headers={"X-Echo-Set-Header": "X-A:1", "x-multi": "a"}),
    call("EchoThree"),
    call("NotAMethod"),
    call("Get", service="other.Service"),
    call("Echo", headers=TWO),
    call("EchoTwo", headers=TWO),
    call("EchoThree", headers=TWO),
    call("Anything", service="gwlib.echo.EchoService", headers={"X-Echo-Set-Header": "X-A:1"}),
]


@pytest.mark.parametrize("dataplane", ["envoy", "traefik"])
def test_lab_answers_the_upstream_echo_as_the_reference_says(dataplane):
    if not binaries.find(dataplane):
        pytest.skip(f"{dataplane} is not installed")
    ref = gwlib.connect("reference")
    ref.apply(BEYOND)
    ref.apply(GRPC_BOTH)
    with gwlib.connect("lab", dataplane=dataplane) as lab:
        lab.apply(BEYOND)
        lab.apply(GRPC_BOTH)
        answers = lab.send(REQUESTS)
        for r, a in zip(REQUESTS, answers):
            assert compare(ref.request(r), a, ref.split(r)) == [], (dataplane, r, a)
    echo, two, three, unknown, other, a1, a2, a3, own = answers
    assert echo["backend"] == {"namespace": "apps", "name": "echo-grpc", "port": 9000}
    assert echo["request"]["path"] == f"/{SERVICE}/Echo" and echo["request"]["host"] == HOST
    assert echo["request"]["headers"]["X-Env"] == "canary" and echo["route"] == "apps/echo"
    assert not any(k.startswith(":") or k.lower() in ("host", "te") for k in echo["request"]["headers"])
    assert two["request"]["headers"]["X-Multi"] == "a" and "X-A" not in two["headers"]
    for refused in (three, unknown):
        assert (refused["grpc_status"], refused["backend"], refused["route"]) == (12, None, "apps/echo")
    assert (other["grpc_status"], other["route"]) == (12, None)
    # the context names the Service, not the port: the lab knows which port answered
    assert (a1["backend"]["port"], a2["backend"]["port"]) == (9001, 9002)
    assert a3["grpc_status"] == 12 and a3["route"] == "apps/echo"     # both's rules name their methods
    assert own["backend"]["name"] == "echo-grpc" and own["headers"].get("X-A") == "1"   # the lab's own service


def test_portability_of_the_notebook_requests():
    if not (binaries.find("envoy") and binaries.find("traefik")):
        pytest.skip("envoy and traefik are needed")
    report = gwlib.portability([BEYOND], [call("Echo"), call("EchoThree"), call("Get", service="other.Service")])
    assert report.agreement == {"envoy": 1.0, "traefik": 1.0}, report.to_frame()
