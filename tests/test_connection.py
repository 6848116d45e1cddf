"""gwlib.connect(): the store behaves like an API server on apply; reference mode answers."""
from __future__ import annotations

import pytest

import gwlib
from conftest import ROOT

TALK = ROOT / "data" / "manifests" / "talk"
GW = "argocd/argocd-server-gateway"

CANARY = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: argocd}
spec:
  parentRefs: [{name: argocd-server-gateway, sectionName: https}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /shop}}]
    backendRefs:
    - {name: argocd-server, port: 80, weight: 3}
    - {name: argocd-server, port: 443, weight: 1}
"""


@pytest.fixture
def ref():
    with gwlib.connect("reference") as conn:
        conn.apply(TALK)
        yield conn


def test_apply_sets_creation_timestamps_in_order_and_generation_1(ref):
    stamps = [o.creation_timestamp for o in ref.objects]
    assert all(stamps) and stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert {o.generation for o in ref.objects} == {1}


def test_reapplying_a_changed_spec_bumps_generation_and_keeps_creation(ref):
    (route,) = [o for o in ref.objects if o.kind == "HTTPRoute" and o.key == "argocd/argocd-server"]
    ref.apply(TALK / "31-httproute.yaml")
    (same,) = [o for o in ref.objects if o.kind == "HTTPRoute" and o.key == "argocd/argocd-server"]
    assert same.generation == 1
    text = (TALK / "31-httproute.yaml").read_text().replace("value: /", "value: /api")
    (changed,) = ref.apply(text)
    assert changed.generation == 2 and changed.creation_timestamp == route.creation_timestamp
    statuses = {(i["kind"], i["metadata"]["name"]): i for i in ref.status()}
    parent = statuses[("HTTPRoute", "argocd-server")]["status"]["parents"][0]
    assert {c["observedGeneration"] for c in parent["conditions"]} == {2}


def test_invalid_apply_stores_nothing(ref):
    before = len(ref.objects)
    bad = CANARY + "---\n" + CANARY.replace("name: shop", "name: bad").replace("port: 443, ", "")
    with pytest.raises(gwlib.InvalidManifest) as err:
        ref.apply(bad)
    assert "Must have port for Service reference" in str(err.value)
    assert len(ref.objects) == before


def test_status_lists_conditions_of_every_object(ref):
    frame = ref.status().to_frame()
    assert set(frame["kind"]) == {"GatewayClass", "Gateway", "HTTPRoute"}
    assert (frame[frame["type"] == "Accepted"]["status"] == "True").all()


def test_requests_redirect_on_http_and_forward_on_https(ref):
    http = ref.request(gateway=GW, host="argocd.example.com", path="/x?y=1")
    assert (http["status"], http["location"]) == (302, "https://argocd.example.com/x?y=1")
    https = ref.request(gateway=GW, port=443, scheme="https", host="argocd.example.com", path="/x")
    assert https["status"] == 200
    assert https["backend"] == {"namespace": "argocd", "name": "argocd-server", "port": 80}


def test_set_weights_changes_the_split_and_rejects_unknown_names(ref):
    ref.apply(CANARY.replace("port: 443, weight: 1", "port: 443, weight: 1}\n    - {name: other, port: 80, weight: 0"))
    req = dict(gateway=GW, port=443, scheme="https", host="argocd.example.com", path="/shop/cart")
    assert ref.split(req) == {"argocd/argocd-server": 1.0}
    ref.set_weights("argocd/shop", {"other": 1})
    assert ref.split(req) == {"argocd/argocd-server": 0.8, "500": 0.2}
    with pytest.raises(ValueError, match="no backendRef named nope"):
        ref.set_weights("argocd/shop", {"nope": 1})


def test_delete_removes_objects_and_routing_follows(ref):
    assert ref.delete(TALK / "30-httproute-redirect.yaml") == 1
    answer = ref.request(gateway=GW, host="argocd.example.com", path="/")
    assert answer["status"] == 404


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mode"):
        gwlib.connect("moon")


def test_traffic_rows_follow_the_split(ref):
    ref.apply(CANARY)
    req = dict(gateway=GW, port=443, scheme="https", host="argocd.example.com", path="/shop")
    frame = ref.traffic(req, n=200)
    assert len(frame) == 200 and set(frame["status"]) == {200}
    assert frame["t_s"].is_monotonic_increasing and (frame["latency_ms"] >= 0).all()
    assert set(frame["backend"]) == {"argocd/argocd-server"}


def test_traffic_is_paced_when_a_rate_is_given(ref):
    frame = ref.traffic(gateway=GW, host="argocd.example.com", path="/", n=5, rate=100)
    assert frame["t_s"].iloc[-1] >= 0.035 and set(frame["status"]) == {302}


def test_a_lab_notebook_runs_in_reference_mode_too(monkeypatch):
    """Notebooks open their live connection as gwlib.connect(MODE, dataplane=...): with
    GWLIB_MODE=reference that is the reference router, whatever the data plane asked for."""
    monkeypatch.setenv("GWLIB_MODE", "reference")
    conn = gwlib.connect(gwlib.mode(), dataplane="envoy", seed=3)
    assert conn.mode == "reference"
    conn.apply(ROOT / "data" / "manifests" / "talk")
    ans = conn.request(gateway="argocd/argocd-server-gateway", port=443, scheme="https",
                       host="argocd.example.com", path="/")
    assert ans["status"] == 200 and ans["backend"]["name"] == "argocd-server"
