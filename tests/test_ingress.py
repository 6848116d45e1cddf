"""Ingress semantics (the Ingress router, per provider) and conversion details."""
from __future__ import annotations

import pytest

import gwlib
from gwlib.ingress import IngressRequestError, IngressRouter, comparison, convert, equivalence, examples
from gwlib.ingress.model import host_matches, prefix_matches


def ingress(name="web", ns="shop", host="shop.example.com", paths=(("/", "Prefix", "web", 80),), annotations=None,
            cls="nginx", tls=None, default=None, created=None) -> dict:
    meta: dict = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    if created:
        meta["creationTimestamp"] = created
    spec: dict = {"ingressClassName": cls}
    if default:
        spec["defaultBackend"] = {"service": {"name": default[0], "port": {"number": default[1]}}}
    if paths:
        rule: dict = {"http": {"paths": [
            {"path": p, "pathType": t, "backend": {"service": {"name": s, "port": {"number": n}}}}
            for p, t, s, n in paths]}}
        if host:
            rule["host"] = host
        spec["rules"] = [rule]
    if tls:
        spec["tls"] = [{"hosts": tls[0], "secretName": tls[1]}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def backend(ans: dict) -> str | None:
    b = ans.get("backend")
    return f"{b['name']}:{b['port']}" if b else None


# --------------------------------------------------------------------------- matching rules of the Ingress spec

@pytest.mark.parametrize("pattern, host, ok", [
    ("foo.bar.com", "foo.bar.com", True), ("foo.bar.com", "FOO.bar.com", True), ("foo.bar.com", "bar.com", False),
    ("*.foo.com", "bar.foo.com", True), ("*.foo.com", "baz.bar.foo.com", False), ("*.foo.com", "foo.com", False),
    ("*.foo.com", ".foo.com", False), ("", "anything.example", True),
])
def test_host_wildcards_match_one_label(pattern, host, ok):
    assert host_matches(pattern, host) is ok


@pytest.mark.parametrize("prefix, path, ok", [   # the table of the Ingress docs
    ("/", "/anything", True), ("/foo", "/foo", True), ("/foo/", "/foo", True), ("/foo", "/foo/", True),
    ("/aaa/bbb", "/aaa/bbbxyz", False), ("/aaa/bbb", "/aaa/bbb/ccc", True), ("/aaa/bbb/", "/aaa/bbb", True),
    ("/foo", "/foobar", False),
])
def test_prefix_is_element_wise(prefix, path, ok):
    assert prefix_matches(prefix, path) is ok


# --------------------------------------------------------------------------- the ingress-nginx router

def test_longest_path_wins_and_exact_beats_prefix():
    r = IngressRouter([ingress(paths=[("/", "Prefix", "root", 80), ("/api", "Prefix", "api", 80),
                                      ("/api/v2", "Prefix", "v2", 80), ("/api", "Exact", "exact", 80)])],
                      provider="ingress-nginx")
    go = lambda p: backend(r.route({"host": "shop.example.com", "path": p}))  # noqa: E731
    assert go("/api") == "exact:80"
    assert go("/api/") == "api:80"
    assert go("/api/v2/users") == "v2:80"
    assert go("/api/v20") == "api:80"
    assert go("/apix") == "root:80"


def test_nginx_prefix_with_trailing_slash_and_implementation_specific():
    r = IngressRouter([ingress(paths=[("/docs/", "Prefix", "docs", 80), ("/img", "ImplementationSpecific", "img", 80)])],
                      provider="ingress-nginx")
    go = lambda p: r.route({"host": "shop.example.com", "path": p})  # noqa: E731
    assert go("/docs")["status"] == 404                   # ingress-nginx: location /docs/ and = /docs/
    assert backend(go("/docs/x")) == "docs:80"
    assert backend(go("/imgs")) == "img:80"               # a plain nginx prefix: character-wise
    assert go("/imgs")["notes"] == ["implementation-specific-prefix"]


def test_no_host_header_and_unknown_hosts_use_the_default_server():
    r = IngressRouter([ingress(), ingress(name="any", host="", paths=[("/ping", "Exact", "ping", 80)])],
                      provider="ingress-nginx")
    assert backend(r.route({"path": "/ping"})) == "ping:80"
    assert backend(r.route({"host": "other.example", "path": "/ping"})) == "ping:80"
    # a host with a server never falls through to the default server
    assert backend(r.route({"host": "shop.example.com", "path": "/ping"})) == "web:80"


def test_default_backend_serves_the_hosts_of_its_ingress():
    r = IngressRouter([ingress(paths=[("/api", "Prefix", "api", 80)], default=("spa", 3000))],
                      provider="ingress-nginx")
    assert backend(r.route({"host": "shop.example.com", "path": "/x"})) == "spa:3000"
    assert r.route({"host": "other.example", "path": "/x"})["status"] == 404


def test_ssl_redirect_and_its_opt_out():
    tls = (["shop.example.com"], "shop-tls")
    r = IngressRouter([ingress(tls=tls)], provider="ingress-nginx")
    ans = r.route({"host": "shop.example.com:80", "path": "/a?b=1"})
    assert (ans["status"], ans["location"]) == (308, "https://shop.example.com/a?b=1")
    assert backend(r.route({"scheme": "https", "host": "shop.example.com", "path": "/a"})) == "web:80"
    r = IngressRouter([ingress(tls=tls, annotations={"nginx.ingress.kubernetes.io/ssl-redirect": "false"})],
                      provider="ingress-nginx")
    assert backend(r.route({"host": "shop.example.com", "path": "/a"})) == "web:80"


def test_canary_header_never_always_and_weights():
    primary = ingress(created="2025-01-01T00:00:00Z")
    canary = ingress(name="web-canary", paths=[("/", "Prefix", "web-v2", 80)], created="2025-01-02T00:00:00Z",
                     annotations={"nginx.ingress.kubernetes.io/canary": "true",
                                  "nginx.ingress.kubernetes.io/canary-weight": "25",
                                  "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary"})
    r = IngressRouter([primary, canary], provider="ingress-nginx", seed=3)
    req = {"host": "shop.example.com", "path": "/"}
    assert r.split(req) == {"shop/web:80": 0.75, "shop/web-v2:80": 0.25}
    assert r.split({**req, "headers": {"x-canary": "always"}}) == {"shop/web-v2:80": 1.0}
    assert r.split({**req, "headers": {"X-Canary": "never"}}) == {"shop/web:80": 1.0}
    assert r.split({**req, "headers": {"X-Canary": "other"}}) == {"shop/web:80": 0.75, "shop/web-v2:80": 0.25}
    picks = [backend(r.route(req)) for _ in range(400)]
    assert 60 < picks.count("web-v2:80") < 140              # seeded sampling follows the weights


def test_canary_conversion_gives_weights_and_header_rules():
    primary = ingress(created="2025-01-01T00:00:00Z")
    canary = ingress(name="web-canary", paths=[("/", "Prefix", "web-v2", 80)], created="2025-01-02T00:00:00Z",
                     annotations={"nginx.ingress.kubernetes.io/canary": "true",
                                  "nginx.ingress.kubernetes.io/canary-weight": "10",
                                  "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary"})
    conv = convert([primary, canary], provider="ingress-nginx")
    route = next(o for o in conv.objects if o["kind"] == "HTTPRoute")
    rules = route["spec"]["rules"]
    assert [r["matches"][0].get("headers") for r in rules] == [
        [{"name": "X-Canary", "value": "always"}], [{"name": "X-Canary", "value": "never"}], None]
    assert rules[2]["backendRefs"] == [{"name": "web", "port": 80, "weight": 90},
                                       {"name": "web-v2", "port": 80, "weight": 10}]
    assert equivalence([primary, canary], provider="ingress-nginx").ok


def test_regex_mode_is_case_insensitive_and_anchored_at_the_start():
    r = IngressRouter([ingress(paths=[("/api/v[0-9]+", "ImplementationSpecific", "api", 80)],
                               annotations={"nginx.ingress.kubernetes.io/use-regex": "true"})],
                      provider="ingress-nginx")
    assert backend(r.route({"host": "shop.example.com", "path": "/API/V2/users"})) == "api:80"
    assert r.route({"host": "shop.example.com", "path": "/x/api/v2"})["status"] == 404
    conv = convert(r.inputs, provider="ingress-nginx")
    route = next(o for o in conv.objects if o["kind"] == "HTTPRoute")
    assert route["spec"]["rules"][0]["matches"][0]["path"] == {"type": "RegularExpression",
                                                              "value": "(?i)(?:/api/v[0-9]+).*"}


def test_rewrite_target_idiom_converts_and_capture_groups_are_reported():
    ann = {"nginx.ingress.kubernetes.io/rewrite-target": "/$2", "nginx.ingress.kubernetes.io/use-regex": "true"}
    r = IngressRouter([ingress(paths=[("/app(/|$)(.*)", "ImplementationSpecific", "app", 80)], annotations=ann)],
                      provider="ingress-nginx")
    assert r.route({"host": "shop.example.com", "path": "/app/a/b?x=1"})["request"]["path"] == "/a/b?x=1"
    assert r.route({"host": "shop.example.com", "path": "/app"})["request"]["path"] == "/"
    conv = convert(r.inputs, provider="ingress-nginx")
    rule = next(o for o in conv.objects if o["kind"] == "HTTPRoute")["spec"]["rules"][0]
    assert rule["matches"][0]["path"] == {"type": "PathPrefix", "value": "/app"}
    assert rule["filters"][0]["urlRewrite"]["path"] == {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}
    ann["nginx.ingress.kubernetes.io/rewrite-target"] = "/v1/$1"
    conv = convert(ingress(paths=[("/old/(.*)", "ImplementationSpecific", "app", 80)], annotations=ann),
                   provider="ingress-nginx")
    assert "rewrite-capture-groups" in conv.report.codes()


def test_named_port_resolved_from_the_service_or_reported():
    ing = ingress()
    ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"name": "http"}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}]}}
    conv = convert([ing, svc], provider="ingress-nginx")
    route = next(o for o in conv.objects if o["kind"] == "HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "web", "port": 8080}]
    conv = convert([ing], provider="ingress-nginx")
    assert "named-port-unresolved" in conv.report.codes()
    route = next(o for o in conv.objects if o["kind"] == "HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"] == []          # answers 500 until fixed, and says so
    assert gwlib.validate(conv.objects) == []
    eq = equivalence([ing], provider="ingress-nginx")
    assert eq.ok and eq.differences and eq.differences[0]["explained_by"] == "named-port-unresolved"


def test_gateway_per_class_and_class_sources():
    a = ingress(name="a", cls="public")
    b = ingress(name="b", cls="internal", host="b.example.com")
    c = ingress(name="c", host="c.example.com")
    del c["spec"]["ingressClassName"]
    c["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "public"}
    conv = convert([a, b, c], provider="ingress-nginx")
    gws = sorted((o["metadata"]["name"], o["spec"]["gatewayClassName"]) for o in conv.objects if o["kind"] == "Gateway")
    assert gws == [("internal", "internal"), ("public", "public")]
    d = ingress(name="d")
    del d["spec"]["ingressClassName"]
    conv = convert([d], provider="traefik")
    assert "class-assumed" in conv.report.codes()
    assert next(o for o in conv.objects if o["kind"] == "Gateway")["metadata"]["name"] == "traefik"


def test_more_than_sixteen_paths_spill_into_more_routes():
    paths = [(f"/p{i}", "Prefix", f"s{i}", 80) for i in range(20)]
    conv = convert([ingress(paths=paths)], provider="ingress-nginx")
    routes = [o for o in conv.objects if o["kind"] == "HTTPRoute"]
    assert [len(r["spec"]["rules"]) for r in routes] == [16, 4]
    assert gwlib.validate(conv.objects) == []
    assert equivalence([ingress(paths=paths)], provider="ingress-nginx").ok


def test_router_request_errors():
    r = IngressRouter([ingress(), ingress(name="o", cls="other", host="o.example.com")], provider="ingress-nginx")
    with pytest.raises(IngressRequestError, match="classes"):
        r.route({"host": "shop.example.com"})
    with pytest.raises(IngressRequestError, match="no Ingress of class"):
        r.route({"gateway": "shop/nope"})
    assert backend(r.route({"gateway": "shop/nginx", "host": "shop.example.com"})) == "web:80"
    with pytest.raises(ValueError, match="unknown provider"):
        IngressRouter([ingress()], provider="haproxy")


# --------------------------------------------------------------------------- the Traefik router

def test_traefik_priority_is_rule_length_across_hosts():
    host_rule = ingress(name="short", host="a.io", paths=[("/", "Prefix", "site", 80)], cls="traefik")
    hostless = ingress(name="acme", host="", cls="traefik",
                       paths=[("/.well-known/acme-challenge", "Prefix", "solver", 8089)])
    objs = [host_rule, hostless]
    r = IngressRouter(objs, provider="traefik")
    assert backend(r.route({"host": "a.io", "path": "/.well-known/acme-challenge/t"})) == "solver:8089"
    assert backend(r.route({"host": "a.io", "path": "/x"})) == "site:80"
    conv = convert(objs, provider="traefik")
    assert "traefik-priority" in conv.report.codes()
    assert equivalence(objs, [{"host": "a.io", "path": "/.well-known/acme-challenge/t"},
                              {"host": "a.io", "path": "/x"}], provider="traefik").rows[0]["same"]


def test_traefik_router_priority_annotation_shadows_rules():
    top = ingress(name="maint", host="x.io", cls="traefik", paths=[("/", "Prefix", "maint", 80)],
                  annotations={"traefik.ingress.kubernetes.io/router.priority": "500"})
    app = ingress(name="app", host="x.io", cls="traefik", paths=[("/api", "Prefix", "api", 80)])
    r = IngressRouter([top, app], provider="traefik")
    assert backend(r.route({"host": "x.io", "path": "/api/v1"})) == "maint:80"
    conv = convert([top, app], provider="traefik")
    rules = [rule for o in conv.objects if o["kind"] == "HTTPRoute" for rule in o["spec"]["rules"]]
    assert [rule["backendRefs"][0]["name"] for rule in rules] == ["maint"]
    assert any(c.annotation.endswith("router.priority") for c in conv.report.converted)


def test_traefik_entrypoints_and_tls():
    web_only = ingress(name="m", host="m.io", cls="traefik", paths=[("/metrics", "Exact", "exp", 9100)],
                       annotations={"traefik.ingress.kubernetes.io/router.entrypoints": "web"})
    tls_only = ingress(name="t", host="t.io", cls="traefik", tls=(["t.io"], "t-tls"),
                       annotations={"traefik.ingress.kubernetes.io/router.tls": "true"})
    r = IngressRouter([web_only, tls_only], provider="traefik")
    assert backend(r.route({"host": "m.io", "path": "/metrics"})) == "exp:9100"
    assert r.route({"scheme": "https", "host": "m.io", "path": "/metrics"})["status"] == 404
    assert r.route({"host": "t.io", "path": "/"})["status"] == 404
    assert backend(r.route({"scheme": "https", "host": "t.io", "path": "/"})) == "web:80"
    conv = convert([web_only, tls_only], provider="traefik")
    sections = {o["metadata"]["name"]: [p["sectionName"] for p in o["spec"]["parentRefs"]]
                for o in conv.objects if o["kind"] == "HTTPRoute"}
    assert sections == {"m-m-io": ["http"], "t-t-io": ["https-t-io"]}


def test_traefik_ignores_default_backend_with_rules():
    ing = ingress(cls="traefik", default=("spa", 80))
    assert IngressRouter([ing], provider="traefik").route({"host": "other.io", "path": "/"})["status"] == 404
    assert "traefik-default-backend-ignored" in convert([ing], provider="traefik").report.codes()


def test_provider_is_guessed_from_annotations_and_classes():
    t = ingress(annotations={"traefik.ingress.kubernetes.io/router.entrypoints": "web"})
    assert convert([t]).provider == "traefik"
    assert convert([ingress()]).provider == "ingress-nginx"
    cls = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "traefik"},
           "spec": {"controller": "traefik.io/ingress-controller"}}
    assert convert([cls, ingress(cls="traefik")]).provider == "traefik"


# --------------------------------------------------------------------------- report, tables, examples

def test_report_frame_and_text():
    conv = convert(ingress(annotations={"nginx.ingress.kubernetes.io/auth-url": "http://a/",
                                        "nginx.ingress.kubernetes.io/proxy-read-timeout": "90"}),
                   provider="ingress-nginx")
    df = conv.report.to_frame()
    assert list(df.columns) == ["severity", "object", "annotation", "message"]
    assert df.iloc[0]["severity"] == "error"                      # most severe first
    assert list(conv.report.to_frame(converted=True).columns) == ["object", "annotation", "into"]
    text = conv.report.text()
    assert text.splitlines()[-1].startswith("summary:") and "1 error(s)" in text


def test_comparison_table_and_examples():
    df = comparison()
    assert list(df.index) == ["protocol support", "traffic management", "portability", "resource objects",
                              "routing rules", "extending capabilities"]
    assert list(df.columns) == ["Ingress", "Gateway API"]
    ex = examples()
    assert len(ex) >= 15 and set(ex["provider"]) == {"ingress-nginx", "traefik"}


def test_resources_round_trip():
    conv = convert(ingress(tls=(["shop.example.com"], "shop-tls")), provider="ingress-nginx")
    kinds = [o.kind for o in conv.resources()]
    assert kinds == ["Gateway", "HTTPRoute", "HTTPRoute"]
    assert "Conversion (ingress-nginx)" in repr(conv)
