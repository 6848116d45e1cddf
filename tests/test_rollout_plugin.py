"""What the Gateway API plugin writes into routes."""
from __future__ import annotations

import pytest

from gwlib.rollout import plugin


def route(rules, kind="HTTPRoute") -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
            "metadata": {"name": "r", "namespace": "ns"}, "spec": {"rules": rules}}


def refs(*names, **weights):
    out = []
    for n in names:
        r = {"name": n, "port": 80}
        if n in weights:
            r["weight"] = weights[n]
        out.append(r)
    return out


def test_every_rule_listing_the_services_gets_the_weights():
    r = route([{"matches": [{"path": {"type": "PathPrefix", "value": "/a"}}], "backendRefs": refs("stable", "canary")},
               {"matches": [{"path": {"type": "PathPrefix", "value": "/b"}}], "backendRefs": refs("canary", "stable")},
               {"backendRefs": refs("stable", "other", other=7)}])
    out = plugin.set_weight(r, "canary", "stable", 30)
    rules = out["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rules[0]["backendRefs"]] == [("stable", 70), ("canary", 30)]
    assert [(b["name"], b["weight"]) for b in rules[1]["backendRefs"]] == [("canary", 30), ("stable", 70)]
    assert rules[2]["backendRefs"] == [{"name": "stable", "port": 80, "weight": 70}, {"name": "other", "port": 80, "weight": 7}]
    assert "weight" not in r["spec"]["rules"][0]["backendRefs"][0]           # the input is untouched


def test_matched_by_service_name_only():
    r = route([{"backendRefs": [{"name": "stable", "namespace": "elsewhere", "port": 8080},
                                {"name": "canary", "kind": "Service", "port": 9090}]}])
    out = plugin.set_weight(r, "canary", "stable", 10)
    assert [b["weight"] for b in out["spec"]["rules"][0]["backendRefs"]] == [90, 10]


def test_a_route_without_both_services_is_the_plugins_error():
    with pytest.raises(plugin.BackendRefNotFound, match="backendRef was not found in httpRoute"):
        plugin.set_weight(route([{"backendRefs": refs("stable")}]), "canary", "stable", 10)
    with pytest.raises(plugin.BackendRefNotFound, match="grpcRoute"):
        plugin.set_weight(route([{"backendRefs": refs("other")}], kind="GRPCRoute"), "canary", "stable", 10)


def test_header_routes():
    src = {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET",
                        "headers": [{"name": "X-Old", "value": "1"}]}],
           "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "A", "value": "b"}]}}],
           "backendRefs": refs("stable", "canary", stable=100, canary=0)}
    r = route([src, {"backendRefs": refs("stable", "canary")}])
    match = [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}},
             {"headerName": "X-User", "headerValue": {"prefix": "beta"}},
             {"headerName": "X-Id", "headerValue": {"regex": "[0-9]+"}}]
    out = plugin.set_header_route(r, "canary", "stable", "canary-header", match, ["canary-header"])
    rules = out["spec"]["rules"]
    assert [r_.get("name") for r_ in rules] == [None, None, "canary-header", "canary-header-1"]
    h = rules[2]
    assert h["backendRefs"] == [{"name": "canary", "port": 80}]              # no weight: 100 %
    assert h["filters"] == src["filters"]
    assert h["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET", "headers": [
        {"name": "X-Canary", "type": "Exact", "value": "yes"},
        {"name": "X-User", "type": "RegularExpression", "value": "beta.*"},
        {"name": "X-Id", "type": "RegularExpression", "value": "[0-9]+"}]}]
    assert rules[3]["matches"] == [{"headers": h["matches"][0]["headers"]}]
    # setWeight leaves the header rules alone (plugin >= 0.13)
    w = plugin.set_weight(out, "canary", "stable", 0, ["canary-header"])
    assert w["spec"]["rules"][2]["backendRefs"] == [{"name": "canary", "port": 80}]
    # a step without match removes them
    gone = plugin.set_header_route(w, "canary", "stable", "canary-header", [], ["canary-header"])
    assert [r_.get("name") for r_ in gone["spec"]["rules"]] == [None, None]
    assert plugin.remove_managed_rules(out, ["canary-header"])["spec"]["rules"] == r["spec"]["rules"]


def test_in_progress_label():
    r = route([{"backendRefs": refs("stable", "canary")}])
    on = plugin.in_progress_label(r, ("rollouts.argoproj.io/gatewayapi-canary", "in-progress"), 20)
    assert on["metadata"]["labels"] == {"rollouts.argoproj.io/gatewayapi-canary": "in-progress"}
    off = plugin.in_progress_label(on, ("rollouts.argoproj.io/gatewayapi-canary", "in-progress"), 0)
    assert "labels" not in off["metadata"]
    assert plugin.in_progress_label(r, None, 20) is r


def test_route_weights_default_to_one():
    assert plugin.route_weights(route([{"backendRefs": refs("stable", "canary")}]), "canary", "stable") == \
        {"stable": 1, "canary": 1}
