"""Linkerd's own resources next to the Gateway API: ``policy.linkerd.io`` HTTPRoute, and the
``retry.linkerd.io/*`` / ``timeout.linkerd.io/*`` annotations.

Two HTTPRoutes
--------------
Linkerd reads two HTTPRoute kinds: the upstream ``gateway.networking.k8s.io`` one (since
2.14; v1 since 2.18) and its own ``policy.linkerd.io`` one (v1alpha1 in 2.12, v1beta2 with
Service parents and backendRefs in 2.13, v1beta3 with ``timeouts`` in 2.14; still served,
"not actively maintained; users are encouraged to switch"). They are "largely the same"
(Linkerd docs, ``reference/httproute.md``); :data:`DIFFERENCES` lists where they are not and
:func:`to_gateway` / :func:`to_linkerd` convert both ways, saying what does not carry over.

Retries and timeouts (Linkerd 2.16+)
------------------------------------
Annotations on a Service, or on an HTTPRoute/GRPCRoute whose parent is a Service
(Linkerd docs ``reference/retries.md`` and ``reference/timeouts.md``):

* ``retry.linkerd.io/http`` (HTTPRoute or Service): ``5xx``, ``gateway-error`` (502-504),
  ranges ``500-504`` or codes ``504``, comma-separated;
  ``retry.linkerd.io/grpc`` (GRPCRoute or Service): ``cancelled``, ``deadline-exceeded``,
  ``internal``, ``resource-exhausted``, ``unavailable``;
  ``retry.linkerd.io/limit`` (default 1); ``retry.linkerd.io/timeout`` (per try, e.g.
  ``300ms``: a retryable timeout).
* ``timeout.linkerd.io/request``, ``/response``, ``/idle`` (not retried).
* Route annotations override *all* the Service's retry annotations (and, separately, all
  its timeout annotations). ``rules[].timeouts.request`` counts as
  ``timeout.linkerd.io/request``; the annotation wins over the field (for
  ``gateway.networking.k8s.io`` routes Linkerd honours the field from edge-25.12.1).

:func:`policies` computes the effective policy of every mesh route and Service (shown by
:func:`policy_table`); the lab's sidecars apply it (:mod:`gwlib.mesh.sidecars`).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

POLICY_GROUP = "policy.linkerd.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"

RETRY_HTTP = "retry.linkerd.io/http"
RETRY_GRPC = "retry.linkerd.io/grpc"
RETRY_LIMIT = "retry.linkerd.io/limit"
RETRY_TIMEOUT = "retry.linkerd.io/timeout"
TIMEOUT_REQUEST = "timeout.linkerd.io/request"
TIMEOUT_RESPONSE = "timeout.linkerd.io/response"
TIMEOUT_IDLE = "timeout.linkerd.io/idle"
RETRY_ANNOTATIONS = (RETRY_HTTP, RETRY_GRPC, RETRY_LIMIT, RETRY_TIMEOUT)
TIMEOUT_ANNOTATIONS = (TIMEOUT_REQUEST, TIMEOUT_RESPONSE, TIMEOUT_IDLE)
GRPC_CONDITIONS = ("cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")
#: GEP-2257 durations, as Linkerd requires them (a unit is mandatory)
_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")

SOURCES = {
    "httproute": "https://linkerd.io/2-edge/reference/httproute/",
    "retries": "https://linkerd.io/2-edge/reference/retries/",
    "timeouts": "https://linkerd.io/2-edge/reference/timeouts/",
}

#: Where policy.linkerd.io/v1beta3 and gateway.networking.k8s.io/v1 HTTPRoutes differ.
DIFFERENCES: list[dict[str, str]] = [
    {"field": "apiVersion", "gateway.networking.k8s.io/v1": "gateway.networking.k8s.io/v1 (also v1beta1)",
     "policy.linkerd.io/v1beta3": "policy.linkerd.io/v1beta3 (also v1alpha1, v1beta1, v1beta2)"},
    {"field": "who reads it", "gateway.networking.k8s.io/v1": "every Gateway API implementation (Linkerd: 2.18+ for v1)",
     "policy.linkerd.io/v1beta3": "Linkerd only"},
    {"field": "parentRefs", "gateway.networking.k8s.io/v1": "Gateway (north/south) or Service with group \"\" (mesh)",
     "policy.linkerd.io/v1beta3": "Server (group policy.linkerd.io: inbound, per-route authorization) or Service with "
                                  "group core (outbound)"},
    {"field": "rules[].filters", "gateway.networking.k8s.io/v1":
        "RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror, CORS, ExtensionRef",
     "policy.linkerd.io/v1beta3": "RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect"},
    {"field": "rules[].backendRefs", "gateway.networking.k8s.io/v1": "Service refs with weight and per-backend filters",
     "policy.linkerd.io/v1beta3": "name, namespace, port, weight (only with Service parents)"},
    {"field": "rules[].timeouts", "gateway.networking.k8s.io/v1": "request, backendRequest (standard since v1.2)",
     "policy.linkerd.io/v1beta3": "request, backendRequest (the reason v1beta3 exists)"},
    {"field": "rules[].name, sessionPersistence, retry", "gateway.networking.k8s.io/v1": "yes (retry experimental)",
     "policy.linkerd.io/v1beta3": "no: use the retry.linkerd.io annotations"},
    {"field": "status.parents[].controllerName", "gateway.networking.k8s.io/v1": "linkerd.io/policy-controller for mesh parents",
     "policy.linkerd.io/v1beta3": "linkerd.io/policy-controller"},
    {"field": "kubectl get httproute", "gateway.networking.k8s.io/v1": "may resolve to either kind when both CRDs exist",
     "policy.linkerd.io/v1beta3": "use httproutes.gateway.networking.k8s.io / httproutes.policy.linkerd.io"},
]

_LINKERD_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect")


@dataclass
class Conversion:
    """A converted manifest and what did not carry over (empty: nothing was lost)."""
    manifest: dict
    notes: list[str] = field(default_factory=list)

    @property
    def lossless(self) -> bool:
        return not self.notes

    def yaml(self) -> str:
        import yaml
        return yaml.safe_dump(self.manifest, sort_keys=False, default_flow_style=False)

    def __str__(self) -> str:
        return self.yaml() + "".join(f"# lost: {n}\n" for n in self.notes)


def _as_dict(route: Any) -> dict:
    if isinstance(route, str):
        import yaml
        docs = [d for d in yaml.safe_load_all(route) if d]
        if len(docs) != 1:
            raise ValueError(f"expected one manifest, got {len(docs)}")
        return docs[0]
    if isinstance(route, dict):
        return copy.deepcopy(route)
    to_dict = getattr(route, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    raise TypeError(f"cannot read {type(route).__name__} as a manifest")


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def to_gateway(route: Any) -> Conversion:
    """A ``policy.linkerd.io`` HTTPRoute as a ``gateway.networking.k8s.io/v1`` HTTPRoute.

    Service parents (group ``core``) become group ``""``; Server parents (inbound,
    per-route authorization) have no Gateway API equivalent and are left out, said in
    ``notes``. Everything else carries over: the v1beta3 schema is a subset."""
    doc = _as_dict(route)
    if doc.get("kind") != "HTTPRoute" or _group(doc.get("apiVersion", "")) != POLICY_GROUP:
        raise ValueError(f"not a policy.linkerd.io HTTPRoute: {doc.get('apiVersion')} {doc.get('kind')}")
    notes: list[str] = []
    out = {"apiVersion": f"{GATEWAY_GROUP}/v1", "kind": "HTTPRoute", "metadata": copy.deepcopy(doc.get("metadata") or {})}
    spec = copy.deepcopy(doc.get("spec") or {})
    parents = []
    for i, ref in enumerate(spec.get("parentRefs") or []):
        kind = ref.get("kind") or "Server"
        if kind == "Service":
            new = {k: v for k, v in ref.items() if k != "group"}
            parents.append({"group": "", **new})
        else:
            notes.append(f"parentRefs[{i}]: {kind} {ref.get('name')} (group {ref.get('group', POLICY_GROUP)}) is a "
                         "Linkerd inbound parent with no Gateway API equivalent: left out (keep the "
                         "policy.linkerd.io route for per-route authorization)")
    spec["parentRefs"] = parents
    for ri, rule in enumerate(spec.get("rules") or []):
        for bi, b in enumerate(rule.get("backendRefs") or []):
            if b.get("namespace") == "default" and (doc.get("metadata") or {}).get("namespace") not in (None, "default"):
                notes.append(f"rules[{ri}].backendRefs[{bi}]: namespace \"default\" kept as written (the old "
                             "policy.linkerd.io CRD defaulted it to \"default\", not to the route's namespace)")
    out["spec"] = spec
    return Conversion(out, notes)


def to_linkerd(route: Any, version: str = "v1beta3") -> Conversion:
    """A ``gateway.networking.k8s.io`` HTTPRoute as a ``policy.linkerd.io`` one (``v1beta3``
    by default; ``v1beta2`` has no ``timeouts``). What Linkerd's kind cannot express is left
    out and said in ``notes``: Gateway parents, URLRewrite / RequestMirror / CORS /
    ExtensionRef filters, backendRef filters, rule names, retry and session persistence."""
    if version not in ("v1beta2", "v1beta3"):
        raise ValueError("version must be v1beta2 or v1beta3 (the versions with Service parents and backendRefs)")
    doc = _as_dict(route)
    if doc.get("kind") != "HTTPRoute" or _group(doc.get("apiVersion", "")) != GATEWAY_GROUP:
        raise ValueError(f"not a gateway.networking.k8s.io HTTPRoute: {doc.get('apiVersion')} {doc.get('kind')}")
    notes: list[str] = []
    spec = copy.deepcopy(doc.get("spec") or {})
    parents = []
    for i, ref in enumerate(spec.get("parentRefs") or []):
        kind = ref.get("kind") or "Gateway"
        group = ref.get("group", GATEWAY_GROUP)
        if kind == "Service" and group in ("", "core"):
            new = {k: v for k, v in ref.items() if k != "group"}
            parents.append({"group": "core", **new})
        else:
            notes.append(f"parentRefs[{i}]: {kind} {ref.get('name')} is not a parent a policy.linkerd.io route "
                         "can have (Service or Server only): left out")
    spec["parentRefs"] = parents
    spec.pop("useDefaultGateways", None)
    for ri, rule in enumerate(spec.get("rules") or []):
        kept = []
        for fi, f in enumerate(rule.get("filters") or []):
            if f.get("type") in _LINKERD_FILTERS:
                kept.append(f)
            else:
                notes.append(f"rules[{ri}].filters[{fi}]: {f.get('type')} is not a policy.linkerd.io filter: left out")
        if rule.get("filters") is not None:
            rule["filters"] = kept
            if not kept:
                rule.pop("filters")
        for k in ("name", "retry", "sessionPersistence"):
            if k in rule:
                notes.append(f"rules[{ri}].{k}: not in policy.linkerd.io/{version}: left out"
                             + (" (use the retry.linkerd.io annotations)" if k == "retry" else ""))
                rule.pop(k)
        if "timeouts" in rule and version == "v1beta2":
            notes.append(f"rules[{ri}].timeouts: not in v1beta2 (use v1beta3): left out")
            rule.pop("timeouts")
        for bi, b in enumerate(rule.get("backendRefs") or []):
            if b.get("filters"):
                notes.append(f"rules[{ri}].backendRefs[{bi}].filters: not supported by Linkerd's kind: left out")
                b.pop("filters")
            for k in ("group", "kind"):
                if k in b and b[k] not in ("", "Service"):
                    notes.append(f"rules[{ri}].backendRefs[{bi}]: {k} {b[k]!r} is not a Service: left out")
                b.pop(k, None)
            if "namespace" not in b:
                ns = (doc.get("metadata") or {}).get("namespace")
                if ns:
                    b["namespace"] = ns  # the old CRD's default is "default", not the route's namespace
    out = {"apiVersion": f"{POLICY_GROUP}/{version}", "kind": "HTTPRoute",
           "metadata": copy.deepcopy(doc.get("metadata") or {}), "spec": spec}
    return Conversion(out, notes)


# --------------------------------------------------------------------------- retries, timeouts

def _http_conditions(text: str) -> tuple[list[str], list[int], list[str]]:
    """``retry.linkerd.io/http`` -> (Envoy retry_on, retriable status codes, problems)."""
    on: list[str] = []
    codes: list[int] = []
    problems: list[str] = []
    for item in (x.strip().lower() for x in text.split(",")):
        if not item:
            continue
        if item in ("5xx", "gateway-error"):
            on.append(item)
        elif re.fullmatch(r"[1-5][0-9][0-9]-[1-5][0-9][0-9]", item):
            lo, hi = (int(x) for x in item.split("-"))
            codes.extend(range(lo, hi + 1))
        elif re.fullmatch(r"[1-5][0-9][0-9]", item):
            codes.append(int(item))
        else:
            problems.append(f"{RETRY_HTTP}: {item!r} is not 5xx, gateway-error, a status code or a range")
    if codes:
        on.append("retriable-status-codes")
    return on, sorted(set(codes)), problems


def _retry(ann: dict[str, str], kind: str) -> tuple[dict, dict, list[str]]:
    """(http retry, grpc retry, problems) from the retry annotations of a ``kind`` object."""
    problems: list[str] = []
    try:
        limit = int(ann.get(RETRY_LIMIT, "1"))
        if limit < 0:
            raise ValueError
    except ValueError:
        problems.append(f"{RETRY_LIMIT}: {ann.get(RETRY_LIMIT)!r} is not a non-negative integer (default 1 used)")
        limit = 1
    timeout = ann.get(RETRY_TIMEOUT)
    if timeout is not None and not _DURATION.match(timeout):
        problems.append(f"{RETRY_TIMEOUT}: {timeout!r} is not a duration with a unit (e.g. 300ms)")
        timeout = None
    http: dict = {}
    grpc: dict = {}
    if RETRY_HTTP in ann:
        if kind == "GRPCRoute":
            problems.append(f"{RETRY_HTTP} does nothing on a GRPCRoute (use {RETRY_GRPC})")
        else:
            on, codes, probs = _http_conditions(ann[RETRY_HTTP])
            problems += probs
            if on:
                http = {"on": on, "codes": codes, "limit": limit, "timeout": timeout}
    if RETRY_GRPC in ann:
        if kind == "HTTPRoute":
            problems.append(f"{RETRY_GRPC} does nothing on an HTTPRoute (use {RETRY_HTTP})")
        else:
            on = []
            for item in (x.strip().lower() for x in ann[RETRY_GRPC].split(",")):
                if item in GRPC_CONDITIONS:
                    on.append(item)
                elif item:
                    problems.append(f"{RETRY_GRPC}: {item!r} is not one of {', '.join(GRPC_CONDITIONS)}")
            if on:
                grpc = {"on": on, "codes": [], "limit": limit, "timeout": timeout}
    if timeout and not http and kind != "GRPCRoute" and RETRY_HTTP not in ann:
        # a retry timeout alone: requests that time out are retried (they become 504s)
        http = {"on": ["gateway-error"], "codes": [], "limit": limit, "timeout": timeout}
    if timeout and not grpc and kind != "HTTPRoute" and RETRY_GRPC not in ann:
        grpc = {"on": ["deadline-exceeded"], "codes": [], "limit": limit, "timeout": timeout}
    return http, grpc, problems


def _timeouts(ann: dict[str, str]) -> tuple[dict, list[str]]:
    out, problems = {}, []
    for key, name in ((TIMEOUT_REQUEST, "request"), (TIMEOUT_RESPONSE, "response"), (TIMEOUT_IDLE, "idle")):
        if key in ann:
            if _DURATION.match(ann[key]):
                out[name] = ann[key]
            else:
                problems.append(f"{key}: {ann[key]!r} is not a duration with a unit (e.g. 2s)")
    return out, problems


def _docs(objects: Any) -> list[dict]:
    if isinstance(objects, (str, bytes)) or hasattr(objects, "__fspath__"):
        from .. import load
        objects = load(objects)
    out = []
    for o in objects:
        out.append(o if isinstance(o, dict) else o.to_dict())
    return out


def _key(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def policies(objects: Any) -> dict[str, dict]:
    """The effective Linkerd retry/timeout policy of every Service (``"svc:ns/name"``) and
    every HTTPRoute/GRPCRoute with a Service parent (``"ns/name"``):
    ``{"http": {"on", "codes", "limit", "timeout"}, "grpc": {...}, "timeouts": {"request",
    "response", "idle"}, "from": {"retry": "route"|"Service ns/name"|None, "timeouts": ...},
    "problems": [...]}``. Only objects with some policy are listed."""
    docs = _docs(objects)
    services: dict[str, dict] = {}
    for d in docs:
        if d.get("kind") == "Service":
            ann = (d.get("metadata") or {}).get("annotations") or {}
            http, grpc, p1 = _retry(ann, "Service")
            t, p2 = _timeouts(ann)
            services[_key(d)] = {"http": http, "grpc": grpc, "timeouts": t, "problems": p1 + p2}
    out: dict[str, dict] = {}
    for skey, pol in services.items():
        if pol["http"] or pol["grpc"] or pol["timeouts"] or pol["problems"]:
            src = f"Service {skey}"
            out["svc:" + skey] = {**pol, "from": {"retry": src if pol["http"] or pol["grpc"] else None,
                                                  "timeouts": src if pol["timeouts"] else None}}
    for d in docs:
        kind = d.get("kind")
        if kind not in ("HTTPRoute", "GRPCRoute") or _group(d.get("apiVersion", "")) != GATEWAY_GROUP:
            continue
        spec = d.get("spec") or {}
        rns = (d.get("metadata") or {}).get("namespace") or "default"
        parents = [f"{r.get('namespace') or rns}/{r.get('name')}" for r in spec.get("parentRefs") or []
                   if r.get("kind") == "Service" and r.get("group") in ("", "core")]
        if not parents:
            continue
        svc = services.get(parents[0]) or {"http": {}, "grpc": {}, "timeouts": {}, "problems": []}
        ann = (d.get("metadata") or {}).get("annotations") or {}
        problems: list[str] = []
        if any(k in ann for k in RETRY_ANNOTATIONS):
            http, grpc, p = _retry(ann, kind)
            problems += p
            retry_from = "route"
        else:
            http, grpc = svc["http"], svc["grpc"]
            retry_from = f"Service {parents[0]}" if (http or grpc) else None
        if kind == "HTTPRoute":
            grpc = {}
        else:
            http = {}
        if any(k in ann for k in TIMEOUT_ANNOTATIONS):
            timeouts, p = _timeouts(ann)
            problems += p
            t_from = "route"
        else:
            timeouts, t_from = dict(svc["timeouts"]), (f"Service {parents[0]}" if svc["timeouts"] else None)
        field_t = [r.get("timeouts", {}).get("request") for r in spec.get("rules") or [] if r.get("timeouts")]
        if field_t and "request" not in timeouts:
            t_from = t_from or "rules[].timeouts.request"
        if http or grpc or timeouts or problems or field_t:
            out[_key(d)] = {"http": http, "grpc": grpc, "timeouts": timeouts, "problems": problems,
                            "from": {"retry": retry_from, "timeouts": t_from}}
    return out


def policy_table(objects: Any):
    """:func:`policies` as a pandas DataFrame, one row per route or Service: what a meshed
    client's proxy does on errors and how long it waits."""
    import pandas as pd

    rows = []
    for key, pol in sorted(policies(objects).items()):
        retry = pol["http"] or pol["grpc"]
        on = ",".join(r for r in retry.get("on", []) if r != "retriable-status-codes")
        if retry.get("codes"):
            cs = retry["codes"]
            on = ",".join(x for x in (on, f"{cs[0]}-{cs[-1]}" if len(cs) > 1 else str(cs[0])) if x)
        rows.append({"object": key.replace("svc:", "Service "), "retry on": on or "-",
                     "retries": retry.get("limit", "-") if retry else "-",
                     "per-try timeout": retry.get("timeout") or "-",
                     "request timeout": pol["timeouts"].get("request", "-"),
                     "response timeout": pol["timeouts"].get("response", "-"),
                     "retry from": pol["from"]["retry"] or "-", "problems": "; ".join(pol["problems"])})
    cols = ["object", "retry on", "retries", "per-try timeout", "request timeout", "response timeout",
            "retry from", "problems"]
    return pd.DataFrame(rows, columns=cols)
