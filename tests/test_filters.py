"""Table-driven tests of gwlib.filters, written from the Gateway API v1.6.1 spec text.

Every row names where it comes from:
  [spec X]   the doc comment of type/field X in apis/v1/httproute_types.go
  [conf T]   the request/expectation table of conformance test T (conformance/tests/T.go),
             with the route taken from T.yaml
  [choice]   an implementation-specific choice documented in gwlib/filters.py
  [edge]     a robustness case the spec implies but does not spell out
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gwlib.filters import (
    CORS_DEFAULT_MAX_AGE,
    Headers,
    apply_header_modifier,
    canonical_header_name,
    cors_origin_allowed,
    cors_preflight,
    cors_response_headers,
    is_cors_preflight,
    mirror_fraction,
    modify_path,
    origin_matches,
    redirect,
    replace_prefix,
    rewrite,
)

FAST = settings(max_examples=60, deadline=None, database=None)


# =========================================================================================
# Headers
# =========================================================================================

def test_headers_get_is_case_insensitive():
    h = Headers({"X-Env": "canary"})
    assert h.get("x-env") == h.get("X-ENV") == h["x-EnV"] == "canary"  # [spec HTTPHeader.Name] case-insensitive
    assert "x-env" in h and "X-Env" in h and "other" not in h
    assert h.get("missing") is None and h.get("missing", "d") == "d"


def test_headers_repeated_values_join_without_space():
    # [contract] design §4.1 "repeated values are joined with `,` and no space"
    h = Headers([("X-A", "1"), ("x-a", "2"), ("X-B", "3")])
    assert h.get("x-a") == "1,2"
    assert h.get_all("X-A") == ["1", "2"]
    assert h.to_dict() == {"X-A": "1,2", "X-B": "3"}   # canonical = as first sent
    assert list(h) == [("X-A", "1"), ("x-a", "2"), ("X-B", "3")]  # fields as sent
    assert len(h) == 2


def test_headers_set_add_remove():
    h = Headers({"my-header": "foo", "Other": "o"})
    h.set("MY-HEADER", "bar")                        # [spec HTTPHeaderFilter.Set] overwrites
    assert h.to_dict() == {"my-header": "bar", "Other": "o"}  # keeps spelling and position
    h.add("My-Header", "baz")                        # [spec HTTPHeaderFilter.Add] appends
    assert h.get("my-header") == "bar,baz"
    h.remove("MY-header")                            # [spec HTTPHeaderFilter.Remove] case-insensitive
    assert "my-header" not in h and h.to_dict() == {"Other": "o"}
    h.remove("absent")                               # [edge] removing an absent header is fine
    h.set("New", 1)                                  # [edge] new header appended, value as str
    assert h.to_dict() == {"Other": "o", "New": "1"}


def test_headers_copy_is_independent_and_equality_ignores_case():
    a = Headers({"A": "1"})
    b = a.copy()
    b.add("a", "2")
    assert a.get("A") == "1" and b.get("A") == "1,2"
    assert Headers({"X-Y": "v"}) == Headers({"x-y": "v"}) == {"X-y": "v"}
    assert Headers({"X-Y": "v"}) != Headers({"X-Y": "w"})


def test_headers_init_forms():
    assert Headers().to_dict() == {} and not Headers()
    assert Headers({"A": ["1", "2"]}).get("a") == "1,2"      # [edge] list values
    assert Headers(Headers({"A": "1"})).to_dict() == {"A": "1"}
    with pytest.raises(KeyError):
        Headers()["nope"]
    h = Headers({"A": "1"})
    del h["a"]
    assert "A" not in h


@pytest.mark.parametrize("name, expected", [
    ("x-env", "X-Env"),                     # [contract] filters.py CONTRACT example
    ("content-type", "Content-Type"),       # [contract] filters.py CONTRACT example
    ("X-ENV", "X-Env"),                     # [edge] like Go http.CanonicalHeaderKey
    ("accept", "Accept"),
    ("x-header-add-append", "X-Header-Add-Append"),  # [conf httproute-rewrite-path]
    ("www-authenticate", "Www-Authenticate"),         # [edge] Go spelling
    ("x--y", "X--Y"),                       # [edge] empty segment
    ("bad header", "bad header"),           # [spec HeaderName] not a token: unchanged
])
def test_canonical_header_name(name, expected):
    assert canonical_header_name(name) == expected


# =========================================================================================
# header modifiers (request and response use the same HTTPHeaderFilter)
# =========================================================================================

SET = {"set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}]}
ADD = {"add": [{"name": "X-Header-Add", "value": "add-appends-values"}]}
REMOVE = {"remove": ["X-Header-Remove"]}
MULTIPLE = {
    "set": [{"name": "X-Header-Set-1", "value": "header-set-1"}, {"name": "X-Header-Set-2", "value": "header-set-2"}],
    "add": [{"name": "X-Header-Add-1", "value": "header-add-1"}, {"name": "X-Header-Add-2", "value": "header-add-2"},
            {"name": "X-Header-Add-3", "value": "header-add-3"}],
    "remove": ["X-Header-Remove-1", "X-Header-Remove-2"],
}
CASE = {"set": [{"name": "X-Header-Set", "value": "header-set"}],
        "add": [{"name": "X-Header-Add", "value": "header-add"}],
        "remove": ["X-Header-Remove"]}
REWRITE_HEADERS = {"set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}],
                   "add": [{"name": "X-Header-Add", "value": "header-val-1"},
                           {"name": "X-Header-Add-Append", "value": "header-val-2"}],
                   "remove": ["X-Header-Remove"]}


@pytest.mark.parametrize("modifier, sent, expected, absent", [
    (SET, {"Some-Other-Header": "val"},
     {"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"}, []),  # [conf httproute-request/response-header-modifier] /set
    (SET, {"Some-Other-Header": "val", "X-Header-Set": "some-other-value"},
     {"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"}, []),  # [conf ...header-modifier] set overwrites
    (ADD, {"Some-Other-Header": "val"},
     {"Some-Other-Header": "val", "X-Header-Add": "add-appends-values"}, []),     # [conf ...header-modifier] /add
    (ADD, {"Some-Other-Header": "val", "X-Header-Add": "some-other-value"},
     {"Some-Other-Header": "val", "X-Header-Add": "some-other-value,add-appends-values"}, []),  # [conf ...header-modifier] add appends
    (REMOVE, {"X-Header-Remove": "val"}, {}, ["X-Header-Remove"]),              # [conf ...header-modifier] /remove
    (MULTIPLE, {"X-Header-Set-2": "set-val-2", "X-Header-Add-2": "add-val-2",
                "X-Header-Remove-2": "remove-val-2", "Another-Header": "another-header-val"},
     {"X-Header-Set-1": "header-set-1", "X-Header-Set-2": "header-set-2", "X-Header-Add-1": "header-add-1",
      "X-Header-Add-2": "add-val-2,header-add-2", "X-Header-Add-3": "header-add-3",
      "Another-Header": "another-header-val"},
     ["X-Header-Remove-1", "X-Header-Remove-2"]),                               # [conf ...header-modifier] /multiple
    (CASE, {"x-header-set": "original-val-set", "x-header-add": "original-val-add",
            "x-header-remove": "original-val-remove", "Another-Header": "another-header-val"},
     {"X-Header-Set": "header-set", "X-Header-Add": "original-val-add,header-add",
      "Another-Header": "another-header-val"},
     ["x-header-remove", "X-Header-Remove"]),                                   # [conf ...header-modifier] /case-insensitivity
    (REWRITE_HEADERS, {"X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1", "X-Header-Set": "set-val"},
     {"X-Header-Add": "header-val-1", "X-Header-Add-Append": "append-val-1,header-val-2",
      "X-Header-Set": "set-overwrites-values"}, ["X-Header-Remove"]),          # [conf httproute-rewrite-path] rewrite + modify headers
    ({"set": [{"name": "my-header", "value": "bar"}]}, {"my-header": "foo"}, {"my-header": "bar"}, []),  # [spec HTTPHeaderFilter.Set] example
    ({"add": [{"name": "my-header", "value": "bar,baz"}]}, {"my-header": "foo"}, {"my-header": "foo,bar,baz"}, []),  # [spec HTTPHeaderFilter.Add] example
    ({"remove": ["my-header1", "my-header3"]}, {"my-header1": "foo", "my-header2": "bar", "my-header3": "baz"},
     {"my-header2": "bar"}, ["my-header1", "my-header3"]),                     # [spec HTTPHeaderFilter.Remove] example
    ({}, {"A": "1"}, {"A": "1"}, []),                                           # [edge] empty filter is a no-op
    ({"remove": ["Absent"]}, {"A": "1"}, {"A": "1"}, ["Absent"]),               # [edge] removing an absent header
])
def test_apply_header_modifier(modifier, sent, expected, absent):
    out = apply_header_modifier(Headers(sent), modifier)
    for name, value in expected.items():
        assert out.get(name) == value, name
    assert len(out) == len(expected)
    for name in absent:
        assert name not in out


def test_apply_header_modifier_does_not_mutate_input_and_keeps_first_spelling():
    sent = Headers({"x-header-add": "a"})
    out = apply_header_modifier(sent, ADD)
    assert sent.to_dict() == {"x-header-add": "a"}                # [contract] works on a copy
    assert out.to_dict() == {"x-header-add": "a,add-appends-values"}  # [contract] canonical = as first sent
    assert apply_header_modifier({"A": "1"}, SET).get("x-header-set") == "set-overwrites-values"  # mapping accepted


# =========================================================================================
# ReplacePrefixMatch
# =========================================================================================

@pytest.mark.parametrize("path, prefix, replacement, expected", [
    ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),     # [spec HTTPPathModifier.ReplacePrefixMatch] table row 1
    ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),    # [spec ...ReplacePrefixMatch] table row 2
    ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),    # [spec ...ReplacePrefixMatch] table row 3
    ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),   # [spec ...ReplacePrefixMatch] table row 4
    ("/foo", "/foo", "/xyz", "/xyz"),             # [spec ...ReplacePrefixMatch] table row 5
    ("/foo/", "/foo", "/xyz", "/xyz/"),           # [spec ...ReplacePrefixMatch] table row 6
    ("/foo/bar", "/foo", "", "/bar"),             # [spec ...ReplacePrefixMatch] table row 7
    ("/foo/", "/foo", "", "/"),                   # [spec ...ReplacePrefixMatch] table row 8
    ("/foo", "/foo", "", "/"),                    # [spec ...ReplacePrefixMatch] table row 9
    ("/foo/", "/foo", "/", "/"),                  # [spec ...ReplacePrefixMatch] table row 10
    ("/foo", "/foo", "/", "/"),                   # [spec ...ReplacePrefixMatch] table row 11
    ("/prefix/one/two", "/prefix/one", "/one", "/one/two"),  # [conf httproute-rewrite-path]
    ("/strip-prefix/three", "/strip-prefix", "/", "/three"),  # [conf httproute-rewrite-path]
    ("/strip-prefix", "/strip-prefix", "/", "/"),  # [conf httproute-rewrite-path]
    ("/prefix/rewrite-path-and-modify-headers/one", "/prefix/rewrite-path-and-modify-headers", "/prefix", "/prefix/one"),  # [conf httproute-rewrite-path]
    ("/original-prefix/lemon", "/original-prefix", "/replacement-prefix", "/replacement-prefix/lemon"),  # [conf httproute-redirect-path]
    ("/path-and-host", "/path-and-host", "/replacement-prefix", "/replacement-prefix"),  # [conf httproute-redirect-path]
    ("/foo/bar?x=1", "/foo", "/xyz", "/xyz/bar?x=1"),  # [contract] query string kept
    ("/a", "/", "/b", "/b/a"),                    # [edge] prefix "/" keeps the whole path
    ("/", "/", "/b", "/b"),                       # [choice] root with prefix "/": like "/foo" with "/foo" (row 5)
    ("/a/", "/", "/b", "/b/a/"),                  # [spec ...ReplacePrefixMatch] trailing "/" of the path kept (row 6)
    ("/", "/", "/", "/"),                         # [edge] identity on the root
    ("/foo", "/foo", "/xyz/", "/xyz"),            # [choice] trailing "/" of the replacement dropped
    ("/foo/bar", "/foo", "xyz", "/xyz/bar"),      # [choice] replacement without leading "/"
    ("/foobar", "/foo", "/xyz", "/foobar"),       # [edge] not a prefix match: unchanged
    ("/foo//bar", "/foo", "/x", "/x//bar"),       # [choice] remainder kept as received
])
def test_replace_prefix(path, prefix, replacement, expected):
    assert replace_prefix(path, prefix, replacement) == expected


@pytest.mark.parametrize("path, modifier, matched_prefix, expected", [
    ("/full/one/two", {"type": "ReplaceFullPath", "replaceFullPath": "/one"}, None, "/one"),  # [conf httproute-rewrite-path]
    ("/full/rewrite-path-and-modify-headers/test", {"type": "ReplaceFullPath", "replaceFullPath": "/test"}, None, "/test"),  # [conf httproute-rewrite-path]
    ("/a/b?q=1", {"type": "ReplaceFullPath", "replaceFullPath": "/c"}, "/a", "/c?q=1"),  # [contract] query kept
    ("/a/b", {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/z"}, "/a", "/z/b"),  # [spec HTTPPathModifier]
    ("/a/b", {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/z"}, None, "/z/a/b"),  # [choice] unknown prefix = "/"
    ("/a/b", None, "/a", "/a/b"),                # [spec HTTPRequestRedirectFilter.Path] "When empty, the request path is used as-is"
    ("/a/b", {"type": "Other"}, "/a", "/a/b"),   # [spec HTTPPathModifier.Type] unknown type: no crash
])
def test_modify_path(path, modifier, matched_prefix, expected):
    assert modify_path(path, modifier, matched_prefix) == expected


# =========================================================================================
# URLRewrite
# =========================================================================================

@pytest.mark.parametrize("host, path, url_rewrite, prefix, expected", [
    ("example.com", "/prefix/one/two", {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"}},
     "/prefix/one", ("example.com", "/one/two")),                     # [conf httproute-rewrite-path]
    ("example.com", "/full/one/two", {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/one"}},
     "/full/one", ("example.com", "/one")),                           # [conf httproute-rewrite-path]
    ("rewrite.example", "/one", {"hostname": "one.example.org"}, "/one",
     ("one.example.org", "/one")),                                    # [conf httproute-rewrite-host]
    ("rewrite.example:8080", "/x", {"hostname": "new.example"}, "/", ("new.example", "/x")),  # [spec URLRewrite.Hostname] replaces the Host header value
    ("foo.com:8080", "/x", {}, "/", ("foo.com:8080", "/x")),         # [spec Hostnames] "MUST forward this header unmodified"
    ("rewrite.example", "/", {"hostname": "example.org"}, None,
     ("example.org", "/")),                                           # [conf httproute-rewrite-host] rule without matches
    ("rewrite.example", "/rewrite-host-and-modify-headers", {"hostname": "test.example.org"},
     "/rewrite-host-and-modify-headers", ("test.example.org", "/rewrite-host-and-modify-headers")),  # [conf httproute-rewrite-host]
    ("h", "/a/b?q=1", {"hostname": "n", "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
     "/a", ("n", "/b?q=1")),                                          # [contract] both, query kept
    ("h", "/a", None, None, ("h", "/a")),                             # [edge] no rewrite
])
def test_rewrite(host, path, url_rewrite, prefix, expected):
    assert rewrite(host, path, url_rewrite, prefix) == expected


# =========================================================================================
# RequestRedirect
# =========================================================================================

def RR(scheme=None, port=None, hostname="example.org", **extra):
    r = {"hostname": hostname} if hostname else {}
    if scheme:
        r["scheme"] = scheme
    if port:
        r["port"] = port
    r.update(extra)
    return r


@pytest.mark.parametrize("req_scheme, listener_port, rr, location", [
    # [conf httproute-redirect-port-and-scheme] HTTP listener on port 80
    ("http", 80, RR(), "http://example.org/p"),                          # scheme-nil-and-port-nil
    ("http", 80, RR(port=80), "http://example.org/p"),                   # scheme-nil-and-port-80
    ("http", 80, RR(port=8080), "http://example.org:8080/p"),            # scheme-nil-and-port-8080
    ("http", 80, RR("https"), "https://example.org/p"),                  # scheme-https-and-port-nil
    ("http", 80, RR("https", 443), "https://example.org/p"),             # scheme-https-and-port-443
    ("http", 80, RR("https", 8443), "https://example.org:8443/p"),       # scheme-https-and-port-8443
    # [conf httproute-redirect-port-and-scheme] HTTP listener on port 8080
    ("http", 8080, RR(), "http://example.org:8080/p"),                   # scheme-nil-and-port-nil: listener port
    ("http", 8080, RR(port=80), "http://example.org/p"),                 # scheme-nil-and-port-80
    ("http", 8080, RR("https"), "https://example.org/p"),                # scheme-https-and-port-nil: well-known 443
    # [conf httproute-redirect-port-and-scheme] HTTPS listener on port 443
    ("https", 443, RR(), "https://example.org/p"),                       # scheme-nil-and-port-nil
    ("https", 443, RR(port=443), "https://example.org/p"),               # scheme-nil-and-port-443
    ("https", 443, RR(port=8443), "https://example.org:8443/p"),         # scheme-nil-and-port-8443
    ("https", 443, RR("http"), "http://example.org/p"),                  # scheme-http-and-port-nil: well-known 80
    ("https", 443, RR("http", 80), "http://example.org/p"),              # scheme-http-and-port-80
    ("https", 443, RR("http", 8080), "http://example.org:8080/p"),       # scheme-http-and-port-8080
    # [spec HTTPRequestRedirectFilter.Port] more of the same rules
    ("https", 8443, RR(), "https://example.org:8443/p"),                 # scheme empty: "MUST be the Gateway Listener port"
    ("http", 443, RR(), "http://example.org:443/p"),                     # http on 443 is not the well-known pair: port kept
    ("https", 80, RR(), "https://example.org:80/p"),                     # https on 80: port kept
    ("http", 8080, RR("http"), "http://example.org/p"),                  # scheme set: "the well-known port associated with the redirect scheme"
])
def test_redirect_port_and_scheme(req_scheme, listener_port, rr, location):
    assert redirect(req_scheme, "gw.example:%d" % listener_port, "/p", listener_port, rr, "/") == (302, location)


@pytest.mark.parametrize("path, prefix, rr, status, location", [
    # [conf httproute-redirect-path] (request Host: the Gateway, listener 80)
    ("/original-prefix/lemon", "/original-prefix",
     {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/replacement-prefix"}},
     302, "http://gw.example/replacement-prefix/lemon"),
    ("/full/path/original", "/full",
     {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/full-path-replacement"}},
     302, "http://gw.example/full-path-replacement"),
    ("/path-and-host", "/path-and-host",
     {"hostname": "example.org", "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/replacement-prefix"}},
     302, "http://example.org/replacement-prefix"),
    ("/path-and-status", "/path-and-status",
     {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/replacement-prefix"}, "statusCode": 301},
     301, "http://gw.example/replacement-prefix"),
    ("/full-path-and-host", "/full-path-and-host",
     {"hostname": "example.org", "path": {"type": "ReplaceFullPath", "replaceFullPath": "/replacement-full"}},
     302, "http://example.org/replacement-full"),
    ("/full-path-and-status", "/full-path-and-status",
     {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/replacement-full"}, "statusCode": 301},
     301, "http://gw.example/replacement-full"),
    # [conf httproute-redirect-host-and-status]
    ("/hostname-redirect", "/hostname-redirect", {"hostname": "example.org"}, 302, "http://example.org/hostname-redirect"),
    ("/status-code-301", "/status-code-301", {"statusCode": 301}, 301, "http://gw.example/status-code-301"),
    ("/host-and-status", "/host-and-status", {"hostname": "example.org", "statusCode": 301}, 301, "http://example.org/host-and-status"),
    # [spec HTTPRequestRedirectFilter.StatusCode] enum 301;302;303;307;308, default 302
    ("/x", "/", {"statusCode": 303}, 303, "http://gw.example/x"),        # [conf httproute-303-redirect]
    ("/x", "/", {"statusCode": 307}, 307, "http://gw.example/x"),        # [conf httproute-307-redirect]
    ("/x", "/", {"statusCode": 308}, 308, "http://gw.example/x"),        # [conf httproute-308-redirect]
    ("/x", "/", {}, 302, "http://gw.example/x"),                          # [spec ...StatusCode] default 302
    ("/x", "/", None, 302, "http://gw.example/x"),                        # [edge] empty filter
    # [contract] the query string is kept; [spec ...Path] "When empty, the request path is used as-is"
    ("/search?q=gateway&page=2", "/", {"scheme": "https"}, 302, "https://gw.example/search?q=gateway&page=2"),
    ("/old/a?x=1", "/old", {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}},
     302, "http://gw.example/new/a?x=1"),
    ("/old/a?x=1", "/old", {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/fixed"}},
     302, "http://gw.example/fixed?x=1"),
])
def test_redirect_path_host_status(path, prefix, rr, status, location):
    assert redirect("http", "gw.example", path, 80, rr, prefix) == (status, location)


@pytest.mark.parametrize("scheme, host, port, rr, location", [
    ("http", "Foo.Example:8080", 8080, {}, "http://foo.example:8080/p"),  # [spec ...Hostname] "the hostname in the `Host` header" (port from listener)
    ("http", "foo.example:9999", 80, {}, "http://foo.example/p"),         # [spec ...Port] Host-header port is not the redirect port
    ("http", "[::1]:8080", 8080, {}, "http://[::1]:8080/p"),              # [edge] IPv6 literal stays bracketed
    ("http", "[::1]", 80, {"scheme": "https"}, "https://[::1]/p"),       # [edge] IPv6, well-known port omitted
    ("http", "192.0.2.1:80", 80, {}, "http://192.0.2.1/p"),               # [edge] IPv4 address as host
    ("https", "a.example", 443, {"hostname": "b.example", "port": 443}, "https://b.example/p"),  # [spec ...Port] SHOULD NOT add 443 for https
])
def test_redirect_hosts(scheme, host, port, rr, location):
    assert redirect(scheme, host, "/p", port, rr, "/")[1] == location


# =========================================================================================
# RequestMirror
# =========================================================================================

@pytest.mark.parametrize("mirror, expected", [
    ({}, 1.0),                                                   # [spec HTTPRequestMirrorFilter] "If neither field is specified, 100%"
    (None, 1.0),                                                 # [edge]
    ({"percent": 0}, 0.0),                                       # [spec ...Percent] "0 (indicating 0% of requests)"
    ({"percent": 20}, 0.2),                                      # [conf httproute-request-percentage-mirror] /percent-mirror
    ({"percent": 35}, 0.35),                                     # [conf httproute-request-percentage-mirror] multi-mirror, first
    ({"percent": 50}, 0.5),                                      # [conf httproute-request-percentage-mirror] multi-mirror, second
    ({"percent": 100}, 1.0),                                     # [spec ...Percent] maximum 100
    ({"fraction": {"numerator": 25, "denominator": 50}}, 0.5),  # [conf httproute-request-percentage-mirror]
    ({"fraction": {"numerator": 1}}, 0.01),                      # [spec Fraction.Denominator] default 100
    ({"fraction": {"numerator": 0, "denominator": 3}}, 0.0),     # [spec Fraction.Numerator] minimum 0
    ({"fraction": {"numerator": 3, "denominator": 3}}, 1.0),     # [spec Fraction] numerator <= denominator
    ({"percent": 150}, 1.0),                                     # [edge] clamped
])
def test_mirror_fraction(mirror, expected):
    assert mirror_fraction(mirror) == pytest.approx(expected)


# =========================================================================================
# CORS: origin matching
# =========================================================================================

@pytest.mark.parametrize("pattern, origin, expected", [
    ("https://www.foo.com", "https://www.foo.com", True),           # [conf httproute-cors] exact origin
    ("https://www.foo.com", "http://www.foo.com", False),           # [spec AllowOrigins] scheme is part of the origin
    ("https://www.foo.com", "https://www.foo.com:443", True),       # [spec AllowOrigins] "port `443` is assumed for `https`"
    ("http://www.foo.com", "http://www.foo.com:80", True),          # [spec AllowOrigins] "port `80` is assumed for `http`"
    ("https://www.foo.com", "https://www.foo.com:8443", False),     # [spec AllowOrigins] "This may affect origin matching"
    ("https://www.foo.com:8443", "https://www.foo.com:8443", True),  # [spec AllowOrigins] explicit port
    ("https://*.bar.com", "https://www.bar.com", True),             # [conf httproute-cors] wildcard origin
    ("https://*.bar.com", "https://xpto.www.bar.com", True),        # [conf httproute-cors] "any number of periods left to '*'"
    ("https://*.bar.com", "https://bar.com", False),                # [spec AllowOrigins] "*" then ".bar.com" literally
    ("https://*.bar.com", "https://foobar.com", False),             # [conf httproute-cors] non-matching origin
    ("https://*.bar.com", "http://www.bar.com", False),             # [spec AllowOrigins] scheme still compared
    ("https://*", "https://anything.example", True),                # [spec AllowOrigins] "A wildcard by itself matches all hosts"
    ("https://*", "http://anything.example", False),                # [spec AllowOrigins] ... of that scheme
    ("https://*", "https://anything.example:8443", False),          # [spec AllowOrigins] ... on port 443 ("is assumed")
    ("https://*.bar.com:8443", "https://a.bar.com:8443", True),     # [spec AllowOrigins] wildcard host with explicit port
    ("*", "https://foobar.com", True),                              # [conf httproute-cors] cors-wildcard-origin
    ("*", "https://foobar.com:12345", True),                        # [conf httproute-cors] wildcard origin containing a port
    ("https://WWW.Foo.com", "https://www.foo.COM", True),           # [edge] scheme/host case-insensitive
    ("https://www.foo.com", "null", False),                         # [edge] opaque origin
    ("https://www.foo.com", "", False),                             # [edge] no Origin
    ("https://www.foo.com", "https://www.foo.com/", True),          # [edge] tolerate a trailing "/"
])
def test_origin_matches(pattern, origin, expected):
    assert origin_matches(pattern, origin) is expected


def test_cors_origin_allowed():
    cors = {"allowOrigins": ["https://www.foo.com", "https://*.bar.com"]}
    assert cors_origin_allowed(cors, "https://www.bar.com")      # [conf httproute-cors]
    assert not cors_origin_allowed(cors, "https://foobar.com")   # [conf httproute-cors]
    assert not cors_origin_allowed(cors, None)                   # [edge]
    assert not cors_origin_allowed({}, "https://www.foo.com")    # [edge] no allowOrigins: nothing allowed


@pytest.mark.parametrize("method, headers, expected", [
    ("OPTIONS", {"Origin": "https://a", "Access-Control-Request-Method": "GET"}, True),   # [spec CORS] preflight
    ("options", {"origin": "https://a", "access-control-request-method": "GET"}, True),   # [edge] case-insensitive
    ("OPTIONS", {"Origin": "https://a"}, False),                                          # [edge] plain OPTIONS
    ("GET", {"Origin": "https://a", "Access-Control-Request-Method": "GET"}, False),      # [conf httproute-cors] "Simple request"
    ("OPTIONS", {"Access-Control-Request-Method": "GET"}, False),                         # [edge] no Origin
])
def test_is_cors_preflight(method, headers, expected):
    assert is_cors_preflight(method, headers) is expected


# =========================================================================================
# CORS: the preflight answer — conformance/tests/httproute-cors.{go,yaml}
# =========================================================================================

CORS_1 = {  # route cors-multiple-origins-methods-headers, path /cors-1
    "allowOrigins": ["https://www.foo.com", "https://*.bar.com"],
    "allowMethods": ["GET", "OPTIONS"],
    "allowHeaders": ["x-header-1", "x-header-2"],
    "exposeHeaders": ["x-header-3", "x-header-4"],
    "allowCredentials": True,
    "maxAge": 3600,
}
CORS_2 = {"allowOrigins": ["https://www.foo.com"], "allowMethods": ["*"], "maxAge": 5}  # cors-wildcard-methods
CORS_WILDCARD_ORIGIN = {"allowOrigins": ["*"], "allowMethods": ["PUT"], "allowCredentials": False, "maxAge": 5}
CORS_AUTH = {"allowOrigins": ["https://other.foo.com"], "allowMethods": ["*"], "allowHeaders": ["*"],
             "allowCredentials": True, "maxAge": 5}  # cors-wildcard-methods-headers-auth
CORS_UNAUTH = {"allowOrigins": ["*"], "allowMethods": ["*"], "allowHeaders": ["*"], "maxAge": 5}

REQ_HEADERS = "x-header-1, x-header-2"


def preflight(origin, method, req_headers=None):
    h = {"Origin": origin, "access-control-request-method": method}
    if req_headers:
        h["access-control-request-headers"] = req_headers
    return h


def _norm(v):
    return v.replace(" ", "") if v is not None else None


@pytest.mark.parametrize("cors, request_headers, status, expected, absent", [
    (CORS_1, preflight("https://www.foo.com", "GET", REQ_HEADERS), 200,
     {"access-control-allow-origin": "https://www.foo.com", "access-control-allow-methods": "GET,OPTIONS",
      "access-control-allow-headers": "x-header-1,x-header-2", "access-control-expose-headers": "x-header-3,x-header-4",
      "access-control-max-age": "3600", "access-control-allow-credentials": "true"}, []),
    # ^ [conf httproute-cors] "CORS preflight request from an exact matching origin should be allowed"
    (CORS_1, preflight("https://www.bar.com", "GET", REQ_HEADERS), 200,
     {"access-control-allow-origin": "https://www.bar.com", "access-control-allow-methods": "GET,OPTIONS",
      "access-control-allow-headers": "x-header-1,x-header-2", "access-control-expose-headers": "x-header-3,x-header-4",
      "access-control-max-age": "3600", "access-control-allow-credentials": "true"}, []),
    # ^ [conf httproute-cors] "from a wildcard matching origin should be allowed" (StatusCode exactly 200)
    (CORS_1, preflight("https://xpto.www.bar.com", "GET", REQ_HEADERS), 200,
     {"access-control-allow-origin": "https://xpto.www.bar.com", "access-control-max-age": "3600"}, []),
    # ^ [conf httproute-cors] "matching any number of periods left to '*'"
    (CORS_1, preflight("https://foobar.com", "GET"), 200, {},
     ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-credentials",
      "access-control-max-age"]),
    # ^ [conf httproute-cors] "from a non-matching origin should not be allowed" (200/204/403, no ACAO)
    (CORS_2, preflight("https://www.foo.com", "POST"), 200,
     {"access-control-allow-methods": "POST", "access-control-allow-origin": "https://www.foo.com",
      "access-control-max-age": "5"}, ["access-control-allow-credentials"]),
    # ^ [conf httproute-cors] "POST method should be allowed by allowMethods with wildcard" (POST or *)
    (CORS_2, preflight("https://www.foo.com", "POST"), 200, {},
     ["Access-Control-Allow-Credentials", "access-control-allow-headers", "access-control-expose-headers"]),
    # ^ [conf httproute-cors] "should not receive access-control-allow-credentials header without ... true"
    (CORS_WILDCARD_ORIGIN, preflight("https://foobar.com", "PUT"), 200,
     {"access-control-allow-origin": "https://foobar.com", "access-control-allow-methods": "PUT"},
     ["Access-Control-Allow-Credentials"]),
    # ^ [conf httproute-cors] "Pre-flight request from a wildcard origin should return ... the requested Origin"
    (CORS_WILDCARD_ORIGIN, preflight("https://foobar.com:12345", "PUT"), 200,
     {"access-control-allow-origin": "https://foobar.com:12345", "access-control-allow-methods": "PUT"},
     ["Access-Control-Allow-Credentials"]),
    # ^ [conf httproute-cors] "from a wildcard origin containing a port"
    (CORS_AUTH, preflight("https://other.foo.com", "PUT", REQ_HEADERS), 200,
     {"access-control-allow-origin": "https://other.foo.com", "access-control-allow-methods": "PUT",
      "access-control-allow-headers": "x-header-1,x-header-2", "access-control-allow-credentials": "true"}, []),
    # ^ [conf httproute-cors] "requesting auth ... should be allowed and always echo the origin" (never "*")
    (CORS_UNAUTH, preflight("https://other.foo.com", "PUT", REQ_HEADERS), 200,
     {"access-control-allow-origin": "https://other.foo.com", "access-control-allow-methods": "PUT",
      "access-control-allow-headers": "x-header-1,x-header-2"}, ["access-control-allow-credentials"]),
    # ^ [conf httproute-cors] "should hide auth headers on unauth path"
    (CORS_AUTH, preflight("https://other.foo.com", "PUT"), 200,
     {"access-control-allow-methods": "PUT"}, ["access-control-allow-headers"]),
    # ^ [spec AllowHeaders] "If the `Access-Control-Request-Headers` header is not present ... must omit"
    ({"allowOrigins": ["https://a.example"]}, preflight("https://a.example", "DELETE"), 200,
     {"access-control-allow-origin": "https://a.example", "access-control-max-age": str(CORS_DEFAULT_MAX_AGE)},
     ["access-control-allow-methods", "access-control-allow-headers", "access-control-expose-headers"]),
    # ^ [spec MaxAge] "the gateway sets the response header "Access-Control-Max-Age: 5" by default"
    ({"allowOrigins": ["https://a.example"], "exposeHeaders": ["*"], "allowCredentials": True},
     preflight("https://a.example", "GET"), 200, {"access-control-allow-credentials": "true"},
     ["access-control-expose-headers"]),
    # ^ [spec ExposeHeaders] with credentials "the gateway cannot use the `*`"
    ({"allowOrigins": ["https://a.example"], "exposeHeaders": ["*"]},
     preflight("https://a.example", "GET"), 200, {"access-control-expose-headers": "*"}, []),
    # ^ [spec ExposeHeaders] without credentials "can contain the wildcard `*`"
    ({"allowOrigins": ["https://a.example"], "allowMethods": ["GET"]},
     preflight("https://a.example", "PUT"), 200, {"access-control-allow-methods": "GET"}, []),
    # ^ [spec AllowMethods] the configured list is returned; a method not in it "will present an error on the client side"
])
def test_cors_preflight(cors, request_headers, status, expected, absent):
    result = cors_preflight(cors, "OPTIONS", Headers(request_headers))
    assert result is not None
    got_status, got = result
    assert got_status == status
    for name, value in expected.items():
        assert _norm(got.get(name)) == _norm(value), name  # conformance compares ignoring whitespace
    for name in absent:
        assert name not in got, name


@pytest.mark.parametrize("disallowed, expected", [
    ("ok", (200, {})),           # [spec AllowOrigins] "the gateway returns 204/200 response but doesn't set ..."
    ("forbidden", (403, {})),    # [spec AllowOrigins] "Alternatively, the gateway responds with 403"
    ("forward", None),           # [choice] Envoy-like: the preflight goes on to the backend
])
def test_cors_preflight_disallowed_origin_modes(disallowed, expected):
    result = cors_preflight(CORS_1, "OPTIONS", preflight("https://foobar.com", "GET"), disallowed=disallowed)
    if expected is None:
        assert result is None
    else:
        assert (result[0], result[1].to_dict()) == expected


@pytest.mark.parametrize("method, headers", [
    ("GET", {"Origin": "https://www.foo.com", "access-control-request-method": "GET"}),  # [conf httproute-cors] simple request
    ("OPTIONS", {"Origin": "https://www.foo.com"}),  # [edge] OPTIONS without Access-Control-Request-Method
    ("OPTIONS", {}),                                 # [edge] plain OPTIONS
])
def test_cors_preflight_not_a_preflight(method, headers):
    assert cors_preflight(CORS_1, method, headers) is None


@pytest.mark.parametrize("cors, headers, expected, absent", [
    (CORS_1, {"Origin": "https://www.foo.com", "access-control-request-method": "GET"},
     {"Access-Control-Allow-Origin": "https://www.foo.com", "Access-Control-Allow-Credentials": "true",
      "Access-Control-Expose-Headers": "x-header-3, x-header-4"}, ["Access-Control-Max-Age"]),
    # ^ [conf httproute-cors] "Simple request from an exact matching origin should be allowed"
    (CORS_1, {"Origin": "https://www.bar.com"}, {"Access-Control-Allow-Origin": "https://www.bar.com"}, []),
    # ^ [conf httproute-cors] "Simple request from a wildcard matching origin should be allowed"
    (CORS_1, {"Origin": "https://foobar.com"}, {}, ["Access-Control-Allow-Origin"]),
    # ^ [conf httproute-cors] "Simple request from a non-matching origin should not be allowed"
    (CORS_WILDCARD_ORIGIN, {"Origin": "https://foobar.com:12345"},
     {"Access-Control-Allow-Origin": "https://foobar.com:12345"}, ["Access-Control-Allow-Credentials"]),
    # ^ [conf httproute-cors] "Request from a wildcard origin containing a port"
    (CORS_WILDCARD_ORIGIN, {"Origin": "https://foobar.com"},
     {"Access-Control-Allow-Origin": "https://foobar.com"}, ["Access-Control-Allow-Credentials"]),
    # ^ [conf httproute-cors] "Simple request from a wildcard origin"
    (CORS_AUTH, {"Origin": "https://other.foo.com", "Authorization": "Bearer test"},
     {"Access-Control-Allow-Origin": "https://other.foo.com", "Access-Control-Allow-Credentials": "true"}, []),
    # ^ [conf httproute-cors] "Simple request with credentials auth should be allowed and always echo the origin"
    (CORS_UNAUTH, {"Origin": "https://other.foo.com", "Authorization": "Bearer test"},
     {"Access-Control-Allow-Origin": "https://other.foo.com"}, ["Access-Control-Allow-Credentials"]),
    # ^ [conf httproute-cors] "Simple request with credentials should hide auth headers on unauth path"
    (CORS_1, {}, {}, ["Access-Control-Allow-Origin"]),
    # ^ [edge] not a cross-origin request: nothing added
])
def test_cors_response_headers(cors, headers, expected, absent):
    got = cors_response_headers(cors, headers)
    for name, value in expected.items():
        assert got.get(name) == value, name
    for name in absent:
        assert name not in got, name


# =========================================================================================
# properties
# =========================================================================================

segment = st.from_regex(r"[A-Za-z0-9._~-]{1,6}", fullmatch=True)
abs_path = st.lists(segment, max_size=4).map(lambda s: "/" + "/".join(s))
trailing = st.sampled_from(["", "/"])
header_name = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True)
header_value = st.from_regex(r"[!-~]{1,10}", fullmatch=True)


@FAST
@given(abs_path, st.lists(segment, max_size=3), abs_path, trailing, trailing)
def test_prop_replace_prefix_starts_with_slash(prefix, rest, replacement, t1, t2):
    # [spec ReplacePrefixMatch] every row of the table yields an absolute path
    path = prefix.rstrip("/") + ("/" + "/".join(rest) if rest else t1)
    out = replace_prefix(path or "/", prefix + t2, replacement)
    assert out.startswith("/")


@FAST
@given(abs_path, st.lists(segment, max_size=3), trailing)
def test_prop_replace_prefix_with_itself_is_identity(prefix, rest, t):
    # [spec ReplacePrefixMatch] replacing the matched prefix by itself changes nothing
    path = (prefix.rstrip("/") + "/" + "/".join(rest)) if rest else prefix
    assert replace_prefix(path, prefix + t, prefix) == path


@FAST
@given(abs_path, st.lists(segment, max_size=3), abs_path)
def test_prop_replace_prefix_keeps_the_remainder(prefix, rest, replacement):
    # [spec ReplacePrefixMatch] "/foo/bar" with prefix "/foo" -> replacement + "/bar"
    remainder = "/" + "/".join(rest) if rest else ""
    out = replace_prefix(prefix.rstrip("/") + remainder, prefix, replacement)
    assert out == ((replacement.rstrip("/") + remainder) or "/")


@FAST
@given(st.lists(st.tuples(header_name, header_value), max_size=6), header_name, header_value)
def test_prop_headers_case_insensitive(pairs, name, value):
    # [spec HTTPHeader.Name] "Name matching MUST be case-insensitive"
    h = Headers(pairs)
    h.add(name, value)
    assert h.get(name.upper()) == h.get(name.lower()) == h.get(name)
    assert h.get_all(name.swapcase())[-1] == value
    h2 = apply_header_modifier(h, {"set": [{"name": name.upper(), "value": value}]})
    assert h2.get_all(name.lower()) == [value]
    h3 = apply_header_modifier(h, {"remove": [name.swapcase()]})
    assert name not in h3
    assert h.get(name) is not None  # the input is untouched


@FAST
@given(st.sampled_from(["http", "https"]), st.one_of(st.none(), st.sampled_from(["http", "https"])),
       st.one_of(st.none(), st.integers(1, 65535)), st.integers(1, 65535))
def test_prop_redirect_port_rules(req_scheme, rr_scheme, rr_port, listener_port):
    # [spec HTTPRequestRedirectFilter.Port] the derivation rules, checked on the parsed Location
    rr = {"hostname": "example.org"}
    if rr_scheme:
        rr["scheme"] = rr_scheme
    if rr_port:
        rr["port"] = rr_port
    status, location = redirect(req_scheme, "gw", "/p?q=1", listener_port, rr, "/")
    u = urlsplit(location)
    scheme = rr_scheme or req_scheme
    expected_port = rr_port or ({"http": 80, "https": 443}[rr_scheme] if rr_scheme else listener_port)
    assert status == 302 and u.scheme == scheme and u.hostname == "example.org"
    assert u.path == "/p" and u.query == "q=1"
    well_known = {"http": 80, "https": 443}[scheme]
    assert u.port == (None if expected_port == well_known else expected_port)


@FAST
@given(st.sampled_from(["http", "https"]), st.from_regex(r"[a-z0-9]{1,8}(\.[a-z]{2,5}){1,2}", fullmatch=True),
       st.one_of(st.none(), st.integers(1, 65535)))
def test_prop_star_allows_every_origin_and_exact_allows_itself(scheme, host, port):
    # [spec AllowOrigins] "`*` ... requests from all `Origin`s are allowed"; an origin matches itself
    origin = f"{scheme}://{host}" + (f":{port}" if port else "")
    assert origin_matches("*", origin)
    assert origin_matches(origin, origin)
    # "A wildcard by itself matches all hosts" — on the port the pattern implies (none given:
    # 80/443 "is assumed ... This may affect origin matching")
    assert origin_matches(f"{scheme}://*", origin) is (port in (None, {"http": 80, "https": 443}[scheme]))
    assert origin_matches(f"{scheme}://*:{port or 1}", f"{scheme}://{host}:{port or 1}")


@FAST
@given(st.one_of(st.none(), st.integers(0, 100)), st.one_of(st.none(), st.tuples(st.integers(0, 50), st.integers(50, 1000))))
def test_prop_mirror_fraction_is_a_probability(percent, fraction):
    # [spec HTTPRequestMirrorFilter] percent 0-100 or numerator <= denominator
    m = {}
    if percent is not None:
        m["percent"] = percent
    elif fraction is not None:
        m["fraction"] = {"numerator": fraction[0], "denominator": fraction[1]}
    assert 0.0 <= mirror_fraction(m) <= 1.0
