"""The lab's mesh end to end: real traffic from a meshed client goes through its sidecar (an
Envoy standing in for linkerd2-proxy), which applies the GAMMA routes; an unmeshed client's
goes straight to the Service. Same answers as the reference router, and no process left."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import gwlib
from gwlib import binaries

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "data" / "manifests" / "talk-mesh"
pytestmark = pytest.mark.skipif(not binaries.find("envoy"), reason="envoy not installed")

CANARY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v2, namespace: demo}
spec:
  selector: {matchLabels: {app: web, version: v2}}
  template:
    metadata: {labels: {app: web, version: v2}}
    spec: {containers: [{name: web, image: ghcr.io/example/web:2.0.0}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-v2, namespace: demo}
spec:
  selector: {app: web, version: v2}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
  - backendRefs:
    - {name: web, port: 80, weight: 90}
    - {name: web-v2, port: 80, weight: 10}
---
apiVersion: v1
kind: Namespace
metadata: {name: batch}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: report, namespace: batch}
spec:
  selector: {matchLabels: {app: report}}
  template:
    metadata: {labels: {app: report}}
    spec: {containers: [{name: report, image: busybox}]}
"""


@pytest.fixture(scope="module")
def lab():
    with gwlib.connect("lab", dataplane="envoy", seed=3) as lab:
        lab.apply(SEED)
        lab.apply(CANARY)
        yield lab


def _sample(lab, request, n):
    answers = [lab.request(request) for _ in range(n)]
    return answers, Counter(a["backend"]["name"] for a in answers if a.get("backend"))


def test_meshed_client_splits_90_10_through_its_sidecar(lab):
    meshed = {"service": "demo/web", "port": 80, "from": "demo", "workload": "client", "path": "/shop"}
    assert lab.split(meshed) == pytest.approx({"demo/web": 0.9, "demo/web-v2": 0.1})
    answers, counts = _sample(lab, meshed, 600)
    assert all(a["status"] == 200 and a["route"] == "demo/web" for a in answers)
    # the hop: the sidecar of demo/client forwarded it (the backend saw it, the client sees it)
    assert all(a["request"]["headers"].get("X-Gwlib-Sidecar") == "demo/client" for a in answers)
    assert all(a["headers"].get("X-Gwlib-Sidecar") == "demo/client" for a in answers)
    share = counts["web-v2"] / 600
    assert abs(share - 0.10) < 0.04, counts          # ~3.3 standard deviations


def test_unmeshed_client_bypasses_the_route(lab):
    unmeshed = {"service": "demo/web", "port": 80, "from": "batch", "workload": "report", "path": "/shop"}
    assert lab.split(unmeshed) == {"demo/web": 1.0}
    answers, counts = _sample(lab, unmeshed, 200)
    assert counts == {"web": 200}
    assert all("X-Gwlib-Sidecar" not in a["request"]["headers"] and a["route"] is None for a in answers)


def test_mesh_request_form_without_workload_is_a_meshed_client(lab):
    ans = lab.request({"service": "demo/web", "port": 80, "from": "batch", "path": "/"})
    assert ans["route"] == "demo/web" and ans["request"]["headers"]["X-Gwlib-Sidecar"] == "batch/*"
    flag = lab.request({"service": "demo/web", "port": 80, "from": "demo", "meshed": False, "path": "/"})
    assert flag["backend"]["name"] == "web" and flag["route"] is None


UPSTREAM = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"   # echo-basic's gRPC service


def test_grpc_through_the_sidecar(lab):
    ans = lab.request({"service": "demo/api", "port": 9090, "from": "demo", "workload": "client",
                       "grpc": {"service": UPSTREAM, "method": "Echo"}})
    assert ans["grpc_status"] == 0 and ans["route"] == "demo/api"
    assert ans["backend"] == {"namespace": "demo", "name": "api", "port": 9090}
    assert ans["request"]["headers"]["X-Gwlib-Sidecar"] == "demo/client"
    assert ans["request"]["path"] == f"/{UPSTREAM}/Echo" and ans["request"]["host"] == "api"
    # the lab's own JSON echo service answers too
    own = lab.request({"service": "demo/api", "port": 9090, "from": "demo", "workload": "client",
                       "grpc": {"service": "gwlib.echo.EchoService", "method": "Echo"}})
    assert own["grpc_status"] == 0 and own["backend"]["name"] == "api"
    # echo-basic does not implement EchoThree: the sidecar routed it, the backend refused it
    three = lab.request({"service": "demo/api", "port": 9090, "from": "demo", "workload": "client",
                         "grpc": {"service": UPSTREAM, "method": "EchoThree"}})
    assert (three["grpc_status"], three["backend"], three["route"]) == (12, None, "demo/api")


def test_lab_answers_agree_with_the_reference_router(lab):
    from gwlib.portability import compare
    ref = gwlib.connect("reference")
    ref.apply(SEED)
    requests = [
        {"service": "demo/web", "port": 80, "from": "demo", "workload": "client", "path": "/a?b=1",
         "headers": {"X-Env": "x"}},
        {"service": "demo/api", "port": 9090, "from": "demo", "grpc": {"service": "gwlib.echo.EchoService",
                                                                       "method": "Echo"}},
        {"service": "demo/api", "port": 9090, "from": "demo", "grpc": {"service": UPSTREAM, "method": "EchoTwo"},
         "headers": {"X-Env": "x"}},
        {"service": "demo/api", "port": 9090, "from": "demo", "grpc": {"service": UPSTREAM, "method": "EchoThree"}},
        {"service": "demo/api", "port": 9090, "from": "demo", "meshed": False,
         "grpc": {"service": UPSTREAM, "method": "Echo"}},
        {"service": "demo/web", "port": 80, "from": "demo", "meshed": False, "path": "/"},
    ]
    with gwlib.connect("lab", dataplane="envoy") as seed_lab:
        seed_lab.apply(SEED)
        for r in requests:
            assert compare(ref.request(r), seed_lab.request(r)) == [], r


def test_retry_annotation_is_applied_by_the_sidecar(lab):
    # retry.linkerd.io/http: 5xx with limit 3 on the Service: a meshed client's proxy retries,
    # an unmeshed client sees every injected error
    lab.apply("""
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
  annotations: {retry.linkerd.io/http: 5xx, retry.linkerd.io/limit: "3"}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
""")
    lab.fleet.set_fault("demo", "web", None, error_rate=0.5, seed=1)
    try:
        meshed = [lab.request({"service": "demo/web", "port": 80, "from": "demo", "workload": "client",
                               "path": "/r"})["status"] for _ in range(200)]
        plain = [lab.request({"service": "demo/web", "port": 80, "from": "batch", "workload": "report",
                              "path": "/r"})["status"] for _ in range(200)]
    finally:
        lab.fleet.clear_faults()
    # web gets 90% of meshed traffic: 0.9 * 0.5^4 ≈ 5.6 % errors with retries, 50 % without
    assert meshed.count(500) / 200 < 0.15 and plain.count(500) / 200 > 0.35


def test_mesh_workloads_table(lab):
    df = lab.mesh_workloads().set_index("workload")
    assert bool(df.loc["client", "meshed"]) and not bool(df.loc["report", "meshed"])
    assert "namespace demo" in df.loc["client", "reason"]
