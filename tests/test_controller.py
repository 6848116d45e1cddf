"""Controller: GatewayClass acceptance, listener validation, route attachment, references.

Table-driven, written from the spec text (reference gateway-api.md §3.3, §3.4, §3.7, §4).
Each case builds a small world of manifests, reconciles it and checks conditions.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "semantics"))
from builders import (  # noqa: E402
    base, bref, gatewayclass, gateway, grant, grpc_match, listener, match, namespace, pref, route,
    rule, secret, service, world,
)

from gwlib.controller import CONTROLLER_NAMES, reconcile  # noqa: E402


def cond(conds, type_):
    return next((c for c in conds if c.type == type_), None)


def triple(conds, type_):
    c = cond(conds, type_)
    return None if c is None else (c.status, c.reason)


def gw_of(result, key="infra/gw"):
    g = result.gateway(key)
    assert g is not None, f"Gateway {key} not reconciled"
    return g


# --------------------------------------------------------------------------- GatewayClass

@pytest.mark.parametrize("controller,ours", [
    ("gwlib.dev/gateway-controller", True),
    ("traefik.io/gateway-controller", True),
    ("example.net/gateway-controller", False),
    ("gateway.envoyproxy.io/gatewayclass-controller", False),
    ("traefik.io/gateway-controller-v2", False),
])
def test_gatewayclass_acceptance(controller, ours):
    res = reconcile(world(gatewayclass("c", controller)))
    cls = res.classes["c"]
    assert cls.ours is ours and cls.accepted is ours
    if ours:
        assert triple(cls.conditions, "Accepted") == ("True", "Accepted")
        assert triple(cls.conditions, "SupportedVersion") == ("True", "SupportedVersion")
    else:
        assert cls.conditions == []  # left alone, as a real controller would


def test_controller_names_are_the_design_ones():
    assert set(CONTROLLER_NAMES) == {"gwlib.dev/gateway-controller", "traefik.io/gateway-controller"}


@pytest.mark.parametrize("cls_docs,gw_class,managed", [
    ([gatewayclass("gwlib")], "gwlib", True),
    ([gatewayclass("other", "example.net/x")], "other", False),
    ([], "missing", False),
])
def test_only_gateways_of_our_classes_are_managed(cls_docs, gw_class, managed):
    res = reconcile(world(*cls_docs, gateway(cls=gw_class)))
    assert (res.gateway("infra/gw") is not None) is managed


# --------------------------------------------------------------------------- listeners

@pytest.mark.parametrize("proto,extra,kinds", [
    ("HTTP", {}, ["HTTPRoute", "GRPCRoute"]),
    ("HTTPS", {"cert": "tls"}, ["HTTPRoute", "GRPCRoute"]),
    ("TLS", {"mode": "Passthrough", "hostname": "a.example.com"}, ["TLSRoute"]),
    ("TCP", {}, ["TCPRoute"]),
    ("UDP", {}, ["UDPRoute"]),
])
def test_supported_kinds_by_protocol(proto, extra, kinds):
    res = reconcile(base(secret("tls"), listeners=[listener("l", 443, proto, **extra)]))
    l = gw_of(res).listeners[0]
    assert [k["kind"] for k in l.supported_kinds] == kinds
    assert all(k["group"] == "gateway.networking.k8s.io" for k in l.supported_kinds)
    assert l.ready
    assert triple(l.conditions, "Accepted") == ("True", "Accepted")
    assert triple(l.conditions, "Programmed") == ("True", "Programmed")
    assert triple(l.conditions, "ResolvedRefs") == ("True", "ResolvedRefs")


def test_unsupported_protocol_is_not_accepted():
    res = reconcile(base(listeners=[listener("odd", 9000, "example.com/custom"), listener()]))
    odd = gw_of(res).listener("odd")
    assert triple(odd.conditions, "Accepted") == ("False", "UnsupportedProtocol")
    assert triple(odd.conditions, "Programmed") == ("False", "Invalid")
    assert odd.supported_kinds == [] and not odd.ready
    assert triple(gw_of(res).conditions, "Accepted") == ("True", "ListenersNotValid")


@pytest.mark.parametrize("kinds,supported,resolved", [
    (["HTTPRoute"], ["HTTPRoute"], ("True", "ResolvedRefs")),
    (["GRPCRoute"], ["GRPCRoute"], ("True", "ResolvedRefs")),
    (["HTTPRoute", "GRPCRoute"], ["HTTPRoute", "GRPCRoute"], ("True", "ResolvedRefs")),
    (["TCPRoute"], [], ("False", "InvalidRouteKinds")),
    (["HTTPRoute", "TCPRoute"], ["HTTPRoute"], ("False", "InvalidRouteKinds")),
    (["FooRoute"], [], ("False", "InvalidRouteKinds")),
    ([{"group": "example.com", "kind": "HTTPRoute"}], [], ("False", "InvalidRouteKinds")),
    (["HTTPRoute", "HTTPRoute"], ["HTTPRoute"], ("True", "ResolvedRefs")),
])
def test_allowed_route_kinds(kinds, supported, resolved):
    res = reconcile(base(listeners=[listener(kinds=kinds)]))
    l = gw_of(res).listeners[0]
    assert [k["kind"] for k in l.supported_kinds] == supported
    assert triple(l.conditions, "ResolvedRefs") == resolved
    # a listener that can carry no route kind at all is not programmed
    assert l.ready is bool(supported)


@pytest.mark.parametrize("listeners,conflicted,reason", [
    ([listener("a", 80, "HTTP"), listener("b", 80, "HTTPS", cert="tls")], {"a", "b"}, "ProtocolConflict"),
    ([listener("a", 80, "HTTP"), listener("b", 80, "TCP")], {"a", "b"}, "ProtocolConflict"),
    ([listener("a", 443, "HTTPS", cert="tls"), listener("b", 443, "TCP")], {"a", "b"}, "ProtocolConflict"),
    ([listener("a", 443, "HTTPS", hostname="x.example.com", cert="tls"),
      listener("b", 443, "TLS", hostname="x.example.com", mode="Passthrough")], {"a", "b"}, "HostnameConflict"),
    ([listener("a", 80, "HTTP", hostname="a.example.com"), listener("b", 80, "HTTP", hostname="b.example.com")],
     set(), None),
    ([listener("a", 80, "HTTP", hostname="a.example.com"), listener("b", 80, "HTTP")], set(), None),
    ([listener("a", 443, "HTTPS", hostname="a.example.com", cert="tls"),
      listener("b", 443, "TLS", hostname="b.example.com", mode="Passthrough")], set(), None),
    ([listener("a", 53, "TCP"), listener("b", 53, "UDP")], set(), None),
    ([listener("a", 80, "HTTP"), listener("b", 80, "UDP")], set(), None),
    ([listener("a", 80, "HTTP"), listener("b", 8080, "TCP")], set(), None),
])
def test_listener_distinctness(listeners, conflicted, reason):
    res = reconcile(base(secret("tls"), listeners=listeners))
    g = gw_of(res)
    for l in g.listeners:
        if l.name in conflicted:
            assert triple(l.conditions, "Conflicted") == ("True", reason)
            assert triple(l.conditions, "Accepted")[0] == "False"
            assert triple(l.conditions, "Programmed") == ("False", "Invalid")
            assert not l.ready
        else:
            assert triple(l.conditions, "Conflicted") == ("False", "NoConflicts")
            assert l.ready


def test_all_listeners_conflicted_rejects_the_gateway():
    res = reconcile(base(listeners=[listener("a", 80, "HTTP"), listener("b", 80, "TCP")]))
    g = gw_of(res)
    assert triple(g.conditions, "Accepted") == ("False", "ListenersNotValid")
    assert triple(g.conditions, "Programmed") == ("False", "Invalid")
    assert not g.accepted and not g.programmed


def test_some_listeners_conflicted_keeps_the_rest():
    res = reconcile(base(listeners=[listener("a", 80, "HTTP"), listener("b", 80, "TCP"), listener("c", 8080)]))
    g = gw_of(res)
    acc = cond(g.conditions, "Accepted")
    assert (acc.status, acc.reason) == ("True", "ListenersNotValid")
    assert "a" in acc.message and "b" in acc.message and "c" in acc.message
    assert triple(g.conditions, "Programmed") == ("True", "Programmed")


@pytest.mark.parametrize("tls,extra,reason", [
    ({"certificateRefs": [{"name": "missing"}]}, [], "InvalidCertificateRef"),
    ({"certificateRefs": [{"name": "tls", "kind": "ConfigMap"}]}, [], "InvalidCertificateRef"),
    ({"certificateRefs": [{"name": "tls", "group": "wrong.group.company.io", "kind": "Secret"}]}, [],
     "InvalidCertificateRef"),
    ({"certificateRefs": [{"name": "bad"}]}, [secret("bad", crt="Hello world\n", key="Hello world\n")],
     "InvalidCertificateRef"),
    ({"certificateRefs": [{"name": "opaque"}]}, [secret("opaque", type_="Opaque")], "InvalidCertificateRef"),
    ({"certificateRefs": [{"name": "tls", "namespace": "certs"}]}, [secret("tls", "certs")], "RefNotPermitted"),
    ({"certificateRefs": [{"name": "nothere", "namespace": "certs"}]}, [], "RefNotPermitted"),
    ({"certificateRefs": [{"name": "tls", "namespace": "certs"}]},
     [secret("tls", "certs"), grant("certs", "Gateway", "infra", "Secret", "other")], "RefNotPermitted"),
    ({"certificateRefs": [{"name": "tls", "namespace": "certs"}]},
     [secret("tls", "certs"), grant("certs", "Gateway", "elsewhere", "Secret")], "RefNotPermitted"),
    ({"certificateRefs": [{"name": "tls", "namespace": "certs"}]},
     [secret("tls", "certs"), grant("infra", "Gateway", "infra", "Secret")], "RefNotPermitted"),
    ({"certificateRefs": [{"name": "tls", "namespace": "certs"}]},
     [secret("tls", "certs"), grant("certs", "HTTPRoute", "infra", "Secret")], "RefNotPermitted"),
    ({"certificateRefs": [{"name": "tls", "namespace": "certs"}]},
     [secret("tls", "certs"), grant("certs", "Gateway", "infra", "Service")], "RefNotPermitted"),
    ({"certificateRefs": [{"name": "missing", "namespace": "certs"}]},
     [grant("certs", "Gateway", "infra", "Secret")], "InvalidCertificateRef"),
])
def test_invalid_certificate_refs(tls, extra, reason):
    res = reconcile(base(secret("tls"), *extra, listeners=[
        listener("http", 80), listener("https", 443, "HTTPS", tls=tls)]))
    l = gw_of(res).listener("https")
    assert triple(l.conditions, "ResolvedRefs") == ("False", reason)
    assert triple(l.conditions, "Programmed") == ("False", "Invalid")
    assert not l.ready and l.certificate_refs == []
    # the other listener is unaffected; the Gateway says which listener is not valid
    assert gw_of(res).listener("http").ready
    assert triple(gw_of(res).conditions, "Accepted") == ("True", "ListenersNotValid")


@pytest.mark.parametrize("extra,ref_ns", [
    ([secret("tls")], None),
    ([secret("tls", "certs"), grant("certs", "Gateway", "infra", "Secret", "tls")], "certs"),
    ([secret("tls", "certs"), grant("certs", "Gateway", "infra", "Secret")], "certs"),
])
def test_valid_certificate_refs(extra, ref_ns):
    res = reconcile(base(*extra, listeners=[listener("https", 443, "HTTPS", cert="tls", cert_ns=ref_ns)]))
    l = gw_of(res).listener("https")
    assert triple(l.conditions, "ResolvedRefs") == ("True", "ResolvedRefs")
    assert l.ready and l.certificate_refs == [{"namespace": ref_ns or "infra", "name": "tls"}]


def test_string_data_secret_is_accepted():
    s = secret("tls")
    del s["data"]
    s["stringData"] = {"tls.crt": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----",
                       "tls.key": "-----BEGIN EC PRIVATE KEY-----\nx\n-----END EC PRIVATE KEY-----"}
    res = reconcile(base(s, listeners=[listener("https", 443, "HTTPS", cert="tls")]))
    assert gw_of(res).listener("https").ready


def test_tls_passthrough_needs_no_certificate():
    res = reconcile(base(listeners=[listener("tls", 443, "TLS", hostname="a.example.com", mode="Passthrough")]))
    assert gw_of(res).listener("tls").ready


def test_gateway_address_and_conditions():
    res = reconcile(base())
    g = gw_of(res)
    assert g.addresses == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert triple(g.conditions, "Accepted") == ("True", "Accepted")
    assert triple(g.conditions, "Programmed") == ("True", "Programmed")


# --------------------------------------------------------------------------- attachment

def _parent(res, key="infra/r", index=0, kind=None):
    rs = res.route(key, kind)
    assert rs is not None
    return rs, rs.parents.get(index)


@pytest.mark.parametrize("parent,expected", [
    (pref(section="http"), ("True", "Accepted")),
    (pref(section="nope"), ("False", "NoMatchingParent")),
    (pref(port=80), ("True", "Accepted")),
    (pref(port=8080), ("True", "Accepted")),
    (pref(port=9999), ("False", "NoMatchingParent")),
    (pref(section="http", port=80), ("True", "Accepted")),
    (pref(section="http", port=8080), ("False", "NoMatchingParent")),
    (pref(section="alt", port=8080), ("True", "Accepted")),
    (pref(), ("True", "Accepted")),
])
def test_parent_ref_section_name_and_port(parent, expected):
    res = reconcile(base(route("r", parents=[parent], rules=[rule(bref("svc"))]),
                         listeners=[listener("http", 80), listener("alt", 8080)]))
    _, conds = _parent(res)
    assert triple(conds, "Accepted") == expected


@pytest.mark.parametrize("parent,attached", [
    (pref(), {"http": 1, "alt": 1}),
    (pref(section="alt"), {"http": 0, "alt": 1}),
    (pref(port=80), {"http": 1, "alt": 0}),
])
def test_attached_routes_per_listener(parent, attached):
    res = reconcile(base(route("r", parents=[parent], rules=[rule(bref("svc"))]),
                         listeners=[listener("http", 80), listener("alt", 8080)]))
    assert {l.name: l.attached_routes for l in gw_of(res).listeners} == attached


@pytest.mark.parametrize("from_,selector,route_ns,ns_docs,accepted", [
    ("Same", None, "infra", [], True),
    ("Same", None, "apps", [], False),
    ("All", None, "apps", [], True),
    ("Selector", {"matchLabels": {"shared": "true"}}, "apps", [namespace("apps", {"shared": "true"})], True),
    ("Selector", {"matchLabels": {"shared": "true"}}, "apps", [namespace("apps", {"shared": "false"})], False),
    ("Selector", {"matchLabels": {"shared": "true"}}, "apps", [], False),
    ("Selector", {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}, "apps", [], True),
    ("Selector", {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}, "other", [], False),
    ("Selector", {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]}, "apps",
     [namespace("apps", {"team": "b"})], True),
    ("Selector", {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}, "apps",
     [namespace("apps", {"team": "b"})], False),
    ("Selector", {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, "apps",
     [namespace("apps", {"team": "b"})], True),
    ("Selector", {"matchExpressions": [{"key": "team", "operator": "Exists"}]}, "apps",
     [namespace("apps", {"team": "b"})], True),
    ("Selector", {"matchExpressions": [{"key": "team", "operator": "Exists"}]}, "apps", [], False),
    ("Selector", {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, "apps", [], True),
    ("Selector", {}, "apps", [], True),
])
def test_allowed_routes_namespaces(from_, selector, route_ns, ns_docs, accepted):
    res = reconcile(base(*ns_docs, route("r", ns=route_ns, rules=[rule(bref("svc", ns="infra"))]),
                         grant("infra", "HTTPRoute", route_ns),
                         listeners=[listener(from_=from_, selector=selector)]))
    _, conds = _parent(res, f"{route_ns}/r")
    assert triple(conds, "Accepted") == (("True", "Accepted") if accepted else ("False", "NotAllowedByListeners"))
    # ResolvedRefs is computed whether or not the route is accepted (conformance)
    assert triple(conds, "ResolvedRefs") == ("True", "ResolvedRefs")
    assert gw_of(res).listeners[0].attached_routes == (1 if accepted else 0)


@pytest.mark.parametrize("kind,listeners,expected", [
    ("HTTPRoute", [listener(kinds=["GRPCRoute"])], ("False", "NotAllowedByListeners")),
    ("GRPCRoute", [listener(kinds=["HTTPRoute"])], ("False", "NotAllowedByListeners")),
    ("GRPCRoute", [listener()], ("True", "Accepted")),
    ("TCPRoute", [listener()], ("False", "NotAllowedByListeners")),
    ("TCPRoute", [listener("tcp", 5432, "TCP")], ("True", "Accepted")),
    ("UDPRoute", [listener("udp", 53, "UDP")], ("True", "Accepted")),
    ("UDPRoute", [listener("tcp", 53, "TCP")], ("False", "NotAllowedByListeners")),
    ("HTTPRoute", [listener("tcp", 5432, "TCP")], ("False", "NotAllowedByListeners")),
    ("HTTPRoute", [listener("a", kinds=["GRPCRoute"]), listener("b", 8080)], ("True", "Accepted")),
])
def test_route_kind_policy(kind, listeners, expected):
    res = reconcile(base(route("r", kind=kind, rules=[rule(bref("svc"))]), listeners=listeners))
    _, conds = _parent(res, kind=kind)
    assert triple(conds, "Accepted") == expected


@pytest.mark.parametrize("listener_host,route_hosts,accepted,effective", [
    (None, None, True, ["*"]),
    (None, ["foo.example.com"], True, ["foo.example.com"]),
    ("foo.example.com", None, True, ["foo.example.com"]),
    ("test.example.com", ["test.example.com"], True, ["test.example.com"]),
    ("test.example.com", ["*.example.com"], True, ["test.example.com"]),
    ("test.example.com", ["other.example.com"], False, []),
    ("*.example.com", ["test.example.com"], True, ["test.example.com"]),
    ("*.example.com", ["foo.test.example.com"], True, ["foo.test.example.com"]),
    ("*.example.com", ["*.example.com"], True, ["*.example.com"]),
    ("*.example.com", ["example.com"], False, []),
    ("*.example.com", ["test.example.net"], False, []),
    ("*.example.com", ["a.example.com", "b.example.net"], True, ["a.example.com"]),
    ("*.foo.example.com", ["*.example.com"], True, ["*.foo.example.com"]),
    ("very.specific.com", ["non.matching.com", "*.nonmatchingwildcard.io"], False, []),
])
def test_hostname_intersection(listener_host, route_hosts, accepted, effective):
    res = reconcile(base(route("r", hostnames=route_hosts, rules=[rule(bref("svc"))]),
                         listeners=[listener(hostname=listener_host)]))
    rs, conds = _parent(res)
    if accepted:
        assert triple(conds, "Accepted") == ("True", "Accepted")
        assert rs.attachments[0].hostnames == effective
    else:
        assert triple(conds, "Accepted") == ("False", "NoMatchingListenerHostname")
        assert rs.attachments == []


def test_route_attaches_where_some_listener_hostname_intersects():
    res = reconcile(base(route("r", hostnames=["b.example.com"], rules=[rule(bref("svc"))]),
                         listeners=[listener("a", hostname="a.example.com"),
                                    listener("b", 8080, hostname="b.example.com")]))
    rs, conds = _parent(res)
    assert triple(conds, "Accepted") == ("True", "Accepted")
    assert [a.listener for a in rs.attachments] == ["b"]
    assert {l.name: l.attached_routes for l in gw_of(res).listeners} == {"a": 0, "b": 1}


def test_no_status_for_parents_gwlib_does_not_own():
    res = reconcile(world(gatewayclass(), gatewayclass("other", "example.net/c"), gateway(),
                          gateway("foreign", cls="other"), service("svc", "infra"),
                          route("r", parents=[pref("foreign"), pref("missing"), pref()],
                                rules=[rule(bref("svc"))])))
    rs = res.route("infra/r")
    assert sorted(rs.parents) == [2]
    assert rs.parent_controllers == {2: "gwlib.dev/gateway-controller"}


def test_parent_controller_name_is_the_class_controller():
    res = reconcile(world(gatewayclass("t", "traefik.io/gateway-controller"), gateway(cls="t"),
                          service("svc", "infra"), route("r", rules=[rule(bref("svc"))])))
    assert res.route("infra/r").parent_controllers == {0: "traefik.io/gateway-controller"}


def test_service_parent_refs_are_mesh_parents():
    res = reconcile(base(route("r", parents=[pref("svc", kind="Service", group="", port=8080)],
                               rules=[rule(bref("svc"))])))
    rs = res.route("infra/r")
    assert rs.mesh_parents == [(0, "infra/svc", 8080)]
    # was: no status and no attachment (the hook); the mesh now attaches them (tests/test_mesh.py)
    assert [(a.gateway_key, a.listener, a.port) for a in rs.attachments] == [("infra/svc", None, 8080)]
    assert rs.parent_controllers == {0: "linkerd.io/policy-controller"}
    assert [(c.type, c.status) for c in rs.parents[0]] == [("Accepted", "True"), ("ResolvedRefs", "True")]


def test_cross_namespace_parent_ref_needs_no_grant():
    # "with the exception of cross-namespace Gateway-route attachment" no ReferenceGrant
    res = reconcile(base(route("r", ns="apps", rules=[rule(bref("web"))]), service("web", "apps")))
    _, conds = _parent(res, "apps/r")
    assert triple(conds, "Accepted") == ("True", "Accepted")


@pytest.mark.parametrize("kind,listeners,hosts,expected", [
    ("TLSRoute", [listener("tls", 443, "TLS", hostname="*.example.com", mode="Passthrough")], ["a.example.com"],
     ("True", "Accepted")),
    ("TLSRoute", [listener("tls", 443, "TLS", hostname="*.example.com", mode="Passthrough")], ["a.example.net"],
     ("False", "NoMatchingListenerHostname")),
    ("GRPCRoute", [listener(hostname="grpc.example.com")], ["grpc.example.com"], ("True", "Accepted")),
    ("GRPCRoute", [listener(hostname="grpc.example.com")], ["web.example.com"],
     ("False", "NoMatchingListenerHostname")),
])
def test_hostname_kinds_other_than_http(kind, listeners, hosts, expected):
    res = reconcile(base(route("r", kind=kind, hostnames=hosts, rules=[rule(bref("svc"))]), listeners=listeners))
    _, conds = _parent(res, kind=kind)
    assert triple(conds, "Accepted") == expected


# --------------------------------------------------------------------------- backend refs

@pytest.mark.parametrize("backend,extra,expected", [
    (bref("svc"), [], ("True", "ResolvedRefs")),
    (bref("missing"), [], ("False", "BackendNotFound")),
    (bref("svc", port=9999), [], ("False", "BackendNotFound")),
    (bref("svc", kind="ConfigMap"), [], ("False", "InvalidKind")),
    (bref("svc", group="example.com", kind="Backend"), [], ("False", "InvalidKind")),
    (bref("web", ns="apps"), [service("web", "apps")], ("False", "RefNotPermitted")),
    (bref("web", ns="apps"), [service("web", "apps"), grant("apps", "HTTPRoute", "infra", to_name="web")],
     ("True", "ResolvedRefs")),
    (bref("web", ns="apps"), [service("web", "apps"), grant("apps", "HTTPRoute", "infra")],
     ("True", "ResolvedRefs")),
    (bref("web", ns="apps"), [service("web", "apps"), grant("apps", "HTTPRoute", "infra", to_name="other")],
     ("False", "RefNotPermitted")),
    (bref("web", ns="apps"), [service("web", "apps"), grant("apps", "GRPCRoute", "infra")],
     ("False", "RefNotPermitted")),
    (bref("web", ns="apps"), [service("web", "apps"), grant("apps", "HTTPRoute", "elsewhere")],
     ("False", "RefNotPermitted")),
    (bref("web", ns="apps"), [service("web", "apps"), grant("infra", "HTTPRoute", "infra")],
     ("False", "RefNotPermitted")),
    (bref("web", ns="apps"), [service("web", "apps"), grant("apps", "HTTPRoute", "infra", to_kind="Secret")],
     ("False", "RefNotPermitted")),
    (bref("missing", ns="apps"), [grant("apps", "HTTPRoute", "infra")], ("False", "BackendNotFound")),
    (bref("ext"), [service("ext", "infra", type_="ExternalName")], ("False", "UnsupportedProtocol")),
])
def test_backend_ref_resolution(backend, extra, expected):
    res = reconcile(base(route("r", rules=[rule(backend)]), *extra))
    rs, conds = _parent(res)
    assert triple(conds, "ResolvedRefs") == expected
    # invalid backends never stop the route being accepted
    assert triple(conds, "Accepted") == ("True", "Accepted")
    assert rs.backends[0][0].valid is (expected[0] == "True")


def test_first_failing_reference_names_the_reason_and_all_are_in_the_message():
    res = reconcile(base(route("r", rules=[rule(bref("missing"), bref("svc", kind="ConfigMap"))])))
    c = cond(res.route("infra/r").parents[0], "ResolvedRefs")
    assert (c.status, c.reason) == ("False", "BackendNotFound")
    assert "missing" in c.message and "ConfigMap" in c.message


def test_mirror_backend_is_resolved_too():
    res = reconcile(base(route("r", rules=[rule(bref("svc"), filters=[
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "nope", "port": 8080}}}])])))
    rs = res.route("infra/r")
    assert triple(rs.parents[0], "ResolvedRefs") == ("False", "BackendNotFound")
    assert not rs.mirrors[(0, 0)].valid


def test_grpc_route_backend_grant_is_per_kind():
    res = reconcile(base(service("g", "apps"), grant("apps", "GRPCRoute", "infra"),
                         route("r", kind="GRPCRoute", rules=[rule(bref("g", ns="apps"))])))
    assert triple(res.route("infra/r", "GRPCRoute").parents[0], "ResolvedRefs") == ("True", "ResolvedRefs")


def test_extension_ref_filter_is_an_unresolved_reference():
    res = reconcile(base(route("r", rules=[rule(bref("svc"), filters=[
        {"type": "ExtensionRef", "extensionRef": {"group": "example.com", "kind": "Foo", "name": "x"}}])])))
    assert triple(res.route("infra/r").parents[0], "ResolvedRefs") == ("False", "InvalidKind")


# --------------------------------------------------------------------------- accepted counting

def test_attached_routes_count_only_accepted_routes():
    res = reconcile(base(
        route("ok", hostnames=["a.example.com"], rules=[rule(bref("svc"))]),
        route("also", rules=[rule(bref("missing"))]),                      # accepted, refs unresolved
        route("nohost", hostnames=["a.example.net"], rules=[rule(bref("svc"))]),
        route("other-ns", ns="apps", rules=[rule(bref("svc"))]),
        listeners=[listener(hostname="*.example.com", from_="Same")]))
    assert gw_of(res).listeners[0].attached_routes == 2


def test_attached_routes_counted_even_when_listener_is_invalid():
    res = reconcile(base(route("r", rules=[rule(bref("svc"))]),
                         listeners=[listener("https", 443, "HTTPS", cert="missing")]))
    l = gw_of(res).listener("https")
    assert not l.ready and l.attached_routes == 1


def test_a_route_counts_once_per_listener():
    # two parentRefs selecting overlapping listener sets: each listener counts the route once
    res = reconcile(base(route("r", parents=[pref(section="http"), pref(section="alt")],
                               rules=[rule(bref("svc"))]),
                         route("r2", rules=[rule(bref("svc"))]),
                         listeners=[listener("http", 80), listener("alt", 8080)]))
    assert {l.name: l.attached_routes for l in gw_of(res).listeners} == {"http": 2, "alt": 2}


def test_generation_is_observed():
    res = reconcile(world(gatewayclass(generation=4), gateway(generation=3), service("svc", "infra"),
                          route("r", rules=[rule(bref("svc"))], generation=7)))
    assert {c.observed_generation for c in res.classes["gwlib"].conditions} == {4}
    g = gw_of(res)
    assert {c.observed_generation for c in g.conditions} == {3}
    assert {c.observed_generation for l in g.listeners for c in l.conditions} == {3}
    assert {c.observed_generation for c in res.route("infra/r").parents[0]} == {7}


def test_generation_defaults_to_1():
    res = reconcile(base(route("r", rules=[rule(bref("svc"))])))
    assert {c.observed_generation for c in res.route("infra/r").parents[0]} == {1}


# --------------------------------------------------------------------------- invalid values

def test_rule_with_invalid_regex_is_dropped_and_reported():
    res = reconcile(base(route("r", rules=[
        rule(bref("svc"), matches=[match("/ok")]),
        rule(bref("svc"), matches=[match("/(unclosed", ptype="RegularExpression")]),
    ])))
    conds = res.route("infra/r").parents[0]
    assert triple(conds, "Accepted") == ("True", "Accepted")
    pi = cond(conds, "PartiallyInvalid")
    assert (pi.status, pi.reason) == ("True", "UnsupportedValue") and pi.message.startswith("Dropped Rule")
    assert res.route("infra/r").dropped_rules.keys() == {1}


def test_route_with_every_rule_invalid_is_not_accepted():
    res = reconcile(base(route("r", rules=[rule(bref("svc"), matches=[match("[", ptype="RegularExpression")])])))
    rs = res.route("infra/r")
    assert triple(rs.parents[0], "Accepted") == ("False", "UnsupportedValue")
    assert rs.attachments == []


def test_plain_dicts_are_accepted_too():
    # reconcile() takes raw manifest dicts as well as typed resources
    docs = [gatewayclass(), gateway(), service("svc", "infra"), route("r", rules=[rule(bref("svc"))])]
    res = reconcile(docs)
    assert triple(res.route("infra/r").parents[0], "Accepted") == ("True", "Accepted")


def test_grpc_tcp_udp_tls_routes_attach():
    res = reconcile(base(
        route("g", kind="GRPCRoute", rules=[rule(bref("svc"), matches=[grpc_match("pkg.Svc")])]),
        route("t", kind="TCPRoute", parents=[pref(section="tcp")], rules=[rule(bref("svc"))]),
        route("u", kind="UDPRoute", parents=[pref(section="udp")], rules=[rule(bref("svc"))]),
        route("s", kind="TLSRoute", parents=[pref(section="tls")], hostnames=["a.example.com"],
              rules=[rule(bref("svc"))]),
        listeners=[listener(), listener("tcp", 5432, "TCP"), listener("udp", 5353, "UDP"),
                   listener("tls", 443, "TLS", hostname="a.example.com", mode="Passthrough")]))
    for key, kind in (("infra/g", "GRPCRoute"), ("infra/t", "TCPRoute"), ("infra/u", "UDPRoute"),
                      ("infra/s", "TLSRoute")):
        assert triple(res.route(key, kind).parents[0], "Accepted") == ("True", "Accepted"), kind
    assert {l.name: l.attached_routes for l in gw_of(res).listeners} == {"http": 1, "tcp": 1, "udp": 1, "tls": 1}


# --------------------------------------------------------------------------- values only plain dicts can carry

def _raw(*docs):
    # reconcile() also takes plain manifests that never went through validation
    return reconcile([gatewayclass(), gateway(), service("svc", "infra"), *docs])


@pytest.mark.parametrize("bad_rule,reason", [
    (rule(bref("svc"), matches=[{"path": {"type": "Glob", "value": "/*"}}]), "UnsupportedValue"),
    (rule(bref("svc"), matches=[{"method": "FETCH"}]), "UnsupportedValue"),
    (rule(bref("svc"), matches=[{"headers": [{"type": "Fuzzy", "name": "x", "value": "y"}]}]), "UnsupportedValue"),
    (rule(bref("svc"), matches=[{"queryParams": [{"type": "Prefix", "name": "x", "value": "y"}]}]), "UnsupportedValue"),
    (rule(bref("svc"), filters=[{"type": "Teleport"}]), "UnsupportedValue"),
    (rule(filters=[{"type": "RequestRedirect", "requestRedirect": {}},
                   {"type": "URLRewrite", "urlRewrite": {"hostname": "x"}}]), "IncompatibleFilters"),
])
def test_unsupported_values_and_incompatible_filters(bad_rule, reason):
    res = _raw(route("r", rules=[bad_rule]))
    assert triple(res.route("infra/r").parents[0], "Accepted") == ("False", reason)
    res = _raw(route("r", rules=[rule(bref("svc")), bad_rule]))
    conds = res.route("infra/r").parents[0]
    assert triple(conds, "Accepted") == ("True", "Accepted")
    assert triple(conds, "PartiallyInvalid") == ("True", "UnsupportedValue")


@pytest.mark.parametrize("addresses,accepted", [
    ([{"type": "IPAddress", "value": "127.0.0.1"}], ("True", "Accepted")),
    ([{"type": "Hostname", "value": "gw.example.com"}], ("True", "Accepted")),
    ([{"type": "NamedAddress", "value": "my-pool"}], ("False", "UnsupportedAddress")),
    ([{"type": "example.com/custom", "value": "x"}], ("False", "UnsupportedAddress")),
])
def test_gateway_address_types(addresses, accepted):
    g = gateway()
    g["spec"]["addresses"] = addresses
    res = reconcile(world(gatewayclass(), g))
    gw = gw_of(res)
    assert triple(gw.conditions, "Accepted") == accepted
    if accepted[0] == "False":
        assert triple(gw.conditions, "Programmed") == ("False", "Invalid")
        assert not any(l.ready for l in gw.listeners)
