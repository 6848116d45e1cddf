"""No annotation disappears silently: every ingress-nginx annotation named in the project's
reference notes (and every Traefik one gwlib knows, and unknown ones) is either converted
or reported."""
from __future__ import annotations

import re

import pytest

from gwlib.ingress import convert
from gwlib.ingress import catalog as A

#: A plausible value for each annotation (the default is "true").
VALUES = {
    "canary-weight": "30", "canary-weight-total": "100", "canary-by-header": "X-Canary",
    "canary-by-header-value": "yes", "canary-by-header-pattern": "^(yes|on)$", "canary-by-cookie": "beta",
    "rewrite-target": "/", "app-root": "/app", "permanent-redirect": "https://example.org/",
    "permanent-redirect-code": "308", "temporal-redirect": "https://example.org/maintenance",
    "temporal-redirect-code": "307", "x-forwarded-prefix": "/shop", "backend-protocol": "GRPC",
    "upstream-vhost": "internal.example.com", "custom-headers": "ingress-nginx/custom-headers",
    "configuration-snippet": "more_set_headers \"X: y\";", "server-snippet": "location /x { return 403; }",
    "auth-type": "basic", "auth-secret": "basic-auth", "auth-url": "http://auth.svc/verify",
    "auth-signin": "https://auth.example.com/start", "auth-tls-secret": "shop/ca",
    "auth-tls-verify-client": "on", "auth-tls-verify-depth": "1", "auth-tls-error-page": "https://e.example.com",
    "auth-tls-match-cn": "CN=client", "whitelist-source-range": "10.0.0.0/8",
    "denylist-source-range": "192.0.2.0/24", "cors-allow-origin": "https://app.example.com",
    "cors-allow-methods": "GET, POST", "cors-allow-headers": "Content-Type", "cors-max-age": "600",
    "cors-expose-headers": "X-Request-Id", "limit-rps": "10", "limit-rpm": "300", "limit-connections": "5",
    "limit-whitelist": "10.0.0.0/8", "proxy-connect-timeout": "10", "proxy-send-timeout": "30",
    "proxy-read-timeout": "30", "proxy-next-upstream": "error timeout", "proxy-next-upstream-timeout": "5",
    "proxy-next-upstream-tries": "3", "proxy-body-size": "8m", "client-body-buffer-size": "1m",
    "proxy-buffer-size": "16k", "proxy-ssl-secret": "shop/backend-ca", "proxy-ssl-name": "backend.internal",
    "proxy-ssl-verify-depth": "2", "proxy-ssl-protocols": "TLSv1.3", "affinity": "cookie",
    "affinity-mode": "persistent", "session-cookie-name": "route", "session-cookie-path": "/",
    "session-cookie-expires": "3600", "session-cookie-max-age": "3600", "session-cookie-samesite": "Lax",
    "session-cookie-domain": "example.com", "upstream-hash-by": "$request_uri", "load-balance": "ewma",
    "default-backend": "error-pages", "custom-http-errors": "404,503", "mirror-target": "https://mirror/$request_uri",
    "server-alias": "www.shop.example.com", "proxy-redirect-from": "http://a/", "proxy-redirect-to": "https://b/",
}
SERVICE = "{service: {name: web, port: {number: 80}}}"


def _ingress(name: str, annotations: dict[str, str], extra_spec: str = "") -> str:
    ann = "".join(f"    {k}: {v!r}\n" for k, v in annotations.items())
    return f"""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: shop
  annotations:
{ann}spec:
  ingressClassName: nginx
{extra_spec}  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {SERVICE}
"""


def _covered(conv, key: str, obj: str) -> bool:
    return any(f.annotation == key or key in f.annotation.split(", ") for f in conv.report.findings
               if f.object == obj) or any(c.annotation == key and c.object == obj for c in conv.report.converted)


@pytest.mark.parametrize("key", A.NGINX_REFERENCE)
def test_every_reference_nginx_annotation_is_converted_or_reported(key):
    full = A.NGINX + key
    annotations = {full: VALUES.get(key, "true")}
    docs = _ingress("web", {} if key.startswith("canary") and key != "canary" else annotations)
    if key.startswith("canary"):   # canary annotations live on a second Ingress
        canary = {A.NGINX + "canary": "true", full: VALUES.get(key, "true")}
        docs += "---\n" + _ingress("web-canary", canary).replace("name: web}", "name: web-v2}")
    if key.startswith("cors-"):
        docs = _ingress("web", {A.NGINX + "enable-cors": "true", full: VALUES.get(key, "true")})
    conv = convert(docs, provider="ingress-nginx")
    assert conv.problems == []
    obj = "Ingress shop/web-canary" if key.startswith("canary") else "Ingress shop/web"
    assert _covered(conv, full, obj), f"{full} disappeared silently"
    assert not any(f.code == "invalid-output" for f in conv.report.findings)


def test_all_reference_annotations_at_once():
    annotations = {A.NGINX + k: VALUES.get(k, "true") for k in A.NGINX_REFERENCE if not k.startswith("canary")}
    conv = convert(_ingress("web", annotations), provider="ingress-nginx")
    missing = [k for k in annotations if not _covered(conv, k, "Ingress shop/web")]
    assert missing == []
    assert not any(f.code == "invalid-output" for f in conv.report.findings)
    assert conv.objects  # still converted


def test_security_annotations_are_errors():
    for key in ("auth-url", "auth-type", "whitelist-source-range", "limit-rps", "configuration-snippet",
                "auth-tls-secret", "denylist-source-range"):
        conv = convert(_ingress("web", {A.NGINX + key: VALUES[key]}), provider="ingress-nginx")
        sev = {f.severity for f in conv.report.findings if f.annotation == A.NGINX + key}
        assert sev == {"error"}, key


def test_unknown_and_foreign_annotations_are_reported():
    conv = convert(_ingress("web", {A.NGINX + "brand-new-feature": "x", A.TRAEFIK + "router.priority": "5",
                                    "example.com/team": "payments"}), provider="ingress-nginx")
    by_key = {f.annotation: f for f in conv.report.findings}
    assert "does not know" in by_key[A.NGINX + "brand-new-feature"].message
    assert by_key[A.TRAEFIK + "router.priority"].code == "annotation-other-provider"
    assert by_key["example.com/team"].code == "annotation-not-read"


def test_cert_manager_annotations_move_to_the_gateway():
    conv = convert(_ingress("web", {"cert-manager.io/cluster-issuer": "letsencrypt"}), provider="ingress-nginx")
    gw = next(o for o in conv.objects if o["kind"] == "Gateway")
    assert gw["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}


TRAEFIK_VALUES = {
    "router.entrypoints": "web", "router.priority": "10", "router.tls": "true",
    "router.middlewares": "shop-missing@kubernetescrd", "router.pathmatcher": "Path",
    "router.tls.certresolver": "le", "router.tls.domains.0.main": "example.com", "router.tls.options": "default",
    "service.serversscheme": "h2c", "service.sticky.cookie": "true", "service.passhostheader": "false",
    "router.observability.tracing": "false", "something.new": "1",
}


@pytest.mark.parametrize("key", sorted(TRAEFIK_VALUES))
def test_every_traefik_annotation_is_converted_or_reported(key):
    full = A.TRAEFIK + key
    conv = convert(_ingress("web", {full: TRAEFIK_VALUES[key]}).replace("nginx", "traefik"), provider="traefik")
    assert conv.problems == []
    assert _covered(conv, full, "Ingress shop/web"), f"{full} disappeared silently"


def test_reference_list_matches_the_reference_notes():
    """The list in gwlib is the one in ../shared/reference/notebooks.md (§4–5) — every key named there."""
    from pathlib import Path

    notes = Path("/work/shared/reference/notebooks.md")
    if not notes.exists():
        pytest.skip("reference notes not available")
    text = notes.read_text()
    start, end = text.index("ingress-nginx annotation keys"), text.index("Traefik (prefix")
    named = set(re.findall(r"`([a-z][a-z0-9-]+)`", text[start:end]))
    named |= {"permanent-redirect-code", "temporal-redirect-code", "proxy-redirect-from", "proxy-redirect-to",
              "proxy-ssl-verify", "proxy-ssl-secret", "proxy-ssl-name", "proxy-ssl-server-name",
              "proxy-ssl-verify-depth", "proxy-ssl-protocols", "limit-whitelist", "enable-opentelemetry"}
    not_annotations = {"second", "cookie", "true", "false", "ingress", "tcp-services-configmap",
                       "udp-services-configmap", "linkerd.io", "l5d-dst-override"}
    named = {n for n in named if n not in not_annotations and not n.startswith(("tcp-", "udp-"))}
    assert named - set(A.NGINX_REFERENCE) == set()
