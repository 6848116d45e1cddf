"""What the Argo Rollouts Gateway API plugin writes into your routes (plugin v0.15.0).

Pure functions over route dicts (the whole object, as the plugin ``Update``\\s it):

* :func:`set_weight` — in **every** rule except the plugin's own header rules, the backendRef
  *named* like ``canaryService`` gets ``weight = w`` and the one named like
  ``stableService`` gets ``100 - w`` (by Service name only: namespace, port and kind are not
  compared); other backendRefs are left alone. A route where no rule lists both Services is
  the plugin's error *backendRef was not found in httpRoute*.
* :func:`set_header_route` — for every rule that holds the canary or stable Service, a rule
  named after the managed route (``NAME``, ``NAME-1``, …) with the source rule's filters, its
  path/method/query matches merged with the header matches (``exact`` → Exact, ``prefix`` →
  RegularExpression ``"<prefix>.*"``, ``regex`` → RegularExpression) and one backendRef to
  the canary Service **without a weight**. A step without ``match`` removes them.
* :func:`remove_managed_rules` — on abort and at the end of the rollout.
* :func:`in_progress_label` — ``rollouts.argoproj.io/gatewayapi-canary=in-progress`` while
  the canary weight is above 0.
"""
from __future__ import annotations

import copy
import re

__all__ = ["BackendRefNotFound", "header_rule_names", "in_progress_label", "is_managed_rule",
           "remove_managed_rules", "route_weights", "set_header_route", "set_weight"]


class BackendRefNotFound(ValueError):
    """The route lists the canary and stable Services in no rule."""


def is_managed_rule(rule: dict, managed: list[str], canary: str) -> bool:
    """A rule the plugin added for a header route: named after a managed route (or
    ``NAME-N``), or — the plugin's fallback — a rule whose only backendRef is the canary and
    that has header matches."""
    name = rule.get("name")
    if name:
        for m in managed:
            if name == m or re.fullmatch(re.escape(m) + r"-\d+", name):
                return True
    refs = rule.get("backendRefs") or []
    if len(refs) == 1 and refs[0].get("name") == canary and "weight" not in refs[0]:
        return any(match.get("headers") for match in rule.get("matches") or [])
    return False


def set_weight(route: dict, canary: str, stable: str, weight: int, managed: list[str] | None = None) -> dict:
    """A copy of ``route`` with the plugin's weights; raises :class:`BackendRefNotFound`."""
    out = copy.deepcopy(route)
    found = False
    for rule in (out.get("spec") or {}).get("rules") or []:
        if is_managed_rule(rule, managed or [], canary):
            continue
        refs = rule.get("backendRefs") or []
        names = {r.get("name") for r in refs}
        if canary in names and stable in names:
            found = True
        for ref in refs:
            if ref.get("name") == canary:
                ref["weight"] = int(weight)
            elif ref.get("name") == stable:
                ref["weight"] = 100 - int(weight)
    if not found:
        kind = (route.get("kind") or "HTTPRoute")
        lower = kind[:-5].lower() + "Route"
        raise BackendRefNotFound(f"backendRef was not found in {lower}: no rule of {kind} "
                                 f"{_key(route)} lists both {stable} and {canary} (every route must list both Services)")
    return out


def _key(route: dict) -> str:
    meta = route.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name')}"


def header_rule_names(name: str, count: int) -> list[str]:
    return [name] + [f"{name}-{i}" for i in range(1, count)]


def _header_matches(step_match: list[dict], grpc: bool) -> list[dict]:
    out = []
    for m in step_match or []:
        hv = m.get("headerValue") or {}
        if "exact" in hv:
            out.append({"name": m["headerName"], "type": "Exact", "value": str(hv["exact"])})
        elif "prefix" in hv:
            out.append({"name": m["headerName"], "type": "RegularExpression", "value": f"{hv['prefix']}.*"})
        else:
            out.append({"name": m["headerName"], "type": "RegularExpression", "value": str(hv.get("regex", ""))})
    return out


def set_header_route(route: dict, canary: str, stable: str, name: str, step_match: list[dict],
                     managed: list[str]) -> dict:
    """A copy of ``route`` with the header rules of managed route ``name`` (re)written; no
    ``step_match`` removes them."""
    out = remove_managed_rules(route, [name], canary)
    if not step_match:
        return out
    grpc = (route.get("kind") == "GRPCRoute")
    headers = _header_matches(step_match, grpc)
    rules = (out.setdefault("spec", {})).setdefault("rules", [])
    sources = [r for r in rules if not is_managed_rule(r, managed, canary)
               and any(ref.get("name") in (canary, stable) for ref in r.get("backendRefs") or [])]
    names = header_rule_names(name, len(sources))
    added = []
    for rule_name, src in zip(names, sources):
        refs = src.get("backendRefs") or []
        port_ref = next((r for r in refs if r.get("name") == canary), None) or \
            next((r for r in refs if r.get("name") == stable), {})
        backend = {"name": canary}
        for k in ("group", "kind", "namespace", "port"):
            if k in port_ref:
                backend[k] = port_ref[k]
        matches = []
        for m in src.get("matches") or [{}]:
            nm = {k: copy.deepcopy(v) for k, v in m.items() if k != "headers"}
            nm["headers"] = copy.deepcopy(headers)
            matches.append(nm)
        rule = {"name": rule_name, "matches": matches}
        if src.get("filters"):
            rule["filters"] = copy.deepcopy(src["filters"])
        rule["backendRefs"] = [backend]
        added.append(rule)
    rules.extend(added)
    return out


def remove_managed_rules(route: dict, managed: list[str], canary: str | None = None) -> dict:
    """A copy of ``route`` without the plugin's header rules for these managed routes."""
    out = copy.deepcopy(route)
    spec = out.get("spec") or {}
    if spec.get("rules"):
        spec["rules"] = [r for r in spec["rules"] if not _named(r, managed)]
    return out


def _named(rule: dict, managed: list[str]) -> bool:
    name = rule.get("name") or ""
    return any(name == m or re.fullmatch(re.escape(m) + r"-\d+", name) for m in managed)


def in_progress_label(route: dict, label: tuple[str, str] | None, weight: int) -> dict:
    """Set the in-progress label while the canary weight is above 0, remove it at 0."""
    if label is None:
        return route
    out = copy.deepcopy(route)
    meta = out.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    key, value = label
    if weight > 0:
        labels[key] = value
    else:
        labels.pop(key, None)
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    return out


def route_weights(route: dict, canary: str, stable: str, managed: list[str] | None = None) -> dict[str, int]:
    """The stable/canary weights of the first rule that lists both (1 when unset: the
    Gateway API default)."""
    for rule in (route.get("spec") or {}).get("rules") or []:
        if is_managed_rule(rule, managed or [], canary):
            continue
        refs = {r.get("name"): r for r in rule.get("backendRefs") or []}
        if canary in refs and stable in refs:
            return {stable: int(refs[stable].get("weight", 1)), canary: int(refs[canary].get("weight", 1))}
    return {}
