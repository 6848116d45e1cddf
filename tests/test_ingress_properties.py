"""Property tests: random Ingress-shaped input never crashes the converter, the router or the
command, every produced object is valid, and random well-formed Ingress sets convert to
Gateway API objects that route their derived sample requests like the Ingress controller
(or differ only where the report predicted it)."""
from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gwlib
from gwlib.ingress import IngressRequestError, IngressRouter, convert, equivalence

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------- anything goes

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                    st.sampled_from(["/", "/a", "Prefix", "Exact", "ImplementationSpecific", "web", "80", "*.x.io"]))
json_like = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=20)

NGINX_KEYS = ["canary", "canary-weight", "canary-weight-total", "canary-by-header", "canary-by-header-value",
              "rewrite-target", "use-regex", "ssl-redirect", "force-ssl-redirect", "permanent-redirect",
              "permanent-redirect-code", "app-root", "backend-protocol", "proxy-read-timeout", "ssl-passthrough",
              "upstream-vhost", "x-forwarded-prefix", "enable-cors", "cors-allow-origin", "auth-url", "nope"]
TRAEFIK_KEYS = ["router.entrypoints", "router.priority", "router.tls", "router.middlewares", "router.pathmatcher"]
annotation_values = st.one_of(st.text(max_size=15), st.sampled_from(
    ["true", "false", "20", "-3", "abc", "/$2", "/", "GRPC", "HTTPS", "https://x.io/p", "web,websecure",
     "websecure", "X-Canary", "always", "ns-mw@kubernetescrd", "(", "/(.*)", "*", "0"]))
annotations = st.dictionaries(
    st.one_of(st.sampled_from(NGINX_KEYS).map(lambda k: "nginx.ingress.kubernetes.io/" + k),
              st.sampled_from(TRAEFIK_KEYS).map(lambda k: "traefik.ingress.kubernetes.io/" + k),
              st.sampled_from(["cert-manager.io/cluster-issuer", "kubernetes.io/ingress.class", "x/y"])),
    annotation_values, max_size=5)
hosts = st.sampled_from(["a.example.com", "b.example.com", "*.example.com", "x.a.example.com", "", None,
                         "Bad_Host", "*.*.x"])
paths = st.sampled_from(["/", "/a", "/a/", "/a/b", "/ab", "/b", "", "a", "/v[0-9]+", "/x(/|$)(.*)", None])
path_types = st.sampled_from(["Prefix", "Exact", "ImplementationSpecific", "Regex", None])
ports = st.one_of(st.sampled_from([{"number": 80}, {"number": 8080}, {"name": "http"}, {}, {"number": 0}]),
                  json_like)


@st.composite
def ingress_like(draw) -> dict:
    def backend():
        return draw(st.one_of(st.just({}), st.fixed_dictionaries(
            {"service": st.fixed_dictionaries({"name": st.sampled_from(["s1", "s2", "web", ""]), "port": ports})}),
            json_like))

    rules = []
    for _ in range(draw(st.integers(0, 3))):
        rule: dict = {}
        h = draw(hosts)
        if h is not None:
            rule["host"] = h
        if draw(st.booleans()):
            rule["http"] = {"paths": [{"path": draw(paths), "pathType": draw(path_types), "backend": backend()}
                                      for _ in range(draw(st.integers(0, 3)))]}
        rules.append(rule)
    spec: dict = {}
    if draw(st.booleans()):
        spec["ingressClassName"] = draw(st.sampled_from(["nginx", "traefik", "Bad Class"]))
    if rules or draw(st.booleans()):
        spec["rules"] = rules
    if draw(st.booleans()):
        spec["defaultBackend"] = backend()
    if draw(st.booleans()):
        spec["tls"] = [{"hosts": draw(st.lists(hosts.filter(lambda x: x is not None), max_size=2)),
                        "secretName": draw(st.sampled_from(["t1", "t2", ""]))}]
    return {"apiVersion": draw(st.sampled_from(["networking.k8s.io/v1"] * 4 + ["extensions/v1beta1"])),
            "kind": draw(st.sampled_from(["Ingress"] * 5 + ["Service", "Deployment"])),
            "metadata": {"name": draw(st.sampled_from(["web", "web-canary", "x", ""])),
                         "namespace": draw(st.sampled_from(["shop", "other"])), "annotations": draw(annotations)},
            "spec": draw(st.one_of(st.just(spec), json_like))}


# top-level documents are mappings: a bare string would be read as a path (gwlib.load's contract)
documents = st.one_of(ingress_like(), st.dictionaries(st.text(max_size=10), json_like, max_size=4),
                      st.lists(st.dictionaries(st.text(max_size=5), scalars, max_size=3), max_size=2))


@SETTINGS
@given(st.lists(documents, min_size=1, max_size=4), st.sampled_from([None, "ingress-nginx", "traefik"]))
def test_random_input_never_crashes_and_output_is_valid(docs, provider):
    conv = convert(docs, provider=provider)
    assert gwlib.validate(conv.objects, channel="standard") == []
    conv.yaml()
    conv.report.text()
    from gwlib.commands.convert import one_line

    for p in conv.problems:
        assert "\n" not in one_line(p.line())
    assert all("\n" not in line for line in conv.report.lines())


requests = st.fixed_dictionaries({}, optional={
    "host": st.one_of(hosts.filter(lambda h: h is not None), st.text(max_size=8)),
    "path": st.one_of(paths.filter(lambda p: p is not None), st.text(max_size=8)),
    "scheme": st.sampled_from(["http", "https", "HTTP"]),
    "port": st.sampled_from([80, 443, 8080]),
    "headers": st.dictionaries(st.sampled_from(["X-Canary", "Cookie", "host"]),
                               st.sampled_from(["always", "never", "x=always", "v"]), max_size=2),
    "grpc": st.fixed_dictionaries({"service": st.sampled_from(["a.B", ""]), "method": st.sampled_from(["M", ""])}),
})


@SETTINGS
@given(st.lists(ingress_like(), min_size=1, max_size=3), st.lists(requests, max_size=4),
       st.sampled_from(["ingress-nginx", "traefik"]))
def test_ingress_router_never_crashes(docs, reqs, provider):
    router = IngressRouter(docs, provider=provider)
    for req in reqs:
        try:
            ans = router.route(req)
        except IngressRequestError:
            continue
        assert ans["status"] in (200, 301, 302, 303, 307, 308, 404)
        assert abs(sum(ans["split"].values()) - 1.0) < 1e-9 if ans["split"] else True


@settings(max_examples=25, deadline=None)
@given(st.lists(ingress_like(), min_size=1, max_size=3))
def test_cli_never_tracebacks(tmp_path_factory, docs):
    import yaml

    try:
        from tests.test_ingress_cli import run_cli
    except ImportError:   # pytest's default import mode puts tests/ itself on sys.path
        from test_ingress_cli import run_cli

    path = tmp_path_factory.mktemp("cli") / "in.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    code, out, err = run_cli(["convert", str(path)])
    assert code in (0, 1)
    assert "Traceback" not in err
    if out:
        assert gwlib.validate(out, channel="standard") == []


# ---------------------------------------------------------------------------------- well-formed: equivalence

good_hosts = st.sampled_from(["a.example.com", "b.example.com", "*.example.com", "x.a.example.com", ""])
good_paths = st.sampled_from([("/", "Prefix"), ("/a", "Prefix"), ("/a/b", "Prefix"), ("/a", "Exact"),
                              ("/ab", "Exact"), ("/b/", "Prefix"), ("/a", "ImplementationSpecific")])
services = st.sampled_from([("s1", 80), ("s2", 8080), ("s3", 80)])


@st.composite
def good_ingresses(draw, provider: str) -> list[dict]:
    out = []
    n = draw(st.integers(1, 3))
    for i in range(n):
        rules = []
        for _ in range(draw(st.integers(0, 2))):
            ps = draw(st.lists(st.tuples(good_paths, services), min_size=1, max_size=3))
            rule: dict = {"http": {"paths": [{"path": p, "pathType": t, "backend": {
                "service": {"name": s, "port": {"number": n_}}}} for (p, t), (s, n_) in ps]}}
            h = draw(good_hosts)
            if h:
                rule["host"] = h
            rules.append(rule)
        spec: dict = {"ingressClassName": "nginx" if provider == "ingress-nginx" else "traefik"}
        if rules:
            spec["rules"] = rules
        if not rules or draw(st.booleans()):
            s, n_ = draw(services)
            spec["defaultBackend"] = {"service": {"name": s, "port": {"number": n_}}}
        ann: dict = {}
        if provider == "ingress-nginx" and draw(st.booleans()):
            tls_hosts = sorted({r.get("host", "") for r in rules if r.get("host")})
            if tls_hosts:
                spec["tls"] = [{"hosts": tls_hosts[:1], "secretName": f"tls-{i}"}]
                if draw(st.booleans()):
                    ann["nginx.ingress.kubernetes.io/ssl-redirect"] = "false"
        if provider == "traefik" and draw(st.booleans()):
            ann["traefik.ingress.kubernetes.io/router.priority"] = str(draw(st.integers(1, 60)))
        if provider == "traefik" and draw(st.booleans()):
            ann["traefik.ingress.kubernetes.io/router.entrypoints"] = draw(st.sampled_from(["web", "web,websecure"]))
        meta: dict = {"name": f"ing{i}", "namespace": draw(st.sampled_from(["shop", "shop", "blog"])),
                      "creationTimestamp": f"2025-01-0{i + 1}T00:00:00Z"}
        if ann:
            meta["annotations"] = ann
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec})
    if provider == "ingress-nginx" and draw(st.booleans()):   # a canary for the first path of the first Ingress
        first = next((r for ing in out for r in ing["spec"].get("rules", [])), None)
        if first is not None:
            p = first["http"]["paths"][0]
            ann = {"nginx.ingress.kubernetes.io/canary": "true",
                   "nginx.ingress.kubernetes.io/canary-weight": str(draw(st.integers(0, 100)))}
            if draw(st.booleans()):
                ann["nginx.ingress.kubernetes.io/canary-by-header"] = "X-Canary"
            rule = {"http": {"paths": [{**p, "backend": {"service": {"name": "canary", "port": {"number": 80}}}}]}}
            if first.get("host"):
                rule["host"] = first["host"]
            ns = next(ing["metadata"]["namespace"] for ing in out if first in ing["spec"].get("rules", []))
            out.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                        "metadata": {"name": "canary", "namespace": ns, "annotations": ann,
                                     "creationTimestamp": "2025-02-01T00:00:00Z"},
                        "spec": {"ingressClassName": "nginx", "rules": [rule]}})
    return out


EXTRA_PATHS = ["/", "/a", "/a/", "/a/b", "/a/bc", "/ab", "/abc", "/b", "/b/", "/b/c", "/zzz"]
EXTRA_HOSTS = ["a.example.com", "b.example.com", "c.example.com", "x.a.example.com", "y.x.a.example.com", "other.io"]


def _probe(conv) -> list[dict]:
    gws = [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in conv.objects if o["kind"] == "Gateway"]
    return [{"gateway": gw, "host": h, "path": p} for gw in gws for h in EXTRA_HOSTS for p in EXTRA_PATHS]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ingress-nginx", "traefik"]).flatmap(lambda p: st.tuples(st.just(p), good_ingresses(p))))
def test_well_formed_ingresses_are_equivalent(case):
    provider, docs = case
    conv = convert(docs, provider=provider)
    assert conv.problems == []
    assert not any(f.code == "invalid-output" for f in conv.report.findings), conv.report.text()
    eq = equivalence(docs, provider=provider)
    assert eq.ok, "\n".join(f"{r['request']}: ingress {r['ingress']} / gateway {r['gateway']}" for r in eq.unexplained)
    eq = equivalence(docs, _probe(conv), provider=provider)
    assert eq.ok, "\n".join(f"{r['request']}: ingress {r['ingress']} / gateway {r['gateway']}" for r in eq.unexplained)


def test_names_in_strategies_are_plain():
    assert set("".join(EXTRA_PATHS)) <= set(string.ascii_lowercase + "/")
