"""Status stanzas exactly as a conforming controller writes them (design §4.1, reference §4.2-4.3).

Checks the shape of ``ControllerResult.statuses()`` (``kubectl get -o json`` items), each
condition reason that applies, and the talk / multi-namespace manifests end to end.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "semantics"))
from builders import (  # noqa: E402
    base, bref, gatewayclass, gateway, grant, listener, match, pref, route, rule, secret, service, world,
)

import gwlib  # noqa: E402
from gwlib.controller import reconcile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TALK = ROOT / "data" / "manifests" / "talk"
MULTI = ROOT / "data" / "manifests" / "multi-namespace"
SEMANTICS = ROOT / "tests" / "fixtures" / "semantics"


def items(objs):
    return reconcile(objs).statuses()


def item(objs, kind, name, ns=None):
    for it in items(objs):
        m = it["metadata"]
        if it["kind"] == kind and m["name"] == name and (ns is None or m.get("namespace") == ns):
            return it
    raise AssertionError(f"{kind} {ns}/{name} not in statuses()")


def conds(stanza):
    return {c["type"]: (c["status"], c["reason"]) for c in stanza["conditions"]}


# --------------------------------------------------------------------------- shape

def test_items_are_whole_objects_with_status():
    objs = base(route("r", rules=[rule(bref("svc"))]))
    its = items(objs)
    assert [i["kind"] for i in its] == ["GatewayClass", "Gateway", "HTTPRoute"]
    for it in its:
        assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(it)


def test_items_ordered_by_kind_then_namespace_name():
    objs = base(route("b", rules=[rule(bref("svc"))]), route("a", ns="apps", rules=[rule(bref("svc", ns="infra"))]),
                route("g", kind="GRPCRoute", rules=[rule(bref("svc"))]), gatewayclass("aaa", "example.net/x"))
    got = [(i["kind"], i["metadata"].get("namespace"), i["metadata"]["name"]) for i in items(objs)]
    assert got == [("GatewayClass", None, "aaa"), ("GatewayClass", None, "gwlib"), ("Gateway", "infra", "gw"),
                   ("HTTPRoute", "apps", "a"), ("HTTPRoute", "infra", "b"), ("GRPCRoute", "infra", "g")]


def test_other_kinds_are_not_listed():
    its = items(base(secret("s"), grant("infra", "HTTPRoute", "x")))
    assert {i["kind"] for i in its} == {"GatewayClass", "Gateway"}


def test_condition_fields_are_exactly_the_contract():
    for it in items(base(route("r", rules=[rule(bref("svc"))]))):
        st = it["status"]
        cl = st.get("conditions") or [c for p in st.get("parents", []) for c in p["conditions"]]
        for l in st.get("listeners", []):
            cl += l["conditions"]
        assert cl
        for c in cl:
            assert set(c) == {"type", "status", "reason", "message", "observedGeneration"}
            assert c["status"] in ("True", "False", "Unknown") and c["message"]


def test_gateway_status_stanza():
    st = item(base(), "Gateway", "gw")["status"]
    assert st["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert conds(st) == {"Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed")}
    (l,) = st["listeners"]
    assert l["name"] == "http" and l["attachedRoutes"] == 0
    assert l["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
                                   {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}]
    assert conds(l) == {"Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed"),
                        "ResolvedRefs": ("True", "ResolvedRefs"), "Conflicted": ("False", "NoConflicts")}


def test_route_parent_stanza():
    st = item(base(route("r", parents=[pref(section="http")], rules=[rule(bref("svc"))])), "HTTPRoute", "r")["status"]
    (p,) = st["parents"]
    assert p["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra",
                              "name": "gw", "sectionName": "http"}
    assert p["controllerName"] == "gwlib.dev/gateway-controller"
    assert conds(p) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}


def test_route_parent_ref_keeps_what_the_spec_said():
    st = item(base(route("r", parents=[pref(ns=None, port=80)], rules=[rule(bref("svc"))])), "HTTPRoute", "r")["status"]
    assert st["parents"][0]["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "gw", "port": 80}


@pytest.mark.parametrize("controller,expected", [
    ("gwlib.dev/gateway-controller", {"Accepted": ("True", "Accepted"), "SupportedVersion": ("True", "SupportedVersion")}),
    ("traefik.io/gateway-controller", {"Accepted": ("True", "Accepted"), "SupportedVersion": ("True", "SupportedVersion")}),
    ("example.net/other", {"Accepted": ("Unknown", "Pending")}),
])
def test_gatewayclass_status(controller, expected):
    st = item(world(gatewayclass("c", controller)), "GatewayClass", "c")["status"]
    assert conds(st) == expected


def test_foreign_gateway_keeps_the_api_server_default_status():
    st = item(world(gatewayclass("o", "example.net/x"), gateway(cls="o")), "Gateway", "gw")["status"]
    assert conds(st) == {"Accepted": ("Unknown", "Pending"), "Programmed": ("Unknown", "Pending")}
    assert all(c["message"] == "Waiting for controller" for c in st["conditions"])
    assert "listeners" not in st and "addresses" not in st


def test_route_of_foreign_gateway_has_no_parents():
    st = item(world(gatewayclass("o", "example.net/x"), gateway(cls="o"), service("svc", "infra"),
                    route("r", rules=[rule(bref("svc"))])), "HTTPRoute", "r")["status"]
    assert st == {"parents": []}


@pytest.mark.parametrize("gen,expected", [(None, 1), (1, 1), (5, 5)])
def test_observed_generation(gen, expected):
    objs = world(gatewayclass(generation=gen), gateway(generation=gen), service("svc", "infra"),
                 route("r", rules=[rule(bref("svc"))], generation=gen))
    for it in items(objs):
        st = it["status"]
        cl = list(st.get("conditions", [])) + [c for p in st.get("parents", []) for c in p["conditions"]]
        cl += [c for l in st.get("listeners", []) for c in l["conditions"]]
        assert {c["observedGeneration"] for c in cl} == {expected}


def test_input_status_is_replaced():
    r = route("r", rules=[rule(bref("svc"))])
    r["status"] = {"parents": [{"parentRef": {"name": "stale"}, "controllerName": "x/y", "conditions": []}]}
    st = item(base(r), "HTTPRoute", "r")["status"]
    assert st["parents"][0]["parentRef"]["name"] == "gw"


# --------------------------------------------------------------------------- every reason

ROUTE_REASONS = [
    # (route kwargs, extra docs, listeners, condition type, expected (status, reason))
    (dict(rules=[rule(bref("svc"))]), [], None, "Accepted", ("True", "Accepted")),
    (dict(ns="apps", rules=[rule(bref("svc", ns="infra"))]), [], [listener(from_="Same")], "Accepted",
     ("False", "NotAllowedByListeners")),
    (dict(hostnames=["a.example.net"], rules=[rule(bref("svc"))]), [], [listener(hostname="*.example.com")],
     "Accepted", ("False", "NoMatchingListenerHostname")),
    (dict(parents=[pref(section="nope")], rules=[rule(bref("svc"))]), [], None, "Accepted",
     ("False", "NoMatchingParent")),
    (dict(rules=[rule(bref("svc"), matches=[match("(", ptype="RegularExpression")])]), [], None, "Accepted",
     ("False", "UnsupportedValue")),
    (dict(rules=[rule(bref("svc"))]), [], None, "ResolvedRefs", ("True", "ResolvedRefs")),
    (dict(rules=[rule(bref("nope"))]), [], None, "ResolvedRefs", ("False", "BackendNotFound")),
    (dict(rules=[rule(bref("svc", kind="Pod"))]), [], None, "ResolvedRefs", ("False", "InvalidKind")),
    (dict(rules=[rule(bref("web", ns="apps"))]), [service("web", "apps")], None, "ResolvedRefs",
     ("False", "RefNotPermitted")),
    (dict(rules=[rule(bref("ext"))]), [service("ext", "infra", type_="ExternalName")], None, "ResolvedRefs",
     ("False", "UnsupportedProtocol")),
    (dict(rules=[rule(bref("svc")), rule(bref("svc"), matches=[match("(", ptype="RegularExpression")])]), [], None,
     "PartiallyInvalid", ("True", "UnsupportedValue")),
]


@pytest.mark.parametrize("kw,extra,listeners,ctype,expected", ROUTE_REASONS)
def test_route_condition_reasons(kw, extra, listeners, ctype, expected):
    ns = kw.get("ns", "infra")
    st = item(base(route("r", **kw), *extra, listeners=listeners), "HTTPRoute", "r", ns)["status"]
    assert conds(st["parents"][0])[ctype] == expected


LISTENER_REASONS = [
    ([listener()], "Accepted", ("True", "Accepted")),
    ([listener("x", 80, "example.com/x"), listener("y", 81)], "Accepted", ("False", "UnsupportedProtocol")),
    ([listener()], "Programmed", ("True", "Programmed")),
    ([listener("h", 443, "HTTPS", cert="missing")], "Programmed", ("False", "Invalid")),
    ([listener()], "ResolvedRefs", ("True", "ResolvedRefs")),
    ([listener("h", 443, "HTTPS", cert="missing")], "ResolvedRefs", ("False", "InvalidCertificateRef")),
    ([listener("h", 443, "HTTPS", cert="tls", cert_ns="certs")], "ResolvedRefs", ("False", "RefNotPermitted")),
    ([listener(kinds=["TCPRoute"])], "ResolvedRefs", ("False", "InvalidRouteKinds")),
    ([listener()], "Conflicted", ("False", "NoConflicts")),
    ([listener("a", 80), listener("b", 80, "TCP")], "Conflicted", ("True", "ProtocolConflict")),
    ([listener("a", 443, "HTTPS", hostname="a.example.com", cert="tls"),
      listener("b", 443, "TLS", hostname="a.example.com", mode="Passthrough")], "Conflicted",
     ("True", "HostnameConflict")),
]


@pytest.mark.parametrize("listeners,ctype,expected", LISTENER_REASONS)
def test_listener_condition_reasons(listeners, ctype, expected):
    st = item(base(secret("tls", "certs"), secret("tls"), listeners=listeners), "Gateway", "gw")["status"]
    assert conds(st["listeners"][0])[ctype] == expected


GATEWAY_REASONS = [
    ([listener()], {"Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed")}),
    ([listener(), listener("h", 443, "HTTPS", cert="missing")],
     {"Accepted": ("True", "ListenersNotValid"), "Programmed": ("True", "Programmed")}),
    ([listener("h", 443, "HTTPS", cert="missing")],
     {"Accepted": ("False", "ListenersNotValid"), "Programmed": ("False", "Invalid")}),
    ([listener("a", 80), listener("b", 80, "TCP")],
     {"Accepted": ("False", "ListenersNotValid"), "Programmed": ("False", "Invalid")}),
]


@pytest.mark.parametrize("listeners,expected", GATEWAY_REASONS)
def test_gateway_condition_reasons(listeners, expected):
    assert conds(item(base(listeners=listeners), "Gateway", "gw")["status"]) == expected


# --------------------------------------------------------------------------- manifests in the repo

def _need(path: Path):
    if not path.exists():
        pytest.skip(f"{path} not present")


def test_talk_manifests_status():
    _need(TALK)
    its = items(gwlib.load(TALK))
    by = {(i["kind"], i["metadata"]["name"]): i for i in its}
    gc = [i for i in its if i["kind"] == "GatewayClass"][0]
    assert gc["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert conds(gc["status"])["Accepted"] == ("True", "Accepted")
    gw = [i for i in its if i["kind"] == "Gateway"][0]
    assert conds(gw["status"]) == {"Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed")}
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert {l["name"]: l["attachedRoutes"] for l in gw["status"]["listeners"]} == {"http": 1, "https": 1}
    for l in gw["status"]["listeners"]:
        assert conds(l)["ResolvedRefs"] == ("True", "ResolvedRefs")
    routes = [i for i in its if i["kind"] == "HTTPRoute"]
    assert len(routes) == 2
    for r in routes:
        (p,) = r["status"]["parents"]
        assert p["controllerName"] == "traefik.io/gateway-controller"
        assert conds(p) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    assert by


def test_multi_namespace_manifests_status():
    _need(MULTI)
    its = items(gwlib.load(MULTI))
    routes = {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in its if i["kind"] == "HTTPRoute"}
    for key, r in routes.items():
        (p,) = r["status"]["parents"]
        assert conds(p)["Accepted"] == ("True", "Accepted"), key
    refused = [k for k, r in routes.items() if conds(r["status"]["parents"][0])["ResolvedRefs"][0] == "False"]
    assert refused == [("team-b", "api-auth")]
    assert conds(routes[("team-b", "api-auth")]["status"]["parents"][0])["ResolvedRefs"] == ("False", "RefNotPermitted")
    gw = [i for i in its if i["kind"] == "Gateway"][0]
    assert gw["status"]["listeners"][0]["attachedRoutes"] == len(routes)


def test_semantics_fixture_status():
    objs = gwlib.load(SEMANTICS / "status-world.yaml")
    its = items(objs)
    by = {(i["kind"], i["metadata"].get("namespace"), i["metadata"]["name"]): i for i in its}
    gw = by[("Gateway", "edge", "edge")]
    ls = {l["name"]: l for l in gw["status"]["listeners"]}
    assert conds(ls["web"])["Accepted"] == ("True", "Accepted")
    assert conds(ls["secure"])["ResolvedRefs"] == ("True", "ResolvedRefs")
    assert conds(ls["stolen"])["ResolvedRefs"] == ("False", "RefNotPermitted")
    assert ls["web"]["attachedRoutes"] == 2
    assert conds(by[("HTTPRoute", "shop", "shop")]["status"]["parents"][0])["Accepted"] == ("True", "Accepted")
    assert conds(by[("HTTPRoute", "intruder", "sneaky")]["status"]["parents"][0])["Accepted"] == \
        ("False", "NotAllowedByListeners")
    assert by[("Gateway", "edge", "foreign")]["status"]["conditions"][0]["reason"] == "Pending"


def test_items_always_carry_their_namespace():
    r = route("r", rules=[rule(bref("svc", ns="infra"))])
    del r["metadata"]["namespace"]
    its = items(base(r, grant("infra", "HTTPRoute", "default")))
    hr = [i for i in its if i["kind"] == "HTTPRoute"][0]
    assert list(hr["metadata"])[:2] == ["name", "namespace"] and hr["metadata"]["namespace"] == "default"
    assert "namespace" not in [i for i in its if i["kind"] == "GatewayClass"][0]["metadata"]


def test_statuses_do_not_touch_the_input_objects():
    objs = base(route("r", rules=[rule(bref("svc"))]))
    before = [o.to_dict(defaults=True) for o in objs]
    items(objs)
    assert [o.to_dict(defaults=True) for o in objs] == before
