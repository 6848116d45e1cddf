"""What gwlib knows about Ingress annotations: which it converts, which it reports, and why.

Two providers, each with its own prefix:

* ``ingress-nginx`` — ``nginx.ingress.kubernetes.io/<key>``
  (docs/user-guide/nginx-configuration/annotations.md of kubernetes/ingress-nginx);
* ``traefik`` — ``traefik.ingress.kubernetes.io/<key>`` (Traefik's kubernetes-ingress docs).

:data:`NGINX_REFERENCE` is the list of ingress-nginx annotations in the project's reference
notes (notebooks.md §4–5); a test feeds every one of them to the converter and checks that
each one is either converted or reported. Keys outside these tables are still reported
("not converted: gwlib does not know it"), never dropped.
"""
from __future__ import annotations

NGINX = "nginx.ingress.kubernetes.io/"
TRAEFIK = "traefik.ingress.kubernetes.io/"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"

#: ingress-nginx annotations the converter turns into Gateway API fields (the conversion
#: code handles each; the value says into what).
NGINX_CONVERTED: dict[str, str] = {
    "canary": "the canary Ingress is merged into its primary's rules",
    "canary-weight": "weighted backendRefs",
    "canary-weight-total": "weighted backendRefs (the denominator)",
    "canary-by-header": "a rule with a header match (always → canary, never → primary)",
    "canary-by-header-value": "a rule with an exact header match → canary",
    "rewrite-target": "URLRewrite (ReplaceFullPath, or ReplacePrefixMatch for the /p(/|$)(.*) → /$2 idiom)",
    "use-regex": "RegularExpression path matches (case-insensitive, anchored at the start like nginx)",
    "ssl-redirect": "a RequestRedirect (308, https) route on the HTTP listener for TLS hosts",
    "force-ssl-redirect": "a RequestRedirect (308, https) route on the HTTP listener",
    "permanent-redirect": "RequestRedirect (301) to the URL",
    "permanent-redirect-code": "RequestRedirect statusCode",
    "temporal-redirect": "RequestRedirect (302) to the URL",
    "temporal-redirect-code": "RequestRedirect statusCode",
    "app-root": "an Exact / rule with a 302 RequestRedirect to the app root",
    "backend-protocol": "GRPC → GRPCRoute (HTTP: nothing to do)",
    "proxy-connect-timeout": "rule timeouts.backendRequest (connect + read/send)",
    "proxy-send-timeout": "rule timeouts.backendRequest (connect + read/send)",
    "proxy-read-timeout": "rule timeouts.backendRequest (connect + read/send)",
    "ssl-passthrough": "a TLS listener (Passthrough) and a TLSRoute",
    "upstream-vhost": "URLRewrite hostname",
    "x-forwarded-prefix": "RequestHeaderModifier set X-Forwarded-Prefix",
    "enable-cors": "a CORS filter",
    "cors-allow-origin": "CORS allowOrigins",
    "cors-allow-methods": "CORS allowMethods",
    "cors-allow-headers": "CORS allowHeaders",
    "cors-allow-credentials": "CORS allowCredentials",
    "cors-max-age": "CORS maxAge",
    "cors-expose-headers": "CORS exposeHeaders",
}

#: ingress-nginx annotations gwlib reports: key -> (severity, what is lost and why / the way out).
NGINX_REPORTED: dict[str, tuple[str, str]] = {
    # canary
    "canary-by-header-pattern": ("warning", "canary by header regular expression is not converted (ingress2gateway "
                                 "does not either); add a rule with a RegularExpression header match "
                                 "(Implementation-specific support) if you need it"),
    "canary-by-cookie": ("warning", "canary by cookie is not converted: Gateway API has no cookie match; a "
                         "RegularExpression match on the Cookie header is an Implementation-specific workaround"),
    # rewrite / redirect
    "from-to-www-redirect": ("warning", "the www ↔ apex redirect is not converted; add an HTTPRoute for the other "
                             "hostname with a RequestRedirect filter (hostname)"),
    "preserve-trailing-slash": ("info", "only affects the ssl redirect's Location; Gateway API redirects keep "
                                "the path as sent"),
    "proxy-redirect-from": ("warning", "rewriting Location headers of backend responses is not in Gateway API"),
    "proxy-redirect-to": ("warning", "rewriting Location headers of backend responses is not in Gateway API"),
    # headers / raw nginx
    "connection-proxy-header": ("info", "the Connection header sent upstream is the data plane's business in "
                                "Gateway API"),
    "custom-headers": ("warning", "headers from a ConfigMap are not converted; list them in a "
                       "ResponseHeaderModifier filter"),
    "configuration-snippet": ("error", "raw nginx configuration cannot be converted (and is disabled by default "
                              "since CVE-2021-25742); re-express it with Gateway API filters or an "
                              "implementation's policy"),
    "server-snippet": ("error", "raw nginx server configuration cannot be converted; re-express it with "
                       "Gateway API filters or an implementation's policy"),
    # auth / security
    "auth-type": ("error", "basic/digest authentication is not in Gateway API: requests are NO LONGER "
                  "authenticated; use an implementation policy (e.g. Traefik basicAuth, Envoy Gateway "
                  "SecurityPolicy)"),
    "auth-secret": ("error", "basic authentication is not in Gateway API: requests are NO LONGER authenticated"),
    "auth-secret-type": ("error", "basic authentication is not in Gateway API: requests are NO LONGER authenticated"),
    "auth-realm": ("error", "basic authentication is not in Gateway API: requests are NO LONGER authenticated"),
    "auth-url": ("error", "external authentication is not converted: requests are NO LONGER authenticated; "
                 "the ExternalAuth filter exists only in the experimental channel"),
    "auth-signin": ("error", "external authentication is not converted: requests are NO LONGER authenticated"),
    "auth-response-headers": ("error", "external authentication is not converted"),
    "auth-method": ("error", "external authentication is not converted"),
    "auth-snippet": ("error", "external authentication is not converted"),
    "auth-cache-key": ("error", "external authentication is not converted"),
    "auth-tls-secret": ("error", "client-certificate authentication (mTLS) is not converted: clients are NO "
                        "LONGER verified; Gateway frontend validation (spec.tls.frontend) is the Gateway "
                        "owner's job"),
    "auth-tls-verify-client": ("error", "client-certificate verification is not converted"),
    "auth-tls-verify-depth": ("error", "client-certificate verification is not converted"),
    "auth-tls-error-page": ("error", "client-certificate verification is not converted"),
    "auth-tls-pass-certificate-to-upstream": ("warning", "passing the client certificate upstream is not in "
                                              "Gateway API"),
    "auth-tls-match-cn": ("error", "client-certificate verification is not converted"),
    "whitelist-source-range": ("error", "the client IP allow-list is not converted: every client can now reach "
                               "the backend; use an implementation policy (e.g. Traefik ipAllowList)"),
    "allowlist-source-range": ("error", "the client IP allow-list is not converted: every client can now reach "
                               "the backend; use an implementation policy"),
    "denylist-source-range": ("error", "the client IP deny-list is not converted: denied clients can now reach "
                              "the backend; use an implementation policy"),
    "limit-rps": ("error", "rate limiting is not in Gateway API: the backend is no longer protected; use an "
                  "implementation policy (e.g. Traefik rateLimit, Envoy Gateway BackendTrafficPolicy)"),
    "limit-rpm": ("error", "rate limiting is not in Gateway API: the backend is no longer protected"),
    "limit-connections": ("error", "connection limits are not in Gateway API: the backend is no longer protected"),
    "limit-burst-multiplier": ("warning", "rate limiting is not in Gateway API"),
    "limit-whitelist": ("warning", "rate limiting is not in Gateway API"),
    "limit-rate": ("warning", "response rate limiting is not in Gateway API"),
    "limit-rate-after": ("warning", "response rate limiting is not in Gateway API"),
    "enable-modsecurity": ("error", "the web application firewall is not converted"),
    "enable-owasp-core-rules": ("error", "the web application firewall is not converted"),
    "modsecurity-snippet": ("error", "the web application firewall is not converted"),
    # timeouts / buffers / retries
    "proxy-next-upstream": ("warning", "retries are HTTPRoute `retry` in the experimental channel only; not "
                            "converted"),
    "proxy-next-upstream-timeout": ("warning", "retries are HTTPRoute `retry` in the experimental channel only"),
    "proxy-next-upstream-tries": ("warning", "retries are HTTPRoute `retry` in the experimental channel only"),
    "proxy-body-size": ("warning", "request body size limits are not in Gateway API; the data plane's default "
                        "applies (nginx's is 1m; Envoy and Traefik have none)"),
    "client-body-buffer-size": ("info", "buffering is the data plane's business in Gateway API"),
    "proxy-buffer-size": ("info", "buffering is the data plane's business in Gateway API"),
    "proxy-buffering": ("info", "buffering is the data plane's business in Gateway API"),
    "proxy-buffers-number": ("info", "buffering is the data plane's business in Gateway API"),
    "proxy-request-buffering": ("info", "buffering is the data plane's business in Gateway API"),
    "proxy-max-temp-file-size": ("info", "buffering is the data plane's business in Gateway API"),
    "proxy-http-version": ("info", "the upstream HTTP version is the data plane's business (appProtocol on the "
                           "Service port says h2c)"),
    # backend TLS
    "proxy-ssl-secret": ("warning", "TLS to the backend needs a BackendTLSPolicy; not generated"),
    "proxy-ssl-verify": ("warning", "TLS to the backend needs a BackendTLSPolicy; not generated"),
    "proxy-ssl-verify-depth": ("warning", "TLS to the backend needs a BackendTLSPolicy; not generated"),
    "proxy-ssl-name": ("warning", "TLS to the backend needs a BackendTLSPolicy (hostname); not generated"),
    "proxy-ssl-server-name": ("warning", "TLS to the backend needs a BackendTLSPolicy; not generated"),
    "proxy-ssl-protocols": ("warning", "TLS to the backend needs a BackendTLSPolicy; not generated"),
    "proxy-ssl-ciphers": ("warning", "TLS to the backend needs a BackendTLSPolicy; not generated"),
    # load balancing / affinity
    "affinity": ("warning", "cookie session affinity is `sessionPersistence` in the experimental channel only; "
                 "not converted"),
    "affinity-mode": ("warning", "session affinity is not converted"),
    "affinity-canary-behavior": ("warning", "session affinity is not converted"),
    "session-cookie-name": ("warning", "session affinity is not converted"),
    "session-cookie-path": ("warning", "session affinity is not converted"),
    "session-cookie-domain": ("warning", "session affinity is not converted"),
    "session-cookie-expires": ("warning", "session affinity is not converted"),
    "session-cookie-max-age": ("warning", "session affinity is not converted"),
    "session-cookie-samesite": ("warning", "session affinity is not converted"),
    "session-cookie-secure": ("warning", "session affinity is not converted"),
    "session-cookie-change-on-failure": ("warning", "session affinity is not converted"),
    "session-cookie-conditional-samesite-none": ("warning", "session affinity is not converted"),
    "upstream-hash-by": ("warning", "consistent hashing is not in Gateway API"),
    "load-balance": ("info", "the load-balancing algorithm is the data plane's business"),
    "service-upstream": ("info", "Gateway API backends are Services already; whether the data plane sends to the "
                         "ClusterIP or the endpoints is its business (a mesh such as Linkerd wants the Service)"),
    # other
    "default-backend": ("warning", "a per-Ingress error backend is not in Gateway API"),
    "custom-http-errors": ("warning", "custom error pages are not in Gateway API"),
    "mirror-target": ("warning", "mirroring to a URL is not converted; a RequestMirror filter needs a Service "
                      "backendRef"),
    "mirror-request-body": ("warning", "mirroring is not converted"),
    "mirror-host": ("warning", "mirroring is not converted"),
    "server-alias": ("warning", "extra server names are not converted; add them to the HTTPRoute hostnames"),
    "enable-opentelemetry": ("info", "tracing is the data plane's business"),
    "opentelemetry-trust-incoming-span": ("info", "tracing is the data plane's business"),
    "enable-access-log": ("info", "access logs are the data plane's business"),
    "enable-rewrite-log": ("info", "logging is the data plane's business"),
    "satisfy": ("warning", "access control is not converted"),
    "ssl-ciphers": ("warning", "TLS settings belong to the Gateway listener (implementation options)"),
    "ssl-prefer-server-ciphers": ("warning", "TLS settings belong to the Gateway listener (implementation options)"),
    "http2-push-preload": ("info", "HTTP/2 push is obsolete"),
    "global-rate-limit": ("error", "rate limiting is not in Gateway API: the backend is no longer protected"),
}

#: The ingress-nginx annotations named in the project's reference notes (notebooks.md §4–5).
#: Every one must be converted or reported (tests/test_ingress_annotations.py feeds them all).
NGINX_REFERENCE: tuple[str, ...] = (
    "canary", "canary-weight", "canary-weight-total", "canary-by-header", "canary-by-header-value",
    "canary-by-header-pattern", "canary-by-cookie",
    "rewrite-target", "use-regex", "app-root", "ssl-redirect", "force-ssl-redirect",
    "permanent-redirect", "permanent-redirect-code", "temporal-redirect", "temporal-redirect-code",
    "from-to-www-redirect", "x-forwarded-prefix", "preserve-trailing-slash",
    "proxy-redirect-from", "proxy-redirect-to",
    "backend-protocol", "ssl-passthrough",
    "upstream-vhost", "connection-proxy-header", "custom-headers", "configuration-snippet", "server-snippet",
    "auth-type", "auth-secret", "auth-url", "auth-signin",
    "auth-tls-secret", "auth-tls-verify-client", "auth-tls-verify-depth", "auth-tls-error-page",
    "auth-tls-pass-certificate-to-upstream", "auth-tls-match-cn",
    "whitelist-source-range", "denylist-source-range",
    "enable-cors", "cors-allow-origin", "cors-allow-methods", "cors-allow-headers", "cors-allow-credentials",
    "cors-max-age", "cors-expose-headers",
    "limit-rps", "limit-rpm", "limit-connections", "limit-whitelist",
    "proxy-connect-timeout", "proxy-send-timeout", "proxy-read-timeout",
    "proxy-next-upstream", "proxy-next-upstream-timeout", "proxy-next-upstream-tries",
    "proxy-body-size", "client-body-buffer-size", "proxy-buffer-size",
    "proxy-ssl-verify", "proxy-ssl-secret", "proxy-ssl-name", "proxy-ssl-server-name",
    "proxy-ssl-verify-depth", "proxy-ssl-protocols",
    "affinity", "affinity-mode", "session-cookie-name", "session-cookie-path", "session-cookie-expires",
    "session-cookie-max-age", "session-cookie-samesite", "session-cookie-secure",
    "session-cookie-change-on-failure", "session-cookie-domain", "session-cookie-conditional-samesite-none",
    "upstream-hash-by", "load-balance", "service-upstream",
    "default-backend", "custom-http-errors", "mirror-target", "server-alias", "enable-opentelemetry",
)

#: Annotations that only matter on a canary Ingress; on any other Ingress they are ignored.
NGINX_CANARY_KEYS = frozenset({"canary", "canary-weight", "canary-weight-total", "canary-by-header",
                               "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie"})

#: Traefik Ingress annotations gwlib converts (key -> into what).
TRAEFIK_CONVERTED: dict[str, str] = {
    "router.entrypoints": "parentRefs sectionName: web → the HTTP listener, websecure → the HTTPS listeners",
    "router.priority": "rule order: rules a higher-priority router shadows are dropped, rules it must win "
                       "are copied into the more specific route",
    "router.tls": "the route attaches to HTTPS listeners only",
    "router.middlewares": "filters (redirectScheme, headers, stripPrefix, replacePath) when the Middleware "
                          "objects are given",
    "router.pathmatcher": "Path → Exact, PathPrefix → PathPrefix",
}

#: Traefik Ingress annotations gwlib reports: key -> (severity, message).
TRAEFIK_REPORTED: dict[str, tuple[str, str]] = {
    "router.tls.certresolver": ("warning", "ACME certificate resolvers are Traefik configuration; with Gateway "
                                "API use cert-manager's gateway-shim (cert-manager.io/cluster-issuer on the "
                                "Gateway) and reference the Secret"),
    "router.tls.domains": ("warning", "certificate domains are Traefik configuration; list the hosts as HTTPS "
                           "listeners"),
    "router.tls.options": ("warning", "TLS options are Traefik configuration; the Gateway listener's "
                           "tls.options (implementation-specific) is the place"),
    "router.observability.accesslogs": ("info", "observability settings are the data plane's business"),
    "router.observability.metrics": ("info", "observability settings are the data plane's business"),
    "router.observability.tracing": ("info", "observability settings are the data plane's business"),
    "service.serversscheme": ("warning", "set appProtocol on the Service port (kubernetes.io/h2c, https) "
                              "instead; TLS to backends needs a BackendTLSPolicy"),
    "service.serverstransport": ("warning", "servers transports are Traefik configuration; TLS to backends "
                                 "needs a BackendTLSPolicy"),
    "service.passhostheader": ("info", "Gateway API forwards the Host header unchanged unless a URLRewrite "
                               "sets it"),
    "service.sticky.cookie": ("warning", "sticky sessions are `sessionPersistence` in the experimental channel "
                              "only; not converted"),
    "service.nativelb": ("info", "load balancing to the ClusterIP is the data plane's business"),
}

#: Annotations of other tools that the converter carries to the Gateway.
GATEWAY_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer", "cert-manager.io/issuer-kind",
                       "cert-manager.io/issuer-group")

#: Bookkeeping annotations nobody needs to hear about.
SILENT = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")


def nginx_reported(key: str) -> tuple[str, str]:
    """(severity, message) for an ingress-nginx annotation key without the prefix."""
    if key in NGINX_REPORTED:
        return NGINX_REPORTED[key]
    for prefix, (sev, msg) in (("auth-tls-", ("error", "client-certificate verification is not converted")),
                               ("auth-", ("error", "authentication is not converted: requests are NO LONGER "
                                          "authenticated")),
                               ("session-cookie-", ("warning", "session affinity is not converted")),
                               ("cors-", ("warning", "only with enable-cors: \"true\"")),
                               ("limit-", ("warning", "rate limiting is not in Gateway API")),
                               ("proxy-ssl-", ("warning", "TLS to the backend needs a BackendTLSPolicy; "
                                               "not generated"))):
        if key.startswith(prefix):
            return sev, msg
    return "warning", "not converted: gwlib does not know this ingress-nginx annotation"


def traefik_reported(key: str) -> tuple[str, str]:
    if key in TRAEFIK_REPORTED:
        return TRAEFIK_REPORTED[key]
    for prefix in ("router.tls.domains.", "service.sticky.cookie"):
        if key.startswith(prefix):
            return TRAEFIK_REPORTED[prefix.rstrip(".")] if prefix.rstrip(".") in TRAEFIK_REPORTED \
                else TRAEFIK_REPORTED["service.sticky.cookie"]
    return "warning", "not converted: gwlib does not know this Traefik annotation"
