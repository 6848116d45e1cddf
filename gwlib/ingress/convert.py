"""Ingress (+ ingress-nginx or Traefik annotations) → Gateway API, with a report.

    conv = gwlib.ingress.convert("data/ingress/01-argocd/ingress.yaml", provider="ingress-nginx")
    print(conv.yaml())              # Gateway, HTTPRoutes, ...
    conv.report.to_frame()          # what did not survive, and why

The shape of the output (choices, each said once here):

* **One Gateway per ingress class**, named after the class, with ``gatewayClassName`` =
  the class name: create a GatewayClass of that name for your implementation (or edit the
  field). It lives in the namespace of the (oldest) Ingress; when the class's Ingresses
  span namespaces its listeners admit routes from ``All`` namespaces.
* Listeners: ``http`` (port 80, every host); one HTTPS listener per TLS host
  (``https-<host>``, port 443, ``certificateRefs`` = the Ingress's secret; ``https`` when
  ``spec.tls`` names no hosts); ``ssl-passthrough`` hosts get a TLS listener
  (``tls-<host>``, Passthrough) and a TLSRoute instead.
* **One HTTPRoute per namespace and host** (``<ingress>-<host>``; ``all-hosts`` for rules
  without a host), attached with ``sectionName`` to exactly the listeners that serve the
  host. When HTTP and HTTPS behave differently (an HTTPS redirect) the host gets two routes:
  ``<ingress>-<host>`` on HTTPS and ``<ingress>-<host>-http`` on HTTP. gRPC backends
  (``backend-protocol: GRPC``) get a GRPCRoute ``<...>-grpc``. Routes hold at most 16 rules;
  bigger ones continue in ``-2``, ``-3``, ...
* Backends: ``backendRefs`` with the Service port number; a named port is resolved from the
  Service when it is given, else left out and reported. ``defaultBackend`` becomes a
  catch-all rule (``PathPrefix /``) in the routes of the hosts it serves.
* Ingress ``Exact`` → ``Exact``; ``Prefix`` and ``ImplementationSpecific`` → ``PathPrefix``;
  regex paths (ingress-nginx ``use-regex``/``rewrite-target``) → ``RegularExpression``
  ``(?i)(?:<path>).*`` (case-insensitive and anchored at the start, as nginx matches them),
  except plain paths and the ``/p(/|$)(.*)`` idiom, which become ``PathPrefix``.
* ingress-nginx canaries: weighted ``backendRefs`` (``canary-weight`` of
  ``canary-weight-total``) plus header-match rules (``always`` → canary, ``never`` →
  primary, or the exact ``canary-by-header-value`` → canary).
* Traefik router priorities (``router.priority`` or the rule length) are honoured by the
  rule set: a rule that a higher-priority router shadows is dropped, and a rule of a
  less specific host that must win is copied into the more specific host's route.

Every produced object is checked with the same validation as ``gwlib validate`` (standard
channel); an object that would not pass is not written and the report says so.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..matching import hostname_matches
from ..problems import Problem
from . import catalog as A
from .model import (
    PROVIDERS,
    Action,
    Inputs,
    Location,
    Router,
    Server,
    Table,
    guess_provider,
    has_regex,
    host_matches,
    prefix_matches,
    read_inputs,
)
from .providers import slug, tls_secret_name
from .report import Report

GATEWAY_API = "gateway.networking.k8s.io/v1"
MAX_RULES = 16
_IDIOM = re.compile(r"^(?P<prefix>/[^()\[\]{}*+?.^$|\\]*?)\(/\|\$\)\(\.\*\)$")


# =========================================================================== helpers shared with the router

def idiom_prefix(path: str) -> str | None:
    """``/something(/|$)(.*)`` → ``/something`` (the rewrite idiom of the ingress-nginx docs)."""
    m = _IDIOM.match(path)
    if not m:
        return None
    p = m.group("prefix").rstrip("/")
    return p or None


def rewrite_idiom(pattern: str, target: str) -> str | None:
    """The prefix when ``rewrite-target: /$2`` on ``<prefix>(/|$)(.*)`` can be written as
    PathPrefix ``<prefix>`` + ReplacePrefixMatch ``/``; None otherwise."""
    if target.strip() != "/$2":
        return None
    return idiom_prefix(pattern)


def gw_path_match(loc: Location) -> dict:
    """The HTTPPathMatch a location becomes."""
    if loc.root:
        return {"type": "PathPrefix", "value": "/"}
    p = loc.path
    if loc.regex:
        prefix = idiom_prefix(p)
        if prefix:
            return {"type": "PathPrefix", "value": prefix}
        if not has_regex(p):
            return {"type": "Exact" if loc.path_type == "Exact" else "PathPrefix", "value": p}
        return {"type": "RegularExpression", "value": f"(?i)(?:{p}).*"}
    if loc.path_type == "Exact":
        return {"type": "Exact", "value": p}
    return {"type": "PathPrefix", "value": p}


def gw_matches(m: dict, path: str) -> bool:
    """Does the converted path match cover ``path`` (Gateway API semantics)?"""
    if m["type"] == "Exact":
        return path == m["value"]
    if m["type"] == "PathPrefix":
        return prefix_matches(m["value"], path)
    try:
        return re.fullmatch(m["value"], path) is not None
    except re.error:
        return False


def literal_covers(loc: Location, path: str) -> bool:
    return gw_matches(gw_path_match(loc), path)


def strip_is_exact(r: Router) -> bool:
    """A Traefik stripPrefix that equals the router's PathPrefix is ReplacePrefixMatch /."""
    strips = r.action.strip_prefixes
    if not strips:
        return True
    path = r.path or "/"
    return r.kind == "prefix" and path != "/" and path in strips


def _name(*parts: str) -> str:
    name = "-".join(p for p in parts if p).lower()
    name = re.sub(r"[^a-z0-9.-]+", "-", name).strip("-.") or "route"
    if len(name) > 253:
        h = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = name[:244].rstrip("-.") + "-" + h
    return name


# =========================================================================== result

@dataclass
class Conversion:
    """The result of :func:`convert`."""

    objects: list[dict]                  # Gateway API objects, in output order
    report: Report
    problems: list[Problem]              # invalid input documents (not converted)
    provider: str
    tables: dict[str, Table] = field(default_factory=dict)
    inputs: Inputs | None = None
    origins: dict[str, str] = field(default_factory=dict)   # "Kind ns/name" -> "from ..." comment

    @property
    def ok(self) -> bool:
        """True when every input document could be read (the report may still have findings)."""
        return not self.problems

    def yaml(self) -> str:
        """The objects as one YAML stream (what ``gwlib convert`` prints)."""
        import yaml

        class _Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data):  # no &id001 anchors: each rule reads on its own
                return True

        docs = []
        for obj in self.objects:
            key = _key(obj)
            text = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                             allow_unicode=True)
            comment = self.origins.get(key)
            docs.append((f"# {comment}\n" if comment else "") + text)
        return "---\n".join(docs)

    def with_stand_ins(self) -> list:
        """The converted objects plus what a cluster would already have, as typed resources:
        a GatewayClass per Gateway (``gwlib.dev/gateway-controller``), the given Services and
        Secrets, and stand-ins for the missing ones (placeholder certificates). Apply them to
        ``gwlib.connect("reference")`` to send requests through the converted Gateway."""
        from .equivalence import reference_objects
        return reference_objects(self)

    def resources(self) -> list:
        """The objects as typed gwlib resources (``gwlib.load``)."""
        from ..validation import load
        return load(self.objects) if self.objects else []

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.objects:
            out[o["kind"]] = out.get(o["kind"], 0) + 1
        return out

    def __repr__(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.kinds().items()) or "nothing"
        return (f"<Conversion ({self.provider}): {kinds}; {len(self.report.findings)} finding(s), "
                f"{len(self.problems)} invalid input(s)>")


def _key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')}"


# =========================================================================== convert

def convert(source: Any, provider: str | None = None, ingress_class: str | None = None) -> Conversion:
    """Convert Ingresses to Gateway API objects.

    ``source``: anything :func:`gwlib.load` reads (paths, folders, YAML text, dicts,
    resources). Give the Services (for named ports), Secrets and Traefik Middlewares the
    Ingresses refer to in the same input. ``provider``: ``"ingress-nginx"`` or ``"traefik"``
    — whose annotations and semantics to follow (default: guessed from IngressClasses and
    annotations, else ingress-nginx). ``ingress_class``: use this class for every Ingress.

    Invalid documents (not an Ingress, schema errors, a path without a backend service) are
    listed in ``problems`` and not converted; everything else is.
    """
    from .router import tables_for

    inputs = source if isinstance(source, Inputs) else read_inputs(source)
    guessed = provider is None
    provider = provider or guess_provider(inputs)
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}: use one of {', '.join(PROVIDERS)}")
    report = Report(provider)
    if guessed and inputs.ingresses:
        report.add("info", "input", "", f"no provider given: following {provider} (guessed from the IngressClasses "
                                        f"and annotations; say --provider to choose)", "provider-guessed")
    tables = tables_for(inputs, provider, report, ingress_class)
    objects: list[dict] = []
    origins: dict[str, str] = {}
    for cls, table in tables.items():
        b = _Builder(table, report, inputs)
        objs, orig = b.build()
        objects.extend(objs)
        origins.update(orig)
    objects = _checked(objects, report)
    return Conversion(objects, report, list(inputs.problems), provider, tables, inputs, origins)


def _checked(objects: list[dict], report: Report) -> list[dict]:
    """Validate every produced object (standard channel); drop and report the invalid."""
    from ..loader import Document
    from ..validation import parse_document

    out = []
    for i, obj in enumerate(objects):
        _, problems = parse_document(Document("<converted>", i, data=obj), "standard")
        if problems:
            for p in problems:
                report.add("error", _key(obj).replace(" /", " "), "",
                           f"not written: the converted object would be invalid ({p.path}: {p.message})",
                           "invalid-output")
            continue
        out.append(json.loads(json.dumps(obj)))   # no shared sub-objects: edit or dump each one alone
    return out


class _Builder:
    """Gateway API objects for one ingress class."""

    def __init__(self, table: Table, report: Report, inputs: Inputs):
        self.t = table
        self.report = report
        self.inputs = inputs
        self.gw_ns = table.ingresses[0].namespace
        self.gw_name = _name(table.ingress_class)
        self.gw_ref = f"Gateway {self.gw_ns}/{self.gw_name}"
        self.multi_ns = len(table.namespaces) > 1
        self.listeners: list[dict] = []
        self.listener_hosts: dict[str, str | None] = {}       # listener name -> hostname
        self.https_by_host: dict[str, str] = {}               # host -> HTTPS listener name
        self.tls_by_host: dict[str, str] = {}                 # host -> passthrough listener name
        self.routes: list[dict] = []
        self.origins: dict[str, str] = {}

    # -- gateway ---------------------------------------------------------------------------------

    def _listener_name(self, base: str) -> str:
        name, n = base, 2
        while name in self.listener_hosts:
            name, n = f"{base}-{n}", n + 1
        return name[:253]

    def _listeners(self) -> None:
        allowed = {"allowedRoutes": {"namespaces": {"from": "All"}}} if self.multi_ns else {}
        self.listeners.append({"name": "http", "protocol": "HTTP", "port": 80, **allowed})
        self.listener_hosts["http"] = None
        grants: dict[str, set[str]] = {}
        for host, lis in sorted(self.t.tls.items()):
            if lis.passthrough:
                if not host:
                    continue
                name = self._listener_name(f"tls-{slug(host)}")
                self.listeners.append({"name": name, "protocol": "TLS", "port": 443, "hostname": host,
                                       "tls": {"mode": "Passthrough"}, **allowed})
                self.listener_hosts[name] = host
                self.tls_by_host[host] = name
                continue
            if lis.secret is None and self.t.provider == "ingress-nginx":
                continue
            secret_ns, secret = lis.secret or (lis.ingress.split("/")[0], tls_secret_name(host))
            cref: dict = {"kind": "Secret", "name": secret}
            if secret_ns != self.gw_ns:
                cref["namespace"] = secret_ns
                grants.setdefault(secret_ns, set()).add(secret)
            name = self._listener_name(f"https-{slug(host)}" if host else "https")
            listener = {"name": name, "protocol": "HTTPS", "port": 443}
            if host:
                listener["hostname"] = host
            listener["tls"] = {"mode": "Terminate", "certificateRefs": [cref]}
            listener.update(allowed)
            self.listeners.append(listener)
            self.listener_hosts[name] = host or None
            self.https_by_host[host] = name
        if len(self.listeners) > 64:
            self.report.add("error", self.gw_ref, "", f"{len(self.listeners)} listeners: a Gateway has at most 64; "
                                                      f"the HTTPS listeners after the 63rd are left out (split the "
                                                      f"hosts over several Gateways)", "too-many-listeners")
            for lis in self.listeners[64:]:
                self.listener_hosts.pop(lis["name"], None)
                self.https_by_host = {h: n for h, n in self.https_by_host.items() if n != lis["name"]}
                self.tls_by_host = {h: n for h, n in self.tls_by_host.items() if n != lis["name"]}
            self.listeners = self.listeners[:64]
        self._grants = grants

    def https_for(self, host: str) -> str | None:
        """The HTTPS listener that serves ``host``: its own, a wildcard one, or the hostless one."""
        if host in self.https_by_host:
            return self.https_by_host[host]
        if host:
            wild = [(h, n) for h, n in self.https_by_host.items() if h.startswith("*.") and hostname_matches(h, host)]
            if wild:
                return sorted(wild, key=lambda hn: -len(hn[0]))[0][1]
        return self.https_by_host.get("")

    def https_covered(self, host: str) -> list[str]:
        """Every HTTPS listener whose host ``host`` covers the way Traefik matches (hostless
        and wildcard routers also serve the more specific HTTPS hosts; a wildcard one label)."""
        out = []
        for h, n in sorted(self.https_by_host.items(), key=lambda hn: (hn[0] != host, hn[0])):
            if not host or h == host or not h or (h and not h.startswith("*") and host_matches(host, h)):
                out.append(n)
        return out

    def gateway(self) -> dict:
        meta: dict = {"name": self.gw_name, "namespace": self.gw_ns}
        if self.t.gateway_annotations:
            meta["annotations"] = dict(sorted(self.t.gateway_annotations.items()))
        return {"apiVersion": GATEWAY_API, "kind": "Gateway", "metadata": meta,
                "spec": {"gatewayClassName": self.gw_name, "listeners": self.listeners}}

    # -- build -----------------------------------------------------------------------------------

    def build(self) -> tuple[list[dict], dict[str, str]]:
        self._listeners()
        ing_names = ", ".join(f"{i.namespace}/{i.name}" for i in self.t.ingresses)
        self.report.add("info", self.gw_ref, "", f"one Gateway for ingress class {self.t.ingress_class!r}; its "
                                                 f"gatewayClassName is the class name: create a GatewayClass "
                                                 f"{self.gw_name!r} for your implementation (or change the field)",
                        "gatewayclass-name")
        if self.multi_ns:
            self.report.add("info", self.gw_ref, "", f"the class's Ingresses span namespaces "
                                                     f"{', '.join(self.t.namespaces)}: the Gateway lives in "
                                                     f"{self.gw_ns} and admits routes from All namespaces (restrict "
                                                     f"it with a namespace selector)", "cross-namespace")
        if self.t.provider == "ingress-nginx":
            self._nginx()
        else:
            self._traefik()
        self._common_findings()
        gw = self.gateway()
        objs = [gw]
        self.origins[_key(gw)] = f"from {len(self.t.ingresses)} Ingress(es) of class {self.t.ingress_class}: {ing_names}"
        for ns, secrets in sorted(self._grants.items()):
            grant = {"apiVersion": GATEWAY_API, "kind": "ReferenceGrant",
                     "metadata": {"name": _name("gateway", self.gw_ns, self.gw_name, "certificates"), "namespace": ns},
                     "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                        "namespace": self.gw_ns}],
                              "to": [{"group": "", "kind": "Secret", "name": s} for s in sorted(secrets)]}}
            objs.append(grant)
            self.origins[_key(grant)] = f"lets Gateway {self.gw_ns}/{self.gw_name} use the certificates in {ns}"
        order = {"HTTPRoute": 0, "GRPCRoute": 1, "TLSRoute": 2}
        objs.extend(sorted(self.routes, key=lambda r: (order[r["kind"]], r["metadata"]["namespace"],
                                                      r["metadata"]["name"])))
        return objs, self.origins

    def parent(self, section: str, ns: str) -> dict:
        p: dict = {"name": self.gw_name}
        if ns != self.gw_ns:
            p["namespace"] = self.gw_ns
        p["sectionName"] = section
        return p

    def add_route(self, kind: str, name: str, ns: str, host: str, sections: list[str], rules: list[dict],
                  origin: set[str]) -> None:
        if not rules or not sections:
            return
        chunks = [rules[i:i + MAX_RULES] for i in range(0, len(rules), MAX_RULES)]
        for i, chunk in enumerate(chunks):
            rname = name if i == 0 else _name(name, str(i + 1))
            spec: dict = {"parentRefs": [self.parent(s, ns) for s in sections]}
            if host:
                spec["hostnames"] = [host]
            spec["rules"] = chunk
            route = {"apiVersion": GATEWAY_API, "kind": kind, "metadata": {"name": rname, "namespace": ns},
                     "spec": spec}
            self.routes.append(route)
            self.origins[_key(route)] = "from " + ", ".join(f"Ingress {o}" for o in sorted(origin))

    # -- rules -----------------------------------------------------------------------------------

    def _ref(self, target, weight: int | None = None) -> dict | None:
        if target is None or target.number is None:
            return None
        r: dict = {"name": target.name, "port": target.number}
        if weight is not None:
            r["weight"] = weight
        return r

    def _filters(self, a: Action, m: dict, obj: str, where: str, r: Router | None = None) -> list[dict]:
        filters: list[dict] = []
        url: dict = {}
        if a.host_rewrite:
            url["hostname"] = a.host_rewrite
        if a.rewrite_regex is not None:
            pattern, target = a.rewrite_regex
            if "$" not in target:
                url["path"] = {"type": "ReplaceFullPath",
                               "replaceFullPath": target if target.startswith("/") else "/" + target}
            elif rewrite_idiom(pattern, target) and m.get("type") == "PathPrefix":
                url["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}
            else:
                self.report.add("warning", obj, A.NGINX + "rewrite-target",
                                f"{where}: rewrite-target {target!r} uses capture groups of {pattern!r}: Gateway "
                                f"API rewrites cannot ('Path rewrites with capture group references are not "
                                f"supported'); the path is forwarded unchanged (only the "
                                f"<prefix>(/|$)(.*) → /$2 idiom converts)", "rewrite-capture-groups")
        if a.rewrite_full:
            url["path"] = {"type": "ReplaceFullPath", "replaceFullPath": a.rewrite_full}
        elif a.strip_prefixes and r is not None:
            if strip_is_exact(r):
                url["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}
            else:
                self.report.add("warning", obj, A.TRAEFIK + "router.middlewares",
                                f"{where}: stripPrefix {a.strip_prefixes} differs from the rule's path "
                                f"{r.path or '/'}: a URLRewrite can only replace the matched prefix; not converted",
                                "middleware-unsupported")
        if url:
            filters.append({"type": "URLRewrite", "urlRewrite": url})
        if a.request_headers:
            filters.append({"type": "RequestHeaderModifier", "requestHeaderModifier": a.request_headers})
        if a.response_headers:
            filters.append({"type": "ResponseHeaderModifier", "responseHeaderModifier": a.response_headers})
        if a.cors:
            filters.append({"type": "CORS", "cors": a.cors})
        return filters

    def _redirect_rule(self, m: dict | None, redirect: dict) -> dict:
        rule: dict = {}
        if m is not None:
            rule["matches"] = [{"path": m}]
        rule["filters"] = [{"type": "RequestRedirect", "requestRedirect": redirect}]
        return rule

    def _canary_rules(self, a: Action, rule) -> list[dict]:
        """The rules of an action, built by ``rule(backendRefs, header matches)``: one rule
        to its target, or with an ingress-nginx canary the canary's header rules (a value:
        that value; no value: ``always`` to the canary, ``never`` to the main backend),
        then the weighted split."""
        c = a.canary
        if c is None:
            return [rule([self._ref(a.target)])]
        out = []
        if c.header and c.header_value:
            out.append(rule([self._ref(c.target)], [{"name": c.header, "value": c.header_value}]))
        elif c.header and not c.header_pattern:
            out.append(rule([self._ref(c.target)], [{"name": c.header, "value": "always"}]))
            out.append(rule([self._ref(a.target)], [{"name": c.header, "value": "never"}]))
        out.append(rule([self._ref(a.target, c.total - c.weight), self._ref(c.target, c.weight)]))
        return out

    def _backend_rules(self, m: dict, a: Action, obj: str, where: str, r: Router | None = None) -> list[dict]:
        filters = self._filters(a, m, obj, where, r)

        def rule(refs: list, headers: list | None = None) -> dict:
            match: dict = {"path": m}
            if headers:
                match["headers"] = headers
            out: dict = {"matches": [match]}
            if filters:
                out["filters"] = filters
            out["backendRefs"] = [x for x in refs if x is not None]
            if a.timeouts:
                out["timeouts"] = a.timeouts
            return out

        return self._canary_rules(a, rule)

    # -- ingress-nginx ---------------------------------------------------------------------------

    def _nginx(self) -> None:
        rep = self.report
        for host, srv in sorted(self.t.servers.items()):
            if srv.passthrough and host in self.tls_by_host:
                self._passthrough(srv)
            http: dict[str, list[dict]] = {}
            https: dict[str, list[dict]] = {}
            grpc: dict[str, list[dict]] = {}
            origin: dict[str, set[str]] = {}
            app_root_rule = None
            if srv.app_root:
                app_root_rule = self._redirect_rule({"type": "Exact", "value": "/"},
                                                    {"path": {"type": "ReplaceFullPath",
                                                              "replaceFullPath": srv.app_root},
                                                     "statusCode": 302})
            for loc in self._distinct(srv):
                a = loc.action
                ns = loc.namespace
                obj = f"Ingress {a.ingress}" if a.ingress else f"Ingress {srv.creator}"
                if a.ingress:
                    origin.setdefault(ns, set()).add(a.ingress)
                if a.grpc:
                    rules = self._grpc_rules(loc, obj)
                    grpc.setdefault(ns, []).extend(rules)
                    continue
                m = gw_path_match(loc)
                for fam, store in (("http", http), ("https", https)):
                    if fam == "http" and a.https_redirect:
                        store.setdefault(ns, []).append(self._redirect_rule(
                            m, {"scheme": "https", "statusCode": a.https_redirect}))
                    elif a.redirect is not None:
                        rd = a.redirect
                        red: dict = {"scheme": rd.scheme, "hostname": rd.hostname}
                        if rd.port:
                            red["port"] = rd.port
                        red["path"] = {"type": "ReplaceFullPath", "replaceFullPath": rd.path or "/"}
                        red["statusCode"] = rd.code
                        store.setdefault(ns, []).append(self._redirect_rule(m, red))
                    elif a.target is not None:
                        store.setdefault(ns, []).extend(self._backend_rules(m, a, obj, loc.field or "spec"))
            for fam_rules in (http, https):
                if app_root_rule is not None:
                    fam_rules.setdefault(srv.namespace, []).insert(0, app_root_rule)
            # compress: every HTTP rule of the host redirects to https the same way -> one catch-all
            # (only when one namespace writes the host's rules: a shorter catch-all would lose to
            # another route's longer prefix that the specific redirect rules beat)
            for ns, rules in (http.items() if len(http) == 1 else ()):
                body = [r for r in rules if r is not app_root_rule]
                reds = [r.get("filters") for r in body]
                if body and all(r.get("backendRefs") is None for r in body) and len({repr(x) for x in reds}) == 1 \
                        and reds[0][0]["requestRedirect"].get("scheme") == "https" \
                        and "hostname" not in reds[0][0]["requestRedirect"] and any(
                            (r.get("matches") or [{}])[0].get("path") == {"type": "PathPrefix", "value": "/"}
                            for r in body):
                    http[ns] = ([app_root_rule] if app_root_rule in rules else []) + [{"filters": reds[0]}]
            https_section = self.https_for(host) if not srv.passthrough else None
            for ns in sorted(set(http) | set(https) | set(grpc)):
                base = _name(self._route_base(srv, ns, origin), slug(host))
                self._emit(base, ns, host, http.get(ns, []), https.get(ns, []), https_section,
                           origin.get(ns, {srv.creator}))
                if grpc.get(ns):
                    redirects = any(l.action.https_redirect for l in srv.locations if l.action.grpc)
                    sections = ([] if https_section and redirects else ["http"]) + \
                        ([https_section] if https_section else [])
                    self.add_route("GRPCRoute", _name(base, "grpc"), ns, host, sections, grpc[ns],
                                   origin.get(ns, {srv.creator}))
            if grpc:
                rep.add("info", self.gw_ref, "", f"host {host or '(any)'}: gRPC requests are routed by the GRPCRoute "
                                                 f"only and HTTP requests by HTTPRoutes only (ingress-nginx routed "
                                                 f"both by path)", "grpc-only")
                if https_section and any(l.action.https_redirect for l in srv.locations if l.action.grpc):
                    rep.add("info", self.gw_ref, "", f"host {host}: the GRPCRoute is attached to HTTPS only: "
                                                     f"ingress-nginx redirects cleartext gRPC to HTTPS, which a "
                                                     f"GRPCRoute cannot do", "grpc-only")
            self._nginx_findings(srv)

    def _distinct(self, srv: Server) -> list[Location]:
        """The locations to write, in nginx's order. Two locations that become the same
        Gateway API match (Prefix /a and ImplementationSpecific /a both become PathPrefix /a)
        cannot both be rules: keep the one nginx picks for that path."""
        ordered = srv.ordered()
        groups: dict[tuple, list[Location]] = {}
        for loc in ordered:
            m = gw_path_match(loc)
            groups.setdefault((m["type"], m["value"], loc.action.grpc), []).append(loc)
        keep = []
        for loc in ordered:
            m = gw_path_match(loc)
            group = groups[(m["type"], m["value"], loc.action.grpc)]
            if len(group) > 1:
                probe = m["value"] if m["type"] != "RegularExpression" else loc.path
                winner = next((l for l in ordered if l in group and l.matches(probe)), group[0])
                if loc is not winner:
                    self.report.add("info", f"Ingress {loc.action.ingress or srv.creator}", "",
                                    f"{loc.field or 'spec.defaultBackend'}: {loc.path} ({loc.path_type}) becomes the "
                                    f"same Gateway API match as {winner.path} ({winner.path_type}), which "
                                    f"ingress-nginx prefers; only that one is written", "shadowed")
                    continue
            keep.append(loc)
        return keep

    def _route_base(self, srv: Server, ns: str, origin: dict[str, set[str]]) -> str:
        if srv.creator and srv.creator.startswith(ns + "/"):
            return srv.creator.split("/", 1)[1]
        names = sorted(origin.get(ns) or [])
        return names[0].split("/", 1)[1] if names else (srv.creator.split("/", 1)[-1] or "ingress")

    def _emit(self, base: str, ns: str, host: str, http: list[dict], https: list[dict], https_section: str | None,
              origin: set[str], extra_https: list[str] | None = None) -> None:
        https_sections = ([https_section] if https_section else []) + [s for s in (extra_https or [])
                                                                        if s != https_section]
        if https_sections and http == https:
            self.add_route("HTTPRoute", base, ns, host, ["http"] + https_sections, http, origin)
            return
        if https_sections and https:
            self.add_route("HTTPRoute", base, ns, host, https_sections, https, origin)
            self.add_route("HTTPRoute", _name(base, "http"), ns, host, ["http"], http, origin)
        else:
            self.add_route("HTTPRoute", base, ns, host, ["http"], http, origin)

    def _grpc_rules(self, loc: Location, obj: str) -> list[dict]:
        a = loc.action
        where = loc.field or "spec.defaultBackend"
        method: dict | None
        if loc.root or (loc.path in ("/", "") and loc.path_type != "Exact"):
            method = {}
        else:
            parts = [p for p in loc.path.split("/") if p]
            if loc.regex and has_regex(loc.path) or not parts or len(parts) > 2 or \
                    (len(parts) == 2 and loc.path_type != "Exact") or (len(parts) == 1 and loc.path_type == "Exact"):
                self.report.add("warning", obj, A.NGINX + "backend-protocol",
                                f"{where}: path {loc.path} ({loc.path_type}) is not a gRPC service (/pkg.Service) "
                                f"or method (/pkg.Service/Method, Exact); left out of the GRPCRoute", "grpc-path")
                return []
            method = {"type": "Exact", "service": parts[0]}
            if len(parts) == 2:
                method["method"] = parts[1]
        for what, present in (("rewrite-target", a.rewrite_regex), ("timeouts", a.timeouts), ("CORS", a.cors),
                              ("upstream-vhost", a.host_rewrite)):
            if present:
                self.report.add("warning", obj, "", f"{what} has no GRPCRoute equivalent (GRPCRoute rules have "
                                                    f"no timeouts, rewrites or CORS); left out of the GRPCRoute",
                                "grpc-only")

        def rule(refs: list, headers: list | None = None) -> dict:
            out: dict = {}
            match: dict = {}
            if method:
                match["method"] = method
            if headers:
                match["headers"] = headers
            if match:
                out["matches"] = [match]
            filters = []
            if a.request_headers:
                filters.append({"type": "RequestHeaderModifier", "requestHeaderModifier": a.request_headers})
            if filters:
                out["filters"] = filters
            out["backendRefs"] = [x for x in refs if x is not None]
            return out

        if a.target is None:
            return []
        return self._canary_rules(a, rule)

    def _passthrough(self, srv: Server) -> None:
        root = srv.root
        target = root.action.target
        ns = root.namespace
        obj = f"Ingress {root.action.ingress or srv.creator}"
        if target is None or target.number is None:
            self.report.add("error", obj, A.NGINX + "ssl-passthrough", f"host {srv.host}: no backend for / (the "
                                                                       f"passthrough backend); no TLSRoute written",
                            "passthrough")
            return
        rules = [{"backendRefs": [{"name": target.name, "port": target.number}]}]
        self.add_route("TLSRoute", _name(root.action.ingress.split("/")[-1] or "passthrough", slug(srv.host), "tls"),
                       ns, srv.host, [self.tls_by_host[srv.host]], rules, {root.action.ingress or srv.creator})
        others = [l for l in srv.locations if not l.root and l is not root]
        self.report.add("info", obj, A.NGINX + "ssl-passthrough",
                        f"host {srv.host}: TLS connections on 443 go unopened to the backend of / by SNI (a TLSRoute); "
                        + ("the other paths apply to plain HTTP only" if others else "paths do not apply"),
                        "passthrough-paths-ignored")

    def _nginx_findings(self, srv: Server) -> None:
        rep = self.report
        host = srv.host or "(any)"
        if srv.regex:
            non_root = [l for l in srv.locations if not l.root]
            forms = sorted({f"{l.path} → {gw_path_match(l)['type']} {gw_path_match(l)['value']}" for l in non_root})
            cause_ing, cause_key = srv.regex_cause
            rep.add("info", f"Ingress {cause_ing}", cause_key,
                    f"host {host}: use-regex/rewrite-target make ingress-nginx match every path of the host as a "
                    f"case-insensitive regex anchored at the start (so /p also matches /P and /pq); converted: "
                    f"{'; '.join(forms)}", "regex-mode-literal")
            if len(non_root) > 1:
                rep.add("info", f"Ingress {cause_ing}", cause_key,
                        f"host {host}: nginx tries the regex paths in descending path order and takes the first "
                        f"match; Gateway API ranks RegularExpression matches as the implementation likes (gwlib: "
                        f"after Exact, longest first) and PathPrefix by length", "regex-order")
        else:
            for l in srv.locations:
                if l.root:
                    continue
                if l.path_type == "ImplementationSpecific" and l.path != "/" and not l.path.endswith("/"):
                    rep.add("info", f"Ingress {l.action.ingress}", "", f"{l.field}: ImplementationSpecific {l.path} "
                                                                       f"is a character prefix in ingress-nginx (it "
                                                                       f"also matches {l.path}x...); PathPrefix "
                                                                       f"matches whole path elements only",
                            "implementation-specific-prefix")
                if l.path_type == "Prefix" and l.path != "/" and l.path.endswith("/"):
                    rep.add("info", f"Ingress {l.action.ingress}", "", f"{l.field}: Prefix {l.path} does not match "
                                                                       f"{l.path.rstrip('/')} in ingress-nginx; "
                                                                       f"PathPrefix {l.path} does (a trailing / is "
                                                                       f"ignored)", "nginx-prefix-trailing-slash")
        root = srv.root
        if srv.host and root.root and root.action.target is None:
            covering = [s for h, s in self.t.servers.items() if h != srv.host and (
                (h == "" and (any(not l.root for l in s.locations) or s.root.action.target is not None))
                or (h.startswith("*.") and hostname_matches(h, srv.host)))]
            if covering:
                rep.add("warning", self.gw_ref, "", f"host {srv.host}: requests that match none of its paths got "
                                                    f"404 from ingress-nginx's default backend; with Gateway API "
                                                    f"they fall through to the routes of "
                                                    f"{', '.join(sorted(s.host or '(any host)' for s in covering))} "
                                                    f"(give {srv.host}'s route a catch-all rule if they must "
                                                    f"not)", "nginx-no-fallthrough")

    # -- Traefik ------------------------------------------------------------------------------

    def _traefik(self) -> None:
        routers = self.t.routers
        hosts = sorted({r.host for r in routers})
        tables: dict[tuple[str, str], list[Router]] = {}
        for fam in ("http", "https"):
            fam_routers = [r for r in routers if fam in r.families]
            for h in hosts:
                tables[(fam, h)] = self._emulate(h, fam_routers)
        for h in hosts:
            sections_https = self.https_covered(h) if (not h or h.startswith("*.")) else \
                ([self.https_for(h)] if self.https_for(h) else [])
            per_ns_http: dict[str, list[dict]] = {}
            per_ns_https: dict[str, list[dict]] = {}
            origin: dict[str, set[str]] = {}
            for fam, store in (("http", per_ns_http), ("https", per_ns_https)):
                if fam == "https" and not sections_https:
                    continue
                for r in tables[(fam, h)]:
                    a = r.action
                    origin.setdefault(r.namespace, set()).add(a.ingress)
                    m = {"type": "Exact" if r.kind == "exact" else "PathPrefix", "value": r.path or "/"}
                    obj = f"Ingress {a.ingress}"
                    if fam == "http" and a.https_redirect:
                        red: dict = {"scheme": "https"}
                        if a.https_redirect_port:
                            red["port"] = a.https_redirect_port
                        red["statusCode"] = a.https_redirect
                        store.setdefault(r.namespace, []).append(self._redirect_rule(m, red))
                    else:
                        store.setdefault(r.namespace, []).extend(
                            self._backend_rules(m, a, obj, r.field or "spec", r))
            own = {r.action.ingress for fam in ("http", "https") for r in tables[(fam, h)] if r.host == h}
            for ns in sorted(set(per_ns_http) | set(per_ns_https)):
                names = sorted(i for i in origin.get(ns) or [] if i in own) or sorted(origin.get(ns) or [])
                base = _name(names[0].split("/", 1)[1] if names else "ingress", slug(h))
                first = sections_https[0] if sections_https else None
                self._emit(base, ns, h, per_ns_http.get(ns, []), per_ns_https.get(ns, []), first,
                           origin.get(ns, set()), extra_https=sections_https[1:])
        self._traefik_findings()

    def _emulate(self, host: str, routers: list[Router]) -> list[Router]:
        """The routers that must be rules of ``host``'s route so that Gateway API precedence
        picks what Traefik's priorities pick (see the module docstring)."""
        def covers(r: Router) -> bool:   # Traefik's matching: a wildcard covers one label, never a wildcard
            return r.host == host or not r.host or (r.host.startswith("*.") and not host.startswith("*")
                                                   and host_matches(r.host, host))
        pool = [r for r in routers if covers(r)]      # already in priority order

        def contains(outer: Router, inner: Router) -> bool:
            if not outer.path or (outer.kind == "prefix" and outer.path.rstrip("/") == ""):
                return True
            if outer.kind == "exact":
                return inner.kind == "exact" and inner.path == outer.path
            return prefix_matches(outer.path, inner.path or "/")

        live: list[Router] = []
        for i, r in enumerate(pool):
            shadow = next((o for o in pool[:i] if contains(o, r)), None)
            if shadow is not None:
                if r.host == host:
                    self._priority_note(r, shadow, f"dropped from {host or '(any host)'}: it never wins")
                continue
            live.append(r)
        own = [r for r in live if r.host == host]
        out = list(own)
        for r in live:
            if r.host != host and any(contains(o, r) and not contains(r, o) for o in own):
                out.append(r)
                self._priority_note(r, None, f"copied into {host}'s route so that it still wins there")
        return out

    def _priority_note(self, r: Router, shadow: Router | None, what: str) -> None:
        ann = A.TRAEFIK + "router.priority"
        why = (f"router {shadow.rule or 'default'} (priority {shadow.priority}) takes precedence over "
               f"{r.rule or 'default'} (priority {r.priority})") if shadow else \
              f"router {r.rule} (priority {r.priority}) outranks the more specific rules of that host"
        self.report.add("info", f"Ingress {r.action.ingress}", ann if self._has_priority(r, shadow) else "",
                        f"{r.field}: {why}; {what}", "traefik-priority")

    def _has_priority(self, *routers) -> bool:
        for r in routers:
            if r is None:
                continue
            ing = next((i for i in self.t.ingresses if f"{i.namespace}/{i.name}" == r.action.ingress), None)
            if ing is not None and A.TRAEFIK + "router.priority" in ing.annotations:
                return True
        return False

    def _traefik_findings(self) -> None:
        rep = self.report
        loose = sorted({r.path for r in self.t.routers if r.kind == "prefix" and r.path and r.path != "/"
                        and not r.path.endswith("/")})
        if loose:
            rep.add("info", self.gw_ref, "", f"Traefik matches PathPrefix character by character unless "
                                             f"providers.kubernetesIngress.strictPrefixMatching=true (Traefik ≥ 3.5), "
                                             f"so {loose[0]} also matched {loose[0]}x...; Gateway API PathPrefix (and "
                                             f"gwlib's model of Traefik) match whole path elements",
                    "traefik-prefix-strict")

    # -- findings shared by both providers ---------------------------------------------------------

    def _common_findings(self) -> None:
        rep = self.report
        hosts = sorted(set(self.t.servers) | {r.host for r in self.t.routers})
        wild = [h for h in hosts if h.startswith("*.")]
        for h in wild:
            sev = "warning" if self.t.provider == "traefik" else "info"
            extra = "" if self.t.provider == "traefik" else (" (nginx's own server_name wildcard already matched "
                                                             "deeper names, so with ingress-nginx little changes)")
            rep.add(sev, self.gw_ref, "", f"host {h}: an Ingress wildcard matches exactly one label "
                                          f"(x{h[1:]}), a Gateway API wildcard any number (x.y{h[1:]} now matches "
                                          f"too){extra}", "wildcard-depth")
        if "" in self.https_by_host:
            return   # a hostless HTTPS listener answers every host, as the controller did
        no_https = [h for h in hosts if h and self.https_for(h) is None and h not in self.tls_by_host]
        if self.t.provider == "traefik":
            no_https = [h for h in no_https if any("https" in r.families and (r.host == h or not r.host)
                                                   for r in self.t.routers)]
        who = "ingress-nginx" if self.t.provider == "ingress-nginx" else "Traefik (websecure)"
        served = sorted(set(self.https_by_host) | set(self.tls_by_host))
        others = ", ".join(no_https) + " and any host no rule names" if no_https else "any host no rule names"
        rep.add("info", self.gw_ref, "", f"{who} answers HTTPS for every host, with its default certificate for "
                                         f"{others}; the Gateway completes TLS handshakes only for "
                                         + (", ".join(served) if served else "no host (it has no HTTPS listener)"),
                "https-default-certificate")
