"""Reference router: request → answer, exactly the design's route contract (design §4.1).

Table-driven from the spec text (reference §3) and the upstream conformance scenarios:
matching, precedence, listener isolation, every filter, 404/500 rules, gRPC, TCP/UDP/TLS,
seeded weighted choices, explain traces.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "semantics"))
from builders import (  # noqa: E402
    base, bref, gatewayclass, gateway, grpc_match, listener, match, pref, route, rule, secret,
    service, world,
)

import gwlib  # noqa: E402
from gwlib.router import Explanation, RequestError, Router  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TALK = ROOT / "data" / "manifests" / "talk"
MULTI = ROOT / "data" / "manifests" / "multi-namespace"
SVCS = tuple((f"v{i}", "infra", (8080,)) for i in range(1, 7))
ANSWER_KEYS = {"status", "backend", "request", "headers", "location", "mirrored_to", "route", "rule"}


def router(*docs, listeners=None, seed=0):
    return Router(base(*docs, listeners=listeners, services=SVCS), seed=seed)


def req(path="/", host="example.com", **kw):
    r = {"gateway": "infra/gw", "host": host, "path": path}
    r.update(kw)
    return r


def backend_name(ans):
    return ans["backend"]["name"] if ans.get("backend") else None


# --------------------------------------------------------------------------- answer format

def test_answer_has_exactly_the_contract_keys():
    ans = router(route("r", rules=[rule(bref("v1"))])).route(req())
    assert set(ans) == ANSWER_KEYS
    assert ans == {"status": 200, "backend": {"namespace": "infra", "name": "v1", "port": 8080},
                   "request": {"method": "GET", "host": "example.com", "path": "/", "headers": {}},
                   "headers": {}, "location": None, "mirrored_to": [], "route": "infra/r", "rule": 0}


def test_404_answer():
    ans = router(route("r", rules=[rule(bref("v1"), matches=[match("/a", "Exact")])])).route(req("/b"))
    assert ans == {"status": 404, "backend": None, "request": None, "headers": {}, "location": None,
                   "mirrored_to": [], "route": None, "rule": None}


# --------------------------------------------------------------------------- path matching

PATHS = [
    (match("/abc", "Exact"), "/abc", True),
    (match("/abc", "Exact"), "/abc/", False),
    (match("/abc", "Exact"), "/Abc", False),
    (match("/abc", "Exact"), "/abcd", False),
    (match("/abc", "Exact"), "/abc?x=1", True),
    (match("/abc"), "/abc", True),
    (match("/abc"), "/abc/", True),
    (match("/abc"), "/abc/def", True),
    (match("/abc"), "/abcd", False),
    (match("/abc"), "/ABC", False),
    (match("/abc/"), "/abc", True),
    (match("/abc/"), "/abc/def", True),
    (match("/abc/"), "/abcd", False),
    (match("/"), "/anything/at/all", True),
    (match("/abc"), "/abc?q=/x", True),
    (match("/v[0-9]+/.*", "RegularExpression"), "/v2/users", True),
    (match("/v[0-9]+/.*", "RegularExpression"), "/api/v2/users", False),
    (None, "/whatever", True),
]


@pytest.mark.parametrize("m,path,ok", PATHS)
def test_path_matching(m, path, ok):
    r = router(route("r", rules=[rule(bref("v1"), matches=[m] if m else None)]))
    assert r.route(req(path))["status"] == (200 if ok else 404)


# --------------------------------------------------------------------------- headers, query, method

HEADER_MATCH = [match("/", headers=[("X-Env", "canary")])]
HEADERS = [
    (HEADER_MATCH, {"X-Env": "canary"}, True),
    (HEADER_MATCH, {"x-env": "canary"}, True),
    (HEADER_MATCH, {"X-ENV": "canary"}, True),
    (HEADER_MATCH, {"X-Env": "Canary"}, False),
    (HEADER_MATCH, {}, False),
    (HEADER_MATCH, {"X-Other": "canary"}, False),
    ([match("/", headers=[("a", "1"), ("b", "2")])], {"a": "1", "b": "2"}, True),
    ([match("/", headers=[("a", "1"), ("b", "2")])], {"a": "1"}, False),
    ([match("/", headers=[("a", "1"), ("A", "2")])], {"a": "1"}, True),
    ([match("/", headers=[{"type": "RegularExpression", "name": "User-Agent", "value": ".*Firefox.*"}])],
     {"user-agent": "Mozilla/5.0 Firefox/120"}, True),
    ([match("/", headers=[{"type": "RegularExpression", "name": "User-Agent", "value": ".*Firefox.*"}])],
     {"user-agent": "curl/8"}, False),
    # matches are ORed within a rule
    ([match("/", headers=[("x", "1")]), match("/", headers=[("y", "1")])], {"y": "1"}, True),
]


@pytest.mark.parametrize("matches,headers,ok", HEADERS)
def test_header_matching(matches, headers, ok):
    r = router(route("r", rules=[rule(bref("v1"), matches=matches)]))
    assert r.route(req(headers=headers))["status"] == (200 if ok else 404)


QUERY_MATCH = [match("/", query=[("animal", "whale")])]
QUERIES = [
    (QUERY_MATCH, "/?animal=whale", True),
    (QUERY_MATCH, "/?animal=Whale", False),
    (QUERY_MATCH, "/?ANIMAL=whale", False),
    (QUERY_MATCH, "/?animal=whale&animal=dolphin", True),
    (QUERY_MATCH, "/?animal=dolphin&animal=whale", False),
    (QUERY_MATCH, "/", False),
    (QUERY_MATCH, "/?color=blue&animal=whale", True),
    ([match("/", query=[("a", "1"), ("b", "2")])], "/?b=2&a=1", True),
    ([match("/", query=[("a", "1"), ("b", "2")])], "/?a=1", False),
    ([match("/", query=[{"type": "RegularExpression", "name": "id", "value": "[0-9]+"}])], "/?id=42", True),
    ([match("/", query=[{"type": "RegularExpression", "name": "id", "value": "[0-9]+"}])], "/?id=4x", False),
]


@pytest.mark.parametrize("matches,path,ok", QUERIES)
def test_query_matching(matches, path, ok):
    r = router(route("r", rules=[rule(bref("v1"), matches=matches)]))
    assert r.route(req(path))["status"] == (200 if ok else 404)


@pytest.mark.parametrize("route_method,method,ok", [
    ("GET", "GET", True), ("GET", "POST", False), ("POST", "POST", True), (None, "DELETE", True),
    ("PATCH", "PATCH", True), ("PUT", "put", False),
])
def test_method_matching(route_method, method, ok):
    r = router(route("r", rules=[rule(bref("v1"), matches=[match("/", method=route_method)])]))
    assert r.route(req(method=method))["status"] == (200 if ok else 404)


# --------------------------------------------------------------------------- hosts

@pytest.mark.parametrize("route_hosts,host,ok", [
    (["example.com"], "example.com", True),
    (["example.com"], "example.com:8080", True),
    (["example.com"], "EXAMPLE.com", True),
    (["example.com"], "www.example.com", False),
    (["*.example.com"], "www.example.com", True),
    (["*.example.com"], "a.b.example.com", True),
    (["*.example.com"], "example.com", False),
    (["example.com"], None, False),
    (None, None, True),
    (None, "anything.io", True),
    (["a.example.com", "b.example.com"], "b.example.com", True),
])
def test_host_matching(route_hosts, host, ok):
    r = router(route("r", hostnames=route_hosts, rules=[rule(bref("v1"))]))
    q = req()
    if host is None:
        del q["host"]
    else:
        q["host"] = host
    assert r.route(q)["status"] == (200 if ok else 404)


def test_host_port_reaches_the_backend_unchanged():
    ans = router(route("r", rules=[rule(bref("v1"))])).route(req(host="foo.com:8080"))
    assert ans["request"]["host"] == "foo.com:8080"


def test_no_host_means_the_gateway_address():
    q = req()
    del q["host"]
    ans = router(route("r", rules=[rule(bref("v1"))])).route(q)
    assert ans["request"]["host"] == "127.0.0.1"


# --------------------------------------------------------------------------- precedence

PRECEDENCE_WORLD = [
    route("root", rules=[rule(bref("v1"), matches=[match("/")])]),
    route("exact", rules=[rule(bref("v2"), matches=[match("/a", "Exact")])]),
    route("long", rules=[rule(bref("v3"), matches=[match("/a/b")])]),
    route("method", rules=[rule(bref("v4"), matches=[match("/a", method="POST")])]),
    route("header", rules=[rule(bref("v5"), matches=[match("/a", headers=[("x-canary", "true")])])]),
    route("query", rules=[rule(bref("v6"), matches=[match("/a", query=[("v", "2")])])]),
]


@pytest.mark.parametrize("method,path,headers,expected", [
    ("GET", "/x", {}, "v1"),
    ("GET", "/a", {}, "v2"),
    ("GET", "/a/b/c", {}, "v3"),
    ("POST", "/a/z", {}, "v4"),
    ("GET", "/a/z", {"X-Canary": "true"}, "v5"),
    ("POST", "/a/z", {"X-Canary": "true"}, "v4"),      # method beats headers
    ("GET", "/a/z?v=2", {}, "v6"),
    ("GET", "/a/z?v=2", {"X-Canary": "true"}, "v5"),   # headers beat query params
    ("POST", "/a", {"X-Canary": "true"}, "v2"),        # Exact beats everything
    ("GET", "/a/b", {"X-Canary": "true"}, "v3"),       # longer prefix beats header match
    ("GET", "/ab", {}, "v1"),                           # element-wise prefix
])
def test_match_precedence_across_routes(method, path, headers, expected):
    r = router(*PRECEDENCE_WORLD)
    assert backend_name(r.route(req(path, method=method, headers=headers))) == expected


@pytest.mark.parametrize("a,b,winner", [
    # (namespace, name, creationTimestamp) of route a and route b; which one wins
    (("infra", "x", "2024-01-02T00:00:00Z"), ("infra", "y", "2024-01-01T00:00:00Z"), "b"),
    (("infra", "x", "2024-01-01T00:00:00Z"), ("infra", "y", "2024-01-02T00:00:00Z"), "a"),
    (("infra", "y", None), ("infra", "x", None), "b"),
    (("b", "same", None), ("a", "same", None), "b"),
    (("a", "zzz", None), ("b", "aaa", None), "a"),
    (("infra", "a", "2025-01-01T00:00:00Z"), ("infra", "b", "2024-12-31T23:59:59Z"), "b"),
    (("infra", "a", "2024-01-01T00:00:00Z"), ("infra", "b", "2024-01-01T00:00:00Z"), "a"),
    (("infra", "a", None), ("infra", "b", "2024-01-01T00:00:00Z"), "b"),
    (("infra", "a", "2024-01-01T00:00:00+02:00"), ("infra", "b", "2023-12-31T23:30:00Z"), "a"),
])
def test_ties_broken_by_age_then_namespace_name(a, b, winner):
    from builders import grant
    docs = []
    for (ns, name, created), svc in ((a, "v1"), (b, "v2")):
        docs.append(route(name, ns=ns, created=created, rules=[rule(bref(svc, ns="infra"), matches=[match("/tie")])]))
        if ns != "infra":
            docs.append(grant("infra", "HTTPRoute", ns, name=f"g-{ns}"))
    ans = router(*docs).route(req("/tie"))
    assert backend_name(ans) == {"a": "v1", "b": "v2"}[winner]
    w = a if winner == "a" else b
    assert ans["route"] == f"{w[0]}/{w[1]}"


def test_first_matching_rule_wins_within_a_route():
    r = router(route("r", rules=[rule(bref("v1"), matches=[match("/a")]), rule(bref("v2"), matches=[match("/a")])]))
    ans = r.route(req("/a"))
    assert backend_name(ans) == "v1" and ans["rule"] == 0


def test_fallthrough_to_less_specific_hostname():
    # precedence, not exclusion: a request that no rule of the exact host matches is served
    # by the wildcard host's rules (envoyproxy/gateway#5500)
    r = router(route("exact", hostnames=["www.example.com"], rules=[rule(bref("v1"), matches=[match("/special")])]),
               route("wild", hostnames=["*.example.com"], rules=[rule(bref("v2"))]),
               route("any", rules=[rule(bref("v3"), matches=[match("/other")])]))
    assert backend_name(r.route(req("/special", host="www.example.com"))) == "v1"
    assert backend_name(r.route(req("/", host="www.example.com"))) == "v2"
    assert backend_name(r.route(req("/other", host="www.example.com"))) == "v2"   # wildcard "/" outranks
    assert backend_name(r.route(req("/other", host="example.com"))) == "v3"
    assert backend_name(r.route(req("/special", host="other.example.com"))) == "v2"


def test_exact_hostname_beats_more_specific_match_on_wildcard():
    r = router(route("exact", hostnames=["www.example.com"], rules=[rule(bref("v1"))]),
               route("wild", hostnames=["*.example.com"], rules=[rule(bref("v2"), matches=[match("/a", "Exact")])]))
    assert backend_name(r.route(req("/a", host="www.example.com"))) == "v1"
    assert backend_name(r.route(req("/a", host="api.example.com"))) == "v2"


# --------------------------------------------------------------------------- listener isolation

ISOLATION_LISTENERS = [listener("empty-hostname", 80), listener("wildcard-example-com", 80, hostname="*.example.com"),
                       listener("wildcard-foo-example-com", 80, hostname="*.foo.example.com"),
                       listener("abc-foo-example-com", 80, hostname="abc.foo.example.com")]
ISOLATION_ROUTES = [
    route(f"attaches-to-{n}", parents=[pref(section=n)], rules=[rule(bref(svc), matches=[match(f"/{n}")])])
    for n, svc in (("empty-hostname", "v1"), ("wildcard-example-com", "v2"), ("wildcard-foo-example-com", "v3"),
                   ("abc-foo-example-com", "v4"))
]


@pytest.mark.parametrize("host,path,expected", [
    ("bar.com", "/empty-hostname", "v1"),
    ("bar.com", "/wildcard-example-com", None),
    ("bar.example.com", "/wildcard-example-com", "v2"),
    ("bar.example.com", "/empty-hostname", None),
    ("bar.foo.example.com", "/wildcard-foo-example-com", "v3"),
    ("bar.foo.example.com", "/wildcard-example-com", None),
    ("abc.foo.example.com", "/abc-foo-example-com", "v4"),
    ("abc.foo.example.com", "/wildcard-foo-example-com", None),
    ("abc.foo.example.com", "/empty-hostname", None),
    ("a.b.foo.example.com", "/wildcard-foo-example-com", "v3"),
])
def test_listener_isolation(host, path, expected):
    r = router(*ISOLATION_ROUTES, listeners=ISOLATION_LISTENERS)
    ans = r.route(req(path, host=host))
    assert backend_name(ans) == expected
    assert ans["status"] == (200 if expected else 404)


# --------------------------------------------------------------------------- ports and schemes

PORT_LISTENERS = [listener("http", 80), listener("alt", 8080), listener("https", 443, "HTTPS", cert="tls")]
PORT_ROUTES = [route("h", parents=[pref(section="http")], rules=[rule(bref("v1"))]),
               route("a", parents=[pref(section="alt")], rules=[rule(bref("v2"))]),
               route("s", parents=[pref(section="https")], rules=[rule(bref("v3"))])]


@pytest.mark.parametrize("extra,expected", [
    ({}, "v1"),
    ({"port": 80}, "v1"),
    ({"port": 8080}, "v2"),
    ({"port": 443, "scheme": "https"}, "v3"),
    ({"scheme": "https"}, "v3"),
    ({"port": 443}, "v3"),
    ({"scheme": "http"}, "v1"),
])
def test_port_selects_the_listener(extra, expected):
    r = router(secret("tls"), *PORT_ROUTES, listeners=PORT_LISTENERS)
    assert backend_name(r.route(req(**extra))) == expected


@pytest.mark.parametrize("extra,fragment", [
    ({"port": 9999}, "no ready listener on port 9999"),
    ({"port": 8080, "scheme": "https"}, "not https"),
    ({"port": 443, "scheme": "http"}, "not http"),
])
def test_connection_level_errors(extra, fragment):
    r = router(secret("tls"), *PORT_ROUTES, listeners=PORT_LISTENERS)
    ans = r.route(req(**extra))
    assert ans["status"] is None and fragment in ans["error"]


def test_https_sni_must_match_a_listener():
    r = router(secret("tls"), route("s", rules=[rule(bref("v1"))]),
               listeners=[listener("https", 443, "HTTPS", hostname="a.example.com", cert="tls")])
    assert backend_name(r.route(req(host="a.example.com", scheme="https"))) == "v1"
    ans = r.route(req(host="b.example.com", scheme="https"))
    assert ans["status"] is None and "TLS handshake" in ans["error"]


@pytest.mark.parametrize("request_,message", [
    ({"gateway": "nope/gw", "path": "/"}, "not found"),
    ({"gateway": "infra/gw", "port": "eighty"}, "port"),
    ({"gateway": "infra/gw", "headers": ["x"]}, "headers"),
    ({"gateway": "infra/gw", "scheme": "gopher"}, "scheme"),
    ({"gateway": 5}, "gateway"),
])
def test_malformed_requests_raise(request_, message):
    r = router(route("r", rules=[rule(bref("v1"))]))
    with pytest.raises(RequestError, match=message):
        r.route(request_)


def test_gateway_may_be_omitted_when_there_is_only_one():
    r = router(route("r", rules=[rule(bref("v1"))]))
    assert r.route({"path": "/"})["status"] == 200


def test_gateway_without_namespace_is_in_default():
    r = Router(world(gatewayclass(), gateway(ns="default"), service("v1", "default"),
                     route("r", ns="default", parents=[pref(ns=None)], rules=[rule(bref("v1"))])))
    assert r.route({"gateway": "gw", "path": "/"})["status"] == 200


# --------------------------------------------------------------------------- filters

def _filter_router(*filters, backends=(bref("v1"),), matches=None):
    return router(route("r", rules=[rule(*backends, matches=matches, filters=list(filters))]))


def test_request_header_modifier_set_add_remove():
    f = {"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}],
        "add": [{"name": "X-Header-Add", "value": "add-appends-values"}],
        "remove": ["X-Header-Remove"]}}
    ans = _filter_router(f).route(req(headers={"x-header-set": "some-other-value",
                                                "X-Header-Add": "some-other-value", "X-Header-Remove": "gone"}))
    h = ans["request"]["headers"]
    assert h["X-Header-Set"] == "set-overwrites-values"
    assert h["X-Header-Add"] == "some-other-value,add-appends-values"
    assert "X-Header-Remove" not in h


@pytest.mark.parametrize("sent,expected", [
    ({"x-env": "a"}, {"X-Env": "a"}),
    ({"content-type": "text/plain"}, {"Content-Type": "text/plain"}),
    ({"X-FOO": "1"}, {"X-Foo": "1"}),
])
def test_header_names_are_canonical_in_answers(sent, expected):
    ans = _filter_router().route(req(headers=sent))
    assert ans["request"]["headers"] == expected


def test_response_header_modifier_and_echo_set_header():
    f = {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
        "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}],
        "add": [{"name": "X-Header-Add", "value": "add-appends-values"}],
        "remove": ["X-Header-Remove"]}}
    ans = _filter_router(f).route(req(headers={
        "X-Echo-Set-Header": "X-Header-Set:some-other-value,X-Header-Add:some-other-value,X-Header-Remove:gone,X-Kept:1"}))
    assert ans["headers"] == {"X-Header-Set": "set-overwrites-values",
                              "X-Header-Add": "some-other-value,add-appends-values", "X-Kept": "1"}


def test_echo_set_header_without_filters():
    ans = _filter_router().route(req(headers={"X-Echo-Set-Header": "X-Foo: bar, x-baz:qux"}))
    assert ans["headers"] == {"X-Foo": "bar", "X-Baz": "qux"}


REDIRECTS = [
    # (listener port, requestRedirect, request (host, path), expected (status, location))
    (80, {"scheme": "https"}, ("example.com", "/a?x=1"), (302, "https://example.com/a?x=1")),
    (80, {"scheme": "https", "statusCode": 301}, ("example.com", "/"), (301, "https://example.com/")),
    (80, {"statusCode": 303}, ("example.com", "/"), (303, "http://example.com/")),
    (80, {"statusCode": 307}, ("example.com", "/"), (307, "http://example.com/")),
    (80, {"statusCode": 308}, ("example.com", "/"), (308, "http://example.com/")),
    (80, {"hostname": "example.org"}, ("example.com", "/p"), (302, "http://example.org/p")),
    (80, {"port": 8080}, ("example.com", "/p"), (302, "http://example.com:8080/p")),
    (80, {"scheme": "https", "port": 8443}, ("example.com", "/"), (302, "https://example.com:8443/")),
    (8080, {}, ("example.com:8080", "/p"), (302, "http://example.com:8080/p")),
    (8080, {"scheme": "https"}, ("example.com:8080", "/p"), (302, "https://example.com/p")),
    (8080, {"scheme": "http"}, ("example.com", "/p"), (302, "http://example.com/p")),
    (80, {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}, ("example.com", "/old?q=1"),
     (302, "http://example.com/new?q=1")),
    (80, {"hostname": "example.org", "port": 80}, ("example.com:8080", "/"), (302, "http://example.org/")),
]


@pytest.mark.parametrize("port,redirect,target,expected", REDIRECTS)
def test_request_redirect(port, redirect, target, expected):
    r = router(route("r", rules=[rule(filters=[{"type": "RequestRedirect", "requestRedirect": redirect}])]),
               listeners=[listener("l", port)])
    ans = r.route(req(target[1], host=target[0], port=port))
    assert (ans["status"], ans["location"]) == expected
    assert ans["backend"] is None and ans["request"] is None
    assert ans["headers"] == {"Location": expected[1]}


@pytest.mark.parametrize("prefix,replacement,path,expected", [
    ("/foo", "/xyz", "/foo/bar", "/xyz/bar"),
    ("/foo", "/xyz/", "/foo/bar", "/xyz/bar"),
    ("/foo/", "/xyz", "/foo/bar", "/xyz/bar"),
    ("/foo", "/xyz", "/foo", "/xyz"),
    ("/foo", "/xyz", "/foo/", "/xyz/"),
    ("/foo", "", "/foo/bar", "/bar"),
    ("/foo", "", "/foo", "/"),
    ("/foo", "/", "/foo/", "/"),
])
def test_redirect_replace_prefix_match(prefix, replacement, path, expected):
    f = {"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplacePrefixMatch",
                                                                 "replacePrefixMatch": replacement}}}
    ans = _filter_router(f, backends=(), matches=[match(prefix)]).route(req(path))
    assert ans["location"] == f"http://example.com{expected}"


@pytest.mark.parametrize("rewrite,path,expected_host,expected_path", [
    ({"hostname": "internal.svc"}, "/prefix/a", "internal.svc", "/prefix/a"),
    ({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/one"}}, "/prefix/two?x=1", "example.com", "/one?x=1"),
    ({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"}}, "/prefix/two", "example.com", "/one/two"),
    ({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}, "/prefix/two", "example.com", "/two"),
    ({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"}}, "/prefix", "example.com", "/one"),
    ({"hostname": "x.internal", "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}},
     "/prefix/a", "x.internal", "/v2/a"),
])
def test_url_rewrite(rewrite, path, expected_host, expected_path):
    ans = _filter_router({"type": "URLRewrite", "urlRewrite": rewrite}, matches=[match("/prefix")]).route(req(path))
    assert ans["request"]["host"] == expected_host and ans["request"]["path"] == expected_path
    assert ans["status"] == 200


def test_filters_apply_in_order():
    f1 = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-Step", "value": "1"}]}}
    f2 = {"type": "URLRewrite", "urlRewrite": {"hostname": "rewritten"}}
    ans = _filter_router(f1, f2).route(req())
    assert ans["request"]["headers"]["X-Step"] == "1" and ans["request"]["host"] == "rewritten"


def test_backend_ref_filters_apply_to_that_backend_only():
    f = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "X-Backend", "value": "v2"}]}}]
    r = router(route("r", rules=[rule(bref("v1", weight=1), bref("v2", weight=1, filters=f))]), seed=3)
    seen = {}
    for _ in range(50):
        ans = r.route(req())
        seen[backend_name(ans)] = ans["request"]["headers"].get("X-Backend")
    assert seen == {"v1": None, "v2": "v2"}


@pytest.mark.parametrize("mirror,expected", [
    ({}, 100),
    ({"percent": 100}, 100),
    ({"percent": 0}, 0),
    ({"fraction": {"numerator": 0, "denominator": 10}}, 0),
])
def test_request_mirror_all_or_nothing(mirror, expected):
    f = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "v2", "port": 8080}, **mirror}}
    r = _filter_router(f)
    n = sum(bool(r.route(req())["mirrored_to"]) for _ in range(100))
    assert n == expected


@pytest.mark.parametrize("mirror,lo,hi", [
    ({"percent": 50}, 400, 600),
    ({"fraction": {"numerator": 1, "denominator": 4}}, 180, 320),
    ({"fraction": {"numerator": 3}}, 10, 60),
])
def test_percentage_mirrors_are_sampled(mirror, lo, hi):
    f = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "v2", "port": 8080}, **mirror}}
    r = _filter_router(f)
    n = sum(bool(r.route(req())["mirrored_to"]) for _ in range(1000))
    assert lo <= n <= hi


def test_multiple_mirrors_are_listed():
    fs = [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": n, "port": 8080}}} for n in ("v2", "v3")]
    ans = _filter_router(*fs).route(req())
    assert ans["mirrored_to"] == [{"namespace": "infra", "name": "v2", "port": 8080},
                                  {"namespace": "infra", "name": "v3", "port": 8080}]
    assert backend_name(ans) == "v1"


CORS = {"type": "CORS", "cors": {"allowOrigins": ["https://www.foo.com", "https://*.bar.com"],
                                 "allowMethods": ["GET", "OPTIONS"], "allowHeaders": ["x-header-1"],
                                 "exposeHeaders": ["x-header-3"], "maxAge": 3600}}


def test_cors_preflight_is_answered_by_the_gateway():
    ans = _filter_router(CORS).route(req(method="OPTIONS", headers={
        "Origin": "https://www.foo.com", "Access-Control-Request-Method": "GET"}))
    assert ans["status"] in (200, 204) and ans["backend"] is None
    assert ans["headers"]["Access-Control-Allow-Origin"] == "https://www.foo.com"
    assert ans["headers"]["Access-Control-Max-Age"] == "3600"
    assert ans["route"] == "infra/r"


def test_cors_preflight_from_unknown_origin_gets_no_cors_headers():
    ans = _filter_router(CORS).route(req(method="OPTIONS", headers={
        "Origin": "https://evil.com", "Access-Control-Request-Method": "GET"}))
    assert ans["backend"] is None and "Access-Control-Allow-Origin" not in ans["headers"]


@pytest.mark.parametrize("origin,allowed", [
    ("https://www.foo.com", True), ("https://a.bar.com", True), ("https://bar.com", False), ("http://www.foo.com", False),
])
def test_cors_simple_request(origin, allowed):
    ans = _filter_router(CORS).route(req(headers={"Origin": origin}))
    assert backend_name(ans) == "v1"
    assert (ans["headers"].get("Access-Control-Allow-Origin") == origin) is allowed


def test_cors_preflight_even_without_backends():
    ans = _filter_router(CORS, backends=()).route(req(method="OPTIONS", headers={
        "Origin": "https://www.foo.com", "Access-Control-Request-Method": "GET"}))
    assert ans["status"] == 200 and ans["backend"] is None
    assert _filter_router(CORS, backends=()).route(req())["status"] == 500


# --------------------------------------------------------------------------- 500 and weights

@pytest.mark.parametrize("backends,extra_docs,status", [
    ([bref("missing")], [], 500),
    ([bref("v1", kind="ConfigMap")], [], 500),
    ([bref("v1", port=9999)], [], 500),
    ([bref("web", ns="apps")], [service("web", "apps")], 500),
    ([], [], 500),
    ([bref("v1", weight=0)], [], 500),
    ([bref("v1", weight=0), bref("v2", weight=0)], [], 500),
    ([bref("v1", weight=1), bref("missing", weight=0)], [], 200),
    ([bref("v1")], [], 200),
])
def test_invalid_and_empty_backends(backends, extra_docs, status):
    r = router(route("r", rules=[rule(*backends)]), *extra_docs)
    for _ in range(20):
        ans = r.route(req())
        assert ans["status"] == status
        if status == 500:
            assert ans["backend"] is None and ans["route"] == "infra/r" and ans["rule"] == 0


def test_half_the_traffic_of_an_invalid_half_gets_500():
    r = router(route("r", rules=[rule(bref("v1", weight=1), bref("missing", weight=1))]), seed=7)
    c = Counter(r.route(req())["status"] for _ in range(2000))
    assert set(c) == {200, 500} and 900 <= c[500] <= 1100
    assert r.split(req()) == {"infra/v1": 0.5, "500": 0.5}


def test_extension_ref_is_never_skipped():
    f = {"type": "ExtensionRef", "extensionRef": {"group": "example.com", "kind": "Auth", "name": "x"}}
    assert _filter_router(f).route(req())["status"] == 500


@pytest.mark.parametrize("weights,expected", [
    ((90, 10), {"infra/v1": 0.9, "infra/v2": 0.1}),
    ((1, 1), {"infra/v1": 0.5, "infra/v2": 0.5}),
    ((3, 0), {"infra/v1": 1.0}),
    ((0, 7), {"infra/v2": 1.0}),
    ((None, None), {"infra/v1": 0.5, "infra/v2": 0.5}),
])
def test_split_is_exact(weights, expected):
    r = router(route("r", rules=[rule(bref("v1", weight=weights[0]), bref("v2", weight=weights[1]))]))
    assert r.split(req()) == pytest.approx(expected)


def test_sampling_follows_the_weights_and_is_seeded():
    docs = [route("r", rules=[rule(bref("v1", weight=90), bref("v2", weight=10))])]
    r1, r2, r3 = router(*docs, seed=42), router(*docs, seed=42), router(*docs, seed=43)
    s1 = [backend_name(r1.route(req())) for _ in range(1000)]
    s2 = [backend_name(r2.route(req())) for _ in range(1000)]
    s3 = [backend_name(r3.route(req())) for _ in range(1000)]
    assert s1 == s2 and s1 != s3
    assert 850 <= s1.count("v1") <= 950


@pytest.mark.parametrize("request_,expected", [
    (req("/nothing", host="nomatch.io"), {}),
])
def test_split_of_unrouted_request_is_empty(request_, expected):
    r = router(route("r", hostnames=["example.com"], rules=[rule(bref("v1"))]))
    assert r.split(request_) == expected


def test_split_of_redirect_is_empty():
    r = router(route("r", rules=[rule(filters=[{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}])]))
    assert r.split(req()) == {}


# --------------------------------------------------------------------------- gRPC

GRPC_WORLD = [
    route("echo", kind="GRPCRoute", hostnames=["grpc.example.com"],
          rules=[rule(bref("v1"), matches=[grpc_match("pkg.EchoService", "Echo")]),
                 rule(bref("v2"), matches=[grpc_match("pkg.EchoService")]),
                 rule(bref("v3"), matches=[grpc_match("pkg.Other", headers=[("x-canary", "1")])]),
                 rule(bref("v4"), matches=[grpc_match(r"pkg\.Re.*", "Get.*", type_="RegularExpression")]),
                 rule(bref("missing"), matches=[grpc_match("pkg.Broken")])]),
]


@pytest.mark.parametrize("service_,method,headers,expected,grpc_status", [
    ("pkg.EchoService", "Echo", {}, "v1", 0),
    ("pkg.EchoService", "Other", {}, "v2", 0),
    ("pkg.Other", "X", {"x-canary": "1"}, "v3", 0),
    ("pkg.Other", "X", {}, None, 12),
    ("pkg.Regex", "GetThing", {}, "v4", 0),
    ("pkg.Regex", "PutThing", {}, None, 12),
    ("pkg.Unknown", "Echo", {}, None, 12),
    ("pkg.Broken", "Call", {}, None, 14),
    ("pkg.echoservice", "Echo", {}, None, 12),
])
def test_grpc_routing(service_, method, headers, expected, grpc_status):
    r = router(*GRPC_WORLD)
    ans = r.route({"gateway": "infra/gw", "host": "grpc.example.com",
                   "grpc": {"service": service_, "method": method}, "headers": headers})
    assert ans["status"] == 200
    assert ans["grpc_status"] == grpc_status
    assert backend_name(ans) == expected
    if expected:
        assert ans["request"]["path"] == f"/{service_}/{method}" and ans["request"]["method"] == "POST"


def test_grpc_request_to_unknown_host_is_unimplemented():
    ans = router(*GRPC_WORLD).route({"gateway": "infra/gw", "host": "web.example.com",
                                     "grpc": {"service": "pkg.EchoService", "method": "Echo"}})
    assert (ans["status"], ans["grpc_status"], ans["backend"]) == (200, 12, None)


def test_grpc_requests_are_not_routed_by_httproutes():
    r = router(route("web", rules=[rule(bref("v1"))]))
    ans = r.route({"gateway": "infra/gw", "host": "x", "grpc": {"service": "a.B", "method": "C"}})
    assert ans["grpc_status"] == 12
    assert r.route(req())["status"] == 200


def test_http_requests_are_not_routed_by_grpcroutes():
    assert router(*GRPC_WORLD).route(req("/pkg.EchoService/Echo", host="grpc.example.com", method="POST"))["status"] == 404


# --------------------------------------------------------------------------- TCP / UDP / TLS

L4_LISTENERS = [listener("http", 80), listener("tcp", 5432, "TCP"), listener("udp", 5353, "UDP"),
                listener("tls", 443, "TLS", hostname="*.example.com", mode="Passthrough")]
L4_ROUTES = [
    route("db", kind="TCPRoute", parents=[pref(section="tcp")], rules=[rule(bref("v1", weight=3), bref("v2", weight=1))]),
    route("dns", kind="UDPRoute", parents=[pref(section="udp")], rules=[rule(bref("v3"))]),
    route("tls-a", kind="TLSRoute", parents=[pref(section="tls")], hostnames=["a.example.com"], rules=[rule(bref("v4"))]),
    route("tls-any", kind="TLSRoute", parents=[pref(section="tls")], hostnames=["*.example.com"], rules=[rule(bref("v5"))]),
]


@pytest.mark.parametrize("request_,expected", [
    ({"port": 5353, "scheme": "udp"}, "v3"),
    ({"port": 5353}, "v3"),
    ({"port": 443, "scheme": "https", "host": "a.example.com"}, "v4"),
    ({"port": 443, "host": "b.example.com"}, "v5"),
    ({"port": 443, "host": "x.y.example.com"}, "v5"),
])
def test_l4_routing(request_, expected):
    r = router(*L4_ROUTES, listeners=L4_LISTENERS)
    ans = r.route({"gateway": "infra/gw", **request_})
    assert ans["status"] == 200 and backend_name(ans) == expected


def test_tcp_weights():
    r = router(*L4_ROUTES, listeners=L4_LISTENERS, seed=5)
    assert r.split({"gateway": "infra/gw", "port": 5432}) == {"infra/v1": 0.75, "infra/v2": 0.25}
    c = Counter(backend_name(r.route({"gateway": "infra/gw", "port": 5432})) for _ in range(400))
    assert 250 <= c["v1"] <= 350 and c["v1"] + c["v2"] == 400


def test_tls_sni_with_no_listener_is_a_handshake_error():
    r = router(*L4_ROUTES, listeners=L4_LISTENERS)
    ans = r.route({"gateway": "infra/gw", "port": 443, "host": "example.net"})
    assert ans["status"] is None and "TLS handshake" in ans["error"]


def test_tcp_listener_without_route_resets():
    r = router(listeners=[listener("tcp", 5432, "TCP")])
    ans = r.route({"gateway": "infra/gw", "port": 5432})
    assert ans["status"] is None and "connection reset" in ans["error"]


# --------------------------------------------------------------------------- mesh hook

def test_mesh_request_without_routes_goes_to_the_service():
    r = router(route("r", rules=[rule(bref("v1"))]))
    ans = r.route({"service": "infra/v2", "port": 8080, "from": "apps", "host": "v2", "path": "/p"})
    assert ans["status"] == 200 and ans["backend"] == {"namespace": "infra", "name": "v2", "port": 8080}
    assert ans["request"]["host"] == "v2"


def test_mesh_request_with_gamma_routes_is_routed_by_them():
    # was: "GAMMA routing is not implemented yet" (the hook); the mesh now routes (tests/test_mesh.py)
    r = router(route("m", parents=[pref("v2", kind="Service", group="", port=8080)], rules=[rule(bref("v3"))]))
    ans = r.route({"service": "infra/v2", "port": 8080, "from": "apps", "path": "/"})
    assert ans["status"] == 200 and ans["backend"] == {"namespace": "infra", "name": "v3", "port": 8080}
    assert ans["route"] == "infra/m" and ans["rule"] == 0
    unmeshed = r.route({"service": "infra/v2", "port": 8080, "from": "apps", "path": "/", "meshed": False})
    assert unmeshed["backend"]["name"] == "v2" and unmeshed["route"] is None


# --------------------------------------------------------------------------- explain

def test_explain_names_listener_winner_and_losers():
    r = router(route("older", created="2024-01-01T00:00:00Z", rules=[rule(bref("v1"), matches=[match("/a")])]),
               route("newer", created="2024-06-01T00:00:00Z", rules=[rule(bref("v2"), matches=[match("/a")])]),
               route("b-name", rules=[rule(bref("v3"), matches=[match("/a")])]),
               route("a-name", rules=[rule(bref("v4"), matches=[match("/a")])]),
               route("exact", rules=[rule(bref("v5"), matches=[match("/b", "Exact")])]))
    ex = r.explain(req("/a/x"))
    assert isinstance(ex, Explanation)
    assert ex.listener == "http" and ex.gateway == "infra/gw"
    assert ex.winner.route == "infra/older"
    outcomes = {c.route: c.outcome for c in ex.candidates}
    assert outcomes["infra/older"] == "winner"
    assert "older" in outcomes["infra/newer"]
    assert "alphabetically" in outcomes["infra/b-name"] or "older" in outcomes["infra/b-name"]
    assert outcomes["infra/exact"].startswith("no match: path /a/x")
    assert ex.split == {"infra/v1": 1.0}
    assert ex.answer["backend"]["name"] == "v1"
    text = str(ex)
    assert "Winner:    infra/older" in text and "Listener:  http" in text
    df = ex.to_frame()
    assert list(df.columns) == ["rank", "route", "rule", "match", "hostname", "criteria", "created", "matched",
                                "outcome"]
    assert len(df) == 5 and list(df["outcome"]).count("winner") == 1
    assert df.iloc[0]["route"] == "infra/exact"   # Exact first in precedence order, but no match


def test_explain_ties_by_name():
    r = router(route("b", rules=[rule(bref("v1"), matches=[match("/a")])]),
               route("a", rules=[rule(bref("v2"), matches=[match("/a")])]))
    ex = r.explain(req("/a"))
    assert ex.winner.route == "infra/a"
    assert "alphabetically" in ex.candidates[1].outcome


def test_explain_precedence_reason():
    r = router(*PRECEDENCE_WORLD)
    ex = r.explain(req("/a"))
    lost = {c.route: c.outcome for c in ex.candidates if c.outcome.startswith("lost")}
    assert "Exact path beats PathPrefix" in lost["infra/root"]


def test_explain_filters_and_404():
    r = _filter_router({"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "a", "value": "b"}]}})
    ex = r.explain(req())
    assert ex.filters and ex.filters[0].startswith("RequestHeaderModifier")
    ex404 = router(route("r", hostnames=["a.com"], rules=[rule(bref("v1"))])).explain(req(host="b.com"))
    assert ex404.winner is None and ex404.answer["status"] == 404


def test_explain_does_not_disturb_the_route_sequence():
    docs = [route("r", rules=[rule(bref("v1", weight=1), bref("v2", weight=1))])]
    r1, r2 = router(*docs, seed=9), router(*docs, seed=9)
    s1 = [backend_name(r1.route(req())) for _ in range(20)]
    s2 = []
    for _ in range(20):
        r2.explain(req())
        s2.append(backend_name(r2.route(req())))
    assert s1 == s2


# --------------------------------------------------------------------------- manifests in the repo

@pytest.mark.skipif(not TALK.exists(), reason="talk manifests not present")
@pytest.mark.parametrize("request_,expected", [
    ({"host": "argocd.example.com", "path": "/applications?x=1"},
     (302, None, "https://argocd.example.com/applications?x=1")),
    ({"port": 80, "host": "argocd.example.com", "path": "/"}, (302, None, "https://argocd.example.com/")),
    ({"port": 443, "scheme": "https", "host": "argocd.example.com", "path": "/"}, (200, "argocd-server", None)),
    ({"scheme": "https", "host": "argocd.example.com", "path": "/api/v1/session"}, (200, "argocd-server", None)),
    ({"host": "other.example.com", "path": "/"}, (404, None, None)),
])
def test_talk_manifests_routing(request_, expected):
    objs = gwlib.load(TALK)
    gw = next(o for o in objs if o.kind == "Gateway")
    ans = Router(objs).route({"gateway": gw.key, **request_})
    assert (ans["status"], backend_name(ans), ans["location"]) == expected
    if expected[1]:
        assert ans["backend"] == {"namespace": "argocd", "name": "argocd-server", "port": 80}


@pytest.mark.skipif(not MULTI.exists(), reason="multi-namespace manifests not present")
@pytest.mark.parametrize("host,path,expected", [
    ("team-a.apps.example.com", "/", (200, "web")),
    ("team-a.apps.example.com", "/auth/login", (200, "auth")),
    ("team-b.apps.example.com", "/auth/login", (500, None)),
    ("team-b.apps.example.com", "/", (404, None)),
    ("team-c.apps.example.com", "/", (404, None)),
    ("apps.example.com", "/", (404, None)),
])
def test_multi_namespace_routing(host, path, expected):
    objs = gwlib.load(MULTI)
    gw = next(o for o in objs if o.kind == "Gateway")
    ans = Router(objs).route({"gateway": gw.key, "host": host, "path": path})
    assert (ans["status"], backend_name(ans)) == expected


@pytest.mark.skipif(not MULTI.exists(), reason="multi-namespace manifests not present")
def test_multi_namespace_split():
    objs = gwlib.load(MULTI)
    gw = next(o for o in objs if o.kind == "Gateway")
    r = Router(objs, seed=1)
    q = {"gateway": gw.key, "host": "team-b.apps.example.com", "path": "/api/x"}
    split = r.split(q)
    assert split == pytest.approx({"team-b/api-v1": 0.9, "team-b/api-v2": 0.1})


def test_router_accepts_a_path():
    r = Router(str(Path(__file__).resolve().parent / "fixtures" / "semantics" / "status-world.yaml"))
    ans = r.route({"gateway": "edge/edge", "host": "shop.example.com", "path": "/"})
    assert ans["backend"] == {"namespace": "shop", "name": "shop", "port": 8080}


def test_mesh_request_split_and_explain():
    r = router(route("r", rules=[rule(bref("v1"))]))
    q = {"service": "infra/v2", "port": 8080, "from": "apps", "path": "/"}
    assert r.split(q) == {"infra/v2": 1.0}
    ex = r.explain(q)
    assert ex.answer["backend"]["name"] == "v2" and ex.notes


@pytest.mark.parametrize("request_,fragment", [
    ({"service": "infra/none", "port": 80}, "does not exist"),
    ({"service": "infra/v2", "port": 9}, "no port 9"),
])
def test_mesh_request_errors(request_, fragment):
    ans = router().route(request_)
    assert ans["status"] is None and fragment in ans["error"]


def test_headers_with_repeated_values_are_joined():
    ans = router(route("r", rules=[rule(bref("v1"))])).route(req(headers={"X-Multi": ["a", "b"]}))
    assert ans["request"]["headers"] == {"X-Multi": "a,b"}
