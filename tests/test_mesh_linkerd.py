"""Linkerd's own HTTPRoute (policy.linkerd.io) and its conversion both ways; the
retry.linkerd.io / timeout.linkerd.io annotations and their precedence; Linkerd's injection
rules."""
from __future__ import annotations

import pytest
import yaml

import gwlib
from gwlib.mesh import inject, linkerd

POLICY_ROUTE = """
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: smiley-a-b, namespace: faces}
spec:
  parentRefs:
  - {name: smiley, kind: Service, group: core, port: 80}
  - {name: smiley-server, kind: Server, group: policy.linkerd.io}
  rules:
  - matches: [{headers: [{name: x-faces-user, value: testuser}]}]
    backendRefs: [{name: smiley2, port: 80}]
    timeouts: {request: 2s}
  - backendRefs: [{name: smiley, port: 80}]
"""

GATEWAY_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: demo}
spec:
  parentRefs:
  - {group: "", kind: Service, name: web, port: 80}
  - {name: edge, namespace: infra}
  rules:
  - name: canary
    matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-env, value: mesh}]}}
    - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}
    backendRefs:
    - {name: web, port: 80, weight: 90}
    - name: web-v2
      port: 80
      weight: 10
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-v, value: "2"}]}}]
    timeouts: {request: 5s}
"""


def test_policy_route_to_gateway():
    conv = linkerd.to_gateway(POLICY_ROUTE)
    m = conv.manifest
    assert m["apiVersion"] == "gateway.networking.k8s.io/v1" and m["kind"] == "HTTPRoute"
    assert m["spec"]["parentRefs"] == [{"group": "", "name": "smiley", "kind": "Service", "port": 80}]
    assert len(conv.notes) == 1 and "Server smiley-server" in conv.notes[0]
    assert m["spec"]["rules"][0]["timeouts"] == {"request": "2s"}
    # the converted route is a valid gateway.networking.k8s.io/v1 HTTPRoute, read by the mesh
    (route,) = gwlib.load(m)
    assert gwlib.validate(m) == [] and route.kind == "HTTPRoute"


def test_gateway_route_to_policy():
    conv = linkerd.to_linkerd(GATEWAY_ROUTE)
    m = conv.manifest
    assert m["apiVersion"] == "policy.linkerd.io/v1beta3"
    assert m["spec"]["parentRefs"] == [{"group": "core", "kind": "Service", "name": "web", "port": 80}]
    rule = m["spec"]["rules"][0]
    assert [f["type"] for f in rule["filters"]] == ["RequestHeaderModifier"]
    assert "name" not in rule and rule["timeouts"] == {"request": "5s"}
    assert all("filters" not in b and b["namespace"] == "demo" for b in rule["backendRefs"])
    lost = " ".join(conv.notes)
    for word in ("Gateway edge", "URLRewrite", "rules[0].name", "backendRefs[1].filters"):
        assert word in lost
    assert not conv.lossless and "# lost:" in str(conv)


def test_v1beta2_has_no_timeouts_and_round_trips():
    conv = linkerd.to_linkerd(GATEWAY_ROUTE, version="v1beta2")
    assert "timeouts" not in conv.manifest["spec"]["rules"][0] and any("v1beta3" in n for n in conv.notes)
    back = linkerd.to_gateway(linkerd.to_linkerd(linkerd.to_gateway(POLICY_ROUTE).manifest).manifest)
    assert back.manifest["spec"]["parentRefs"][0]["group"] == ""
    with pytest.raises(ValueError):
        linkerd.to_linkerd(POLICY_ROUTE)
    with pytest.raises(ValueError):
        linkerd.to_gateway(GATEWAY_ROUTE)
    with pytest.raises(ValueError):
        linkerd.to_linkerd(GATEWAY_ROUTE, version="v1alpha1")


def test_differences_table_names_the_filters():
    rows = {r["field"]: r for r in linkerd.DIFFERENCES}
    assert "URLRewrite" not in rows["rules[].filters"]["policy.linkerd.io/v1beta3"]
    assert "Server" in rows["parentRefs"]["policy.linkerd.io/v1beta3"]


def svc(ann=None, name="web"):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "demo",
                                                                "annotations": ann or {}},
            "spec": {"ports": [{"port": 80, "name": "http"}]}}


def rt(ann=None, kind="HTTPRoute", timeouts=None, name="r"):
    rule = {"backendRefs": [{"name": "web", "port": 80}]}
    if timeouts:
        rule["timeouts"] = timeouts
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "demo", "annotations": ann or {}},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web", "port": 80}], "rules": [rule]}}


@pytest.mark.parametrize("service_ann,route_ann,kind,expected", [
    # Service annotations apply to routes without their own
    ({"retry.linkerd.io/http": "5xx"}, {}, "HTTPRoute", {"on": ["5xx"], "codes": [], "limit": 1, "timeout": None}),
    # any retry annotation on the route replaces all of the Service's
    ({"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "5"}, {"retry.linkerd.io/http": "gateway-error"},
     "HTTPRoute", {"on": ["gateway-error"], "codes": [], "limit": 1, "timeout": None}),
    # ranges and codes
    ({}, {"retry.linkerd.io/http": "500-502,504", "retry.linkerd.io/limit": "2", "retry.linkerd.io/timeout": "300ms"},
     "HTTPRoute", {"on": ["retriable-status-codes"], "codes": [500, 501, 502, 504], "limit": 2, "timeout": "300ms"}),
    # gRPC conditions on a GRPCRoute
    ({}, {"retry.linkerd.io/grpc": "unavailable,cancelled"}, "GRPCRoute",
     {"on": ["unavailable", "cancelled"], "codes": [], "limit": 1, "timeout": None}),
])
def test_retry_annotations(service_ann, route_ann, kind, expected):
    pols = linkerd.policies([svc(service_ann), rt(route_ann, kind)])
    got = pols["demo/r"]["grpc" if kind == "GRPCRoute" else "http"]
    assert got == expected


def test_timeouts_annotation_wins_over_the_field_and_bad_values_are_problems():
    pols = linkerd.policies([svc({"timeout.linkerd.io/request": "1s"}),
                             rt({"timeout.linkerd.io/request": "3s", "retry.linkerd.io/http": "6xx",
                                 "retry.linkerd.io/limit": "-1", "retry.linkerd.io/grpc": "unavailable"},
                                timeouts={"request": "9s"})])
    p = pols["demo/r"]
    assert p["timeouts"] == {"request": "3s"} and p["from"]["timeouts"] == "route"
    problems = " ".join(p["problems"])
    assert "'6xx'" in problems and "limit" in problems and "does nothing on an HTTPRoute" in problems
    assert linkerd.policies([svc({"timeout.linkerd.io/idle": "forever"})])["svc:demo/web"]["problems"]


def test_policy_table_shows_every_object_with_a_policy():
    df = linkerd.policy_table([svc({"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "3"}), rt(),
                               svc(name="plain")])
    assert list(df["object"]) == ["demo/r", "Service demo/web"]
    assert list(df["retry from"]) == ["Service demo/web", "Service demo/web"]


def test_injection_rules_and_identity():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "annotations": {"linkerd.io/inject": "enabled"}}}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
           "spec": {"selector": {"matchLabels": {"app": "cart"}},
                    "template": {"metadata": {"labels": {"app": "cart"}},
                                 "spec": {"serviceAccountName": "cart", "containers": [{"name": "c"}]}}}}
    (w,) = inject.workloads([ns, dep])
    assert w.meshed and w.identity == "cart.shop.serviceaccount.identity.linkerd.cluster.local"
    assert w.to_dict()["identity"] and "namespace shop" in w.reason
    assert inject.decide("cert-manager", {"linkerd.io/inject": "enabled"}, {})[0] is False


def test_data_files_parse():
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    for f in (root / "data" / "manifests" / "mesh").glob("*.yaml"):
        assert gwlib.validate(f) == [], f
    assert yaml.safe_load((root / "data" / "compat" / "samples" / "talk-workaround-crds.yaml").read_text())["items"]
