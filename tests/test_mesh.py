"""GAMMA (routes whose parent is a Service): attachment and status, producer and consumer
tables, and the reference router's answers to mesh requests — table-driven from Gateway API
v1.6.1 (shared_types.go ParentReference) and GEP-1294 "xRoutes Mesh Binding".
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "semantics"))
from builders import (  # noqa: E402
    bref, gatewayclass, gateway, grpc_match, listener, match, namespace, pref, route, rule, world,
)

from gwlib.controller import MESH_CONTROLLER_NAME, reconcile  # noqa: E402
from gwlib.router import RequestError, Router  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "data" / "manifests" / "talk-mesh"
GRPC_ECHO = {"service": "gwlib.echo.EchoService", "method": "Echo"}


def svc(name, ns="shop", ports=((80, "http"),), type_=None, headless=False, app_protocol=None):
    spec = {"ports": [{"name": n, "port": p, **({"appProtocol": app_protocol} if app_protocol else {})}
                      for p, n in ports]}
    if type_:
        spec["type"] = type_
        if type_ == "ExternalName":
            spec["externalName"] = "example.net"
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def sref(name="api", ns="shop", port=None, section=None, group=""):
    """A Service parentRef (group "" as the spec says; "core" as Linkerd's docs write)."""
    return pref(name, ns=ns, port=port, section=section, kind="Service", group=group)


def mroute(name, ns="shop", parents=None, rules=None, kind="HTTPRoute", created=None):
    return route(name, ns=ns, parents=parents if parents is not None else [sref()], rules=rules, kind=kind,
                 created=created)


SERVICES = [svc("api", ports=((80, "http"), (8080, "admin"))), svc("api-v2"), svc("api-v3"),
            svc("api", ns="other"), svc("mirror")]


def deployment(name, ns="shop", template_annotations=None, annotations=None, labels=None):
    meta = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    tmeta = {"labels": labels or {"app": name}}
    if template_annotations:
        tmeta["annotations"] = template_annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"selector": {"matchLabels": tmeta["labels"]},
                     "template": {"metadata": tmeta, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


def objs(*docs, services=SERVICES):
    return world(*services, *docs)


def mreq(service="shop/api", port=80, frm="web", path="/", **kw):
    r = {"service": service, "port": port, "from": frm, "path": path}
    r.update(kw)
    return r


def parent_status(res, key, kind="HTTPRoute", index=0):
    rs = res.route(key, kind)
    conds = rs.parents.get(index)
    return None if conds is None else {c.type: (c.status, c.reason) for c in conds}


# =========================================================================== status

@pytest.mark.parametrize("parent,expected,ports", [
    # port selects that Service port; no port: every port (GEP-1294 "Ports")
    (sref(port=80), ("True", "Accepted"), [80]),
    (sref(), ("True", "Accepted"), [80, 8080]),
    (sref(port=9999), ("False", "NoMatchingParent"), None),
    # sectionName is the Service port's name (shared_types.go)
    (sref(section="admin"), ("True", "Accepted"), [8080]),
    (sref(section="nope"), ("False", "NoMatchingParent"), None),
    # both set: both must match one port
    (sref(section="http", port=80), ("True", "Accepted"), [80]),
    (sref(section="http", port=8080), ("False", "NoMatchingParent"), None),
    # Linkerd's docs write group core: read as the core group
    (sref(port=80, group="core"), ("True", "Accepted"), [80]),
    # the parent must exist and have a cluster IP (GEP-1294 "Allowed service types")
    (sref("missing"), ("False", "NoMatchingParent"), None),
    (sref("headless"), ("False", "NoMatchingParent"), None),
    (sref("external"), ("False", "NoMatchingParent"), None),
    # a consumer route: the parent is in another namespace (no ReferenceGrant needed)
    (sref(ns="other", port=80), ("True", "Accepted"), [80]),
])
def test_service_parent_attachment(parent, expected, ports):
    res = reconcile(objs(mroute("r", parents=[parent], rules=[rule(bref("api", port=80))]),
                         svc("headless", headless=True), svc("external", type_="ExternalName")))
    st = parent_status(res, "shop/r")
    assert st["Accepted"] == expected
    rs = res.route("shop/r")
    assert rs.parent_controllers[0] == MESH_CONTROLLER_NAME
    assert rs.mesh_ports.get(0) == ports
    assert sorted(a.port for a in rs.attachments) == (ports or [])


def test_headless_parent_message_is_linkerds():
    res = reconcile(objs(mroute("r", parents=[sref("headless")]), svc("headless", headless=True)))
    (acc,) = [c for c in res.route("shop/r").parents[0] if c.type == "Accepted"]
    assert "parent service must have a ClusterIP" in acc.message


def test_service_kind_without_core_group_is_not_a_mesh_parent():
    # the API server defaults group to gateway.networking.k8s.io: no mesh reads that parentRef
    res = reconcile(objs(mroute("r", parents=[pref("api", ns="shop", kind="Service")])))
    rs = res.route("shop/r")
    assert rs.parents == {} and rs.attachments == [] and rs.mesh_parents == []


def test_status_json_shape_for_service_parents():
    res = reconcile(objs(mroute("r", parents=[sref(port=80)], rules=[rule(bref("api", port=80))])))
    (item,) = [i for i in res.statuses() if i["kind"] == "HTTPRoute"]
    (p,) = item["status"]["parents"]
    assert p["parentRef"] == {"group": "", "kind": "Service", "namespace": "shop", "name": "api", "port": 80}
    assert p["controllerName"] == "linkerd.io/policy-controller"
    assert [(c["type"], c["status"]) for c in p["conditions"]] == [("Accepted", "True"), ("ResolvedRefs", "True")]
    assert "producer route" in p["conditions"][0]["message"]


@pytest.mark.parametrize("grpc_parent,http_parent,http_accepted,http_ports", [
    (sref(port=80), sref(port=80), ("False", "RouteReasonConflicted"), None),   # same Service port
    (sref(port=8080), sref(port=80), ("True", "Accepted"), [80]),                # other port: no conflict
    (sref(port=8080), sref(), ("True", "Accepted"), [80]),                        # HTTPRoute loses 8080 only
    (sref(ns="other", port=80, name="api"), sref(ns="other", port=80), ("False", "RouteReasonConflicted"), None),
])
def test_grpcroute_wins_over_httproute_on_a_service_port(grpc_parent, http_parent, http_accepted, http_ports):
    # GEP-1294 "Route types": GRPCRoute, then HTTPRoute; the loser is RouteReasonConflicted
    res = reconcile(objs(mroute("g", parents=[grpc_parent], kind="GRPCRoute", rules=[rule(bref("api", port=80))]),
                         mroute("h", parents=[http_parent], rules=[rule(bref("api", port=80))])))
    assert parent_status(res, "shop/g", "GRPCRoute")["Accepted"] == ("True", "Accepted")
    assert parent_status(res, "shop/h")["Accepted"] == http_accepted
    assert res.route("shop/h", "HTTPRoute").mesh_ports.get(0) == http_ports


def test_consumer_grpcroute_does_not_reject_a_producer_httproute():
    # choice: types conflict within one group of routes (GEP-1294 never merges groups)
    res = reconcile(objs(mroute("g", ns="web", parents=[sref(port=80)], kind="GRPCRoute",
                                rules=[rule(bref("api", port=80, ns="shop"))]),
                         mroute("h", parents=[sref(port=80)], rules=[rule(bref("api", port=80))])))
    assert parent_status(res, "shop/h")["Accepted"] == ("True", "Accepted")
    assert parent_status(res, "web/g", "GRPCRoute")["Accepted"] == ("True", "Accepted")


def test_mesh_backends_need_no_reference_grant_but_gateway_ones_do():
    # GEP-1294: mesh routes send to backendRefs in any namespace without a ReferenceGrant
    res = reconcile(world(gatewayclass(), gateway(ns="shop", listeners=[listener()]), *SERVICES,
                          mroute("r", parents=[sref(port=80), pref("gw", ns="shop")],
                                 rules=[rule(bref("api", port=80, ns="other"))])))
    assert parent_status(res, "shop/r", index=0)["ResolvedRefs"] == ("True", "ResolvedRefs")
    assert parent_status(res, "shop/r", index=1)["ResolvedRefs"] == ("False", "RefNotPermitted")


def test_invalid_rules_in_mesh_routes():
    # plain dicts (the API server would reject these; the controller must not crash on them)
    bad = rule(filters=[{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}},
                        {"type": "URLRewrite", "urlRewrite": {"hostname": "x"}}])
    res = reconcile([*SERVICES, mroute("only-bad", rules=[bad]),
                     mroute("half", rules=[bad, rule(bref("api", port=80))])])
    assert parent_status(res, "shop/only-bad")["Accepted"] == ("False", "IncompatibleFilters")
    half = parent_status(res, "shop/half")
    assert half["Accepted"] == ("True", "Accepted") and half["PartiallyInvalid"][0] == "True"


def test_missing_backend_is_resolved_refs_false_and_answers_500():
    r = objs(mroute("r", rules=[rule(bref("nope", port=80))]))
    assert parent_status(reconcile(r), "shop/r")["ResolvedRefs"] == ("False", "BackendNotFound")
    assert Router(r).route(mreq())["status"] == 500


# =========================================================================== routing

PRODUCER = mroute("producer", parents=[sref(port=80)], rules=[rule(bref("api-v2", port=80))])
CONSUMER = mroute("consumer", ns="web", parents=[sref(port=80)], rules=[rule(bref("api-v3", port=80, ns="shop"))])
ALL_PORTS = mroute("all-ports", parents=[sref()], rules=[rule(bref("api-v2", port=80))])
ADMIN = mroute("admin", parents=[sref(section="admin")], rules=[rule(bref("api-v3", port=80))])


@pytest.mark.parametrize("routes,request_,backend,route_", [
    # no route: the Service itself
    ([], mreq(), "shop/api", None),
    # a producer route applies to meshed clients from every namespace
    ([PRODUCER], mreq(frm="web"), "shop/api-v2", "shop/producer"),
    ([PRODUCER], mreq(frm="shop"), "shop/api-v2", "shop/producer"),
    ([PRODUCER], mreq(frm="batch"), "shop/api-v2", "shop/producer"),
    # a consumer route only to clients in its own namespace, and it replaces the producer's there
    ([PRODUCER, CONSUMER], mreq(frm="web"), "shop/api-v3", "web/consumer"),
    ([PRODUCER, CONSUMER], mreq(frm="batch"), "shop/api-v2", "shop/producer"),
    ([PRODUCER, CONSUMER], mreq(frm="shop"), "shop/api-v2", "shop/producer"),
    ([CONSUMER], mreq(frm="batch"), "shop/api", None),
    # port matching: the route is attached to port 80 only
    ([PRODUCER], mreq(port=8080), "shop/api", None),
    ([ALL_PORTS], mreq(port=8080), "shop/api-v2", "shop/all-ports"),
    # sectionName matching: the port named admin (8080)
    ([ADMIN], mreq(port=8080), "shop/api-v3", "shop/admin"),
    ([ADMIN], mreq(port=80), "shop/api", None),
    # unmeshed callers have no sidecar: no route applies
    ([PRODUCER], mreq(meshed=False), "shop/api", None),
    ([PRODUCER, CONSUMER], mreq(frm="web", meshed=False), "shop/api", None),
    # hostnames infer nothing in the mesh (GEP-1294): a route with hostnames still applies
    ([route("h", ns="shop", parents=[sref(port=80)], hostnames=["elsewhere.example.com"],
            rules=[rule(bref("api-v2", port=80))])], mreq(host="api"), "shop/api-v2", "shop/h"),
    # "service" without a namespace is in the "from" namespace
    ([PRODUCER], {"service": "api", "port": 80, "from": "shop"}, "shop/api-v2", "shop/producer"),
    # no "from": a client in the Service's namespace; no port: the first port
    ([PRODUCER], {"service": "shop/api"}, "shop/api-v2", "shop/producer"),
])
def test_producer_and_consumer_tables(routes, request_, backend, route_):
    ans = Router(objs(*routes)).route(request_)
    assert ans["status"] == 200
    assert f"{ans['backend']['namespace']}/{ans['backend']['name']}" == backend
    assert ans["route"] == route_


@pytest.mark.parametrize("inject,expected_meshed", [
    ({"ns": "enabled"}, True),
    ({"template": "enabled"}, True),
    ({"template": "ingress"}, True),
    ({"ns": "enabled", "template": "disabled"}, False),
    ({"object": "enabled"}, False),          # on the Deployment's own metadata: never read
    ({}, False),
])
def test_workloads_are_meshed_as_linkerd_injects(inject, expected_meshed):
    ns_doc = namespace("web")
    if "ns" in inject:
        ns_doc["metadata"]["annotations"] = {"linkerd.io/inject": inject["ns"]}
    d = deployment("frontend", ns="web",
                   template_annotations={"linkerd.io/inject": inject["template"]} if "template" in inject else None,
                   annotations={"linkerd.io/inject": inject["object"]} if "object" in inject else None)
    r = Router(objs(ns_doc, d, PRODUCER))
    w = r.ir.workloads["web/frontend"]
    assert w.meshed is expected_meshed and w.reason
    ans = r.route(mreq(frm="web", workload="frontend"))
    assert ans["backend"]["name"] == ("api-v2" if expected_meshed else "api")


def test_kube_system_is_never_injected():
    ns_doc = namespace("kube-system")
    ns_doc["metadata"]["annotations"] = {"linkerd.io/inject": "enabled"}
    r = Router(objs(ns_doc, deployment("dns", ns="kube-system")))
    assert not r.ir.workloads["kube-system/dns"].meshed


@pytest.mark.parametrize("weights,expected", [
    ((90, 10), {"shop/api": 0.9, "shop/api-v2": 0.1}),
    ((100, 0), {"shop/api": 1.0}),
    ((1, 3), {"shop/api": 0.25, "shop/api-v2": 0.75}),
    ((50, None), {"shop/api": 50 / 51, "shop/api-v2": 1 / 51}),   # the default weight is 1
])
def test_weights_split_exactly(weights, expected):
    canary = mroute("canary", parents=[sref(port=80)], rules=[rule(bref("api", port=80, weight=weights[0]),
                                                                    bref("api-v2", port=80, weight=weights[1]))])
    r = Router(objs(canary))
    assert r.split(mreq()) == pytest.approx(expected)
    assert r.split(mreq(meshed=False)) == {"shop/api": 1.0}


def test_weighted_answers_are_seeded_and_follow_the_split():
    canary = mroute("canary", parents=[sref(port=80)], rules=[rule(bref("api", port=80, weight=90),
                                                                    bref("api-v2", port=80, weight=10))])
    r1, r2 = Router(objs(canary), seed=7), Router(objs(canary), seed=7)
    seq1 = [r1.route(mreq())["backend"]["name"] for _ in range(2000)]
    seq2 = [r2.route(mreq())["backend"]["name"] for _ in range(2000)]
    assert seq1 == seq2
    share = Counter(seq1)["api-v2"] / 2000
    assert abs(share - 0.10) < 0.03


def test_mesh_precedence_is_the_httproute_precedence():
    exact = mroute("b-exact", parents=[sref(port=80)], rules=[rule(bref("api-v3", port=80), matches=[match("/a", "Exact")])])
    prefix = mroute("a-prefix", parents=[sref(port=80)], rules=[rule(bref("api-v2", port=80), matches=[match("/a")])])
    header = mroute("c-header", parents=[sref(port=80)],
                    rules=[rule(bref("mirror", port=80), matches=[match("/a", headers=[("x-canary", "1")])])])
    older = mroute("z-older", created="2020-01-01T00:00:00Z", parents=[sref(port=80)],
                   rules=[rule(bref("api-v3", port=80), matches=[match("/b")])])
    newer = mroute("a-newer", created="2021-01-01T00:00:00Z", parents=[sref(port=80)],
                   rules=[rule(bref("api-v2", port=80), matches=[match("/b")])])
    r = Router(objs(exact, prefix, header, older, newer))
    assert r.route(mreq(path="/a"))["route"] == "shop/b-exact"
    assert r.route(mreq(path="/a/x"))["route"] == "shop/a-prefix"
    assert r.route(mreq(path="/a/x", headers={"X-Canary": "1"}))["route"] == "shop/c-header"
    assert r.route(mreq(path="/b"))["route"] == "shop/z-older"


def test_no_matching_rule_is_404_and_grpc_12():
    r = Router(objs(mroute("r", parents=[sref(port=80)], rules=[rule(bref("api-v2", port=80), matches=[match("/only")])]),
                    mroute("g", parents=[sref(port=8080)], kind="GRPCRoute",
                           rules=[rule(bref("api-v2", port=80), matches=[grpc_match("pkg.Only")])])))
    assert r.route(mreq(path="/other"))["status"] == 404
    g = r.route(mreq(port=8080, path=None, grpc=GRPC_ECHO))
    assert g["status"] == 200 and g["grpc_status"] == 12


def test_grpc_through_a_grpcroute_and_http_on_a_grpc_only_port():
    r = Router(objs(mroute("g", parents=[sref(port=8080)], kind="GRPCRoute", rules=[rule(bref("api-v2", port=80))])))
    g = r.route(mreq(port=8080, grpc=GRPC_ECHO))
    assert g["grpc_status"] == 0 and g["backend"]["name"] == "api-v2"
    assert g["request"]["path"] == "/gwlib.echo.EchoService/Echo" and g["request"]["method"] == "POST"
    # gRPC requests are routed by GRPCRoutes only, HTTP ones by HTTPRoutes only (gwlib's choice)
    assert r.route(mreq(port=8080, path="/x"))["status"] == 404


def test_filters_run_in_the_mesh_as_at_the_gateway():
    mod = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-Env", "value": "mesh"}]}}
    redirect = {"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}}
    r = Router(objs(mroute("r", parents=[sref(port=8080)], rules=[
        rule(bref("api-v2", port=80), matches=[match("/mod")], filters=[mod]),
        rule(matches=[match("/old")], filters=[redirect])])))
    ans = r.route(mreq(port=8080, path="/mod"))
    assert ans["request"]["headers"]["X-Env"] == "mesh"
    red = r.route(mreq(port=8080, path="/old", host="api.shop"))
    assert red["status"] == 302 and red["location"] == "http://api.shop:8080/new"   # the Service port


def test_explain_says_which_table_and_why():
    r = Router(objs(PRODUCER, CONSUMER))
    text = str(r.explain(mreq(frm="web")))
    assert "consumer routes of namespace web" in text and "producer routes" in text and "web/consumer" in text
    text = str(r.explain(mreq(frm="web", meshed=False)))
    assert "no sidecar" in text and "shop/api" in text
    ex = r.explain(mreq(frm="batch"))
    assert ex.mesh["table"] == "producer routes" and "web" in " ".join(ex.notes)


@pytest.mark.parametrize("request_,fragment", [
    ({"service": "shop/nope", "port": 80}, "does not exist"),
    ({"service": "shop/api", "port": 9}, "no port 9"),
])
def test_connection_level_answers(request_, fragment):
    ans = Router(objs()).route(request_)
    assert ans["status"] is None and fragment in ans["error"]


@pytest.mark.parametrize("request_", [
    {"service": 3},
    {"service": "shop/api", "port": "x"},
    {"service": "shop/api", "workload": "nobody"},
    {"service": "shop/api", "meshed": "yes"},
    {"service": "shop/api", "from": ""},
])
def test_malformed_mesh_requests(request_):
    with pytest.raises(RequestError):
        Router(objs()).route(request_)


# =========================================================================== the seed's two routes

@pytest.mark.parametrize("request_,backend,route_,grpc_status", [
    ({"service": "demo/web", "port": 80, "from": "demo", "path": "/"}, "web", "demo/web", None),
    ({"service": "demo/web", "port": 80, "from": "elsewhere", "path": "/x"}, "web", "demo/web", None),
    ({"service": "demo/api", "port": 9090, "from": "demo", "grpc": GRPC_ECHO}, "api", "demo/api", 0),
    ({"service": "demo/api", "port": 9090, "from": "demo", "workload": "client", "grpc": GRPC_ECHO}, "api", "demo/api", 0),
    ({"service": "demo/web", "port": 80, "from": "demo", "meshed": False}, "web", None, None),
])
def test_the_seeds_two_routes(request_, backend, route_, grpc_status):
    r = Router(SEED)
    ans = r.route(request_)
    assert ans["status"] == 200 and ans["backend"]["name"] == backend and ans["route"] == route_
    assert ans.get("grpc_status") == grpc_status
    assert r.split(request_) == {f"demo/{backend}": 1.0}


def test_the_seeds_status_and_workloads():
    res = reconcile(world(*[d for d in __import__("gwlib").load(SEED)]))
    for kind, key in (("HTTPRoute", "demo/web"), ("GRPCRoute", "demo/api")):
        assert parent_status(res, key, kind) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    r = Router(SEED)
    assert {k: w.meshed for k, w in r.ir.workloads.items()} == {"demo/api": True, "demo/client": True, "demo/web": True}
    assert r.ir.mesh["demo/api"].ports[9090].protocol == "h2c"


def test_gwlib_route_answers_mesh_requests(tmp_path, capsys):
    from gwlib.cli import main
    reqs = tmp_path / "r.jsonl"
    reqs.write_text("\n".join(json.dumps(x) for x in [
        {"service": "demo/web", "port": 80, "from": "demo", "path": "/"},
        {"service": "demo/api", "port": 9090, "from": "demo", "grpc": GRPC_ECHO},
        {"service": "demo/nope", "port": 80, "from": "demo"}]) + "\n")
    assert main(["route", "-f", str(SEED), "--requests", str(reqs)]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out[0]["route"] == "demo/web" and out[1]["grpc_status"] == 0 and "does not exist" in out[2]["error"]
    assert main(["route", "-f", str(SEED), "--requests", str(reqs), "-o", "table"]) == 0
    assert "svc demo/web" in capsys.readouterr().out


# =========================================================================== the IR

def test_mesh_ir_tables_per_service_port():
    from gwlib.ir import from_objects
    ir = from_objects(objs(PRODUCER, CONSUMER, ADMIN))
    mp = ir.mesh["shop/api"].ports[80]
    assert mp.producer.routes == ["shop/producer"] and mp.producer.group == "producer"
    assert list(mp.consumers) == ["web"] and mp.consumers["web"].routes == ["web/consumer"]
    assert mp.table("web") is mp.consumers["web"] and mp.table("batch") is mp.producer
    assert ir.mesh["shop/api"].ports[8080].producer.routes == ["shop/admin"]
    assert mp.default.split_dict() == {"shop/api": 1.0}
    assert ir.mesh["shop/api-v2"].ports[80].producer is None      # no route: the Service itself
    assert sorted(r[1] for r in ir.mesh_routes) == ["shop/admin", "shop/producer", "web/consumer"]


def test_a_route_with_gateway_and_service_parents_is_in_both_tables():
    from gwlib.ir import from_objects
    both = mroute("both", parents=[sref(port=80), pref("gw", ns="shop")],
                  rules=[rule(bref("api", port=80, ns="other"))])
    ir = from_objects(world(gatewayclass(), gateway(ns="shop", listeners=[listener()]), *SERVICES, both))
    gw_entry = ir.gateways["shop/gw"].listeners[0].fallback.http[0]
    mesh_entry = ir.mesh["shop/api"].ports[80].producer.http[0]
    assert gw_entry.route == mesh_entry.route == "shop/both"
    assert gw_entry.action.error_status == 500            # the Gateway needs a ReferenceGrant
    assert mesh_entry.action.split_dict() == {"other/api": 1.0}   # the mesh does not


def test_mesh_routes_never_enter_gateway_listeners():
    from gwlib.ir import from_objects
    ir = from_objects(world(gatewayclass(), gateway(ns="shop", listeners=[listener()]), *SERVICES, PRODUCER))
    assert all(not l.virtual_hosts() for l in ir.gateways["shop/gw"].listeners)
    res = reconcile(world(gatewayclass(), gateway(ns="shop", listeners=[listener()]), *SERVICES, PRODUCER))
    assert res.gateway("shop/gw").listeners[0].attached_routes == 0
