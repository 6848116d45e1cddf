"""IR: precedence order of route tables, virtual-host indexing, actions (weights, 500s).

Every precedence rule of reference §3.1 (HTTPRoute and GRPCRoute) and §3.3 (hostnames), with
ties broken by creationTimestamp, then namespace/name, then rule order.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "semantics"))
from builders import (  # noqa: E402
    base, bref, grpc_match, listener, match, pref, route, rule, service,
)

from gwlib.ir import ERROR_KEY, build, from_objects, to_dict  # noqa: E402
from gwlib.controller import reconcile  # noqa: E402


def table(objs, host="a.example.com", listener="http", gateway="infra/gw", grpc=False):
    ir = build(reconcile(objs))
    lis = next(l for l in ir.gateways[gateway].listeners if l.name == listener)
    vh = lis.lookup(host)
    assert vh is not None, f"no virtual host for {host}"
    return [(e.route.split("/")[1], e.rule, e.match_index) for e in (vh.grpc if grpc else vh.http)]


def names(objs, **kw):
    return [r for r, _, _ in table(objs, **kw)]


# --------------------------------------------------------------------------- HTTP precedence

def _r(name, *matches, ns="infra", created=None, hostnames=None):
    return route(name, ns=ns, created=created, hostnames=hostnames,
                 rules=[rule(bref("svc", ns="infra"), matches=list(matches))])


HTTP_ORDER = [
    # (routes, expected order of route names)
    ([_r("prefix", match("/abc")), _r("exact", match("/abc", "Exact"))], ["exact", "prefix"]),
    ([_r("short", match("/a")), _r("long", match("/abc/def"))], ["long", "short"]),
    ([_r("root", match("/")), _r("deep", match("/a/b"))], ["deep", "root"]),
    ([_r("any", match("/a")), _r("get", match("/a", method="GET"))], ["get", "any"]),
    ([_r("one", match("/a", headers=[("x", "1")])), _r("two", match("/a", headers=[("x", "1"), ("y", "2")]))],
     ["two", "one"]),
    ([_r("none", match("/a")), _r("hdr", match("/a", headers=[("x", "1")]))], ["hdr", "none"]),
    ([_r("q1", match("/a", query=[("a", "1")])), _r("q2", match("/a", query=[("a", "1"), ("b", "2")]))],
     ["q2", "q1"]),
    # method beats headers; headers beat query params; path beats everything
    ([_r("hdrs", match("/a", headers=[("x", "1"), ("y", "2")])), _r("meth", match("/a", method="POST"))],
     ["meth", "hdrs"]),
    ([_r("qs", match("/a", query=[("a", "1"), ("b", "2")])), _r("hdr", match("/a", headers=[("x", "1")]))],
     ["hdr", "qs"]),
    ([_r("everything", match("/a", method="GET", headers=[("x", "1")], query=[("q", "1")])),
      _r("longer", match("/ab"))], ["longer", "everything"]),
    ([_r("exact-short", match("/a", "Exact")), _r("prefix-long", match("/abcdef"))],
     ["exact-short", "prefix-long"]),
    # RegularExpression paths: after Exact, before every PathPrefix (the matching module's
    # documented choice, as Envoy Gateway)
    ([_r("root", match("/")), _r("regex", match("/a.*", "RegularExpression"))], ["regex", "root"]),
    ([_r("regex", match("/a.*", "RegularExpression")), _r("exact", match("/a", "Exact"))], ["exact", "regex"]),
    # ties: oldest creationTimestamp, then namespace/name
    ([_r("newer", match("/a"), created="2024-02-01T00:00:00Z"), _r("older", match("/a"), created="2024-01-01T00:00:00Z")],
     ["older", "newer"]),
    ([_r("aaa", match("/a"), created="2024-03-01T00:00:00Z"), _r("zzz", match("/a"), created="2024-01-01T00:00:00Z")],
     ["zzz", "aaa"]),
    ([_r("b", match("/a")), _r("a", match("/a"))], ["a", "b"]),
    ([_r("x", match("/a"), ns="zeta"), _r("y", match("/a"), ns="alpha")], ["y", "x"]),
    ([_r("no-ts", match("/a")), _r("with-ts", match("/a"), created="2030-01-01T00:00:00Z")], ["with-ts", "no-ts"]),
    # precedence beats age: a newer more specific match wins
    ([_r("old", match("/a"), created="2020-01-01T00:00:00Z"), _r("new", match("/a/b"), created="2024-01-01T00:00:00Z")],
     ["new", "old"]),
    # same timestamp down to the second, then the name decides
    ([_r("m", match("/a"), created="2024-01-01T00:00:00Z"), _r("k", match("/a"), created="2024-01-01T00:00:00Z")],
     ["k", "m"]),
]


@pytest.mark.parametrize("routes,expected", HTTP_ORDER)
def test_http_match_precedence(routes, expected):
    objs = base(*routes, *[service("svc", "infra")][:0], listeners=[listener()])
    assert names(objs) == expected


def test_rule_order_breaks_ties_within_a_route():
    r = route("r", rules=[rule(bref("svc"), matches=[match("/a")]), rule(bref("svc"), matches=[match("/a")]),
                          rule(bref("svc"), matches=[match("/a/b")])])
    assert table(base(r)) == [("r", 2, 0), ("r", 0, 0), ("r", 1, 0)]


def test_match_order_within_a_rule():
    r = route("r", rules=[rule(bref("svc"), matches=[match("/a"), match("/a"), match("/a", "Exact")])])
    assert table(base(r)) == [("r", 0, 2), ("r", 0, 0), ("r", 0, 1)]


def test_precedence_is_across_all_rules_of_all_routes():
    r1 = route("r1", rules=[rule(bref("svc"), matches=[match("/")]), rule(bref("svc"), matches=[match("/x", "Exact")])])
    r2 = route("r2", rules=[rule(bref("svc"), matches=[match("/x")])])
    assert table(base(r1, r2)) == [("r1", 1, 0), ("r2", 0, 0), ("r1", 0, 0)]


def test_default_match_is_prefix_root():
    r = route("r", rules=[rule(bref("svc"))])
    ir = build(reconcile(base(r)))
    (e,) = ir.gateways["infra/gw"].listeners[0].lookup("x").http
    assert e.match["path"] == {"type": "PathPrefix", "value": "/"}
    assert e.matched_prefix == "/"


def test_route_without_rules_gets_the_default_rule():
    ir = build(reconcile(base(route("r", rules=None))))
    (e,) = ir.gateways["infra/gw"].listeners[0].lookup("x").http
    assert e.action.error_status == 500


# --------------------------------------------------------------------------- hostname precedence

HOST_ORDER = [
    # (route hostnames by name, request host, expected order)
    ({"exact": ["a.example.com"], "wild": ["*.example.com"], "any": None}, "a.example.com", ["exact", "wild", "any"]),
    ({"wild": ["*.example.com"], "deeper": ["*.b.example.com"]}, "a.b.example.com", ["deeper", "wild"]),
    ({"wild": ["*.example.com"], "any": None}, "z.example.com", ["wild", "any"]),
    ({"exact": ["a.example.com"], "any": None}, "b.example.com", ["any"]),
    ({"long": ["aaaa.example.com"], "short": ["a.example.com"]}, "aaaa.example.com", ["long"]),
    ({"wild": ["*.example.com"]}, "example.com", None),
    ({"exact": ["a.example.com"], "wild": ["*.example.com"]}, "x.a.example.com", ["wild"]),
]


@pytest.mark.parametrize("routes,host,expected", HOST_ORDER)
def test_hostname_precedence_and_fallthrough(routes, host, expected):
    objs = base(*[route(n, hostnames=h, rules=[rule(bref("svc"), matches=[match("/")])]) for n, h in routes.items()])
    ir = build(reconcile(objs))
    vh = ir.gateways["infra/gw"].listeners[0].lookup(host)
    if expected is None:
        assert vh is None
    else:
        assert [e.route.split("/")[1] for e in vh.http] == expected


def test_hostname_precedence_beats_match_precedence():
    objs = base(route("exact-host", hostnames=["a.example.com"], rules=[rule(bref("svc"), matches=[match("/")])]),
                route("wild-host", hostnames=["*.example.com"], rules=[rule(bref("svc"), matches=[match("/a", "Exact")])]))
    assert names(objs) == ["exact-host", "wild-host"]


@pytest.mark.parametrize("n", [1, 10, 200])
def test_lookup_is_indexed_by_host(n):
    objs = base(*[route(f"r{i}", hostnames=[f"h{i}.example.com"], rules=[rule(bref("svc"))]) for i in range(n)])
    lis = build(reconcile(objs)).gateways["infra/gw"].listeners[0]
    assert len(lis.vhosts) == n
    assert lis.lookup(f"h{n - 1}.example.com").http[0].route == f"infra/r{n - 1}"
    assert lis.lookup("nope.example.com") is None


# --------------------------------------------------------------------------- GRPCRoute precedence

GRPC_ORDER = [
    ([("svc-long", grpc_match("pkg.v1.EchoService")), ("svc-short", grpc_match("pkg.Echo"))], ["svc-long", "svc-short"]),
    ([("any", grpc_match()), ("svc", grpc_match("pkg.Echo"))], ["svc", "any"]),
    ([("svc", grpc_match("pkg.Echo")), ("both", grpc_match("pkg.Echo", "Say"))], ["both", "svc"]),
    ([("m-short", grpc_match("pkg.Echo", "A")), ("m-long", grpc_match("pkg.Echo", "Abcd"))], ["m-long", "m-short"]),
    ([("plain", grpc_match("pkg.Echo")), ("hdr", grpc_match("pkg.Echo", headers=[("x", "1")]))], ["hdr", "plain"]),
    ([("b", grpc_match("pkg.Echo")), ("a", grpc_match("pkg.Echo"))], ["a", "b"]),
]


@pytest.mark.parametrize("routes,expected", GRPC_ORDER)
def test_grpc_match_precedence(routes, expected):
    objs = base(*[route(n, kind="GRPCRoute", rules=[rule(bref("svc"), matches=[m])]) for n, m in routes])
    assert names(objs, grpc=True) == expected


def test_grpc_and_http_routes_are_never_merged():
    objs = base(route("h", rules=[rule(bref("svc"))]),
                route("g", kind="GRPCRoute", rules=[rule(bref("svc"), matches=[grpc_match("a.B")])]))
    vh = build(reconcile(objs)).gateways["infra/gw"].listeners[0].lookup("x")
    assert [e.kind for e in vh.http] == ["HTTPRoute"] and [e.kind for e in vh.grpc] == ["GRPCRoute"]


# --------------------------------------------------------------------------- listener isolation

def test_routes_are_only_in_the_listeners_they_attach_to():
    objs = base(route("a", parents=[pref(section="a")], rules=[rule(bref("svc"))]),
                route("b", parents=[pref(section="b")], rules=[rule(bref("svc"))]),
                listeners=[listener("a", hostname="a.example.com"), listener("b", hostname="*.example.com")])
    ir = build(reconcile(objs))
    ls = {l.name: l for l in ir.gateways["infra/gw"].listeners}
    assert [e.route for e in ls["a"].lookup("a.example.com").http] == ["infra/a"]
    assert [e.route for e in ls["b"].lookup("b.example.com").http] == ["infra/b"]
    assert ls["a"].lookup("b.example.com") is None


def test_listeners_grouped_by_port_most_specific_first():
    objs = base(listeners=[listener("any"), listener("wild", hostname="*.example.com"),
                           listener("deep", hostname="*.b.example.com"), listener("exact", hostname="a.example.com"),
                           listener("other", 8080)])
    gw = build(reconcile(objs)).gateways["infra/gw"]
    assert [l.name for l in gw.ports[80]] == ["exact", "deep", "wild", "any"]
    assert [l.name for l in gw.ports[8080]] == ["other"]
    assert [l.name for l in gw.listeners] == ["any", "wild", "deep", "exact", "other"]


def test_not_ready_listeners_are_left_out():
    objs = base(listeners=[listener(), listener("https", 443, "HTTPS", cert="missing")])
    gw = build(reconcile(objs)).gateways["infra/gw"]
    assert [l.name for l in gw.listeners] == ["http"] and 443 not in gw.ports
    assert "InvalidCertificateRef" in gw.not_ready["https"]


# --------------------------------------------------------------------------- actions

def action(*rules_, extra=()):
    objs = base(route("r", rules=list(rules_)), *extra)
    return build(reconcile(objs)).gateways["infra/gw"].listeners[0].lookup("x").http[0].action


@pytest.mark.parametrize("backends,extra,split,error", [
    ([bref("svc")], [], {"infra/svc": 1.0}, None),
    ([bref("svc", weight=3), bref("v2", weight=1)], [service("v2", "infra")], {"infra/svc": 0.75, "infra/v2": 0.25}, None),
    ([bref("svc", weight=1), bref("missing", weight=1)], [], {"infra/svc": 0.5, ERROR_KEY: 0.5}, None),
    ([bref("svc", weight=90), bref("missing", weight=0)], [], {"infra/svc": 1.0}, None),
    ([bref("svc", weight=0)], [], {}, 500),
    ([bref("svc", weight=0), bref("v2", weight=0)], [service("v2", "infra")], {}, 500),
    ([bref("missing")], [], {ERROR_KEY: 1.0}, 500),
    ([bref("missing"), bref("svc", kind="ConfigMap")], [], {ERROR_KEY: 1.0}, 500),
    ([], [], {}, 500),
    ([bref("svc", weight=1000000), bref("v2", weight=1)], [service("v2", "infra")],
     {"infra/svc": 1000000 / 1000001, "infra/v2": 1 / 1000001}, None),
    ([bref("svc", weight=1), bref("svc", weight=1)], [], {"infra/svc": 1.0}, None),
])
def test_weighted_backends(backends, extra, split, error):
    act = action(rule(*backends), extra=extra)
    assert act.split_dict() == pytest.approx(split)
    assert act.error_status == error


def test_redirect_rule_needs_no_backends():
    act = action(rule(filters=[{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]))
    assert act.error_status is None and act.redirect == {"scheme": "https", "statusCode": 302}


def test_filters_and_timeouts_are_kept_in_order():
    f = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "a", "value": "1"}]}},
         {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "b", "value": "2"}]}},
         {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "svc", "port": 8080}, "percent": 25}}]
    act = action(rule(bref("svc"), filters=f, timeouts={"request": "10s"}))
    assert [x["type"] for x in act.filters] == ["RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror"]
    assert act.timeouts == {"request": "10s"}
    assert [(m.backend.key, m.fraction) for m in act.mirrors] == [("infra/svc", 0.25)]


def test_invalid_mirror_is_dropped():
    f = [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "nope", "port": 8080}}}]
    assert action(rule(bref("svc"), filters=f)).mirrors == []


def test_extension_ref_rule_answers_500():
    f = [{"type": "ExtensionRef", "extensionRef": {"group": "example.com", "kind": "X", "name": "y"}}]
    assert action(rule(bref("svc"), filters=f)).error_status == 500


def test_backend_ref_filters_are_attached_to_the_backend():
    f = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "x", "value": "1"}]}}]
    act = action(rule(bref("svc", filters=f)))
    assert act.backends[0].filters == f


def test_ir_is_plain_data():
    d = to_dict(from_objects(base(route("r", rules=[rule(bref("svc"))]))))
    assert d["gateways"]["infra/gw"]["listeners"][0]["name"] == "http"
    import json
    json.dumps(d, default=str)


def test_l4_routes_ordered_oldest_first():
    objs = base(route("new", kind="TCPRoute", created="2024-02-01T00:00:00Z", rules=[rule(bref("svc"))]),
                route("old", kind="TCPRoute", created="2024-01-01T00:00:00Z", rules=[rule(bref("svc"))]),
                listeners=[listener("tcp", 5432, "TCP")])
    lis = build(reconcile(objs)).gateways["infra/gw"].listeners[0]
    assert [r.route for r in lis.l4] == ["infra/old", "infra/new"]


def test_listener_entries_are_distinct_and_globally_ordered():
    objs = base(route("exact", hostnames=["a.example.com"], rules=[rule(bref("svc"), matches=[match("/x")])]),
                route("wild", hostnames=["*.example.com"], rules=[rule(bref("svc"), matches=[match("/", "Exact")])]),
                route("any", rules=[rule(bref("svc"))]))
    lis = build(reconcile(objs)).gateways["infra/gw"].listeners[0]
    assert [(e.route, e.hostname) for e in lis.entries()] == [
        ("infra/exact", "a.example.com"), ("infra/wild", "*.example.com"), ("infra/any", "*")]
    assert lis.entries("GRPCRoute") == []
