"""Table-driven tests of gwlib.matching, written from the Gateway API v1.6.1 spec text.

Every row names where it comes from:
  [spec X]   the doc comment of type/field X in apis/v1/*.go
  [conf T]   the request/expectation table of conformance test T (conformance/tests/T.go),
             with the route reconstructed from T.yaml
  [choice]   an implementation-specific choice documented in gwlib/matching.py
  [edge]     a robustness case the spec implies but does not spell out
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gwlib.filters import Headers
from gwlib.matching import (
    grpc_match_matches,
    grpc_match_precedence_key,
    headers_match,
    hostname_matches,
    hostname_precedence_key,
    http_match_matches,
    http_match_precedence_key,
    intersect_hostnames,
    is_wildcard,
    join_target,
    listener_precedence_key,
    method_matches,
    path_matches,
    path_prefix_matches,
    query_matches,
    select_listener,
    split_target,
    strip_port,
)

FAST = settings(max_examples=60, deadline=None, database=None)


# =========================================================================================
# strip_port
# =========================================================================================

@pytest.mark.parametrize("host, expected", [
    ("foo.com", "foo.com"),                # [spec HTTPRouteSpec.Hostnames] no port: unchanged
    ("foo.com:8080", "foo.com"),           # [spec HTTPRouteSpec.Hostnames] "MUST ignore any port value"
    ("foo.com:80", "foo.com"),             # [spec HTTPRouteSpec.Hostnames] default port ignored too
    ("Foo.COM:443", "foo.com"),            # [edge] host names are case-insensitive (RFC 9110)
    ("192.0.2.1:80", "192.0.2.1"),         # [edge] design §4.1: "A host with a port (192.0.2.1:80)"
    ("echo:7070", "echo"),                 # [edge] design §4.1: "echo:7070" matched without the port
    ("[::1]:80", "::1"),                   # [edge] IPv6 literal with port (RFC 3986 §3.2.2)
    ("[::1]", "::1"),                      # [edge] IPv6 literal without port
    ("[2001:DB8::1]:8443", "2001:db8::1"), # [edge] IPv6 literal, lower-cased
    ("::1", "::1"),                        # [edge] bare IPv6 (several colons) is not host:port
    ("", ""),                              # [edge] no Host header
    ("  foo.com:1  ", "foo.com"),          # [edge] surrounding whitespace
    ("foo.com:", "foo.com"),               # [edge] empty port (RFC 3986 allows it)
])
def test_strip_port(host, expected):
    assert strip_port(host) == expected


# =========================================================================================
# hostname_matches
# =========================================================================================

@pytest.mark.parametrize("pattern, host, expected", [
    ("test.example.com", "test.example.com", True),      # [spec Hostnames] precise hostname
    ("test.example.com", "TEST.Example.com", True),      # [edge] case-insensitive
    ("test.example.com", "example.com", False),          # [spec Hostnames] precise only itself
    ("test.example.com", "foo.test.example.com", False), # [spec Hostnames] precise is not a suffix
    ("*.example.com", "test.example.com", True),         # [spec Hostnames] "would match both `test.example.com`"
    ("*.example.com", "foo.test.example.com", True),     # [spec Hostnames] "and `foo.test.example.com`"
    ("*.example.com", "example.com", False),             # [spec Hostnames] "but not `example.com`"
    ("*.example.com", "test.example.net", False),        # [spec Hostnames] different parent
    ("*.example.com", "testexample.com", False),         # [edge] suffix must start at a label boundary
    ("*.example.com", ".example.com", False),            # [edge] "*" stands for at least one label
    ("*.example.com", "a.b.c.example.com", True),        # [spec Listener] "any number of characters _and dots_"
    ("*.EXAMPLE.com", "x.example.COM", True),            # [edge] case-insensitive wildcard
    ("*.bar.com", "baz.bar.com", True),                  # [conf httproute-listener-hostname-matching]
    ("*.bar.com", "multiple.prefixes.bar.com", True),    # [conf httproute-listener-hostname-matching]
    ("*.bar.com", "bar.com", False),                     # [conf httproute-listener-hostname-matching]
    ("*.foo.com", "multiple.prefixes.foo.com", True),    # [conf httproute-listener-hostname-matching]
    ("*.foo.com", "foo.com", False),                     # [conf httproute-listener-hostname-matching] 404
    ("*", "anything.example", True),                     # [edge] "*" = any host (intersect_hostnames marker)
    ("", "anything.example", True),                      # [spec Listener.Hostname] empty = all hostnames
    ("*", "", True),                                     # [edge] any host, even none
    ("*.0.0.1", "127.0.0.1", False),                     # [spec Hostname] "IPs are not allowed": no wildcard covers an IP
    ("example.com", "", False),                          # [edge] no Host header vs a hostname
    ("*.example.com", "", False),                        # [edge] no Host header vs a wildcard
])
def test_hostname_matches(pattern, host, expected):
    assert hostname_matches(pattern, host) is expected


@pytest.mark.parametrize("name, expected", [
    ("*.example.com", True), ("*", True), ("example.com", False), ("", False), (None, False),
])
def test_is_wildcard(name, expected):  # [spec Hostname] wildcard label "*." as first label
    assert is_wildcard(name) is expected


# =========================================================================================
# intersect_hostnames
# =========================================================================================

ALL4 = ["bar.com", "*.example.com", "*.foo.example.com", "abc.foo.example.com"]


@pytest.mark.parametrize("listener, routes, expected", [
    (None, [], ["*"]),                                           # [spec Hostnames] neither restricts
    ("", [], ["*"]),                                             # [spec Listener.Hostname] "" = unset
    (None, ["a.com", "*.b.com"], ["a.com", "*.b.com"]),          # [spec Hostnames] listener without hostname
    ("test.example.com", [], ["test.example.com"]),              # [spec Hostnames] route "not specified any hostnames"
    ("test.example.com", ["test.example.com"], ["test.example.com"]),  # [spec Hostnames] exact = exact
    ("test.example.com", ["*.example.com"], ["test.example.com"]),     # [spec Hostnames] "or `*.example.com`"
    ("test.example.com", ["example.com"], []),                   # [spec Hostnames] no intersection
    ("test.example.com", ["other.example.com"], []),             # [spec Hostnames] no intersection
    ("*.example.com", ["*.example.com"], ["*.example.com"]),     # [spec Hostnames] "`*.example.com` ... would all match"
    ("*.example.com", ["test.example.com"], ["test.example.com"]),       # [spec Hostnames] "`test.example.com`"
    ("*.example.com", ["foo.test.example.com"], ["foo.test.example.com"]),  # [spec Hostnames] "`foo.test.example.com`"
    ("*.example.com", ["example.com"], []),                      # [spec Hostnames] "`example.com` ... would not match"
    ("*.example.com", ["test.example.net"], []),                 # [spec Hostnames] "`test.example.net` would not match"
    ("*.example.com", ["test.example.com", "test.example.net"], ["test.example.com"]),  # [spec Hostnames] non-matching "MUST be ignored"
    ("*.example.com", ["*.foo.example.com"], ["*.foo.example.com"]),   # [edge] narrower wildcard wins
    ("*.foo.example.com", ["*.example.com"], ["*.foo.example.com"]),   # [conf listener-isolation-with-hostname-intersection] "becomes *.foo.example.com"
    ("*.example.com", ["*.example.net"], []),                    # [edge] disjoint wildcards
    ("*.ample.com", ["*.example.com"], []),                      # [edge] suffix must align on a dot
    (None, ALL4, ALL4),                                          # [conf listener-isolation-with-hostname-intersection] empty-hostname listener
    ("*.example.com", ALL4, ["*.example.com", "*.foo.example.com", "abc.foo.example.com"]),  # [conf ...intersection] bar.com "doesn't match"
    ("*.foo.example.com", ALL4, ["*.foo.example.com", "abc.foo.example.com"]),  # [conf ...intersection] de-duplicated
    ("abc.foo.example.com", ALL4, ["abc.foo.example.com"]),      # [conf ...intersection] "becomes abc.foo.example.com"
    ("Test.Example.com", ["*.EXAMPLE.com"], ["test.example.com"]),  # [edge] case-insensitive, lower-cased
])
def test_intersect_hostnames(listener, routes, expected):
    assert intersect_hostnames(listener, routes) == expected


# =========================================================================================
# listener selection
# =========================================================================================

ISOLATION = [None, "*.example.com", "*.foo.example.com", "abc.foo.example.com"]
HOSTNAME_MATCHING = ["bar.com", "foo.bar.com", "*.bar.com", "*.foo.com"]


@pytest.mark.parametrize("listeners, host, expected", [
    (ISOLATION, "bar.com", 0),                 # [conf gateway-http-listener-isolation] empty-hostname listener
    (ISOLATION, "bar.example.com", 1),         # [conf gateway-http-listener-isolation] wildcard-example-com
    (ISOLATION, "bar.foo.example.com", 2),     # [conf gateway-http-listener-isolation] wildcard-foo-example-com
    (ISOLATION, "abc.foo.example.com", 3),     # [conf gateway-http-listener-isolation] abc-foo-example-com
    (ISOLATION, "abc.foo.example.com:80", 3),  # [spec Hostnames] port ignored
    (ISOLATION, "ABC.foo.example.com", 3),     # [edge] case-insensitive
    (ISOLATION, "example.com", 0),             # [spec Listener] "*.example.com" does not cover example.com: fallback
    (ISOLATION, "127.0.0.1", 0),               # [edge] design §4.1: an IP matches only listeners without hostnames
    (HOSTNAME_MATCHING, "bar.com", 0),         # [conf httproute-listener-hostname-matching]
    (HOSTNAME_MATCHING, "foo.bar.com", 1),     # [conf httproute-listener-hostname-matching] exact before wildcard
    (HOSTNAME_MATCHING, "baz.bar.com", 2),     # [conf httproute-listener-hostname-matching]
    (HOSTNAME_MATCHING, "boo.bar.com", 2),     # [conf httproute-listener-hostname-matching]
    (HOSTNAME_MATCHING, "multiple.prefixes.bar.com", 2),  # [conf httproute-listener-hostname-matching]
    (HOSTNAME_MATCHING, "multiple.prefixes.foo.com", 3),  # [conf httproute-listener-hostname-matching]
    (HOSTNAME_MATCHING, "foo.com", None),      # [conf httproute-listener-hostname-matching] 404
    (HOSTNAME_MATCHING, "no.matching.host", None),  # [conf httproute-listener-hostname-matching] 404
    (["*.example.com", "foo.example.com", None], "foo.example.com", 1),  # [spec Listeners] "`foo.example.com` takes precedence over `*.example.com`"
    (["", "*.example.com"], "x.example.com", 1),       # [spec Listeners] "`*.example.com` takes precedence over `""`"
    (["*.example.com", "*.foo.example.com"], "a.foo.example.com", 1),  # [spec Listeners] "more specific wildcard entries must be processed before"
    (["*.example.com", "*.foo.example.com"], "a.bar.example.com", 0),  # [spec Listeners] only the broader one matches
    ([None, None], "x.com", 0),                # [edge] conflicted duplicates: first listener
    ([], "x.com", None),                       # [edge] no listeners
])
def test_select_listener(listeners, host, expected):
    assert select_listener(listeners, host) == expected


@pytest.mark.parametrize("higher, lower", [
    ("foo.example.com", "*.example.com"),      # [spec Listeners] exact before wildcard
    ("*.example.com", None),                   # [spec Listeners] wildcard before fallback
    ("*.example.com", ""),                     # [spec Listeners] wildcard before fallback ("")
    ("*.foo.example.com", "*.example.com"),    # [spec Listeners] more dots right of "*" first
    ("a.b", None),                             # [spec Listeners] exact before fallback
])
def test_listener_precedence_key(higher, lower):
    assert listener_precedence_key(higher) < listener_precedence_key(lower)


# =========================================================================================
# route hostname precedence
# =========================================================================================

@pytest.mark.parametrize("higher, lower", [
    ("foo.example.com", "*.example.com"),      # [spec Hostnames] "Characters in a matching non-wildcard hostname"
    ("a.example.com", "*.foo.example.com"),    # [spec Hostnames] any precise name beats any wildcard
    ("longer.example.com", "short.example.com"),  # [spec Hostnames] more characters
    ("*.foo.example.com", "*.example.com"),    # [spec Hostnames] "Characters in a matching hostname"
    ("*.example.com", "*"),                    # [edge] "*" (no hostname) last
    ("x.io", ""),                              # [edge] empty (no hostname) last
])
def test_hostname_precedence_key(higher, lower):
    assert hostname_precedence_key(higher) < hostname_precedence_key(lower)


def test_hostname_precedence_key_ties_are_equal():
    # [spec Hostnames] equal length names tie; "the matching precedence rules for
    # HTTPRouteMatches takes over"
    assert hostname_precedence_key("aaa.example.com") == hostname_precedence_key("bbb.example.com")


# =========================================================================================
# split_target / join_target
# =========================================================================================

@pytest.mark.parametrize("target, path, query", [
    ("/p?q=1&q=2&r", "/p", {"q": ["1", "2"], "r": [""]}),   # [contract] matching.py docstring example
    ("/", "/", {}),                                          # [edge] no query
    ("/?animal=whale", "/", {"animal": ["whale"]}),         # [conf httproute-query-param-matching]
    ("/?animal=dolphin&color=blue", "/", {"animal": ["dolphin"], "color": ["blue"]}),  # [conf httproute-query-param-matching]
    ("/?ANIMAL=Whale", "/", {"ANIMAL": ["Whale"]}),         # [conf httproute-query-param-matching] names keep case
    ("/path1?animal=whale", "/path1", {"animal": ["whale"]}),  # [conf httproute-query-param-matching]
    ("/a?x=%20y&z=a+b", "/a", {"x": [" y"], "z": ["a b"]}),  # [choice] form-decoded like Go url.ParseQuery
    ("/a?x=1&&y=2", "/a", {"x": ["1"], "y": ["2"]}),        # [edge] empty pairs skipped
    ("/a?", "/a", {}),                                       # [edge] empty query string
    ("/a?k=v=w", "/a", {"k": ["v=w"]}),                     # [edge] first "=" splits
    ("", "/", {}),                                           # [edge] empty target
    ("?a=1", "/", {"a": ["1"]}),                             # [edge] query only
    ("/a#frag", "/a", {}),                                   # [edge] fragment dropped
    ("/a%2Fb?x=1", "/a%2Fb", {"x": ["1"]}),                 # [choice] path returned as received
])
def test_split_target(target, path, query):
    assert split_target(target) == (path, query)


def test_join_target_examples():
    assert join_target("/p", {"q": ["1", "2"], "r": [""]}) == "/p?q=1&q=2&r="  # [edge]
    assert join_target("/p", {}) == "/p"                                       # [edge]
    assert join_target("/p", {"a b": ["c&d"]}) == "/p?a+b=c%26d"               # [edge] encoded


# =========================================================================================
# path matching
# =========================================================================================

def P(kind, value):
    return {"type": kind, "value": value}


@pytest.mark.parametrize("match, path, expected", [
    (P("Exact", "/abc"), "/abc", True),            # [spec PathMatchExact]
    (P("Exact", "/abc"), "/abc/", False),          # [spec PathMatchExact] "NOT `/abc/`"
    (P("Exact", "/abc"), "/Abc", False),           # [spec PathMatchExact] "NOT ... `/Abc`"
    (P("Exact", "/abc"), "/abcd", False),          # [spec PathMatchExact] "NOT ... `/abcd`"
    (P("Exact", "/abc"), "/abc?x=1", True),        # [edge] query string is not part of the path
    (P("Exact", "/one"), "/one/example", False),   # [conf httproute-exact-path-matching] 404
    (P("Exact", "/two"), "/two/", False),          # [conf httproute-exact-path-matching] 404
    (P("Exact", "/"), "/", True),                  # [edge] root
    (P("PathPrefix", "/abc"), "/abc", True),       # [spec PathMatchPathPrefix] "`/abc` ... would all match"
    (P("PathPrefix", "/abc"), "/abc/", True),      # [spec PathMatchPathPrefix] "`/abc/`"
    (P("PathPrefix", "/abc"), "/abc/def", True),   # [spec PathMatchPathPrefix] "`/abc/def`"
    (P("PathPrefix", "/abc"), "/abcd", False),     # [spec PathMatchPathPrefix] "but the path `/abcd` would not"
    (P("PathPrefix", "/abc"), "/ABC", False),      # [spec PathMatchPathPrefix] "Matching is case-sensitive"
    (P("PathPrefix", "/abc/"), "/abc", True),      # [spec PathMatchPathPrefix] "a trailing `/` is ignored"
    (P("PathPrefix", "/abc/"), "/abc/def", True),  # [spec PathMatchPathPrefix] trailing "/" ignored
    (P("PathPrefix", "/abc/"), "/abcd", False),    # [spec PathMatchPathPrefix] element-wise
    (P("PathPrefix", "/"), "/", True),             # [spec HTTPRouteMatch.Path] default matches everything
    (P("PathPrefix", "/"), "/anything/at/all", True),  # [spec HTTPRouteRule.Matches] "matching every HTTP request"
    (P("PathPrefix", "/v2"), "/v2", True),         # [conf httproute-matching]
    (P("PathPrefix", "/v2"), "/v2/", True),        # [conf httproute-matching]
    (P("PathPrefix", "/v2"), "/v2/example", True),  # [conf httproute-matching]
    (P("PathPrefix", "/v2"), "/v2example", False),  # [conf httproute-matching] "Not a path segment prefix"
    (P("PathPrefix", "/v2"), "/foo/v2/example", False),  # [conf httproute-matching]
    (P("PathPrefix", "/match/prefix/"), "/match/prefix/any", True),  # [conf httproute-path-match-order]
    (P("PathPrefix", "/a/b"), "/a/b/c/d", True),   # [spec PathMatchPathPrefix] multi-element prefix
    (P("PathPrefix", "/a/b"), "/a/bc", False),     # [spec PathMatchPathPrefix] element-wise
    (P("PathPrefix", "/abc"), "/abc?q=1", True),   # [edge] query ignored
    (P("RegularExpression", "/foo/[0-9]+"), "/foo/123", True),     # [choice] re.fullmatch
    (P("RegularExpression", "/foo/[0-9]+"), "/foo/123/x", False),  # [choice] fullmatch, not search
    (P("RegularExpression", "/foo/[0-9]+"), "/x/foo/123", False),  # [choice] anchored at the start
    (P("RegularExpression", "/Foo"), "/foo", False),               # [spec PathMatchRegularExpression] "with case sensitivity"
    (P("RegularExpression", ".*"), "/anything", True),              # [choice] catch-all regex
    (P("RegularExpression", "/a(["), "/a(", False),                # [choice] invalid regex never matches, no crash
    (P("Unknown", "/"), "/", False),               # [spec PathMatchType] unknown types "must not cause a crash"
    ({"type": "PathPrefix"}, "/x", True),          # [spec HTTPPathMatch.Value] default "/"
    ({"value": "/x"}, "/x/y", True),               # [spec HTTPPathMatch.Type] default PathPrefix
    (None, "/whatever", True),                     # [spec HTTPRouteMatch.Path] default prefix "/"
])
def test_path_matches(match, path, expected):
    assert path_matches(match, path) is expected


# =========================================================================================
# header matching
# =========================================================================================

def H(name, value, kind=None):
    d = {"name": name, "value": value}
    if kind:
        d["type"] = kind
    return d


@pytest.mark.parametrize("matches, headers, expected", [
    ([H("version", "one")], {"Version": "one"}, True),       # [spec HTTPHeaderMatch.Name] "MUST be case-insensitive"
    ([H("Version", "one")], {"version": "one"}, True),       # [spec HTTPHeaderMatch.Name] "foo" and "Foo" equivalent
    ([H("version", "one")], {"version": "One"}, False),      # [spec HTTPHeaderMatch] Exact value is case-sensitive
    ([H("version", "one")], {}, False),                      # [conf httproute-header-matching] missing header: 404
    ([H("version", "two"), H("color", "orange")], {"Version": "two", "Color": "orange"}, True),  # [conf httproute-header-matching] ANDed
    ([H("version", "two"), H("color", "orange")], {"Version": "two"}, False),  # [spec HTTPRouteMatch.Headers] "must match all"
    ([H("color", "blue")], {"Color": "orange"}, False),      # [conf httproute-header-matching]
    ([H("version", "one")], {"Some-Other-Header": "one"}, False),  # [conf httproute-header-matching] 404
    ([H("x", "a"), H("X", "b")], {"x": "a"}, True),          # [spec HTTPHeaderMatch.Name] "only the first entry ... MUST be considered"
    ([H("x", "a"), H("X", "b")], {"x": "b"}, False),         # [spec HTTPHeaderMatch.Name] "Subsequent entries ... MUST be ignored"
    ([H("v", "^v[0-9]$", "RegularExpression")], {"V": "v2"}, True),   # [choice] Python re: explicit anchors are harmless in a full match
    ([H("v", "v[0-9]+", "RegularExpression")], {"V": "v23"}, True),   # [choice] regex
    ([H("v", "v[0-9]", "RegularExpression")], {"V": "v23"}, False),   # [choice] fullmatch
    ([H("v", "a,b")], [("V", "a"), ("v", "b")], True),       # [choice] repeated header joined with ","
    ([], {"anything": "x"}, True),                           # [spec HTTPRouteMatch.Headers] none = no constraint
    (None, None, True),                                      # [edge] nothing to check
    ([H("version", "one")], Headers({"VERSION": "one"}), True),  # [contract] gwlib.filters.Headers accepted
    ([H("v", "x")], {"v": ["x"]}, True),                     # [edge] mapping with list value
    ([H("v", "x", "Unknown")], {"v": "x"}, False),           # [spec HeaderMatchType] unknown type never matches
])
def test_headers_match(matches, headers, expected):
    assert headers_match(matches, headers) is expected


# =========================================================================================
# query param matching
# =========================================================================================

@pytest.mark.parametrize("matches, target, expected", [
    ([H("animal", "whale")], "/?animal=whale", True),          # [conf httproute-query-param-matching]
    ([H("animal", "whale")], "/?animal=dolphin", False),       # [conf httproute-query-param-matching]
    ([H("animal", "whale")], "/?animal=whaledolphin", False),  # [conf httproute-query-param-matching] 404
    ([H("animal", "whale")], "/?ANIMAL=Whale", False),         # [spec HTTPQueryParamMatch.Name] "exact string match"
    ([H("ANIMAL", "Whale")], "/?ANIMAL=Whale", True),          # [conf httproute-query-param-matching] -> v3
    ([H("animal", "whale")], "/?animal=whale&otherparam=irrelevant", True),  # [conf httproute-query-param-matching]
    ([H("animal", "dolphin"), H("color", "blue")], "/?animal=dolphin&color=blue", True),    # [conf httproute-query-param-matching] ANDed
    ([H("animal", "dolphin"), H("color", "blue")], "/?animal=dolphin&color=yellow", False),  # [conf httproute-query-param-matching]
    ([H("animal", "whale")], "/?color=blue", False),           # [conf httproute-query-param-matching] 404
    ([H("animal", "whale")], "/", False),                      # [conf httproute-query-param-matching] 404
    ([H("a", "1")], "/?a=1&a=2", True),                        # [spec HTTPQueryParamMatch.Name] "match against the first value"
    ([H("a", "2")], "/?a=1&a=2", False),                       # [spec HTTPQueryParamMatch.Name] first value only
    ([H("a", "1"), H("a", "2")], "/?a=1", True),               # [spec HTTPQueryParamMatch.Name] later equivalent entries ignored
    ([H("a", "[0-9]+", "RegularExpression")], "/?a=42", True),     # [choice] regex fullmatch
    ([H("a", "[0-9]+", "RegularExpression")], "/?a=42x", False),   # [choice] regex fullmatch
    ([H("q", "a b")], "/?q=a+b", True),                        # [choice] form-decoded values
    ([], "/?x=1", True),                                       # [spec HTTPRouteMatch.QueryParams] none = no constraint
])
def test_query_matches(matches, target, expected):
    assert query_matches(matches, split_target(target)[1]) is expected


# =========================================================================================
# method matching
# =========================================================================================

@pytest.mark.parametrize("method, request_method, expected", [
    ("GET", "GET", True),        # [spec HTTPRouteMatch.Method]
    ("POST", "GET", False),      # [conf httproute-method-matching]
    ("GET", "HEAD", False),      # [conf httproute-method-matching] HEAD is not GET: 404
    ("GET", "get", False),       # [spec HTTPMethod] "The value is expected in upper case"
    (None, "DELETE", True),      # [spec HTTPRouteMatch.Method] unset matches all methods
    ("", "PATCH", True),         # [edge] empty = unset
])
def test_method_matches(method, request_method, expected):
    assert method_matches(method, request_method) is expected


# =========================================================================================
# whole HTTPRouteMatch
# =========================================================================================

@pytest.mark.parametrize("match, method, target, headers, expected", [
    ({}, "GET", "/x", {}, True),                               # [spec HTTPRouteRule.Matches] default matches everything
    ({"path": P("PathPrefix", "/foo"), "headers": [H("version", "v1")]}, "GET", "/foo/bar", {"version": "v1"}, True),  # [spec HTTPRouteMatch] example
    ({"path": P("PathPrefix", "/foo"), "headers": [H("version", "v1")]}, "GET", "/foo/bar", {}, False),  # [spec HTTPRouteMatch] ANDed
    ({"path": P("PathPrefix", "/foo"), "headers": [H("version", "v1")]}, "GET", "/bar", {"version": "v1"}, False),  # [spec HTTPRouteMatch] ANDed
    ({"path": P("PathPrefix", "/path1"), "method": "GET"}, "GET", "/path1", {}, True),   # [conf httproute-method-matching]
    ({"path": P("PathPrefix", "/path1"), "method": "GET"}, "POST", "/path1", {}, False),  # [conf httproute-method-matching]
    ({"path": P("PathPrefix", "/path1"), "queryParams": [H("animal", "whale")]}, "GET", "/path1?animal=whale", {}, True),  # [conf httproute-query-param-matching]
    ({"path": P("PathPrefix", "/path4"), "headers": [H("version", "three")], "queryParams": [H("animal", "kraken")]},
     "GET", "/path4?animal=kraken", {}, False),                # [conf httproute-query-param-matching] subset: 404
    ({"path": P("PathPrefix", "/path4"), "headers": [H("version", "three")], "method": "DELETE"},
     "DELETE", "/path4", {"version": "three"}, True),          # [conf httproute-method-matching]
])
def test_http_match_matches(match, method, target, headers, expected):
    assert http_match_matches(match, method, target, None, headers) is expected


def test_http_match_matches_with_explicit_query():
    # [contract] query given separately: the path carries none
    assert http_match_matches({"queryParams": [H("a", "1")]}, "GET", "/", {"a": ["1"]}, {})
    assert not http_match_matches({"queryParams": [H("a", "1")]}, "GET", "/", {}, {})


# =========================================================================================
# precedence: a tiny router over the conformance route tables
# =========================================================================================

def route(rules, method="GET", target="/", headers=None):
    """Backend of the best match across ``rules`` = [(backend, [HTTPRouteMatch, ...])] of
    one route: sort the matching (match precedence key, rule index), "FIRST matching rule
    (in list order)" breaking ties. None = 404."""
    best = None
    for index, (backend, matches) in enumerate(rules):
        for m in matches or [{}]:
            if http_match_matches(m, method, target, None, headers or {}):
                key = (http_match_precedence_key(m), index)
                if best is None or key < best[0]:
                    best = (key, backend)
    return None if best is None else best[1]


def M(path=None, kind="PathPrefix", method=None, headers=(), query=()):
    m = {}
    if path is not None:
        m["path"] = P(kind, path)
    if method:
        m["method"] = method
    if headers:
        m["headers"] = [H(*h) for h in headers]
    if query:
        m["queryParams"] = [H(*q) for q in query]
    return m


# conformance/tests/httproute-matching.yaml
MATCHING = [
    ("v1", [M("/"), M(headers=[("version", "one")])]),
    ("v2", [M("/v2"), M(headers=[("version", "two")])]),
]
# conformance/tests/httproute-header-matching.yaml
HEADER_MATCHING = [
    ("v1", [M(headers=[("version", "one")])]),
    ("v2", [M(headers=[("version", "two")])]),
    ("v1", [M(headers=[("version", "two"), ("color", "orange")])]),
    ("v1", [M(headers=[("color", "blue")]), M(headers=[("color", "green")])]),
    ("v2", [M(headers=[("color", "red")]), M(headers=[("color", "yellow")])]),
]
# conformance/tests/httproute-exact-path-matching.yaml
EXACT_PATH = [("v1", [M("/one", "Exact")]), ("v2", [M("/two", "Exact")])]
# conformance/tests/httproute-path-match-order.yaml (expectations of the .go table)
PATH_ORDER = [
    ("v1", [M("/match", "Exact")]),
    ("v2", [M("/match/exact", "Exact")]),
    ("v3", [M("/match/exact/one", "Exact")]),
    ("v3", [M("/match/")]),
    ("v1", [M("/match/prefix/")]),
    ("v2", [M("/match/prefix/one")]),
]
# conformance/tests/httproute-method-matching.yaml (reconstructed from the .go table)
METHOD_MATCHING = [
    ("v1", [M(method="POST")]),
    ("v2", [M(method="GET")]),
    ("v1", [M("/path1", method="GET")]),
    ("v2", [M(method="PUT", headers=[("version", "one")])]),
    ("v3", [M("/path2", method="POST", headers=[("version", "two")])]),
    ("v1", [M("/path3", method="PATCH"), M("/path4", method="DELETE", headers=[("version", "three")])]),
    ("v1", [M("/path5", method="PATCH")]),
    ("v2", [M(method="PATCH", headers=[("version", "four")])]),
    ("v3", [M(headers=[("version", "four")])]),
]
# conformance/tests/httproute-query-param-matching.yaml (reconstructed from the .go table)
QUERY_MATCHING = [
    ("v1", [M(query=[("animal", "whale")])]),
    ("v2", [M(query=[("animal", "dolphin")])]),
    ("v3", [M(query=[("animal", "dolphin"), ("color", "blue")]), M(query=[("ANIMAL", "Whale")])]),
    ("v1", [M("/path1", query=[("animal", "whale")])]),
    ("v2", [M(headers=[("version", "one")], query=[("animal", "whale")])]),
    ("v3", [M("/path2", headers=[("version", "two")], query=[("animal", "whale")])]),
    ("v1", [M("/path3", query=[("animal", "shark")]),
            M("/path4", headers=[("version", "three")], query=[("animal", "kraken")])]),
    ("v1", [M("/path5", query=[("animal", "hydra")])]),
    ("v2", [M(query=[("animal", "hydra")])]),
    ("v3", [M(headers=[("version", "four")], query=[("animal", "hydra")])]),
]


@pytest.mark.parametrize("rules, method, target, headers, backend", [
    (MATCHING, "GET", "/", {}, "v1"),                           # [conf httproute-matching]
    (MATCHING, "GET", "/example", {}, "v1"),                    # [conf httproute-matching]
    (MATCHING, "GET", "/", {"Version": "one"}, "v1"),           # [conf httproute-matching]
    (MATCHING, "GET", "/v2", {}, "v2"),                         # [conf httproute-matching] longer prefix
    (MATCHING, "GET", "/v2/example", {}, "v2"),                 # [conf httproute-matching]
    (MATCHING, "GET", "/", {"Version": "two"}, "v2"),           # [conf httproute-matching] header match beats none
    (MATCHING, "GET", "/v2/", {}, "v2"),                        # [conf httproute-matching]
    (MATCHING, "GET", "/v2example", {}, "v1"),                  # [conf httproute-matching] not a segment prefix
    (MATCHING, "GET", "/foo/v2/example", {}, "v1"),             # [conf httproute-matching]
    (HEADER_MATCHING, "GET", "/", {"Version": "one"}, "v1"),    # [conf httproute-header-matching]
    (HEADER_MATCHING, "GET", "/", {"Version": "two"}, "v2"),    # [conf httproute-header-matching]
    (HEADER_MATCHING, "GET", "/", {"Version": "two", "Color": "orange"}, "v1"),  # [conf httproute-header-matching] 2 headers beat 1
    (HEADER_MATCHING, "GET", "/", {"Version": "two", "Color": "blue"}, "v2"),    # [conf httproute-header-matching] tie: first rule
    (HEADER_MATCHING, "GET", "/", {"Color": "orange"}, None),   # [conf httproute-header-matching] 404
    (HEADER_MATCHING, "GET", "/", {"Some-Other-Header": "one"}, None),  # [conf httproute-header-matching] 404
    (HEADER_MATCHING, "GET", "/", {"Color": "blue"}, "v1"),     # [conf httproute-header-matching] ORed matches
    (HEADER_MATCHING, "GET", "/", {"Color": "green"}, "v1"),    # [conf httproute-header-matching]
    (HEADER_MATCHING, "GET", "/", {"Color": "red"}, "v2"),      # [conf httproute-header-matching]
    (HEADER_MATCHING, "GET", "/", {"Color": "yellow"}, "v2"),   # [conf httproute-header-matching]
    (HEADER_MATCHING, "GET", "/", {"Color": "purple"}, None),   # [conf httproute-header-matching] 404
    (EXACT_PATH, "GET", "/one", {}, "v1"),                      # [conf httproute-exact-path-matching]
    (EXACT_PATH, "GET", "/two", {}, "v2"),                      # [conf httproute-exact-path-matching]
    (EXACT_PATH, "GET", "/", {}, None),                         # [conf httproute-exact-path-matching] 404
    (EXACT_PATH, "GET", "/one/example", {}, None),              # [conf httproute-exact-path-matching] 404
    (EXACT_PATH, "GET", "/two/", {}, None),                     # [conf httproute-exact-path-matching] 404
    (PATH_ORDER, "GET", "/match/exact/one", {}, "v3"),          # [conf httproute-path-match-order] Exact first
    (PATH_ORDER, "GET", "/match/exact", {}, "v2"),              # [conf httproute-path-match-order]
    (PATH_ORDER, "GET", "/match", {}, "v1"),                    # [conf httproute-path-match-order] Exact beats "/match/"
    (PATH_ORDER, "GET", "/match/prefix/one/any", {}, "v2"),     # [conf httproute-path-match-order] longest prefix
    (PATH_ORDER, "GET", "/match/prefix/any", {}, "v1"),         # [conf httproute-path-match-order]
    (PATH_ORDER, "GET", "/match/any", {}, "v3"),                # [conf httproute-path-match-order]
    (METHOD_MATCHING, "POST", "/", {}, "v1"),                   # [conf httproute-method-matching]
    (METHOD_MATCHING, "GET", "/", {}, "v2"),                    # [conf httproute-method-matching]
    (METHOD_MATCHING, "HEAD", "/", {}, None),                   # [conf httproute-method-matching] 404
    (METHOD_MATCHING, "GET", "/path1", {}, "v1"),               # [conf httproute-method-matching] longer prefix
    (METHOD_MATCHING, "PUT", "/", {"version": "one"}, "v2"),    # [conf httproute-method-matching]
    (METHOD_MATCHING, "POST", "/path2", {"version": "two"}, "v3"),  # [conf httproute-method-matching]
    (METHOD_MATCHING, "PATCH", "/path3", {}, "v1"),             # [conf httproute-method-matching] ORed
    (METHOD_MATCHING, "DELETE", "/path4", {"version": "three"}, "v1"),  # [conf httproute-method-matching]
    (METHOD_MATCHING, "PUT", "/", {}, None),                    # [conf httproute-method-matching] AND: 404
    (METHOD_MATCHING, "DELETE", "/path4", {}, None),            # [conf httproute-method-matching] AND: 404
    (METHOD_MATCHING, "PATCH", "/path5", {}, "v1"),             # [conf httproute-method-matching] prefix beats method+header
    (METHOD_MATCHING, "PATCH", "/", {"version": "four"}, "v2"),  # [conf httproute-method-matching] method beats headers
    (QUERY_MATCHING, "GET", "/?animal=whale", {}, "v1"),        # [conf httproute-query-param-matching]
    (QUERY_MATCHING, "GET", "/?animal=dolphin", {}, "v2"),      # [conf httproute-query-param-matching]
    (QUERY_MATCHING, "GET", "/?animal=dolphin&color=blue", {}, "v3"),  # [conf httproute-query-param-matching] 2 params beat 1
    (QUERY_MATCHING, "GET", "/?ANIMAL=Whale", {}, "v3"),        # [conf httproute-query-param-matching]
    (QUERY_MATCHING, "GET", "/?animal=whale&otherparam=irrelevant", {}, "v1"),  # [conf httproute-query-param-matching]
    (QUERY_MATCHING, "GET", "/?animal=dolphin&color=yellow", {}, "v2"),  # [conf httproute-query-param-matching]
    (QUERY_MATCHING, "GET", "/?color=blue", {}, None),          # [conf httproute-query-param-matching] 404
    (QUERY_MATCHING, "GET", "/?animal=dog", {}, None),          # [conf httproute-query-param-matching] 404
    (QUERY_MATCHING, "GET", "/?animal=whaledolphin", {}, None),  # [conf httproute-query-param-matching] 404
    (QUERY_MATCHING, "GET", "/", {}, None),                     # [conf httproute-query-param-matching] 404
    (QUERY_MATCHING, "GET", "/path1?animal=whale", {}, "v1"),   # [conf httproute-query-param-matching]
    (QUERY_MATCHING, "GET", "/?animal=whale", {"version": "one"}, "v2"),  # [conf httproute-query-param-matching] header beats query
    (QUERY_MATCHING, "GET", "/path2?animal=whale", {"version": "two"}, "v3"),  # [conf httproute-query-param-matching]
    (QUERY_MATCHING, "GET", "/path3?animal=shark", {}, "v1"),   # [conf httproute-query-param-matching] ORed
    (QUERY_MATCHING, "GET", "/path4?animal=kraken", {"version": "three"}, "v1"),  # [conf httproute-query-param-matching]
    (QUERY_MATCHING, "GET", "/?animal=shark", {}, None),        # [conf httproute-query-param-matching] AND: 404
    (QUERY_MATCHING, "GET", "/path4?animal=kraken", {}, None),  # [conf httproute-query-param-matching] AND: 404
    (QUERY_MATCHING, "GET", "/path5?animal=hydra", {}, "v1"),   # [conf httproute-query-param-matching] prefix first
    (QUERY_MATCHING, "GET", "/?animal=hydra", {"version": "four"}, "v3"),  # [conf httproute-query-param-matching] headers first
])
def test_conformance_precedence(rules, method, target, headers, backend):
    assert route(rules, method, target, headers) == backend


@pytest.mark.parametrize("higher, lower", [
    (M("/a", "Exact"), M("/a/b/c/d/e/f")),                     # [spec Matches] "Exact" path match first
    (M("/a", "Exact"), M("/a", headers=[("x", "1"), ("y", "2")])),  # [spec Matches] Exact beats more headers
    (M("/abcdef"), M("/abc")),                                  # [spec Matches] "largest number of characters"
    (M("/abc", method="GET"), M("/abc")),                       # [spec Matches] "Method match"
    (M("/abc", method="GET"), M("/abc", headers=[("x", "1")])),  # [spec Matches] method before headers
    (M("/abc", headers=[("x", "1"), ("y", "1")]), M("/abc", headers=[("x", "1")])),  # [spec Matches] more headers
    (M("/abc", headers=[("x", "1")]), M("/abc", query=[("q", "1"), ("r", "1")])),  # [spec Matches] headers before query
    (M("/abc", query=[("q", "1"), ("r", "1")]), M("/abc", query=[("q", "1")])),  # [spec Matches] more query params
    (M("/abcd"), M("/abc", method="GET")),                      # [spec Matches] prefix length before method
    (M("/x.*", "RegularExpression"), M("/"),),                  # [choice] regex before every PathPrefix (as Envoy Gateway)
    (M("/a", "Exact"), M("/a.*", "RegularExpression")),         # [choice] Exact before regex (as Envoy Gateway)
    (M("/x/.*", "RegularExpression"), M(".*", "RegularExpression")),  # [choice] longer regex first
    (M("/a.*", "RegularExpression"), {}),                       # [choice] a regex is not shadowed by the default "/"
])
def test_http_match_precedence_key_order(higher, lower):
    assert http_match_precedence_key(higher) < http_match_precedence_key(lower)


def test_http_match_precedence_key_counts_deduplicated_names():
    # [spec HTTPHeaderMatch.Name] ignored duplicates do not count as header matches
    dup = {"headers": [H("x", "1"), H("X", "2")]}
    one = {"headers": [H("x", "1")]}
    assert http_match_precedence_key(dup) == http_match_precedence_key(one)
    # [spec HTTPRouteMatch.Path] default path equals an explicit PathPrefix "/"
    assert http_match_precedence_key({}) == http_match_precedence_key(M("/"))


# =========================================================================================
# gRPC
# =========================================================================================

SVC = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"


def G(service=None, method=None, kind=None, headers=()):
    mm = {}
    if service is not None:
        mm["service"] = service
    if method is not None:
        mm["method"] = method
    if kind:
        mm["type"] = kind
    m = {"method": mm} if mm else {}
    if headers:
        m["headers"] = [H(*h) for h in headers]
    return m


@pytest.mark.parametrize("match, service, method, headers, expected", [
    (G(SVC, "Echo"), SVC, "Echo", {}, True),                 # [conf grpcroute-exact-method-matching]
    (G(SVC, "EchoTwo"), SVC, "EchoTwo", {}, True),           # [conf grpcroute-exact-method-matching]
    (G(SVC, "Echo"), SVC, "EchoThree", {}, False),           # [conf grpcroute-exact-method-matching] UNIMPLEMENTED
    (G(SVC, "Echo"), SVC, "echo", {}, False),                # [spec GRPCMethodMatchExact] "with case sensitivity"
    (G(SVC), SVC, "Anything", {}, True),                     # [spec GRPCMethodMatch.Method] omitted: any method
    (G(method="Echo"), "other.Svc", "Echo", {}, True),       # [spec GRPCMethodMatch.Service] omitted: any service
    (G("other.Svc"), SVC, "Echo", {}, False),                # [spec GRPCMethodMatch] service must equal
    ({}, SVC, "Echo", {}, True),                             # [spec GRPCRouteMatch.Method] "all services and methods will match"
    (None, "a.B", "C", {}, True),                            # [spec GRPCRouteRule.Matches] no matches: every request
    (G(SVC, "Echo", headers=[("version", "one")]), SVC, "Echo", {"Version": "one"}, True),  # [conf grpcroute-header-matching]
    (G(SVC, "Echo", headers=[("version", "one")]), SVC, "Echo", {"Version": "two"}, False),  # [conf grpcroute-header-matching]
    (G(headers=[("x", "1")]), "a.B", "C", {"X": "1"}, True),  # [spec GRPCHeaderMatch] names case-insensitive
    (G(r"gateway_api_conformance\..*", "Echo.*", "RegularExpression"), SVC, "EchoTwo", {}, True),  # [choice] regex fullmatch
    (G(r"grpcecho", None, "RegularExpression"), SVC, "Echo", {}, False),  # [choice] fullmatch, not search
])
def test_grpc_match_matches(match, service, method, headers, expected):
    assert grpc_match_matches(match, service, method, headers) is expected


@pytest.mark.parametrize("higher, lower", [
    (G("a.LongerService"), G("a.Svc")),                      # [spec GRPCRouteRule.Matches] "Characters in a matching service"
    (G("a.Svc", "Method"), G("a.Svc")),                      # [spec GRPCRouteRule.Matches] "Characters in a matching method"
    (G("a.Svc", "LongMethod"), G("a.Svc", "M")),             # [spec GRPCRouteRule.Matches] method characters
    (G("a.Svc", "M", headers=[("x", "1")]), G("a.Svc", "M")),  # [spec GRPCRouteRule.Matches] "Header matches"
    (G("a.Svc"), G(method="VeryLongMethodName")),            # [spec GRPCRouteRule.Matches] service before method
    (G("a.Svc"), {}),                                        # [edge] anything before match-all
])
def test_grpc_match_precedence_key(higher, lower):
    assert grpc_match_precedence_key(higher) < grpc_match_precedence_key(lower)


# =========================================================================================
# properties
# =========================================================================================

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
tld = st.from_regex(r"[a-z]{2,6}", fullmatch=True)   # a letter-only top label: never an IP literal
domain = st.tuples(st.lists(label, min_size=0, max_size=3), tld).map(lambda t: ".".join([*t[0], t[1]]))
path_segment = st.from_regex(r"[A-Za-z0-9._~-]{1,8}", fullmatch=True)
abs_path = st.lists(path_segment, min_size=0, max_size=4).map(lambda s: "/" + "/".join(s))


@FAST
@given(domain)
def test_prop_wildcard_never_matches_bare_parent(d):
    # [spec Hostnames] "`*.example.com` ... but not `example.com`"
    assert not hostname_matches("*." + d, d)


@FAST
@given(st.lists(label, min_size=1, max_size=3).map(".".join), domain)
def test_prop_wildcard_matches_any_labels_left(prefix, d):
    # [spec Listener] "The wildcard character will match any number of characters _and dots_"
    assert hostname_matches("*." + d, prefix + "." + d)


@FAST
@given(domain, st.integers(min_value=1, max_value=65535))
def test_prop_strip_port(d, port):
    # [spec Hostnames] "MUST ignore any port value"
    assert strip_port(f"{d.upper()}:{port}") == d
    assert strip_port(strip_port(f"{d}:{port}")) == d


query_name = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6)
query_value = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)


@FAST
@given(abs_path, st.dictionaries(query_name, st.lists(query_value, min_size=1, max_size=3), max_size=4))
def test_prop_split_target_round_trips(path, query):
    # [contract] split_target inverts join_target
    assert split_target(join_target(path, query)) == (path, query)


@FAST
@given(abs_path, st.lists(path_segment, max_size=3))
def test_prop_prefix_matches_itself_and_below(prefix, rest):
    # [spec PathMatchPathPrefix] a prefix matches itself, itself + "/" and every sub-path
    assert path_prefix_matches(prefix, prefix)
    assert path_prefix_matches(prefix, prefix.rstrip("/") + "/")
    assert path_prefix_matches(prefix, prefix.rstrip("/") + "/" + "/".join(rest))
    assert path_prefix_matches(prefix + "/", prefix)  # trailing "/" ignored


@FAST
@given(abs_path.filter(lambda p: p != "/"), path_segment)
def test_prop_prefix_is_element_wise(prefix, extra):
    # [spec PathMatchPathPrefix] "/abcd" does not match "/abc"
    assert not path_prefix_matches(prefix, prefix + extra)


hostname_or_wildcard = st.one_of(domain, domain.map(lambda d: "*." + d))


@FAST
@given(hostname_or_wildcard, hostname_or_wildcard)
def test_prop_intersection_is_symmetric_and_sound(a, b):
    # [spec Hostnames] intersection does not depend on which side is the listener, and
    # every host the intersection serves is matched by both sides.
    ab = intersect_hostnames(a, [b])
    assert ab == intersect_hostnames(b, [a])
    for h in ab:
        sample = "x." + h[2:] if h.startswith("*.") else h
        assert hostname_matches(a, sample) and hostname_matches(b, sample)


@FAST
@given(st.lists(st.one_of(st.none(), hostname_or_wildcard), max_size=5), st.one_of(domain, domain.map(lambda d: "x." + d)))
def test_prop_selected_listener_is_the_most_specific_match(listeners, host):
    # [spec Listeners] "from the most specific to least specific Hostname values"
    chosen = select_listener(listeners, host)
    matching = [i for i, lh in enumerate(listeners) if hostname_matches(lh or "", host)]
    if not matching:
        assert chosen is None
        return
    assert chosen in matching
    for i in matching:
        assert listener_precedence_key(listeners[chosen]) <= listener_precedence_key(listeners[i])


@FAST
@given(abs_path, abs_path, st.integers(0, 3), st.integers(0, 3), st.booleans())
def test_prop_exact_always_precedes_prefix(exact, prefix, nh, nq, with_method):
    # [spec Matches] "Exact" path match comes first, whatever else the prefix match has
    other = M(prefix, method="GET" if with_method else None,
              headers=[(f"h{i}", "v") for i in range(nh)], query=[(f"q{i}", "v") for i in range(nq)])
    assert http_match_precedence_key(M(exact, "Exact")) < http_match_precedence_key(other)
