"""Building a provider's routing table (:class:`~gwlib.ingress.model.Table`) from Ingresses,
reading every annotation on the way (each one is recorded as converted or reported).

The semantics are described in :mod:`gwlib.ingress.model`; this module applies them.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from . import catalog as A
from .model import (
    Action,
    Canary,
    Inputs,
    Listener,
    Location,
    Redirect,
    Router,
    Server,
    Table,
    Target,
    _bool,
    _int,
    ref,
    resolve_target,
)
from .report import Report

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_REDIRECT_CODES = (301, 302, 303, 307, 308)


def _other_annotations(ing, provider: str, report: Report, table: Table, own_prefix: str) -> None:
    """Annotations that are not the provider's own: carried to the Gateway or reported."""
    for key, value in sorted(ing.annotations.items()):
        if key.startswith(own_prefix) or key == A.CLASS_ANNOTATION or key in A.SILENT:
            continue
        if key in A.GATEWAY_ANNOTATIONS:
            old = table.gateway_annotations.get(key)
            if old is not None and old != value:
                report.add("warning", ref(ing), key, f"another Ingress of the class sets {old!r}; the Gateway "
                                                     f"keeps the first value", "conflict")
            else:
                table.gateway_annotations[key] = value
                report.carried(ref(ing), key, "the Gateway's annotations (cert-manager's gateway-shim reads them "
                                              "there)")
            continue
        if key.startswith(A.NGINX) or key.startswith(A.TRAEFIK):
            other = "ingress-nginx" if key.startswith(A.NGINX) else "Traefik"
            report.add("warning", ref(ing), key, f"a {other} annotation, ignored by {provider} (the provider this "
                                                 f"conversion follows); not converted", "annotation-other-provider")
            continue
        report.add("info", ref(ing), key, "not read by the Ingress controller; not carried over to the Gateway API "
                                          "objects", "annotation-not-read")


# =========================================================================== ingress-nginx

class NginxSettings:
    """The ingress-nginx annotations of one Ingress, parsed; every key is recorded in the
    report as converted or not."""

    def __init__(self, ing, report: Report, canary_ingress: bool = False):
        self.ing = ing
        self.report = report
        obj = ref(ing)
        ann = {k[len(A.NGINX):]: v for k, v in ing.annotations.items() if k.startswith(A.NGINX)}
        self.ann = ann
        self.use_regex = _bool(ann.get("use-regex"), False)
        self.rewrite = ann.get("rewrite-target")
        self.ssl_redirect = _bool(ann.get("ssl-redirect"), True)
        self.force_ssl_redirect = _bool(ann.get("force-ssl-redirect"), False)
        self.app_root = None
        self.redirect: Redirect | None = None
        self.grpc = False
        self.passthrough = _bool(ann.get("ssl-passthrough"), False)
        self.host_rewrite = ann.get("upstream-vhost") or None
        self.request_headers = None
        self.timeouts = None
        self.cors = None

        if canary_ingress:
            for key in sorted(ann):
                if key not in A.NGINX_CANARY_KEYS:
                    report.add("info", obj, A.NGINX + key, "ignored on a canary Ingress (ingress-nginx ignores "
                                                           "non-canary annotations there)", "canary-ignored-annotation")
            return

        for key in sorted(ann):
            full = A.NGINX + key
            if key in A.NGINX_CANARY_KEYS:
                if key != "canary":
                    report.add("info", obj, full, "only read on a canary Ingress (canary: \"true\"); ignored",
                               "canary-ignored-annotation")
                else:
                    report.carried(obj, full, "nothing: canary is not \"true\"")
                continue
            if key in A.NGINX_CONVERTED:
                continue  # handled below
            if key.startswith("cors-") and not _bool(ann.get("enable-cors"), False):
                report.add("info", obj, full, "ignored without enable-cors: \"true\"", "annotation-unsupported")
                continue
            sev, msg = A.nginx_reported(key)
            report.add(sev, obj, full, msg, "annotation-unsupported")

        for key in ("use-regex", "ssl-redirect", "force-ssl-redirect", "ssl-passthrough"):
            if key in ann:
                report.carried(obj, A.NGINX + key, A.NGINX_CONVERTED[key])
        if self.rewrite is not None:
            report.carried(obj, A.NGINX + "rewrite-target", A.NGINX_CONVERTED["rewrite-target"])
        if self.host_rewrite:
            report.carried(obj, A.NGINX + "upstream-vhost", A.NGINX_CONVERTED["upstream-vhost"])
        self._redirects(ann, obj)
        self._app_root(ann, obj)
        self._protocol(ann, obj)
        self._timeouts(ann, obj)
        if ann.get("x-forwarded-prefix"):
            self.request_headers = {"set": [{"name": "X-Forwarded-Prefix", "value": ann["x-forwarded-prefix"]}]}
            report.carried(obj, A.NGINX + "x-forwarded-prefix", A.NGINX_CONVERTED["x-forwarded-prefix"])
        if _bool(ann.get("enable-cors"), False):
            self._cors(ann, obj)
        elif "enable-cors" in ann:
            report.carried(obj, A.NGINX + "enable-cors", "nothing: CORS is off")

    # -- pieces ---------------------------------------------------------------------------------

    def _redirect_to(self, url: str, code: int, key: str, obj: str) -> Redirect | None:
        parts = urlsplit(url.strip())
        if "$" in url or parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                or parts.fragment:
            self.report.add("warning", obj, A.NGINX + key,
                            f"redirect URL {url!r} cannot be written as a RequestRedirect (it needs an absolute "
                            f"http(s) URL without nginx variables, query or fragment); requests go to the "
                            f"backend instead", "redirect-url")
            return None
        try:
            port = parts.port
        except ValueError:
            port = None
        default_port = {"http": 80, "https": 443}[parts.scheme]
        shown = parts.hostname + (f":{port}" if port and port != default_port else "")
        # the Location as nginx sends it (an empty path shown as "/", as clients request it)
        return Redirect(code=code, scheme=parts.scheme, hostname=parts.hostname,
                        port=port if port and port != default_port else None, path=parts.path or "/",
                        verbatim=f"{parts.scheme}://{shown}{parts.path or '/'}")

    def _redirects(self, ann: dict, obj: str) -> None:
        for key, code_key, default in (("permanent-redirect", "permanent-redirect-code", 301),
                                       ("temporal-redirect", "temporal-redirect-code", 302)):
            if code_key in ann and key not in ann:
                self.report.add("info", obj, A.NGINX + code_key, f"ignored without {key}", "annotation-unsupported")
            if not ann.get(key):
                continue
            code = default
            if code_key in ann:
                c = _int(ann[code_key])
                if c in _REDIRECT_CODES:
                    code = c
                    self.report.carried(obj, A.NGINX + code_key, f"RequestRedirect statusCode {c}")
                else:
                    self.report.add("warning", obj, A.NGINX + code_key,
                                    f"{ann[code_key]!r} is not a status code Gateway API redirects can use "
                                    f"(301, 302, 303, 307, 308); {default} is used", "redirect-code")
            if self.redirect is not None:
                self.report.add("warning", obj, A.NGINX + key, "permanent-redirect takes precedence; ignored",
                                "conflict")
                continue
            self.redirect = self._redirect_to(ann[key], code, key, obj)
            if self.redirect is not None:
                self.report.carried(obj, A.NGINX + key, f"RequestRedirect ({code}) to {ann[key]}")
                self.report.add("info", obj, A.NGINX + key, "nginx's redirect drops the request's query string; a "
                                                            "Gateway API RequestRedirect keeps it", "redirect-query")

    def _app_root(self, ann: dict, obj: str) -> None:
        root = ann.get("app-root")
        if root is None:
            return
        if not root.startswith("/") or "$" in root or "?" in root:
            self.report.add("warning", obj, A.NGINX + "app-root", f"{root!r} is not a path (an absolute URL or "
                                                                  f"nginx variables); not converted", "app-root")
            return
        self.app_root = root
        self.report.carried(obj, A.NGINX + "app-root", f"an Exact / rule redirecting (302) to {root}")
        self.report.add("info", obj, A.NGINX + "app-root", "nginx's app-root redirect drops the query string of "
                                                           "/?...; a Gateway API RequestRedirect keeps it",
                        "redirect-query")

    def _protocol(self, ann: dict, obj: str) -> None:
        proto = (ann.get("backend-protocol") or "").strip().upper()
        if not proto:
            return
        key = A.NGINX + "backend-protocol"
        if proto == "HTTP":
            self.report.carried(obj, key, "nothing: HTTP is the default")
        elif proto in ("GRPC", "GRPCS"):
            self.grpc = True
            self.report.carried(obj, key, "GRPCRoute")
            if proto == "GRPCS":
                self.report.add("warning", obj, key, "TLS to the gRPC backend needs a BackendTLSPolicy; not "
                                                     "generated, so the backend now gets cleartext h2c",
                                "backend-tls")
        elif proto == "HTTPS":
            self.report.add("warning", obj, key, "TLS to the backend needs a BackendTLSPolicy; not generated, so "
                                                 "the backend now gets plain HTTP", "backend-tls")
        else:
            self.report.add("error", obj, key, f"{proto} backends are not HTTP: Gateway API cannot talk {proto} to "
                                               f"a backend", "backend-protocol")

    def _timeouts(self, ann: dict, obj: str) -> None:
        keys = ("proxy-connect-timeout", "proxy-send-timeout", "proxy-read-timeout")
        if not any(k in ann for k in keys):
            return
        vals = {}
        for k, default in zip(keys, (5, 60, 60)):
            v = _int(str(ann.get(k, default)).rstrip("s"))
            if v is None or v < 0:
                self.report.add("warning", obj, A.NGINX + k, f"{ann.get(k)!r} is not a number of seconds; "
                                                             f"{default} assumed", "timeouts")
                v = default
            vals[k] = v
        total = vals["proxy-connect-timeout"] + max(vals["proxy-send-timeout"], vals["proxy-read-timeout"])
        if total <= 0:
            return
        self.timeouts = {"backendRequest": duration(total)}
        for k in keys:
            if k in ann:
                self.report.carried(obj, A.NGINX + k, f"timeouts.backendRequest {duration(total)}")
        self.report.add("warning", obj, ", ".join(A.NGINX + k for k in keys if k in ann),
                        f"nginx timeouts limit each operation (connect; idle time between two reads or writes); "
                        f"Gateway API timeouts limit the whole backend request: timeouts.backendRequest is "
                        f"{duration(total)} (connect + read/send), so a long streaming response is now cut there",
                        "timeouts")

    def _cors(self, ann: dict, obj: str) -> None:
        def items(key: str, default: str) -> list[str]:
            return [x.strip() for x in (ann.get(key) or default).split(",") if x.strip()]

        cors: dict = {
            "allowOrigins": items("cors-allow-origin", "*"),
            "allowMethods": [m.upper() for m in items("cors-allow-methods",
                                                       "GET, PUT, POST, DELETE, PATCH, OPTIONS")],
            "allowHeaders": items("cors-allow-headers", "DNT,Keep-Alive,User-Agent,X-Requested-With,"
                                                        "If-Modified-Since,Cache-Control,Content-Type,Range,"
                                                        "Authorization"),
            "allowCredentials": _bool(ann.get("cors-allow-credentials"), True),
            "maxAge": _int(ann.get("cors-max-age")) or 1728000,
        }
        if ann.get("cors-expose-headers"):
            cors["exposeHeaders"] = items("cors-expose-headers", "")
        self.cors = cors
        for key in ann:
            if key == "enable-cors" or key in A.NGINX_CONVERTED and key.startswith("cors-"):
                self.report.carried(obj, A.NGINX + key, A.NGINX_CONVERTED[key])

    # -- actions ----------------------------------------------------------------------------------

    def action(self, target: Target | None, path: str | None) -> Action:
        a = Action(target=target, ingress=f"{self.ing.namespace}/{self.ing.name}", redirect=self.redirect,
                   host_rewrite=self.host_rewrite, request_headers=self.request_headers,
                   timeouts=self.timeouts, cors=self.cors, grpc=self.grpc,
                   unresolved=target is not None and target.number is None)
        if self.rewrite is not None and path is not None:
            a.rewrite_regex = (path, self.rewrite)
        return a

    def needs_regex(self, path: str) -> bool:
        """ingress-nginx's needsRewrite || UseRegex for one location."""
        return self.use_regex or (self.rewrite is not None and self.rewrite != path)


def duration(seconds: int) -> str:
    """A GEP-2257 duration (``90s``, ``1h0m5s``)."""
    if seconds <= 99999:
        return f"{seconds}s"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s"


def _canary(ing, report: Report) -> dict:
    ann = {k[len(A.NGINX):]: v for k, v in ing.annotations.items() if k.startswith(A.NGINX)}
    obj = ref(ing)
    total = 100
    if "canary-weight-total" in ann:
        t = _int(ann["canary-weight-total"])
        if t is None or t <= 0:
            report.add("error", obj, A.NGINX + "canary-weight-total", f"{ann['canary-weight-total']!r} is not a "
                                                                      f"positive integer; 100 used", "canary-weight")
        else:
            total = t
    weight = 0
    if "canary-weight" in ann:
        w = _int(ann["canary-weight"])
        if w is None or w < 0:
            report.add("error", obj, A.NGINX + "canary-weight", f"{ann['canary-weight']!r} is not a non-negative "
                                                                f"integer; 0 used", "canary-weight")
        elif w > total:
            report.add("warning", obj, A.NGINX + "canary-weight", f"{w} is more than the total {total}; capped",
                       "canary-weight")
            weight = total
        else:
            weight = w
    header = ann.get("canary-by-header") or None
    if header and not _HEADER_NAME.match(header):
        report.add("error", obj, A.NGINX + "canary-by-header", f"{header!r} is not a valid header name; ignored",
                   "canary-header")
        header = None
    out = {"weight": weight, "total": total, "header": header,
           "header_value": (ann.get("canary-by-header-value") or None) if header else None,
           "header_pattern": (ann.get("canary-by-header-pattern") or None) if header else None,
           "cookie": ann.get("canary-by-cookie") or None}
    return out


def build_nginx(ingresses: list, inputs: Inputs, report: Report, ingress_class: str) -> Table:
    namespaces = sorted({i.namespace for i in ingresses})
    table = Table("ingress-nginx", ingress_class, namespaces, ingresses=list(ingresses))
    first_ns = ingresses[0].namespace if ingresses else "default"
    default = Server("", first_ns)
    default.locations.append(Location("", first_ns, "/", "Prefix", Action(None, ""), root=True))
    table.servers[""] = default
    settings: dict[str, NginxSettings] = {}
    canaries = [i for i in ingresses if _bool(i.annotations.get(A.NGINX + "canary"), False)]
    primaries = [i for i in ingresses if i not in canaries]

    for ing in primaries:
        s = settings[ing.key] = NginxSettings(ing, report)
        _other_annotations(ing, "ingress-nginx", report, table, A.NGINX)
        obj = ref(ing)
        dflt = None
        if ing.spec.default_backend is not None:
            dflt = resolve_target(ing, ing.spec.default_backend, inputs, report, "spec.defaultBackend")
        rules = ing.spec.rules or []
        if not rules and dflt is not None:
            root = default.root
            if root.root and root.action.target is None:
                root.action = s.action(dflt, None)
                root.field = "spec.defaultBackend"
                root.namespace = default.namespace = ing.namespace
                default.creator = ing.key
                report.carried(obj, "spec.defaultBackend", "a catch-all rule (PathPrefix /) without hostnames")
            else:
                report.add("warning", obj, "", "spec.defaultBackend: another Ingress already set the catch-all "
                                               "backend (the oldest wins); ignored", "conflict")
        elif rules and dflt is not None:
            report.carried(obj, "spec.defaultBackend", "a catch-all rule (PathPrefix /) in the routes of its hosts")
        for ri, rule in enumerate(rules):
            host = rule.host or ""
            srv = table.servers.get(host)
            if srv is None:
                srv = Server(host, ing.namespace, creator=ing.key)
                srv.locations.append(Location(host, ing.namespace, "/", "Prefix",
                                              s.action(dflt, None) if dflt is not None else
                                              Action(None, f"{ing.namespace}/{ing.name}"), root=True,
                                              field="spec.defaultBackend" if dflt is not None else ""))
                table.servers[host] = srv
                srv.app_root = s.app_root
                srv._creator_settings = s  # type: ignore[attr-defined]
            elif s.app_root and srv.app_root is None:
                srv.app_root = s.app_root
            if s.passthrough:
                srv.passthrough = True
            for pi, p in enumerate((rule.http.paths if rule.http else None) or []):
                where = f"spec.rules[{ri}].http.paths[{pi}]"
                target = resolve_target(ing, p.backend, inputs, report, where)
                if target is None:
                    continue
                path = p.path or "/"
                if s.needs_regex(path):
                    if not srv.regex:
                        srv.regex_cause = (ing.key, A.NGINX + ("use-regex" if s.use_regex else "rewrite-target"))
                    srv.regex = True
                exists = next((l for l in srv.locations if not l.root and l.path == path
                               and l.path_type == p.path_type), None)
                if exists is not None:
                    report.add("warning", obj, "", f"{where}: host {host or '(any)'} path {path} "
                                                   f"({p.path_type}) is already routed by Ingress "
                                                   f"{exists.action.ingress} (the oldest wins); ignored", "conflict")
                    continue
                loc = Location(host, ing.namespace, path, p.path_type, s.action(target, path), field=where)
                loc._settings = s  # type: ignore[attr-defined]
                if path == "/" and p.path_type != "Exact":
                    root = srv.root
                    if root.root:
                        srv.locations.remove(root)
                    else:
                        report.add("warning", obj, "", f"{where}: host {host or '(any)'} path / is already "
                                                       f"routed by Ingress {root.action.ingress}; ignored",
                                   "conflict")
                        continue
                srv.locations.append(loc)
        for t in ing.spec.tls or []:
            hosts = t.hosts or [""]
            for h in hosts:
                secret = (ing.namespace, t.secret_name) if t.secret_name else None
                old = table.tls.get(h)
                if old is None:
                    table.tls[h] = Listener(h, secret, ing.key)
                    report.carried(obj, "spec.tls", "HTTPS listeners (one per host) with certificateRefs")
                elif old.secret != secret:
                    report.add("warning", obj, "", f"spec.tls: host {h or '(any)'} already has the certificate of "
                                                   f"Ingress {old.ingress} (the oldest wins); ignored", "conflict")
                if secret is None:
                    report.add("warning", obj, "", f"spec.tls: host {h or '(any)'} has no secretName (ingress-nginx "
                                                   f"uses its default certificate); a Gateway listener needs a "
                                                   f"certificate, so no HTTPS listener is written for it",
                               "tls-secret-missing")

    # regex mode and ssl redirects, now that every server is complete
    for srv in table.servers.values():
        tls = srv.host in table.tls and table.tls[srv.host].secret is not None
        srv.tls = table.tls[srv.host].secret if tls else None
        for loc in srv.locations:
            loc.regex = srv.regex
            s = getattr(loc, "_settings", None) or getattr(srv, "_creator_settings", None) \
                or settings.get(srv.creator)
            if s is None:
                continue
            if s.force_ssl_redirect or (tls and s.ssl_redirect):
                loc.action.https_redirect = 308
            if s.force_ssl_redirect and not tls and not loc.root and not srv.passthrough:
                report.add("info", ref(s.ing), A.NGINX + "force-ssl-redirect",
                           f"host {srv.host or '(any)'} redirects to HTTPS but has no certificate here (TLS is "
                           f"terminated in front of the controller?); the Gateway gets no HTTPS listener for it",
                           "force-ssl-redirect-no-tls")
        if srv.passthrough:
            table.tls[srv.host] = Listener(srv.host, None, srv.creator, passthrough=True)

    for ing in canaries:
        NginxSettings(ing, report, canary_ingress=True)
        _other_annotations(ing, "ingress-nginx", report, table, A.NGINX)
        _merge_canary(ing, table, inputs, report)
    return table


def _merge_canary(ing, table: Table, inputs: Inputs, report: Report) -> None:
    obj = ref(ing)
    c = _canary(ing, report)
    merged = 0
    for ri, rule in enumerate(ing.spec.rules or []):
        host = rule.host or ""
        srv = table.servers.get(host)
        for pi, p in enumerate((rule.http.paths if rule.http else None) or []):
            where = f"spec.rules[{ri}].http.paths[{pi}]"
            path = p.path or "/"
            loc = None
            if srv is not None:
                loc = next((l for l in srv.locations if not l.root and l.path == path and l.path_type == p.path_type),
                           None)
            if loc is None or loc.action.target is None:
                report.add("warning", obj, A.NGINX + "canary", f"{where}: no primary Ingress routes host "
                                                               f"{host or '(any)'} path {path} ({p.path_type}); "
                                                               f"ingress-nginx drops this canary path, and so does "
                                                               f"the conversion", "canary-no-primary")
                continue
            if loc.namespace != ing.namespace:
                report.add("warning", obj, A.NGINX + "canary", f"{where}: the primary is in namespace "
                                                               f"{loc.namespace}; gwlib merges canaries only within "
                                                               f"one namespace; not merged", "canary-no-primary")
                continue
            if loc.action.canary is not None:
                report.add("warning", obj, A.NGINX + "canary", f"{where}: host {host or '(any)'} path {path} already "
                                                               f"has canary Ingress {loc.action.canary.ingress} (one "
                                                               f"canary per rule); ignored", "conflict")
                continue
            target = resolve_target(ing, p.backend, inputs, report, where)
            if target is None:
                continue
            loc.action.canary = Canary(target, c["weight"], c["total"], c["header"], c["header_value"],
                                       c["header_pattern"], c["cookie"], f"{ing.namespace}/{ing.name}")
            merged += 1
    ann = {k[len(A.NGINX):]: v for k, v in ing.annotations.items() if k.startswith(A.NGINX)}
    for key in ("canary-by-header-value", "canary-by-header-pattern"):
        if key in ann and not c["header"]:
            report.add("warning", obj, A.NGINX + key, "ignored without a valid canary-by-header (ingress-nginx "
                                                      "ignores it too)", "canary-header")
    if merged:
        for key in ("canary", "canary-weight", "canary-weight-total", "canary-by-header", "canary-by-header-value"):
            if key in ann and not (key == "canary-by-header-value" and not c["header"]):
                report.carried(obj, A.NGINX + key, A.NGINX_CONVERTED[key])
    for key in ("canary-by-header-pattern", "canary-by-cookie"):
        if key in ann and (key == "canary-by-cookie" or c["header"]):
            if key == "canary-by-header-pattern" and c["header_value"]:
                report.add("info", obj, A.NGINX + key, "ignored: canary-by-header-value takes precedence",
                           "canary-header-pattern")
                continue
            sev, msg = A.NGINX_REPORTED[key]
            report.add(sev, obj, A.NGINX + key, msg, "canary-cookie" if "cookie" in key else "canary-header-pattern")
    if not merged:
        for key in ("canary-weight", "canary-weight-total", "canary-by-header", "canary-by-header-value"):
            if key in ann:
                report.add("warning", obj, A.NGINX + key, "the canary was not merged into any rule (see above)",
                           "canary-no-primary")
    if ing.spec.default_backend is not None:
        report.add("info", obj, "", "spec.defaultBackend of a canary Ingress is not merged", "canary-no-primary")


# =========================================================================== Traefik

_MW_REF = re.compile(r"^(?P<name>[^@]+)(@(?P<provider>.+))?$")


def _host_rule(host: str) -> str:
    if host.startswith("*."):
        return "HostRegexp(`" + host.replace(".", "\\.").replace("*\\.", "[a-zA-Z0-9-]+\\.", 1) + "`)"
    return f"Host(`{host}`)"


class TraefikSettings:
    def __init__(self, ing, inputs: Inputs, report: Report):
        self.ing = ing
        obj = ref(ing)
        ann = {k[len(A.TRAEFIK):]: v for k, v in ing.annotations.items() if k.startswith(A.TRAEFIK)}
        self.families = {"http", "https"}
        self.priority = None
        self.tls = _bool(ann.get("router.tls"), False)
        self.pathmatcher = None
        self.actions: dict = {}
        for key in sorted(ann):
            full = A.TRAEFIK + key
            if key in A.TRAEFIK_CONVERTED:
                continue
            sev, msg = A.traefik_reported(key)
            report.add(sev, obj, full, msg, "annotation-unsupported")
        if "router.entrypoints" in ann:
            eps = {e.strip() for e in ann["router.entrypoints"].split(",") if e.strip()}
            fams = set()
            for e in sorted(eps):
                if e == "web":
                    fams.add("http")
                elif e == "websecure":
                    fams.add("https")
                else:
                    report.add("warning", obj, A.TRAEFIK + "router.entrypoints",
                               f"entry point {e!r} is not web or websecure: gwlib maps only those two (to the "
                               f"HTTP and HTTPS listeners); add a listener for its port by hand",
                               "entrypoint-unknown")
            if fams:
                self.families = fams
                report.carried(obj, A.TRAEFIK + "router.entrypoints", A.TRAEFIK_CONVERTED["router.entrypoints"])
        if self.tls:
            self.families = {"https"}
            report.carried(obj, A.TRAEFIK + "router.tls", A.TRAEFIK_CONVERTED["router.tls"])
        elif "router.tls" in ann:
            report.carried(obj, A.TRAEFIK + "router.tls", "nothing: false")
        if "router.priority" in ann:
            p = _int(ann["router.priority"])
            if p is None:
                report.add("warning", obj, A.TRAEFIK + "router.priority", f"{ann['router.priority']!r} is not an "
                                                                          f"integer; ignored", "traefik-priority")
            else:
                self.priority = p
                report.carried(obj, A.TRAEFIK + "router.priority", A.TRAEFIK_CONVERTED["router.priority"])
        if "router.pathmatcher" in ann:
            pm = ann["router.pathmatcher"].strip()
            if pm in ("Path", "PathPrefix"):
                self.pathmatcher = pm
                report.carried(obj, A.TRAEFIK + "router.pathmatcher", A.TRAEFIK_CONVERTED["router.pathmatcher"])
            else:
                report.add("warning", obj, A.TRAEFIK + "router.pathmatcher",
                           f"{pm} is not converted (only Path and PathPrefix are); PathPrefix used",
                           "annotation-unsupported")
        self.middleware = self._middlewares(ann.get("router.middlewares"), inputs, report, obj)

    def _middlewares(self, value: str | None, inputs: Inputs, report: Report, obj: str) -> dict:
        out: dict = {}
        if not value:
            return out
        key = A.TRAEFIK + "router.middlewares"
        for item in [v.strip() for v in value.split(",") if v.strip()]:
            m = _MW_REF.match(item)
            name = m.group("name") if m else item
            provider = (m.group("provider") if m else None) or ""
            if provider not in ("", "kubernetescrd"):
                report.add("warning", obj, key, f"middleware {item} comes from the {provider} provider; only "
                                                f"@kubernetescrd Middleware objects can be converted",
                           "middleware-missing")
                continue
            mw = next((o for k, o in sorted(inputs.middlewares.items())
                       if f"{o.namespace}-{o.name}" == name
                       or (not provider and o.name == name and o.namespace == self.ing.namespace)), None)
            if mw is None:
                report.add("warning", obj, key, f"middleware {item} was not given: pass its Middleware object "
                                                f"(traefik.io/v1alpha1) to convert it; not converted",
                           "middleware-missing")
                continue
            spec = mw.spec if isinstance(mw.spec, dict) else {}
            for kind, conf in sorted(spec.items()):
                conf = conf if isinstance(conf, dict) else {}
                where = f"Middleware {mw.namespace}/{mw.name} ({kind})"
                if kind == "redirectScheme":
                    scheme = str(conf.get("scheme") or "https")
                    if scheme != "https":
                        report.add("warning", obj, key, f"{where}: only redirects to https are converted",
                                   "middleware-unsupported")
                        continue
                    port = _int(conf.get("port")) if conf.get("port") not in (None, "") else None
                    out["https_redirect"] = 301 if conf.get("permanent") is True else 302
                    out["https_redirect_port"] = port if port not in (None, 443) else None
                    report.carried(obj, key, f"{where}: a RequestRedirect (https) rule for HTTP requests")
                    report.add("info", obj, key, f"{where}: Traefik answers {out['https_redirect']} to GET and HEAD "
                                                 f"but {308 if out['https_redirect'] == 301 else 307} to other methods "
                                                 f"(keeping the method); a RequestRedirect has one status code",
                               "redirect-method")
                elif kind == "headers":
                    req, resp = conf.get("customRequestHeaders") or {}, conf.get("customResponseHeaders") or {}
                    for mod_key, headers in (("request_headers", req), ("response_headers", resp)):
                        if not isinstance(headers, dict) or not headers:
                            continue
                        mod = {}
                        sets = [{"name": str(k), "value": str(v)} for k, v in sorted(headers.items()) if str(v)]
                        removes = [str(k) for k, v in sorted(headers.items()) if not str(v)]
                        if sets:
                            mod["set"] = sets
                        if removes:
                            mod["remove"] = removes
                        out[mod_key] = mod
                    others = sorted(k for k in conf if k not in ("customRequestHeaders", "customResponseHeaders"))
                    if req or resp:
                        report.carried(obj, key, f"{where}: Request/ResponseHeaderModifier filters")
                    if others:
                        report.add("warning", obj, key, f"{where}: {', '.join(others)} not converted (only "
                                                        f"customRequestHeaders and customResponseHeaders are)",
                                   "middleware-unsupported")
                elif kind == "stripPrefix":
                    prefixes = [str(p) for p in conf.get("prefixes") or [] if str(p)]
                    out["strip_prefixes"] = prefixes
                    report.carried(obj, key, f"{where}: URLRewrite ReplacePrefixMatch / (where the rule's prefix "
                                             f"is the stripped one)")
                elif kind == "replacePath":
                    out["rewrite_full"] = str(conf.get("path") or "/")
                    report.carried(obj, key, f"{where}: URLRewrite ReplaceFullPath")
                else:
                    sev = "error" if kind in ("basicAuth", "digestAuth", "forwardAuth", "ipAllowList", "ipWhiteList",
                                              "rateLimit", "inFlightReq") else "warning"
                    report.add(sev, obj, key, f"{where}: a {kind} middleware has no Gateway API equivalent; not "
                                              f"converted" + (" — requests are no longer checked" if sev == "error"
                                                              else ""), "middleware-unsupported")
        return out

    def action(self, target: Target | None) -> Action:
        mw = self.middleware
        return Action(target=target, ingress=f"{self.ing.namespace}/{self.ing.name}",
                      https_redirect=mw.get("https_redirect"), https_redirect_port=mw.get("https_redirect_port"),
                      rewrite_full=mw.get("rewrite_full"), strip_prefixes=mw.get("strip_prefixes"),
                      request_headers=mw.get("request_headers"), response_headers=mw.get("response_headers"),
                      unresolved=target is not None and target.number is None)


def build_traefik(ingresses: list, inputs: Inputs, report: Report, ingress_class: str) -> Table:
    namespaces = sorted({i.namespace for i in ingresses})
    table = Table("traefik", ingress_class, namespaces, ingresses=list(ingresses))
    have_default = None
    for ing in ingresses:
        s = TraefikSettings(ing, inputs, report)
        _other_annotations(ing, "traefik", report, table, A.TRAEFIK)
        obj = ref(ing)
        rules = ing.spec.rules or []
        if ing.spec.default_backend is not None:
            if rules:
                report.add("warning", obj, "", "spec.defaultBackend is ignored by Traefik when the Ingress has rules; "
                                               "not converted (requests that match no rule go where Traefik sends them: its default "
                                               "router, else 404)",
                           "traefik-default-backend-ignored")
            elif have_default is not None:
                report.add("warning", obj, "", f"spec.defaultBackend: Ingress {have_default} already set Traefik's "
                                               f"default backend; ignored", "conflict")
            else:
                t = resolve_target(ing, ing.spec.default_backend, inputs, report, "spec.defaultBackend")
                if t is not None:
                    have_default = ing.key
                    table.routers.append(Router("default-router", "", ing.namespace, "", "prefix", -(2 ** 31),
                                                frozenset(s.families), s.action(t), default=True,
                                                field="spec.defaultBackend", rule="PathPrefix(`/`)"))
                    report.carried(obj, "spec.defaultBackend", "a catch-all rule (PathPrefix /) without hostnames")
        for ri, rule in enumerate(rules):
            host = rule.host or ""
            for pi, p in enumerate((rule.http.paths if rule.http else None) or []):
                where = f"spec.rules[{ri}].http.paths[{pi}]"
                target = resolve_target(ing, p.backend, inputs, report, where)
                if target is None:
                    continue
                path = p.path or ""
                if p.path_type == "Exact" or (p.path_type == "ImplementationSpecific" and s.pathmatcher == "Path"):
                    kind, matcher = "exact", "Path"
                else:
                    kind, matcher = "prefix", "PathPrefix"
                parts = [_host_rule(host)] if host else []
                if path:
                    parts.append(f"{matcher}(`{path}`)")
                rule_text = " && ".join(parts)
                key = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{ing.namespace}-{ing.name}-{host}{path}").strip("-")
                prio = s.priority if s.priority is not None else len(rule_text)
                table.routers.append(Router(key, host, ing.namespace, path, kind, prio, frozenset(s.families),
                                            s.action(target), field=where, rule=rule_text))
        for t in ing.spec.tls or []:
            for h in t.hosts or [""]:
                secret = (ing.namespace, t.secret_name) if t.secret_name else None
                old = table.tls.get(h)
                if old is None:
                    table.tls[h] = Listener(h, secret, ing.key)
                    report.carried(obj, "spec.tls", "HTTPS listeners (one per host) with certificateRefs")
                elif old.secret != secret and secret is not None:
                    report.add("warning", obj, "", f"spec.tls: host {h or '(any)'} already has the certificate of "
                                                   f"Ingress {old.ingress}; ignored", "conflict")
        if s.tls:
            for rule in rules:
                h = rule.host or ""
                if h not in table.tls:
                    table.tls[h] = Listener(h, None, ing.key)
    for h, lis in sorted(table.tls.items()):
        if lis.secret is None:
            report.add("warning", f"Ingress {lis.ingress}", "", f"host {h or '(any)'} is served over TLS without a "
                                                                f"certificate Secret in spec.tls (Traefik's default "
                                                                f"certificate or a certresolver); the HTTPS listener "
                                                                f"references Secret {tls_secret_name(h)}, which you "
                                                                f"must create (cert-manager can)",
                       "tls-secret-missing")
    table.routers.sort(key=lambda r: (-r.priority, r.key))
    return table


def slug(host: str) -> str:
    if not host:
        return "all-hosts"
    return host.replace("*.", "wildcard.").replace(".", "-")


def tls_secret_name(host: str) -> str:
    return f"{slug(host)}-tls"

