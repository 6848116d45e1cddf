"""Unit tests of gwlib.resources: defaults, clean vs defaulted dumps, strict
types, channels, every CEL rule (failing and passing), duplicates, registry."""
from __future__ import annotations

import copy
import inspect
import time
import typing
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from gwlib.resources import (
    KINDS,
    Deployment,
    GenericObject,
    Gateway,
    GatewayClass,
    GRPCRoute,
    HTTPRoute,
    Ingress,
    Namespace,
    ReferenceGrant,
    Resource,
    Secret,
    Service,
    TCPRoute,
    TLSRoute,
    UDPRoute,
    model_for,
    served,
)
from gwlib.resources.registry import _MODELS

ROOT = Path(__file__).resolve().parent.parent
GW = "gateway.networking.k8s.io/v1"


# --------------------------------------------------------------------------- helpers
def path_of(err: dict) -> str:
    out = ""
    for part in err["loc"]:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    fp = (err.get("ctx") or {}).get("field_path")
    if fp:
        out = f"{out}.{fp.lstrip('.')}" if out else fp.lstrip(".")
    return out


def problems(cls, data, channel="standard") -> list[tuple[str, str, str]]:
    """[(path, type, message)] or [] when valid."""
    try:
        cls.model_validate(data, context={"channel": channel})
    except ValidationError as exc:
        return [(path_of(e), e["type"], e["msg"]) for e in exc.errors()]
    return []


def route(**spec) -> dict:
    base = {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}
    base.update(spec)
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "ns"}, "spec": base}


def rule(**fields) -> dict:
    return route(rules=[fields])


def filt(f: dict, **rule_fields) -> dict:
    return rule(filters=[f], **rule_fields)


def gateway(*listeners, **spec) -> dict:
    listeners = listeners or ({"name": "http", "port": 80, "protocol": "HTTP"},)
    s = {"gatewayClassName": "gwlib", "listeners": list(listeners)}
    s.update(spec)
    return {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "g", "namespace": "infra"}, "spec": s}


def grpc(**spec) -> dict:
    base = {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "svc", "port": 50051}]}]}
    base.update(spec)
    return {"apiVersion": GW, "kind": "GRPCRoute", "metadata": {"name": "g", "namespace": "ns"}, "spec": base}


def tls(hostnames) -> dict:
    return {"apiVersion": GW, "kind": "TLSRoute", "metadata": {"name": "t", "namespace": "ns"},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": hostnames,
                     "rules": [{"backendRefs": [{"name": "db", "port": 5432}]}]}}


def l4(kind: str, version="v1", rules=None) -> dict:
    return {"apiVersion": f"gateway.networking.k8s.io/{version}", "kind": kind,
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"parentRefs": [{"name": "gw"}],
                     "rules": rules if rules is not None else [{"backendRefs": [{"name": "svc", "port": 53}]}]}}


# --------------------------------------------------------------------------- defaults
def test_httproute_defaults_clean_and_defaulted():
    doc = route()
    r = HTTPRoute.model_validate(doc)
    assert r.to_dict() == doc
    d = r.to_dict(defaults=True)
    assert d["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}]
    assert d["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert d["spec"]["rules"][0]["backendRefs"] == [{"group": "", "kind": "Service", "name": "svc", "port": 80,
                                                     "weight": 1}]
    # the whole-spec defaults
    bare = HTTPRoute.model_validate({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "x"},
                                     "spec": {}})
    assert bare.to_dict(defaults=True)["spec"]["rules"] == [{"matches": [{"path": {"type": "PathPrefix",
                                                                                   "value": "/"}}]}]
    assert bare.to_dict()["spec"] == {}


def test_httproute_nested_defaults():
    r = HTTPRoute.model_validate(rule(
        matches=[{"path": {"value": "/a"}}, {"headers": [{"name": "x", "value": "y"}],
                                             "queryParams": [{"name": "q", "value": "1"}]}],
        filters=[{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}},
                 {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80},
                                                             "fraction": {"numerator": 5}}},
                 {"type": "CORS", "cors": {"allowOrigins": ["*"]}}],
        backendRefs=[]))
    d = r.to_dict(defaults=True)["spec"]["rules"][0]
    assert d["matches"][0]["path"] == {"type": "PathPrefix", "value": "/a"}
    assert d["matches"][1]["path"] == {"type": "PathPrefix", "value": "/"}
    assert d["matches"][1]["headers"][0]["type"] == "Exact"
    assert d["matches"][1]["queryParams"][0]["type"] == "Exact"
    assert d["filters"][0]["requestRedirect"]["statusCode"] == 302
    mirror = d["filters"][1]["requestMirror"]
    assert mirror["fraction"] == {"numerator": 5, "denominator": 100}
    assert mirror["backendRef"]["kind"] == "Service" and mirror["backendRef"]["group"] == ""
    assert d["filters"][2]["cors"]["maxAge"] == 5


def test_gateway_defaults():
    g = Gateway.model_validate(gateway(
        {"name": "https", "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "cert"}]},
         "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}]}},
        addresses=[{"value": "127.0.0.1"}]))
    d = g.to_dict(defaults=True)["spec"]
    listener = d["listeners"][0]
    assert listener["tls"]["mode"] == "Terminate"
    assert listener["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "cert"}]
    assert listener["allowedRoutes"]["namespaces"] == {"from": "Same"}
    assert listener["allowedRoutes"]["kinds"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]
    assert d["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    g2 = Gateway.model_validate(gateway())
    assert g2.to_dict(defaults=True)["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    assert g2.to_dict() == gateway()
    assert g2.spec.listeners[0].allowed_routes.namespaces.from_ == "Same"


def test_other_kind_defaults():
    rg = ReferenceGrant.model_validate({
        "apiVersion": GW, "kind": "ReferenceGrant", "metadata": {"name": "rg", "namespace": "b"},
        "spec": {"from": [{"group": GW.split("/")[0], "kind": "HTTPRoute", "namespace": "a"}],
                 "to": [{"group": "", "kind": "Service"}]}})
    assert rg.spec.from_[0].namespace == "a"
    assert rg.to_dict(defaults=True)["spec"]["from"][0]["kind"] == "HTTPRoute"
    svc = Service.model_validate({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                                  "spec": {"ports": [{"port": 80, "targetPort": "http"}]}})
    assert svc.to_dict(defaults=True)["spec"]["ports"][0]["protocol"] == "TCP"
    assert svc.to_dict(defaults=True)["spec"]["type"] == "ClusterIP"
    gr = GRPCRoute.model_validate(grpc(rules=[{"matches": [{"method": {"service": "pkg.Echo"},
                                                             "headers": [{"name": "a", "value": "b"}]}]}]))
    m = gr.to_dict(defaults=True)["spec"]["rules"][0]["matches"][0]
    assert m["method"]["type"] == "Exact" and m["headers"][0]["type"] == "Exact"
    t = TCPRoute.model_validate(l4("TCPRoute"))
    assert t.to_dict(defaults=True)["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1
    dep = Deployment.model_validate({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": "echo"}},
                 "template": {"metadata": {"labels": {"app": "echo"}},
                              "spec": {"containers": [{"name": "echo", "image": "echo:1", "ports": [
                                  {"containerPort": 8080}], "resources": {}}], "terminationGracePeriodSeconds": 1}}}})
    assert dep.to_dict(defaults=True)["spec"]["replicas"] == 1
    assert dep.to_dict()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 1


def test_defaulted_copy_round_trip():
    r = HTTPRoute.model_validate(route())
    d = r.defaulted()
    assert d.to_dict() == r.to_dict(defaults=True)
    assert d.to_dict(defaults=True) == r.to_dict(defaults=True)


def _fixture_docs():
    for path in sorted((ROOT / "tests" / "fixtures" / "valid").glob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            for i, doc in enumerate(yaml.safe_load_all(fh)):
                if isinstance(doc, dict):
                    yield path.name, i, doc


@pytest.mark.parametrize("name,index,doc", list(_fixture_docs()), ids=lambda v: str(v) if not isinstance(v, dict) else "")
def test_load_dump_load_is_stable(name, index, doc):
    cls = model_for(doc["apiVersion"], doc["kind"])
    if cls is None:
        obj = GenericObject.model_validate(doc)
        assert obj.to_dict() == doc
        return
    obj = cls.model_validate(doc, context={"channel": "experimental"})
    clean = obj.to_dict()
    assert cls.model_validate(clean, context={"channel": "experimental"}).to_dict() == clean
    full = obj.to_dict(defaults=True)
    again = cls.model_validate(full, context={"channel": "experimental"})
    assert again.to_dict() == full and again.to_dict(defaults=True) == full


# --------------------------------------------------------------------------- strictness
@pytest.mark.parametrize("doc,path,etype", [
    (rule(backendRefs=[{"name": "svc", "port": "80"}]), "spec.rules[0].backendRefs[0].port", "int_type"),
    (rule(backendRefs=[{"name": 1, "port": 80}]), "spec.rules[0].backendRefs[0].name", "string_type"),
    (rule(backendRefs=[{"name": "s", "port": True}]), "spec.rules[0].backendRefs[0].port", "int_type"),
    (rule(backendRefs=[{"name": "s", "port": 80.0}]), "spec.rules[0].backendRefs[0].port", "int_type"),
    (route(hostnames="a.example.com"), "spec.hostnames", "list_type"),
    (route(bogus=1), "spec.bogus", "extra_forbidden"),
    (rule(backendRefs=[{"name": "s", "port": 80, "weight": 2_000_000}]),
     "spec.rules[0].backendRefs[0].weight", "less_than_equal"),
    (route(hostnames=["Foo.example.com"]), "spec.hostnames[0]", "string_pattern_mismatch"),
    (rule(matches=[{"method": "get"}]), "spec.rules[0].matches[0].method", "literal_error"),
])
def test_strict_schema(doc, path, etype):
    got = problems(HTTPRoute, doc)
    assert (path, etype) in [(p, t) for p, t, _ in got], got


def test_all_problems_are_collected():
    doc = route(hostnames=["UPPER"], bogus=True)
    doc["spec"]["rules"][0]["backendRefs"][0]["port"] = "80"
    doc["metadata"]["name"] = "Bad_Name"
    paths = {p for p, _, _ in problems(HTTPRoute, doc)}
    assert {"spec.hostnames[0]", "spec.bogus", "spec.rules[0].backendRefs[0].port", "metadata.name"} <= paths


def test_metadata_rules():
    assert problems(HTTPRoute, {**route(), "metadata": {"name": "a.b-c"}}) == []
    assert problems(HTTPRoute, {**route(), "metadata": {}})[0][:2] == ("metadata.name", "missing")
    assert problems(HTTPRoute, {**route(), "metadata": {"name": "x", "uid": "1", "oops": 1}})[0][:2] == \
        ("metadata.oops", "extra_forbidden")
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}
    assert problems(Namespace, ns)[0][0] == "metadata.name"
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1abc"}, "spec": {"ports": [{"port": 80}]}}
    assert problems(Service, svc)[0][0] == "metadata.name"
    bad_labels = {**route(), "metadata": {"name": "x", "labels": {"bad key": "v", "ok/key": "in valid"}}}
    msgs = [m for p, _, m in problems(HTTPRoute, bad_labels) if p == "metadata.labels"]
    assert len(msgs) == 2 and "name part" in msgs[0]
    long_prefix = {**route(), "metadata": {"name": "x", "annotations": {("a" * 254) + "/k": "v"}}}
    assert problems(HTTPRoute, long_prefix)[0][0] == "metadata.annotations"


def test_resource_properties_and_source():
    r = HTTPRoute.model_validate({**route(), "metadata": {"name": "r", "generation": 3,
                                                          "creationTimestamp": "2024-05-01T10:00:00Z",
                                                          "labels": {"a": "b"}}})
    assert (r.name, r.namespace, r.key, r.generation) == ("r", "default", "default/r", 3)
    assert r.creation_timestamp == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert r.labels == {"a": "b"} and r.annotations == {}
    assert r.source is None
    r.set_source("f.yaml", 2)
    assert r.source == ("f.yaml", 2) and r.defaulted().source == ("f.yaml", 2)
    gc = GatewayClass.model_validate({"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "gwlib"},
                                      "spec": {"controllerName": "gwlib.dev/gateway-controller"}})
    assert gc.namespace is None and gc.key == "gwlib" and gc.generation == 1 and not GatewayClass.NAMESPACED
    # YAML may hand over a datetime for an unquoted timestamp
    r2 = HTTPRoute.model_validate({**route(), "metadata": {"name": "r", "creationTimestamp":
                                                           datetime(2024, 1, 1)}})
    assert r2.creation_timestamp.tzinfo is not None
    assert problems(HTTPRoute, {**route(), "metadata": {"name": "r", "creationTimestamp": "yesterday"}})


def test_wrong_api_version_or_kind_for_model():
    doc = route()
    doc["kind"] = "GRPCRoute"
    assert ("kind", "literal_error") in [(p, t) for p, t, _ in problems(HTTPRoute, doc)]


# --------------------------------------------------------------------------- channels
@pytest.mark.parametrize("cls,doc,path", [
    (HTTPRoute, route(useDefaultGateways="All"), "spec.useDefaultGateways"),
    (HTTPRoute, rule(retry={"attempts": 2}), "spec.rules[0].retry"),
    (HTTPRoute, rule(sessionPersistence={"sessionName": "s"}), "spec.rules[0].sessionPersistence"),
    (HTTPRoute, filt({"type": "ExtensionRef", "extensionRef": {"group": "x.io", "kind": "F", "name": "f"},
                      "externalAuth": {"protocol": "HTTP", "backendRef": {"name": "a", "port": 80},
                                       "http": {}}}), "spec.rules[0].filters[0].externalAuth"),
    (Gateway, gateway(defaultScope="All"), "spec.defaultScope"),
    (GRPCRoute, grpc(useDefaultGateways="All"), "spec.useDefaultGateways"),
    (GRPCRoute, grpc(rules=[{"sessionPersistence": {"type": "Header"}}]), "spec.rules[0].sessionPersistence"),
])
def test_experimental_fields_rejected_in_standard(cls, doc, path):
    got = problems(cls, doc, "standard")
    assert (path, "extra_forbidden") in [(p, t) for p, t, _ in got], got
    msg = [m for p, t, m in got if p == path][0]
    assert msg == f'unknown field "{path.rsplit(".", 1)[-1]}"'
    assert [p for p, _, _ in problems(cls, doc, "experimental") if p == path] == []


def test_default_channel_is_standard():
    with pytest.raises(ValidationError):
        HTTPRoute.model_validate(route(useDefaultGateways="All"))
    assert HTTPRoute.model_validate(route(useDefaultGateways="All"),
                                    context={"channel": "experimental"}).channel == "experimental"


def test_experimental_enum_value_and_pattern():
    doc = filt({"type": "ExternalAuth", "externalAuth": {"protocol": "GRPC", "backendRef": {"name": "a", "port": 9},
                                                         "grpc": {}}})
    got = problems(HTTPRoute, doc, "standard")
    assert ("spec.rules[0].filters[0].type", "literal_error") in [(p, t) for p, t, _ in got]
    assert problems(HTTPRoute, doc, "experimental") == []
    # header values: printable ASCII only in the experimental CRD
    doc = rule(matches=[{"headers": [{"name": "x", "value": "a  b"}]}])
    assert problems(HTTPRoute, doc, "standard") == []
    got = problems(HTTPRoute, doc, "experimental")
    assert got[0][:2] == ("spec.rules[0].matches[0].headers[0].value", "string_pattern_mismatch")


# --------------------------------------------------------------------------- CEL rules
RR = {"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}
UR = {"type": "URLRewrite", "urlRewrite": {"hostname": "a.example.com"}}
RHM = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "a", "value": "b"}]}}
RSP = {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["a"]}}
CORS = {"type": "CORS", "cors": {"allowOrigins": ["https://a.example.com"]}}
MIRROR = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80}}}
PREFIX_RW = {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"}}}
PREFIX_RR = {"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplacePrefixMatch",
                                                                    "replacePrefixMatch": "/x"}}}
EXACT = [{"path": {"type": "Exact", "value": "/a"}}]
PFX = [{"path": {"type": "PathPrefix", "value": "/a"}}]
TWO_REFS = [{"name": "gw"}, {"name": "gw", "sectionName": "http"}]

# (id, cls, bad doc, good doc, path, message, channel)
CEL_CASES = [
    ("parentrefs-section-specified", HTTPRoute, route(parentRefs=TWO_REFS),
     route(parentRefs=[{"name": "gw", "sectionName": "a"}, {"name": "gw", "sectionName": "b"}]),
     "spec.parentRefs", "sectionName must be specified when parentRefs includes 2 or more references to the "
                        "same parent", "standard"),
    ("parentrefs-section-unique", HTTPRoute, route(parentRefs=[{"name": "gw", "sectionName": "a"}] * 2),
     route(parentRefs=[{"name": "gw", "sectionName": "a"}, {"name": "gw2", "sectionName": "a"}]),
     "spec.parentRefs", "sectionName must be unique when parentRefs includes 2 or more references to the same "
                        "parent", "standard"),
    ("parentrefs-port-specified-exp", HTTPRoute, route(parentRefs=[{"name": "gw", "port": 80}, {"name": "gw"}]),
     route(parentRefs=[{"name": "gw", "port": 80}, {"name": "gw", "port": 443}]),
     "spec.parentRefs", "sectionName or port must be specified when parentRefs includes 2 or more references "
                        "to the same parent", "experimental"),
    ("parentrefs-port-unique-exp", HTTPRoute, route(parentRefs=[{"name": "gw", "port": 80}] * 2),
     route(parentRefs=[{"name": "gw", "port": 80}, {"name": "gw", "port": 80, "namespace": "other"}]),
     "spec.parentRefs", "sectionName or port must be unique when parentRefs includes 2 or more references to "
                        "the same parent", "experimental"),
    ("total-matches", HTTPRoute,
     route(rules=[{"matches": [{"path": {"value": f"/{i}"}} for i in range(64)]}] * 2 + [{}]),
     route(rules=[{"matches": [{"path": {"value": f"/{i}"}} for i in range(64)]}] * 2),
     "spec.rules", "While 16 rules and 64 matches per rule are allowed, the total number of matches across all "
                   "rules in a route must be less than 128", "standard"),
    ("rule-name-unique-exp", HTTPRoute, route(rules=[{"name": "a"}, {"name": "a"}]),
     route(rules=[{"name": "a"}, {"name": "b"}, {}]),
     "spec.rules", "Rule name must be unique within the route", "experimental"),
    ("redirect-with-backends", HTTPRoute, filt(RR, backendRefs=[{"name": "s", "port": 80}]),
     filt(RR, backendRefs=[]), "spec.rules[0]", "RequestRedirect filter must not be used together with backendRefs",
     "standard"),
    ("redirect-prefix-needs-prefix-match", HTTPRoute, filt(PREFIX_RR, matches=EXACT, backendRefs=[]),
     filt(PREFIX_RR, matches=PFX, backendRefs=[]), "spec.rules[0]",
     "When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be "
     "specified", "standard"),
    ("rewrite-prefix-needs-prefix-match", HTTPRoute, filt(PREFIX_RW, matches=PFX + PFX),
     filt(PREFIX_RW), "spec.rules[0]",
     "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified",
     "standard"),
    ("backend-redirect-prefix", HTTPRoute,
     rule(matches=EXACT, backendRefs=[{"name": "s", "port": 80, "filters": [PREFIX_RR]}]),
     rule(matches=PFX, backendRefs=[{"name": "s", "port": 80, "filters": [PREFIX_RR]}]), "spec.rules[0]",
     "Within backendRefs, when using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix "
     "match must be specified", "standard"),
    ("backend-rewrite-prefix", HTTPRoute,
     rule(matches=EXACT, backendRefs=[{"name": "s", "port": 80, "filters": [PREFIX_RW]}]),
     rule(backendRefs=[{"name": "s", "port": 80, "filters": [PREFIX_RW]}]), "spec.rules[0]",
     "Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix "
     "match must be specified", "standard"),
    ("redirect-and-rewrite", HTTPRoute, rule(filters=[RR, UR], backendRefs=[]), rule(filters=[UR]),
     "spec.rules[0].filters", "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, "
                              "but not both", "standard"),
    ("backend-redirect-and-rewrite", HTTPRoute,
     rule(backendRefs=[{"name": "s", "port": 80, "filters": [UR, RR]}]),
     rule(backendRefs=[{"name": "s", "port": 80, "filters": [UR, RHM]}]), "spec.rules[0].backendRefs[0].filters",
     "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both",
     "standard"),
    ("rhm-repeated", HTTPRoute, rule(filters=[RHM, RHM]), rule(filters=[RHM, RSP]), "spec.rules[0].filters",
     "RequestHeaderModifier filter cannot be repeated", "standard"),
    ("rsp-repeated", HTTPRoute, rule(filters=[RSP, RSP]), rule(filters=[RSP]), "spec.rules[0].filters",
     "ResponseHeaderModifier filter cannot be repeated", "standard"),
    ("rr-repeated", HTTPRoute, rule(filters=[RR, RR]), rule(filters=[RR]), "spec.rules[0].filters",
     "RequestRedirect filter cannot be repeated", "standard"),
    ("ur-repeated", HTTPRoute, rule(filters=[UR, UR]), rule(filters=[UR, MIRROR, MIRROR]), "spec.rules[0].filters",
     "URLRewrite filter cannot be repeated", "standard"),
    ("cors-repeated", HTTPRoute, rule(filters=[CORS, CORS]), rule(filters=[CORS]), "spec.rules[0].filters",
     "CORS filter cannot be repeated", "standard"),
    ("cors-origins-star", HTTPRoute, filt({"type": "CORS", "cors": {"allowOrigins": ["*", "https://a.io"]}}),
     filt({"type": "CORS", "cors": {"allowOrigins": ["*"]}}), "spec.rules[0].filters[0].cors.allowOrigins",
     "AllowOrigins cannot contain '*' alongside other origins", "standard"),
    ("cors-methods-star", HTTPRoute, filt({"type": "CORS", "cors": {"allowMethods": ["*", "GET"]}}),
     filt({"type": "CORS", "cors": {"allowMethods": ["GET", "PUT"]}}), "spec.rules[0].filters[0].cors.allowMethods",
     "AllowMethods cannot contain '*' alongside other methods", "standard"),
    ("cors-headers-star", HTTPRoute, filt({"type": "CORS", "cors": {"allowHeaders": ["*", "X-A"]}}),
     filt({"type": "CORS", "cors": {"allowHeaders": ["*"]}}), "spec.rules[0].filters[0].cors.allowHeaders",
     "AllowHeaders cannot contain '*' alongside other methods", "standard"),
    ("mirror-percent-and-fraction", HTTPRoute,
     filt({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80}, "percent": 5,
                                                      "fraction": {"numerator": 1}}}),
     filt({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80}, "percent": 5}}),
     "spec.rules[0].filters[0].requestMirror",
     "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter", "standard"),
    ("fraction", HTTPRoute,
     filt({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80},
                                                      "fraction": {"numerator": 101}}}),
     filt({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80},
                                                      "fraction": {"numerator": 100}}}),
     "spec.rules[0].filters[0].requestMirror.fraction", "numerator must be less than or equal to denominator",
     "standard"),
    ("mirror-backend-port", HTTPRoute,
     filt({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m"}}}),
     filt({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "kind": "Other", "group": "x.io"}}}),
     "spec.rules[0].filters[0].requestMirror.backendRef", "Must have port for Service reference", "standard"),
    ("backend-port", HTTPRoute, rule(backendRefs=[{"name": "s"}]),
     rule(backendRefs=[{"name": "s", "group": "multicluster.x-k8s.io", "kind": "ServiceImport"}]),
     "spec.rules[0].backendRefs[0]", "Must have port for Service reference", "standard"),
    ("full-path-missing", HTTPRoute, filt({"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath"}}}),
     filt({"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/"}}}),
     "spec.rules[0].filters[0].urlRewrite.path", "replaceFullPath must be specified when type is set to "
                                                 "'ReplaceFullPath'", "standard"),
    ("full-path-wrong-type", HTTPRoute,
     filt({"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/",
                                                         "replaceFullPath": "/"}}}), filt(PREFIX_RW),
     "spec.rules[0].filters[0].urlRewrite.path", "type must be 'ReplaceFullPath' when replaceFullPath is set",
     "standard"),
    ("prefix-missing", HTTPRoute,
     filt({"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplacePrefixMatch"}}}, backendRefs=[]),
     filt(PREFIX_RR, backendRefs=[], matches=PFX), "spec.rules[0].filters[0].requestRedirect.path",
     "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'", "standard"),
    ("prefix-wrong-type", HTTPRoute,
     filt({"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/",
                                                                   "replacePrefixMatch": "/"}}}, backendRefs=[]),
     filt({"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/"}}},
          backendRefs=[]), "spec.rules[0].filters[0].requestRedirect.path",
     "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set", "standard"),
    ("timeouts", HTTPRoute, rule(timeouts={"request": "10s", "backendRequest": "1m"}),
     rule(timeouts={"request": "0s", "backendRequest": "1m"}), "spec.rules[0].timeouts",
     "backendRequest timeout cannot be longer than request timeout", "standard"),
    ("session-permanent-exp", HTTPRoute,
     rule(sessionPersistence={"cookieConfig": {"lifetimeType": "Permanent"}}),
     rule(sessionPersistence={"absoluteTimeout": "1h", "cookieConfig": {"lifetimeType": "Permanent"}}),
     "spec.rules[0].sessionPersistence", "AbsoluteTimeout must be specified when cookie lifetimeType is Permanent",
     "experimental"),
    ("session-cookie-config-exp", HTTPRoute,
     rule(sessionPersistence={"type": "Header", "cookieConfig": {}}), rule(sessionPersistence={"type": "Header"}),
     "spec.rules[0].sessionPersistence", "cookieConfig can only be set with type Cookie", "experimental"),
    ("listener-tls-on-http", Gateway,
     gateway({"name": "h", "port": 80, "protocol": "HTTP", "tls": {"certificateRefs": [{"name": "c"}]}}),
     gateway(), "spec.listeners", "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']", "standard"),
    ("listener-https-passthrough", Gateway,
     gateway({"name": "h", "port": 443, "protocol": "HTTPS", "tls": {"mode": "Passthrough"}}),
     gateway({"name": "h", "port": 443, "protocol": "HTTPS"}),
     "spec.listeners", "tls mode must be Terminate for protocol HTTPS", "standard"),
    ("listener-tls-mode", Gateway, gateway({"name": "t", "port": 443, "protocol": "TLS"}),
     gateway({"name": "t", "port": 443, "protocol": "TLS", "tls": {"mode": "Passthrough"}}),
     "spec.listeners", "tls mode must be set for protocol TLS", "standard"),
    ("listener-tcp-hostname", Gateway, gateway({"name": "t", "port": 53, "protocol": "UDP", "hostname": "a.io"}),
     gateway({"name": "t", "port": 53, "protocol": "UDP"}),
     "spec.listeners", "hostname must not be specified for protocols ['TCP', 'UDP']", "standard"),
    ("listener-name-unique", Gateway,
     gateway({"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "a", "port": 81, "protocol": "HTTP"}),
     gateway({"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "b", "port": 81, "protocol": "HTTP"}),
     "spec.listeners", "Listener name must be unique within the Gateway", "standard"),
    ("listener-combination-unique", Gateway,
     gateway({"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "b", "port": 80, "protocol": "HTTP"}),
     gateway({"name": "a", "port": 80, "protocol": "HTTP"},
             {"name": "b", "port": 80, "protocol": "HTTP", "hostname": "b.io"}),
     "spec.listeners", "Combination of port, protocol and hostname must be unique for each listener", "standard"),
    ("listener-terminate-needs-certs", Gateway,
     gateway({"name": "h", "port": 443, "protocol": "HTTPS", "tls": {}}),
     gateway({"name": "h", "port": 443, "protocol": "HTTPS", "tls": {"options": {"example.com/x": "y"}}}),
     "spec.listeners[0].tls", "certificateRefs or options must be specified when mode is Terminate", "standard"),
    ("addresses-ip-unique", Gateway, gateway(addresses=[{"value": "10.0.0.1"}, {"value": "10.0.0.1"}]),
     gateway(addresses=[{"value": "10.0.0.1"}, {"type": "Hostname", "value": "10.0.0.1"}]),
     "spec.addresses", "IPAddress values must be unique", "standard"),
    ("addresses-hostname-unique", Gateway,
     gateway(addresses=[{"type": "Hostname", "value": "a.io"}, {"type": "Hostname", "value": "a.io"}]),
     gateway(addresses=[{"type": "Hostname", "value": "a.io"}, {"type": "Hostname", "value": "b.io"}]),
     "spec.addresses", "Hostname values must be unique", "standard"),
    ("address-hostname-chars", Gateway, gateway(addresses=[{"type": "Hostname", "value": "A_B"}]),
     gateway(addresses=[{"type": "Hostname"}]), "spec.addresses[0]",
     "Hostname value must be empty or contain only valid characters (matching "
     "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)", "standard"),
    ("infra-label-key", Gateway, gateway(infrastructure={"labels": {"bad key": "v"}}),
     gateway(infrastructure={"labels": {"example.com/ok": "v"}}), "spec.infrastructure.labels",
     "Label keys must be in the form of an optional DNS subdomain prefix followed by a required name segment of "
     "up to 63 characters.", "standard"),
    ("infra-label-prefix", Gateway, gateway(infrastructure={"labels": {("a." * 130) + "io/k": "v"}}),
     gateway(infrastructure={"labels": {"k": "v"}}), "spec.infrastructure.labels",
     "If specified, the label key's prefix must be a DNS subdomain not longer than 253 characters in total.",
     "standard"),
    ("infra-annotation-key", Gateway, gateway(infrastructure={"annotations": {"-bad": "v"}}),
     gateway(infrastructure={"annotations": {"good": "v"}}), "spec.infrastructure.annotations",
     "Annotation keys must be in the form of an optional DNS subdomain prefix followed by a required name segment "
     "of up to 63 characters.", "standard"),
    ("infra-annotation-prefix", Gateway, gateway(infrastructure={"annotations": {("b." * 130) + "io/k": "v"}}),
     gateway(infrastructure={"annotations": {"b.io/k": "v"}}), "spec.infrastructure.annotations",
     "If specified, the annotation key's prefix must be a DNS subdomain not longer than 253 characters in total.",
     "standard"),
    ("frontend-perport-unique", Gateway,
     gateway(tls={"frontend": {"default": {}, "perPort": [{"port": 443, "tls": {}}, {"port": 443, "tls": {}}]}}),
     gateway(tls={"frontend": {"default": {}, "perPort": [{"port": 443, "tls": {}}, {"port": 8443, "tls": {}}]}}),
     "spec.tls.frontend.perPort", "Port for TLS configuration must be unique within the Gateway", "standard"),
    ("grpc-method-empty", GRPCRoute, grpc(rules=[{"matches": [{"method": {"type": "Exact"}}]}]),
     grpc(rules=[{"matches": [{"method": {"method": "Echo"}}]}]), "spec.rules[0].matches[0].method",
     "One or both of 'service' or 'method' must be specified", "standard"),
    ("grpc-service-chars", GRPCRoute, grpc(rules=[{"matches": [{"method": {"service": "pkg/Echo"}}]}]),
     grpc(rules=[{"matches": [{"method": {"service": "pkg.v1.Echo"}}]}]), "spec.rules[0].matches[0].method",
     "service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)",
     "standard"),
    ("grpc-method-chars", GRPCRoute, grpc(rules=[{"matches": [{"method": {"method": "Echo/x"}}]}]),
     grpc(rules=[{"matches": [{"method": {"type": "RegularExpression", "method": "Echo/.*"}}]}]),
     "spec.rules[0].matches[0].method", "method must only contain valid characters (matching "
                                        "^[A-Za-z_][A-Za-z_0-9]*$)", "standard"),
    ("grpc-filters-repeated", GRPCRoute,
     grpc(rules=[{"filters": [RHM, RHM]}]), grpc(rules=[{"filters": [RHM, RSP]}]), "spec.rules[0].filters",
     "RequestHeaderModifier filter cannot be repeated", "standard"),
    ("grpc-filter-pair", GRPCRoute,
     grpc(rules=[{"filters": [{"type": "RequestMirror"}]}]), grpc(rules=[{"filters": [MIRROR]}]),
     "spec.rules[0].filters[0]", "filter.requestMirror must be specified for RequestMirror filter.type",
     "standard"),
    ("grpc-total-matches", GRPCRoute,
     grpc(rules=[{"matches": [{"headers": [{"name": "a", "value": str(i)}]} for i in range(64)]}] * 3),
     grpc(rules=[{"matches": [{"headers": [{"name": "a", "value": str(i)}]} for i in range(64)]}] * 2 + [{}]),
     "spec.rules", "While 16 rules and 64 matches per rule are allowed, the total number of matches across all "
                   "rules in a route must be less than 128", "standard"),
    ("tls-hostname-ip", TLSRoute, tls(["10.0.0.1"]), tls(["db.example.com"]), "spec.hostnames",
     "Hostnames cannot contain an IP", "standard"),
    ("tls-hostname-1123", TLSRoute, tls(["Db.example.com"]), tls(["db.example.com"]), "spec.hostnames",
     "Hostnames must be valid based on RFC-1123", "standard"),
    ("tls-hostname-wildcard", TLSRoute, tls(["db.*.example.com"]), tls(["*.example.com"]), "spec.hostnames",
     "Wildcards on hostnames must be the first label, and the rest of hostname must be valid based on RFC-1123",
     "standard"),
    ("tcp-parentrefs", TCPRoute, {**l4("TCPRoute"), "spec": {**l4("TCPRoute")["spec"], "parentRefs": TWO_REFS}},
     l4("TCPRoute"), "spec.parentRefs", "sectionName must be specified when parentRefs includes 2 or more "
                                        "references to the same parent", "standard"),
    ("udp-backend-port", UDPRoute, l4("UDPRoute", rules=[{"backendRefs": [{"name": "dns"}]}]), l4("UDPRoute"),
     "spec.rules[0].backendRefs[0]", "Must have port for Service reference", "standard"),
]

# the union rules of a filter: "must be nil" / "must be specified" for every member
_MEMBERS = {
    "requestHeaderModifier": ("RequestHeaderModifier", {"set": [{"name": "a", "value": "b"}]}),
    "responseHeaderModifier": ("ResponseHeaderModifier", {"add": [{"name": "a", "value": "b"}]}),
    "requestMirror": ("RequestMirror", {"backendRef": {"name": "m", "port": 80}}),
    "requestRedirect": ("RequestRedirect", {"statusCode": 301}),
    "urlRewrite": ("URLRewrite", {"hostname": "a.io"}),
    "cors": ("CORS", {"allowOrigins": ["*"]}),
    "extensionRef": ("ExtensionRef", {"group": "x.io", "kind": "F", "name": "f"}),
}
for _field, (_type, _value) in _MEMBERS.items():
    _other = "ExtensionRef" if _type != "ExtensionRef" else "CORS"
    _other_field = "extensionRef" if _type != "ExtensionRef" else "cors"
    _good = {"type": _type, _field: _value}
    _extra = {} if _type != "RequestRedirect" else {"backendRefs": []}
    CEL_CASES.append((f"filter-{_field}-nil", HTTPRoute,
                      filt({"type": _other, _other_field: _MEMBERS[_other_field][1], _field: _value}, **_extra),
                      filt(_good, **_extra), "spec.rules[0].filters[0]",
                      f"filter.{_field} must be nil if the filter.type is not {_type}", "standard"))
    CEL_CASES.append((f"filter-{_field}-specified", HTTPRoute, filt({"type": _type}, **_extra),
                      filt(_good, **_extra), "spec.rules[0].filters[0]",
                      f"filter.{_field} must be specified for {_type} filter.type", "standard"))

_EXT_AUTH = {"protocol": "HTTP", "backendRef": {"name": "auth", "port": 80}, "http": {}}
CEL_CASES += [
    ("filter-externalAuth-specified-exp", HTTPRoute, filt({"type": "ExternalAuth"}),
     filt({"type": "ExternalAuth", "externalAuth": _EXT_AUTH}), "spec.rules[0].filters[0]",
     "filter.externalAuth must be specified for ExternalAuth filter.type", "experimental"),
    ("filter-externalAuth-nil-exp", HTTPRoute, filt({**CORS, "externalAuth": _EXT_AUTH}), filt(CORS),
     "spec.rules[0].filters[0]", "filter.externalAuth must be nil if the filter.type is not ExternalAuth",
     "experimental"),
    ("extauth-grpc-missing-exp", HTTPRoute,
     filt({"type": "ExternalAuth", "externalAuth": {"protocol": "GRPC", "backendRef": {"name": "a", "port": 1}}}),
     filt({"type": "ExternalAuth", "externalAuth": {"protocol": "GRPC", "backendRef": {"name": "a", "port": 1},
                                                    "grpc": {"allowedHeaders": ["x"]}}}),
     "spec.rules[0].filters[0].externalAuth", "grpc must be specified when protocol is set to 'GRPC'",
     "experimental"),
    ("extauth-grpc-wrong-exp", HTTPRoute,
     filt({"type": "ExternalAuth", "externalAuth": {**_EXT_AUTH, "grpc": {}}}),
     filt({"type": "ExternalAuth", "externalAuth": _EXT_AUTH}),
     "spec.rules[0].filters[0].externalAuth", "protocol must be 'GRPC' when grpc is set", "experimental"),
    ("extauth-http-missing-exp", HTTPRoute,
     filt({"type": "ExternalAuth", "externalAuth": {"protocol": "HTTP", "backendRef": {"name": "a", "port": 1}}}),
     filt({"type": "ExternalAuth", "externalAuth": _EXT_AUTH}),
     "spec.rules[0].filters[0].externalAuth", "http must be specified when protocol is set to 'HTTP'",
     "experimental"),
    ("extauth-http-wrong-exp", HTTPRoute,
     filt({"type": "ExternalAuth", "externalAuth": {"protocol": "GRPC", "backendRef": {"name": "a", "port": 1},
                                                    "grpc": {}, "http": {}}}),
     filt({"type": "ExternalAuth", "externalAuth": {"protocol": "GRPC", "backendRef": {"name": "a", "port": 1},
                                                    "grpc": {}}}),
     "spec.rules[0].filters[0].externalAuth", "protocol must be 'HTTP' when http is set", "experimental"),
    ("extauth-backend-port-exp", HTTPRoute,
     filt({"type": "ExternalAuth", "externalAuth": {"protocol": "HTTP", "backendRef": {"name": "a"}, "http": {}}}),
     filt({"type": "ExternalAuth", "externalAuth": _EXT_AUTH}),
     "spec.rules[0].filters[0].externalAuth.backendRef", "Must have port for Service reference", "experimental"),
]

_PATH_MESSAGES = [
    ("a", "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
    ("/a//b", "must not contain '//' when type one of ['Exact', 'PathPrefix']"),
    ("/a/./b", "must not contain '/./' when type one of ['Exact', 'PathPrefix']"),
    ("/a/../b", "must not contain '/../' when type one of ['Exact', 'PathPrefix']"),
    ("/a%2fb", "must not contain '%2f' when type one of ['Exact', 'PathPrefix']"),
    ("/a%2Fb", "must not contain '%2F' when type one of ['Exact', 'PathPrefix']"),
    ("/a#b", "must not contain '#' when type one of ['Exact', 'PathPrefix']"),
    ("/a/..", "must not end with '/..' when type one of ['Exact', 'PathPrefix']"),
    ("/a/.", "must not end with '/.' when type one of ['Exact', 'PathPrefix']"),
    ("/a b", "must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$)"
             " for types ['Exact', 'PathPrefix']"),
]
for _i, (_value, _message) in enumerate(_PATH_MESSAGES):
    CEL_CASES.append((f"path-{_i}", HTTPRoute, rule(matches=[{"path": {"type": "Exact", "value": _value}}]),
                      rule(matches=[{"path": {"type": "RegularExpression", "value": _value}}]),
                      "spec.rules[0].matches[0].path", _message, "standard"))


@pytest.mark.parametrize("cls,bad,good,path,message,channel",
                         [c[1:] for c in CEL_CASES], ids=[c[0] for c in CEL_CASES])
def test_cel_rule(cls, bad, good, path, message, channel):
    got = problems(cls, bad, channel)
    assert (path, "cel", message) in got, got
    ok = problems(cls, good, channel)
    assert not [g for g in ok if g[2] == message], ok


def test_cel_rule_type_has_message_in_ctx():
    try:
        HTTPRoute.model_validate(rule(backendRefs=[{"name": "s"}]))
    except ValidationError as exc:
        err = exc.errors()[0]
    assert err["type"] == "cel" and err["ctx"]["message"] == "Must have port for Service reference"
    assert err["loc"] == ("spec", "rules", 0, "backendRefs", 0)
    try:
        HTTPRoute.model_validate(route(parentRefs=TWO_REFS))
    except ValidationError as exc:
        err = exc.errors()[0]
    assert err["loc"] == ("spec",) and err["ctx"]["field_path"] == ".parentRefs"


def test_several_cel_failures_on_one_node_are_all_reported():
    got = problems(HTTPRoute, rule(matches=[{"path": {"type": "Exact", "value": "a//b#"}}]))
    msgs = {m for p, t, m in got if p == "spec.rules[0].matches[0].path"}
    assert len(msgs) == 4


def test_schema_and_list_cel_problems_together():
    got = problems(TLSRoute, tls(["Orders.example.com"]))
    assert ("spec.hostnames[0]", "string_pattern_mismatch") in [(p, t) for p, t, _ in got]
    assert ("spec.hostnames", "cel") in [(p, t) for p, t, _ in got]


# --------------------------------------------------------------------------- duplicates
@pytest.mark.parametrize("cls,doc,path", [
    (Gateway, gateway({"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "a", "port": 81, "protocol": "HTTP"}),
     "spec.listeners[1]"),
    (HTTPRoute, rule(matches=[{"headers": [{"name": "x", "value": "1"}, {"name": "x", "value": "2"}]}]),
     "spec.rules[0].matches[0].headers[1]"),
    (HTTPRoute, filt({"type": "RequestHeaderModifier", "requestHeaderModifier": {"remove": ["a", "b", "a"]}}),
     "spec.rules[0].filters[0].requestHeaderModifier.remove[2]"),
    (HTTPRoute, filt({"type": "ResponseHeaderModifier", "responseHeaderModifier": {
        "add": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}}),
     "spec.rules[0].filters[0].responseHeaderModifier.add[1]"),
    (Service, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "TCP"}]}},
     "spec.ports[1]"),
])
def test_duplicate_list_keys(cls, doc, path):
    got = problems(cls, doc)
    dup = [(p, m) for p, t, m in got if t == "duplicate"]
    assert dup and dup[0][0] == path and dup[0][1].startswith("Duplicate value: "), got


def test_a_key_repeated_three_times_is_reported_once():
    got = problems(Gateway, gateway(*({"name": "a", "port": 80 + i, "protocol": "HTTP"} for i in range(3))))
    assert [p for p, t, _ in got if t == "duplicate"] == ["spec.listeners[1]"], got


# --------------------------------------------------------------------------- rules above an error
REDIRECT = {"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}
REDIRECT_WITH_BACKENDS = "RequestRedirect filter must not be used together with backendRefs"


@pytest.mark.parametrize("doc,below", [
    # a pattern error below the rule
    (filt({"type": "RequestRedirect", "requestRedirect": {"hostname": "Shop.Example.com"}},
          backendRefs=[{"name": "s", "port": 80}]),
     ("spec.rules[0].filters[0].requestRedirect.hostname", "string_pattern_mismatch")),
    # a minimum error below the rule
    (filt(REDIRECT, backendRefs=[{"name": "s", "port": 0}]),
     ("spec.rules[0].backendRefs[0].port", "greater_than_equal")),
    # a failed CEL rule below the rule
    (filt({"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplaceFullPath"}}},
          backendRefs=[{"name": "s", "port": 80}]),
     ("spec.rules[0].filters[0].requestRedirect.path", "cel")),
    # a duplicate list-map key below the rule
    (filt(REDIRECT, backendRefs=[{"name": "s", "port": 80}],
          matches=[{"headers": [{"name": "x", "value": "1"}, {"name": "x", "value": "2"}]}]),
     ("spec.rules[0].matches[0].headers[1]", "duplicate")),
])
def test_rules_of_enclosing_nodes_survive_non_blocking_errors(doc, below):
    got = problems(HTTPRoute, doc)
    assert got[0][:2] == below, got  # the first pass comes first
    assert ("spec.rules[0]", "cel", REDIRECT_WITH_BACKENDS) in got, got
    assert len(got) == len(set(got)) == 2, got  # nothing twice


def test_second_pass_keeps_locations_and_context():
    try:
        HTTPRoute.model_validate(route(parentRefs=TWO_REFS, rules=[{"backendRefs": [{"name": "s"}]}]))
    except ValidationError as exc:
        errors = exc.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(("spec", "rules", 0, "backendRefs", 0), "cel"),
                                                        (("spec",), "cel")]
    assert errors[1]["ctx"]["field_path"] == ".parentRefs"
    # the OpenAPI type of the node carrying the rule survives the second pass too
    assert [e["ctx"]["node_type"] for e in errors] == ["object", "array"]


@pytest.mark.parametrize("kind,doc,path,node_type", [
    # rules on a list node: kubectl prints 'Invalid value: "array"'
    (HTTPRoute, route(parentRefs=TWO_REFS), "spec.parentRefs", "array"),
    (HTTPRoute, rule(filters=[RHM, RHM]), "spec.rules[0].filters", "array"),
    (HTTPRoute, rule(backendRefs=[{"name": "s", "port": 80, "filters": [RHM, RHM]}]),
     "spec.rules[0].backendRefs[0].filters", "array"),
    (HTTPRoute, rule(filters=[{"type": "CORS", "cors": {"allowOrigins": ["*", "https://a.example"]}}]),
     "spec.rules[0].filters[0].cors.allowOrigins", "array"),
    (Gateway, {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "g", "namespace": "n"},
               "spec": {"gatewayClassName": "c", "listeners": [
                   {"name": "a", "port": 80, "protocol": "TCP", "hostname": "x.example.com"}]}},
     "spec.listeners", "array"),
    # rules on an object node (a struct type): 'Invalid value: "object"'
    (HTTPRoute, rule(backendRefs=[{"name": "s"}]), "spec.rules[0].backendRefs[0]", "object"),
    (HTTPRoute, rule(filters=[REDIRECT], backendRefs=[{"name": "s", "port": 80}]), "spec.rules[0]", "object"),
])
def test_cel_errors_print_the_type_of_the_node_carrying_the_rule(kind, doc, path, node_type):
    """apiextensions-apiserver reports a failed rule as field.Invalid(path, <schema node type>, msg)."""
    from gwlib.validation import describe_error

    with pytest.raises(ValidationError) as exc:
        kind.model_validate(doc)
    shown = [describe_error(e) for e in exc.value.errors() if e["type"] == "cel"]
    at_path = [m for p, m in shown if p == path]
    assert at_path and all(m.startswith(f'Invalid value: "{node_type}": ') for m in at_path), shown


def test_blocking_error_keeps_only_the_list_map_checks():
    got = problems(Gateway, gateway({"name": "a", "port": 80, "protocol": "HTTP"},
                                    {"name": "a", "protocol": "TCP", "hostname": "x.example.com"}))
    assert ("spec.listeners[1].port", "missing") in [(p, t) for p, t, _ in got]
    assert ("spec.listeners[1]", "duplicate") in [(p, t) for p, t, _ in got]
    assert not [g for g in got if g[1] == "cel"], got  # the API server skips every CEL rule


def test_second_pass_does_not_see_pruned_fields():
    """A field of the experimental channel is unknown to the standard CRD: the API server
    prunes it, so its CEL rules never run there."""
    bad_session = {"type": "Header", "cookieConfig": {"lifetimeType": "Permanent"}}
    doc = filt({"type": "RequestRedirect", "requestRedirect": {"hostname": "Bad.Host"}},
               sessionPersistence=bad_session)
    standard = problems(HTTPRoute, doc, "standard")
    assert {p for p, _, _ in standard} == {"spec.rules[0].filters[0].requestRedirect.hostname",
                                           "spec.rules[0].sessionPersistence"}, standard
    assert [t for p, t, _ in standard if p == "spec.rules[0].sessionPersistence"] == ["extra_forbidden"]
    experimental = problems(HTTPRoute, doc, "experimental")
    assert [t for p, t, _ in experimental if p == "spec.rules[0].sessionPersistence"] == ["cel", "cel"]
    # unknown fields are pruned as well; the rules around them still run
    doc = filt({"type": "RequestRedirect", "requestRedirect": {"hostname": "Bad.Host", "what": 1}},
               backendRefs=[{"name": "s", "port": 80}])
    got = problems(HTTPRoute, doc)
    assert ("spec.rules[0].filters[0].requestRedirect.what", "extra_forbidden") in [(p, t) for p, t, _ in got]
    assert ("spec.rules[0]", "cel", REDIRECT_WITH_BACKENDS) in got


def test_second_pass_sees_the_defaults():
    """The API server defaults before it validates: a rule without matches has the default
    PathPrefix match, which a replacePrefixMatch rewrite needs."""
    rewrite = {"type": "URLRewrite", "urlRewrite": {"hostname": "Bad.Host", "path": {
        "type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}}
    got = problems(HTTPRoute, filt(rewrite))
    assert [p for p, _, _ in got] == ["spec.rules[0].filters[0].urlRewrite.hostname"], got
    got = problems(HTTPRoute, filt(rewrite, matches=[{"path": {"type": "Exact", "value": "/a"}}]))
    assert [p for p, _, _ in got] == ["spec.rules[0].filters[0].urlRewrite.hostname", "spec.rules[0]"], got


def test_second_pass_keeps_the_messages_of_the_first():
    """Errors re-raised with the second pass's keep their own type, message and context."""
    doc = {**filt({"type": "RequestRedirect", "requestRedirect": {"hostname": "Bad.Host"}},
                  backendRefs=[{"name": "s", "port": 80}], useDefaultGateways="All")}
    doc["metadata"] = {"name": "r", "creationTimestamp": "yesterday"}
    doc["spec"]["useDefaultGateways"] = "All"
    got = problems(HTTPRoute, doc)
    assert ("spec.useDefaultGateways", "extra_forbidden", 'unknown field "useDefaultGateways"') in got
    assert ("metadata.creationTimestamp", "datetime_from_date_parsing",
            "Input should be a valid RFC 3339 date-time") in got
    assert ("spec.rules[0]", "cel", REDIRECT_WITH_BACKENDS) in got


def test_valid_objects_never_run_the_second_pass(monkeypatch):
    from gwlib.resources import base

    calls = []
    monkeypatch.setattr(base, "node_rule_errors", lambda *args, **kwargs: calls.append(args) or [])
    HTTPRoute.model_validate(rule(filters=[RHM], backendRefs=[{"name": "s", "port": 80}]))
    assert calls == []
    with pytest.raises(ValidationError):
        HTTPRoute.model_validate(rule(backendRefs=[{"name": "s"}]))
    assert len(calls) == 1


def test_node_rule_errors_walks_raw_data():
    from gwlib.resources.base import node_rule_errors

    doc = filt(REDIRECT, backendRefs=[{"name": "s", "port": 0}],
               matches=[{"headers": [{"name": "x", "value": ""}, {"name": "x", "value": "2"}]}])
    every = {(e["loc"], e["type"].type) for e in node_rule_errors(HTTPRoute, doc, "standard")}
    assert every == {(("spec", "rules", 0, "matches", 0, "headers", 1), "duplicate"),
                     (("spec", "rules", 0), "cel")}
    lists_only = node_rule_errors(HTTPRoute, doc, "standard", cel=False)
    assert [e["loc"] for e in lists_only] == [("spec", "rules", 0, "matches", 0, "headers", 1)]
    # values of the wrong type are not looked into; missing list-map keys compare equal, as upstream
    assert node_rule_errors(HTTPRoute, {"spec": {"rules": "no", "parentRefs": [1, 2]}}, cel=False) == []
    no_names = node_rule_errors(Gateway, {"spec": {"listeners": [{"port": 80}, {"port": 81}]}}, cel=False)
    assert [(e["loc"], e["type"].message_template, e["type"].context) for e in no_names] == [
        (("spec", "listeners", 1), "Duplicate value: {value}", {"value": "{}"})]


def test_blocking_error_types_cover_every_type_error():
    from gwlib.validation import _TYPE_NAMES, BLOCKING

    assert set(_TYPE_NAMES) <= BLOCKING
    assert not {"string_pattern_mismatch", "string_too_short", "too_short", "greater_than_equal",
                "less_than_equal", "duplicate", "cel", "extra_forbidden"} & BLOCKING


# --------------------------------------------------------------------------- core kinds
def test_core_kinds():
    assert problems(Service, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                              "spec": {"ports": [{"port": 80800}]}})[0][2] == \
        "Invalid value: 80800: must be between 1 and 65535, inclusive"
    assert problems(Service, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                              "spec": {"ports": [{"port": 80}, {"port": 81}]}})[0][:2] == \
        ("spec.ports[0].name", "missing")
    sec = Secret.model_validate({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c", "namespace": "i"},
                                 "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ==", "tls.key": "Yg=="}})
    assert sec.spec is None and sec.decoded()["tls.crt"] == b"a"
    assert problems(Secret, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"},
                             "data": {"k": "not base64!"}})
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
           "spec": {"ingressClassName": "nginx",
                    "tls": [{"hosts": ["a.example.com"], "secretName": "cert"}],
                    "rules": [{"host": "a.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix",
                         "backend": {"service": {"name": "svc", "port": {"number": 80}}}},
                        {"path": "/x", "pathType": "Exact",
                         "backend": {"service": {"name": "svc", "port": {"name": "http"}}}}]}}]}}
    assert Ingress.model_validate(ing).to_dict() == ing
    bad = copy.deepcopy(ing)
    bad["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "PathPrefix"
    assert problems(Ingress, bad)[0][:2] == ("spec.rules[0].http.paths[0].pathType", "literal_error")
    bad = copy.deepcopy(ing)
    bad["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"number": 80, "name": "x"}
    assert problems(Ingress, bad)[0][0] == "spec.rules[0].http.paths[0].backend.service.port"
    ns = Namespace.model_validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "store",
                                                                                      "labels": {"env": "x"}}})
    assert ns.namespace is None and ns.key == "store" and ns.spec is None


def test_generic_object():
    raw = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
           "metadata": {"name": "r", "namespace": "ns", "generation": 2}, "spec": {"x": 1}}
    g = GenericObject.model_validate(raw)
    assert g.raw == raw and g.to_dict() == raw and g.spec == {"x": 1}
    assert (g.name, g.namespace, g.key, g.generation, g.metadata.name) == ("r", "ns", "ns/r", 2, "r")
    odd = GenericObject.model_validate({"kind": "X", "metadata": {"name": 5, "labels": "no"}})
    assert odd.name == "" and odd.labels == {}


# --------------------------------------------------------------------------- registry
def test_registry():
    assert model_for(GW, "HTTPRoute") is HTTPRoute
    assert model_for("gateway.networking.k8s.io/v1beta1", "HTTPRoute").KIND == "HTTPRoute"
    assert model_for("v1", "Service") is Service and model_for("apps/v1", "Deployment") is Deployment
    assert model_for("argoproj.io/v1alpha1", "Rollout") is None
    assert model_for("gateway.networking.k8s.io/v1alpha2", "GRPCRoute") is None
    for api_version, kind in KINDS:
        cls = model_for(api_version, kind)
        assert issubclass(cls, Resource) and cls.API_VERSION == api_version and cls.KIND == kind
    assert served(GW, "TCPRoute", "standard") and served(GW, "UDPRoute", "experimental")
    assert not served("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "standard")
    assert served("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "experimental")
    assert served("gateway.networking.k8s.io/v1alpha3", "TLSRoute", "experimental")
    assert not served("gateway.networking.k8s.io/v1alpha3", "TLSRoute", "standard")
    assert not served("gateway.networking.k8s.io/v1alpha2", "GRPCRoute", "experimental")
    assert served("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "standard")
    assert not served("gateway.networking.x-k8s.io/v1alpha1", "XBackend", "standard")
    assert served("v1", "Service", "standard")


def test_alpha_versions_have_their_own_limits():
    many = [{"backendRefs": [{"name": "s", "port": 1}]}] * 2
    assert problems(TCPRoute, l4("TCPRoute", rules=many))[0][:2] == ("spec.rules", "too_long")
    cls = model_for("gateway.networking.k8s.io/v1alpha2", "TCPRoute")
    assert problems(cls, l4("TCPRoute", "v1alpha2", rules=many), "experimental") == []
    tls2 = model_for("gateway.networking.k8s.io/v1alpha2", "TLSRoute")
    doc = {**l4("TLSRoute", "v1alpha2")}
    assert problems(tls2, doc, "experimental") == []            # hostnames optional in v1alpha2
    assert problems(TLSRoute, {**doc, "apiVersion": GW})[0][:2] == ("spec.hostnames", "missing")


# --------------------------------------------------------------------------- documentation
def _models_in(annotation):
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def test_every_model_and_field_is_documented():
    seen, missing = set(), []

    def walk(cls):
        if cls in seen:
            return
        seen.add(cls)
        if not (cls.__doc__ or "").strip():
            missing.append(cls.__name__)
        for name, field in cls.model_fields.items():
            if not field.description:
                missing.append(f"{cls.__name__}.{name}")
            for sub in _models_in(field.annotation):
                walk(sub)

    for model in _MODELS:
        walk(model)
    assert not missing, missing
    weight = HTTPRoute.model_fields["spec"].annotation.model_fields["rules"]
    assert "Support" in HTTPRoute.model_fields["spec"].annotation.model_fields["hostnames"].description
    assert weight.description
    exp = HTTPRoute.model_fields["spec"].annotation.model_fields["use_default_gateways"]
    assert exp.json_schema_extra == {"channel": "experimental"} and "experimental" in exp.description


# --------------------------------------------------------------------------- speed
def test_validating_1000_httproutes_is_fast():
    doc = rule(matches=[{"path": {"type": "PathPrefix", "value": "/a"},
                         "headers": [{"name": "x-env", "value": "canary"}]}],
               filters=[RHM], backendRefs=[{"name": "a", "port": 80, "weight": 90},
                                           {"name": "b", "port": 80, "weight": 10}])
    docs = [copy.deepcopy(doc) for _ in range(1000)]
    start = time.perf_counter()
    for d in docs:
        HTTPRoute.model_validate(d, context={"channel": "standard"})
    elapsed = time.perf_counter() - start
    print(f"\nvalidated 1000 HTTPRoutes in {elapsed * 1000:.1f} ms")
