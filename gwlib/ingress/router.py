"""The Ingress router: which backend an Ingress controller would pick for a request.

    router = IngressRouter("data/ingress/01-argocd", provider="ingress-nginx")
    router.route({"host": "argocd.example.com", "path": "/applications"})
    router.split({...})      # {"argocd/argocd-server:80": 1.0} — exact canary weights

Requests use the design's request format (``gateway`` optional, ``scheme``/``port``,
``host``, ``method``, ``path``, ``headers``, or ``grpc``); ``gateway`` may name the Gateway
the converter writes for the ingress class (``ns/<class>``) or just the class. Answers are
shaped like the reference router's: ``status``, ``backend``, ``location``, ``request``
(path and host as the backend sees them), plus ``split`` (the exact probabilities, for
canaries), ``ingress`` (the Ingress whose rule decided) and ``notes`` — codes of the
semantics that Gateway API cannot reproduce exactly and that this decision relied on (they
match the ``code`` of the report's findings; :mod:`gwlib.ingress.equivalence` uses them).

The semantics per provider are in :mod:`gwlib.ingress.model`.
"""
from __future__ import annotations

import random
import re
from typing import Any

from ..matching import strip_port
from .model import (
    PROVIDERS,
    Action,
    Inputs,
    Table,
    guess_provider,
    host_matches,
    path_only,
    read_inputs,
    wildcard_deeper,
)


class IngressRequestError(ValueError):
    """A malformed request, or one naming an ingress class the Ingresses do not use."""


def tables_for(inputs: Inputs, provider: str, report, ingress_class: str | None = None) -> dict[str, Table]:
    """One routing table per ingress class (class name -> Table)."""
    from .model import ingress_class as class_of
    from .providers import build_nginx, build_traefik

    by_class: dict[str, list] = {}
    for ing in inputs.ingresses:
        by_class.setdefault(class_of(ing, inputs, provider, report, ingress_class), []).append(ing)
    build = build_nginx if provider == "ingress-nginx" else build_traefik
    return {cls: build(ings, inputs, report, cls) for cls, ings in sorted(by_class.items())}


class IngressRouter:
    """Routes requests the way an Ingress controller (``provider``) would.

    ``source``: anything :func:`gwlib.load` reads (a path, a folder, YAML text, dicts or
    resources). Invalid documents are skipped (see ``problems``). ``provider``:
    ``"ingress-nginx"`` or ``"traefik"`` (default: guessed from IngressClasses and
    annotations, else ingress-nginx). ``seed`` makes weighted canary choices reproducible.
    """

    def __init__(self, source: Any, provider: str | None = None, ingress_class: str | None = None,
                 seed: int | None = 0):
        from .report import Report

        self.inputs = source if isinstance(source, Inputs) else read_inputs(source)
        self.provider = provider or guess_provider(self.inputs)
        if self.provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}: use one of {', '.join(PROVIDERS)}")
        self.report = Report(self.provider)
        self.tables = tables_for(self.inputs, self.provider, self.report, ingress_class)
        self.problems = list(self.inputs.problems)
        self.rng = random.Random(seed)

    # -- public -------------------------------------------------------------------------------

    def route(self, request: dict) -> dict:
        """The answer to one request (a weighted canary choice is sampled, seeded)."""
        ans = self._decide(request)
        split = ans.get("split")
        if split and len(split) > 1:
            x, acc = self.rng.random(), 0.0
            for key, p in split.items():
                acc += p
                if x < acc:
                    ans["backend"] = _backend_dict(key)
                    break
        return ans

    def split(self, request: dict) -> dict[str, float]:
        """The exact share of each backend (``{"ns/name:port": p}``); empty when the request
        is not forwarded (404, redirect)."""
        return dict(self._decide(request).get("split") or {})

    def send(self, requests: list[dict]) -> list[dict]:
        return [self.route(r) for r in requests]

    # -- internals ------------------------------------------------------------------------------

    def table(self, requests: list[dict]):
        """Send requests and tabulate the answers (a pandas DataFrame, one row each), like
        ``connect(...).table``."""
        from ..connection import answers_frame
        requests = list(requests)
        return answers_frame(requests, self.send(requests))

    def _table_for(self, request: dict) -> Table:
        gw = request.get("gateway")
        if not self.tables:
            raise IngressRequestError("no Ingress to route with")
        if gw is None:
            if len(self.tables) == 1:
                return next(iter(self.tables.values()))
            raise IngressRequestError(f'the request has no "gateway"; the Ingresses use the classes '
                                      f'{", ".join(sorted(self.tables))}')
        if not isinstance(gw, str):
            raise IngressRequestError('"gateway" must be a string')
        cls = gw.rpartition("/")[2]
        if cls not in self.tables:
            from .convert import _name
            cls = next((c for c in self.tables if _name(c) == cls), cls)
        if cls not in self.tables:
            raise IngressRequestError(f"no Ingress of class {cls!r} (classes: {', '.join(sorted(self.tables))})")
        return self.tables[cls]

    def _decide(self, request: dict) -> dict:
        if not isinstance(request, dict):
            raise IngressRequestError("a request must be a JSON object")
        t = self._table_for(request)
        port = request.get("port")
        scheme = (request.get("scheme") or ("https" if port == 443 else "http")).lower()
        host_header = request.get("host") or ""
        if not isinstance(host_header, str):
            raise IngressRequestError('"host" must be a string')
        host = strip_port(host_header)
        headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
        grpc = request.get("grpc")
        if isinstance(grpc, dict):
            target = f"/{grpc.get('service') or ''}/{grpc.get('method') or ''}"
        else:
            target = request.get("path") or "/"
        notes: list[str] = []
        if scheme == "https" and not any(h == host or (h and host_matches(h, host)) or h == "" for h in t.tls):
            notes.append("https-default-certificate")
        self._grpc = isinstance(grpc, dict)
        self._method = "POST" if self._grpc else str(request.get("method") or "GET").upper()
        if t.provider == "ingress-nginx":
            ans = self._nginx(t, scheme, host, host_header, target, headers, notes)
        else:
            ans = self._traefik(t, scheme, host, host_header, target, headers, notes)
        ans["notes"] = sorted(set(notes))
        if isinstance(grpc, dict) and ans.get("backend") is not None:
            ans["grpc_status"] = 0
        return ans

    # -- ingress-nginx ------------------------------------------------------------------------------

    def _nginx(self, t: Table, scheme: str, host: str, host_header: str, target: str, headers: dict,
               notes: list[str]) -> dict:
        path = path_only(target)
        srv = t.servers.get(host) if host else None
        if srv is None:
            wild = [s for h, s in t.servers.items() if h.startswith("*.") and host_matches(h, host)]
            srv = wild[0] if wild else None
        if srv is None:
            if any(wildcard_deeper(h, host) for h in t.servers):
                notes.append("wildcard-depth")
            srv = t.servers[""]
        if scheme == "https" and srv.passthrough:
            root = srv.root
            return _forward(root.action, None, host_header, target, notes, t)
        if srv.app_root and path == "/":
            if "?" in target:
                notes.append("redirect-query")
            loc = f"{scheme}://{host_header}{srv.app_root}"
            return _redirect(302, loc, srv.root.action.ingress)
        matching = [l for l in srv.ordered() if l.matches(path)]
        if not matching:   # cannot happen: every server has a root location
            return _not_found()
        loc = matching[0]
        if srv.regex:
            if len([l for l in matching if not l.root]) > 1:
                notes.append("regex-order")
            from .convert import literal_covers
            if not literal_covers(loc, path):
                notes.append("regex-mode-literal")
        elif loc.path_type == "ImplementationSpecific" and not loc.root:
            from .model import prefix_matches
            if not prefix_matches(loc.path, path):
                notes.append("implementation-specific-prefix")
        if not srv.regex and any(l.path_type == "Prefix" and l.path.endswith("/") and l.path != "/"
                                 and path == l.path.rstrip("/") for l in srv.locations):
            notes.append("nginx-prefix-trailing-slash")   # Gateway API's PathPrefix /p/ matches /p
        a = loc.action
        if loc.root and a.target is None and srv.host:
            notes.append("nginx-no-fallthrough")
        if a.grpc != self._grpc or (a.grpc and scheme == "http" and a.https_redirect):
            notes.append("grpc-only")   # Gateway API routes gRPC and HTTP requests with different routes
        if scheme == "http" and a.https_redirect:
            return _redirect(a.https_redirect, f"https://{host}{target}", a.ingress)
        if a.redirect is not None:
            if "?" in target:
                notes.append("redirect-query")
            return _redirect(a.redirect.code, a.redirect.verbatim or "", a.ingress)
        if a.target is None:
            return _not_found(a.ingress or None)
        rewritten = target
        if a.rewrite_regex is not None:
            rewritten = _nginx_rewrite(a.rewrite_regex, target, notes)
        return _forward(a, headers, a.host_rewrite or host_header, rewritten, notes, t)

    # -- Traefik ---------------------------------------------------------------------------------------

    def _traefik(self, t: Table, scheme: str, host: str, host_header: str, target: str, headers: dict,
                 notes: list[str]) -> dict:
        path = path_only(target)
        winner = None
        for r in t.routers:   # sorted by priority, then key
            if scheme not in r.families:
                continue
            if r.host and not host_matches(r.host, host):
                if wildcard_deeper(r.host, host) and r.matches_path(path):
                    notes.append("wildcard-depth")
                continue
            if r.matches_path(path):
                winner = r
                break
        if winner is None:
            return _not_found()
        a = winner.action
        if scheme == "http" and a.https_redirect:
            port = f":{a.https_redirect_port}" if a.https_redirect_port else ""
            code = a.https_redirect
            if self._method not in ("GET", "HEAD"):   # Traefik keeps the method: 308/307 instead of 301/302
                code = {301: 308, 302: 307}.get(code, code)
                notes.append("redirect-method")
            return _redirect(code, f"https://{host}{port}{target}", a.ingress)
        rewritten = target
        raw, sep, query = target.partition("?")
        if a.strip_prefixes:
            for p in a.strip_prefixes:
                if raw.startswith(p):
                    raw = raw[len(p):]
                    if not raw.startswith("/"):
                        raw = "/" + raw
                    break
            rewritten = raw + (sep + query if sep else "")
            from .convert import strip_is_exact
            if not strip_is_exact(winner):
                notes.append("middleware-unsupported")
        if a.rewrite_full:
            rewritten = a.rewrite_full + (sep + query if sep else "")
        return _forward(a, headers, host_header, rewritten, notes, t)


# =========================================================================== answers

def _backend_dict(key: str) -> dict:
    nsname, _, port = key.rpartition(":")
    ns, _, name = nsname.partition("/")
    return {"namespace": ns, "name": name, "port": int(port) if port.isdigit() else port}


def _not_found(ingress: str | None = None) -> dict:
    return {"status": 404, "backend": None, "location": None, "request": None, "split": {}, "ingress": ingress}


def _redirect(code: int, location: str, ingress: str) -> dict:
    return {"status": code, "backend": None, "location": location, "request": None, "split": {},
            "ingress": ingress}


def _canary_choice(a: Action, headers: dict | None, notes: list[str]) -> dict[str, float]:
    primary, c = a.target, a.canary
    if c is None or headers is None:
        return {primary.key: 1.0}
    if c.header:
        v = headers.get(c.header.lower())
        if c.header_value:
            if v == c.header_value:
                return {c.target.key: 1.0}
        elif c.header_pattern and v is not None:
            try:
                if re.search(c.header_pattern, v):
                    notes.append("canary-header-pattern")
                    return {c.target.key: 1.0}
            except re.error:
                pass
        else:
            if v == "always":
                return {c.target.key: 1.0}
            if v == "never":
                return {primary.key: 1.0}
    if c.cookie:
        cookies = {}
        for part in (headers.get("cookie") or "").split(";"):
            k, _, val = part.strip().partition("=")
            cookies.setdefault(k, val)
        if cookies.get(c.cookie) in ("always", "never"):
            notes.append("canary-cookie")
            return {(c.target if cookies[c.cookie] == "always" else primary).key: 1.0}
    w = c.weight / c.total if c.total else 0.0
    if w <= 0:
        return {primary.key: 1.0}
    if w >= 1:
        return {c.target.key: 1.0}
    return {primary.key: 1.0 - w, c.target.key: w}


def _forward(a: Action, headers: dict | None, host: str, target: str, notes: list[str], t: Table) -> dict:
    if a.target is None:
        return _not_found(a.ingress or None)
    split = _canary_choice(a, headers, notes)
    for key in split:
        if key.rsplit(":", 1)[1] and not key.rsplit(":", 1)[1].isdigit():
            notes.append("named-port-unresolved")
    first = max(split.items(), key=lambda kv: kv[1])[0]
    return {"status": 200, "backend": _backend_dict(first), "location": None,
            "request": {"host": host, "path": target}, "split": split, "ingress": a.ingress}


def _nginx_rewrite(rule: tuple[str, str], target: str, notes: list[str]) -> str:
    """nginx ``rewrite "(?i)<path>" <target> break;``: the whole URI becomes the target
    ($n replaced by the groups of the match); the query string is kept."""
    pattern, repl = rule
    raw, sep, query = target.partition("?")
    try:
        m = re.search(pattern, raw, re.IGNORECASE)
    except re.error:
        return target
    if m is None:
        return target

    def group(mo: re.Match) -> str:
        n = int(mo.group(1))
        try:
            return m.group(n) or ""
        except IndexError:
            return ""
    new = re.sub(r"\$(\d)", group, repl)
    from .convert import rewrite_idiom
    if "$" in repl and rewrite_idiom(pattern, repl) is None:
        notes.append("rewrite-capture-groups")
    return new + (sep + query if sep else "")
