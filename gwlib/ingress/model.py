"""Ingress semantics: the inputs, what each provider makes of them, and matching.

:func:`read_inputs` reads manifests (anything :func:`gwlib.load` reads) into
:class:`Inputs`: valid ``networking.k8s.io/v1`` Ingresses plus the Services, Secrets,
IngressClasses and Traefik Middlewares they refer to. Every other document, and every
invalid one, becomes a :class:`~gwlib.problems.Problem` (one line: file, object, field path)
and is left out — the rest is still read.

:func:`build` turns the Ingresses into a provider's routing table (:class:`Table`), the one
model both the Ingress router (:mod:`gwlib.ingress.router`) and the converter read:

``ingress-nginx`` (servers and locations, as the controller writes nginx.conf)
    * One *server* per host; rules without a host, and hosts nobody names, go to the default
      server ``_``. A request for a host with a server never falls through to another server.
    * Every server has a root location ``/``: the backend of the Ingress's ``defaultBackend``
      (for servers that Ingress created), else ingress-nginx's default backend (404). The
      default server's root takes the ``defaultBackend`` of the oldest Ingress without rules.
    * ``Exact`` → ``location = /p``; ``Prefix`` → ``= /p`` plus ``/p/`` (element-wise, as the
      Ingress spec says, but ``/p/`` does not match ``/p``); ``ImplementationSpecific`` → a
      plain nginx prefix location (character-wise: ``/p`` matches ``/pq``).
    * ``use-regex`` or ``rewrite-target`` on any Ingress of a host turn *every* location of
      that host into a case-insensitive regex anchored at the start (``~* "^/p"``), tried in
      descending path order (that is how ingress-nginx sorts them); the first match wins.
    * Canary Ingresses are merged into the location with the same host, path and pathType:
      header (``always``/``never``/value), then cookie, then weight.
    * HTTP requests to locations of TLS hosts get a 308 to https (``ssl-redirect``, default
      on; ``force-ssl-redirect`` without TLS); ``app-root`` answers 302 for ``/`` before any
      location; ``permanent-redirect``/``temporal-redirect`` answer from the location.
``traefik`` (routers, as Traefik's kubernetes-ingress provider builds them)
    * One router per path: ``Host(`h`)`` (or a one-label ``HostRegexp`` for ``*.`` hosts) and
      ``Path``/``PathPrefix``; priority = ``router.priority`` or the length of the rule
      (Traefik's default); the highest-priority matching router wins, across all hosts.
    * ``Prefix`` and ``ImplementationSpecific`` are prefix matches. gwlib assumes
      ``providers.kubernetesIngress.strictPrefixMatching=true`` (Traefik ≥ 3.5), i.e.
      element-wise like the Ingress spec; by default Traefik matches character-wise
      (``/p`` also matches ``/pq``) — the converter says so.
    * Routers serve both entry points (``web`` = HTTP, ``websecure`` = HTTPS) unless
      ``router.entrypoints`` or ``router.tls`` say otherwise; ``spec.tls`` only provides
      certificates. A ``defaultBackend`` is used only by an Ingress without rules (a
      lowest-priority catch-all); Traefik ignores it otherwise.

Host wildcards follow the Ingress spec: ``*.foo.com`` matches exactly one label
(``bar.foo.com``, not ``baz.bar.foo.com`` nor ``foo.com``) — unlike Gateway API, where a
wildcard matches any number of labels. (Traefik's ``HostRegexp`` keeps the one-label rule;
nginx's own ``server_name *.foo.com`` would match deeper names too.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..problems import Problem
from . import catalog as A
from .report import Report

PROVIDERS = ("ingress-nginx", "traefik")
MIDDLEWARE_API_VERSIONS = ("traefik.io/v1alpha1", "traefik.containo.us/v1alpha1")
_REGEX_CHARS = re.compile(r"[.*+?()\[\]{}|^$\\]")


# =========================================================================== inputs

@dataclass
class Inputs:
    """What a conversion reads: Ingresses and the objects they refer to."""

    ingresses: list = field(default_factory=list)            # gwlib.resources.Ingress, oldest first
    services: dict[str, Any] = field(default_factory=dict)   # "ns/name" -> Service
    secrets: dict[str, Any] = field(default_factory=dict)    # "ns/name" -> Secret
    middlewares: dict[str, Any] = field(default_factory=dict)  # "ns/name" -> GenericObject
    classes: dict[str, Any] = field(default_factory=dict)    # name -> IngressClass (GenericObject)
    problems: list[Problem] = field(default_factory=list)


def _not_an_ingress(doc, kind: str, api_version: str, ns: str, name: str) -> Problem:
    if kind == "Ingress":
        msg = (f"Ingress {api_version} is no longer served (removed in Kubernetes 1.22): migrate it to "
               f"networking.k8s.io/v1 first")
        return Problem(doc.file, doc.index, kind, ns, name, "apiVersion", msg)
    what = f"{kind} ({api_version})" if kind else "this document"
    return Problem(doc.file, doc.index, kind, ns, name, "kind",
                   f"{what} is not an Ingress: gwlib convert reads networking.k8s.io/v1 Ingresses and the "
                   f"Services, Secrets, IngressClasses and Traefik Middlewares they refer to")


def _backend_problems(doc, ing) -> list[Problem]:
    """Checks beyond the schema that make an Ingress unconvertible as a whole."""
    out = []

    def bad(path: str, msg: str) -> None:
        out.append(Problem(doc.file, doc.index, "Ingress", ing.namespace, ing.name, path, msg))

    spec = ing.spec
    if spec.default_backend is not None and spec.default_backend.service is None \
            and spec.default_backend.resource is None:
        bad("spec.defaultBackend", "missing backend service")
    for ri, rule in enumerate(spec.rules or []):
        for pi, p in enumerate((rule.http.paths if rule.http else None) or []):
            if p.backend.service is None and p.backend.resource is None:
                bad(f"spec.rules[{ri}].http.paths[{pi}].backend", "missing backend service")
    return out


def read_inputs(source: Any) -> Inputs:
    """Read manifests into :class:`Inputs` (never raises for bad input)."""
    from ..loader import identity, read_documents
    from ..resources import GenericObject
    from ..validation import CEL_SKIPPED, parse_document

    inputs = Inputs()
    docs = read_documents(source)
    for doc in docs:
        if doc.problem is not None:
            inputs.problems.append(doc.problem)
            continue
        kind, ns, name = identity(doc.data)
        api_version = doc.data.get("apiVersion") if isinstance(doc.data.get("apiVersion"), str) else ""
        if (kind == "Ingress" and api_version != "networking.k8s.io/v1") or (
                kind and (kind, api_version.split("/")[0] if "/" in api_version else "") not in _ACCEPTED
                and not (kind == "IngressClass" or kind == "Middleware" and api_version in MIDDLEWARE_API_VERSIONS)):
            inputs.problems.append(_not_an_ingress(doc, kind, api_version, ns, name))
            continue
        obj, problems = parse_document(doc, "standard")
        if problems:
            # the API server's "some validation rules were not checked" adds nothing here
            inputs.problems.extend([p for p in problems if p.message != CEL_SKIPPED] or problems)
            continue
        if obj.kind == "Ingress" and not isinstance(obj, GenericObject):
            extra = _backend_problems(doc, obj)
            if extra:
                inputs.problems.extend(extra)
            else:
                inputs.ingresses.append(obj)
        elif obj.kind == "Service" and not isinstance(obj, GenericObject):
            inputs.services[obj.key] = obj
        elif obj.kind == "Secret" and not isinstance(obj, GenericObject):
            inputs.secrets[obj.key] = obj
        elif obj.kind == "Namespace":
            pass
        elif obj.kind == "IngressClass" and obj.api_version == "networking.k8s.io/v1":
            inputs.classes[obj.name] = obj
        elif obj.kind == "Middleware" and obj.api_version in MIDDLEWARE_API_VERSIONS:
            inputs.middlewares[obj.key] = obj
        else:
            inputs.problems.append(_not_an_ingress(doc, obj.kind, obj.api_version, ns, name))
    if not inputs.ingresses and not inputs.problems:
        where = docs[0].file if docs else "<input>"
        inputs.problems.append(Problem(where, 0, "", "", "", "", "no networking.k8s.io/v1 Ingress in the input"))
    inputs.ingresses.sort(key=_age_key)
    return inputs


#: (kind, API group) of the documents a conversion reads besides Traefik Middlewares.
_ACCEPTED = {("Ingress", "networking.k8s.io"), ("IngressClass", "networking.k8s.io"), ("Service", ""),
             ("Secret", ""), ("Namespace", "")}

_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)


def _age_key(ing) -> tuple:
    """Oldest first (creationTimestamp; none = newest), then namespace/name — how
    controllers order Ingresses when they conflict."""
    return (ing.creation_timestamp or _FAR_FUTURE, ing.namespace, ing.name)


def ref(ing) -> str:
    return f"Ingress {ing.namespace}/{ing.name}"


# =========================================================================== matching

def host_matches(pattern: str, host: str) -> bool:
    """Ingress host matching: exact (case-insensitive), or ``*.foo.com`` for exactly one
    label in front of ``foo.com``; ``""`` matches every host."""
    if not pattern:
        return True
    h = host.lower()
    if pattern.startswith("*."):
        first, dot, rest = h.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return h == pattern


def wildcard_deeper(pattern: str, host: str) -> bool:
    """A host that Gateway API's ``*.foo.com`` matches but the Ingress spec's does not."""
    return pattern.startswith("*.") and host.lower().endswith(pattern[1:]) and not host_matches(pattern, host)


def elements(path: str) -> list[str]:
    return [e for e in path.split("/") if e]


def prefix_matches(prefix: str, path: str) -> bool:
    """Ingress ``Prefix``: element-wise, trailing slash ignored (``/aaa/bbb`` matches
    ``/aaa/bbb/ccc`` but not ``/aaa/bbbxyz``)."""
    want = elements(prefix)
    got = elements(path)
    return got[:len(want)] == want


def path_only(target: str) -> str:
    return (target or "/").split("?", 1)[0].split("#", 1)[0] or "/"


def has_regex(path: str) -> bool:
    return bool(_REGEX_CHARS.search(path))


# =========================================================================== model

@dataclass
class Target:
    """A Service backend: the port as written (number or name) and its resolved number."""

    namespace: str
    name: str
    port: int | str
    number: int | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}:{self.number if self.number is not None else self.port}"

    def ref(self) -> dict:
        return {"namespace": self.namespace, "name": self.name,
                "port": self.number if self.number is not None else self.port}


@dataclass
class Canary:
    target: Target
    weight: int
    total: int
    header: str | None = None
    header_value: str | None = None
    header_pattern: str | None = None
    cookie: str | None = None
    ingress: str = ""


@dataclass
class Redirect:
    """A redirect answered by the controller itself."""

    code: int
    scheme: str | None = None      # None: keep the request's
    hostname: str | None = None    # None: keep the request's
    port: int | None = None
    path: str | None = None        # None: keep the request's
    verbatim: str | None = None    # nginx `return CODE URL`: the Location exactly


@dataclass
class Action:
    """What happens to a request that reached a location (nginx) or router (Traefik)."""

    target: Target | None                 # None: the controller's default backend (404)
    ingress: str                          # "ns/name" of the Ingress it came from
    canary: Canary | None = None
    redirect: Redirect | None = None      # answered by the controller (after any https redirect)
    https_redirect: int | None = None     # HTTP requests get this code to https (nginx ssl-redirect,
    https_redirect_port: int | None = None  # Traefik redirectScheme)
    rewrite_full: str | None = None       # ReplaceFullPath
    rewrite_prefix: tuple[str, str] | None = None  # (matched prefix, replacement)
    rewrite_regex: tuple[str, str] | None = None   # nginx rewrite: (regex, target with $n)
    strip_prefixes: list[str] | None = None        # Traefik stripPrefix (character-wise)
    host_rewrite: str | None = None
    request_headers: dict | None = None   # {"set": [...], "remove": [...]} (Gateway API shape)
    response_headers: dict | None = None
    timeouts: dict | None = None
    cors: dict | None = None
    grpc: bool = False
    unresolved: bool = False              # the target's named port could not be resolved


@dataclass
class Location:
    """One nginx location (one Ingress path, or a server's root)."""

    host: str                    # "" = the default server
    namespace: str
    path: str
    path_type: str               # Exact | Prefix | ImplementationSpecific
    action: Action
    root: bool = False           # the synthetic root location (default backend)
    regex: bool = False          # the server is in regex mode
    field: str = ""              # e.g. "spec.rules[0].http.paths[1]"

    def matches(self, path: str) -> bool:
        if self.regex:
            try:
                return re.match(self.path, path, re.IGNORECASE) is not None
            except re.error:
                return False
        if self.root:
            return True
        if self.path_type == "Exact":
            return path == self.path
        if self.path_type == "Prefix":
            # `= /p` plus `/p/` (ingress-nginx normalizes Prefix paths to end in "/")
            p = self.path
            if p == "/":
                return True
            norm = p if p.endswith("/") else p + "/"
            return path == p or path.startswith(norm)
        return path.startswith(self.path)   # ImplementationSpecific: plain nginx prefix


@dataclass
class Server:
    host: str
    namespace: str               # of the Ingress that created it
    locations: list[Location] = field(default_factory=list)
    regex: bool = False
    app_root: str | None = None
    tls: tuple[str, str] | None = None    # (namespace, secretName)
    passthrough: bool = False
    creator: str = ""
    regex_cause: tuple[str, str] = ("", "")   # (Ingress "ns/name", annotation) that turned regex mode on

    @property
    def root(self) -> Location:
        return next(l for l in self.locations if l.root or (l.path == "/" and l.path_type != "Exact"))

    def ordered(self) -> list[Location]:
        """Locations in the order nginx tries them (see the module docstring)."""
        if self.regex:
            return sorted(self.locations, key=lambda l: l.path, reverse=True)
        exact = [l for l in self.locations if l.path_type == "Exact" and not l.root]
        rest = [l for l in self.locations if l not in exact]

        def length(l: Location) -> int:
            if l.root:
                return 1
            if l.path_type == "Prefix" and l.path != "/":
                return len(l.path if l.path.endswith("/") else l.path + "/")
            return len(l.path)
        return exact + sorted(rest, key=length, reverse=True)


@dataclass
class Router:
    """One Traefik router (one Ingress path)."""

    key: str
    host: str
    namespace: str
    path: str                     # "" = any path
    kind: str                     # "exact" | "prefix"
    priority: int
    families: frozenset           # {"http", "https"}
    action: Action
    default: bool = False         # the default-router (Ingress without rules)
    field: str = ""
    rule: str = ""

    def matches_path(self, path: str) -> bool:
        if not self.path or self.path == "/" and self.kind == "prefix":
            return True
        if self.kind == "exact":
            return path == self.path
        return prefix_matches(self.path, path)


@dataclass
class Listener:
    """An HTTPS (or passthrough TLS) host the Ingresses ask for."""

    host: str                     # "" = every host
    secret: tuple[str, str] | None
    ingress: str
    passthrough: bool = False


@dataclass
class Table:
    """A provider's routing table for one ingress class."""

    provider: str
    ingress_class: str
    namespaces: list[str]
    servers: dict[str, Server] = field(default_factory=dict)     # nginx: host -> Server ("" default)
    routers: list[Router] = field(default_factory=list)          # traefik
    tls: dict[str, Listener] = field(default_factory=dict)       # host -> HTTPS/TLS listener wish
    ingresses: list = field(default_factory=list)
    gateway_annotations: dict[str, str] = field(default_factory=dict)


# =========================================================================== helpers

def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def resolve_target(ing, backend, inputs: Inputs, report: Report, where: str) -> Target | None:
    """The Service backend of an Ingress path (None for a resource backend, reported)."""
    if backend.service is None:
        kind = backend.resource.kind if backend.resource else "?"
        report.add("error", ref(ing), "", f"{where}: a {kind} resource backend cannot be converted (Gateway API "
                                          f"backendRefs name Services); that path is left out", "resource-backend")
        return None
    svc = backend.service
    ns = ing.namespace
    port: int | str = svc.port.number if svc.port.number is not None else svc.port.name
    number = svc.port.number
    service = inputs.services.get(f"{ns}/{svc.name}")
    if service is None and any(k.startswith(f"{ns}/") for k in inputs.services):
        report.add("warning", ref(ing), "", f"{where}: Service {ns}/{svc.name} is not among the given objects; "
                                            f"the backendRef is written anyway (it is unresolved until it "
                                            f"exists)", "service-missing")
    if number is None:
        if service is not None:
            for p in service.spec.ports or []:
                if p.name == svc.port.name:
                    number = p.port
            if number is None:
                report.add("error", ref(ing), "", f"{where}: Service {ns}/{svc.name} has no port named "
                                                  f"{svc.port.name!r}; the backendRef is left out (the rule "
                                                  f"answers 500)", "named-port-unresolved")
            else:
                report.carried(ref(ing), f"{where}.backend.service.port.name",
                               f"port {number} (from Service {ns}/{svc.name})")
        else:
            report.add("warning", ref(ing), "", f"{where}: the port is named ({svc.port.name!r}) and Service "
                                                f"{ns}/{svc.name} was not given, so its number is unknown; the "
                                                f"backendRef is left out (the rule answers 500) — add the "
                                                f"Service to the input", "named-port-unresolved")
    return Target(ns, svc.name, port, number)


def ingress_class(ing, inputs: Inputs, provider: str, report: Report, override: str | None = None) -> str:
    if override:
        return override
    if ing.spec.ingress_class_name:
        return ing.spec.ingress_class_name
    ann = ing.annotations.get(A.CLASS_ANNOTATION)
    if ann:
        report.carried(ref(ing), A.CLASS_ANNOTATION, f"Gateway {ann} (gatewayClassName {ann})")
        return ann
    default = next((name for name, c in sorted(inputs.classes.items())
                    if (c.annotations.get("ingressclass.kubernetes.io/is-default-class") or "").lower() == "true"),
                   None)
    if default:
        report.add("info", ref(ing), "", f"no ingress class: the default IngressClass {default!r} is used",
                   "class-assumed")
        return default
    guess = "nginx" if provider == "ingress-nginx" else "traefik"
    report.add("info", ref(ing), "", f"no ingress class (spec.ingressClassName or {A.CLASS_ANNOTATION}) and no "
                                     f"default IngressClass: assumed {guess!r}, the {provider} default",
               "class-assumed")
    return guess


def guess_provider(inputs: Inputs) -> str:
    """ingress-nginx unless the IngressClasses or the annotations point at Traefik."""
    controllers = {str((c.spec or {}).get("controller", "")) for c in inputs.classes.values()}
    if any("traefik" in c for c in controllers) and not any("nginx" in c for c in controllers):
        return "traefik"
    keys = [k for ing in inputs.ingresses for k in ing.annotations]
    if any(k.startswith(A.TRAEFIK) for k in keys) and not any(k.startswith(A.NGINX) for k in keys):
        return "traefik"
    return "ingress-nginx"
