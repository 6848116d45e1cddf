"""Argo Rollouts kinds as gwlib reads them: ``Rollout`` and ``AnalysisTemplate``.

gwlib loads Argo kinds as :class:`~gwlib.resources.GenericObject` (``.raw``); this module
checks them against the fields gwlib models and turns them into plain dataclasses. Every
field a real cluster accepts but gwlib does not model is an error that names the field (and
what to use instead), in the same one-line format as ``gwlib validate``:
``file:doc Rollout ns/name: spec.strategy.canary.trafficRouting.istio: ...``.

What is modelled (``argoproj.io/v1alpha1``):

* ``Rollout``: ``spec.replicas``, ``selector``, ``template``, ``paused``,
  ``progressDeadlineSeconds``/``progressDeadlineAbort``, ``revisionHistoryLimit``,
  ``minReadySeconds`` and ``strategy.canary`` with ``canaryService``, ``stableService``,
  ``steps`` (``setWeight``, ``pause``, ``analysis``, ``setCanaryScale``, ``setHeaderRoute``,
  ``setMirrorRoute`` — a no-op, as in the Gateway API plugin), background ``analysis``
  (``templates``, ``args``, ``startingStep``, ``dryRun``), ``trafficRouting.plugins``
  ``argoproj-labs/gatewayAPI`` (``httpRoute(s)``, ``grpcRoute(s)``, ``tcpRoute(s)``,
  ``tlsRoute(s)``, ``*RouteSelector``, ``namespace``, the in-progress label settings),
  ``trafficRouting.managedRoutes``, ``canaryMetadata``/``stableMetadata`` and the scaling
  settings that do not change traffic (``maxSurge``, ``maxUnavailable``,
  ``dynamicStableScale``, ``abortScaleDownDelaySeconds``, ``scaleDownDelaySeconds``,
  ``minPodsPerReplicaSet``).
* ``AnalysisTemplate`` / ``ClusterAnalysisTemplate``: ``args`` (``value``,
  ``valueFrom.secretKeyRef``), ``metrics`` with ``interval``, ``initialDelay``, ``count``,
  ``successCondition``, ``failureCondition``, ``failureLimit``, ``inconclusiveLimit``,
  ``consecutiveErrorLimit``, ``consecutiveSuccessLimit`` and the ``prometheus`` provider;
  ``dryRun``, ``measurementRetention``.

Versions: the pod template's ``version`` label (or ``app.kubernetes.io/version``) names the
new (canary) version. The version running before the update is not in a Rollout manifest
(a cluster keeps it in a ReplicaSet); say it with the annotation
``gwlib.dev/stable-version`` (Argo ignores it), else gwlib calls it ``stable``.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..problems import Problem
from .duration import DurationError, parse_go_duration, pause_seconds

API_VERSION = "argoproj.io/v1alpha1"
PLUGIN = "argoproj-labs/gatewayAPI"
STABLE_VERSION_ANNOTATION = "gwlib.dev/stable-version"
HASH_LABEL = "rollouts-pod-template-hash"
IN_PROGRESS_LABEL = "rollouts.argoproj.io/gatewayapi-canary"
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
ROUTE_KINDS = {"httpRoute": "HTTPRoute", "grpcRoute": "GRPCRoute", "tcpRoute": "TCPRoute", "tlsRoute": "TLSRoute"}
STEP_KINDS = ("setWeight", "pause", "analysis", "setCanaryScale", "setHeaderRoute", "setMirrorRoute")


class RolloutSpecError(ValueError):
    """A Rollout or AnalysisTemplate gwlib cannot run; ``.problems`` has one line each."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(p.line() for p in problems) or "invalid rollout")


# ----------------------------------------------------------------------- dataclasses

@dataclass
class Step:
    index: int
    kind: str
    value: Any
    raw: dict

    def to_dict(self) -> dict:
        return dict(self.raw)


@dataclass
class RouteRef:
    kind: str
    name: str
    use_header_routes: bool = False


@dataclass
class AnalysisRef:
    templates: list[tuple[str, bool]]             # (templateName, clusterScope)
    args: list[dict] = field(default_factory=list)
    starting_step: int | None = None
    dry_run: list[str] = field(default_factory=list)


@dataclass
class RolloutSpec:
    namespace: str
    name: str
    replicas: int
    selector: dict
    template: dict
    canary_service: str
    stable_service: str
    steps: list[Step]
    routes: list[RouteRef]
    route_selectors: list[tuple[str, dict]]
    plugin_namespace: str
    managed_routes: list[str]
    background: AnalysisRef | None
    in_progress_label: tuple[str, str] | None
    canary_metadata: dict
    stable_metadata: dict
    dynamic_stable_scale: bool
    paused: bool
    progress_deadline_abort: bool
    canary_version: str
    stable_version: str
    source: tuple[str, int] | None
    raw: dict

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def template_labels(self) -> dict[str, str]:
        return dict(((self.template.get("metadata") or {}).get("labels") or {}))

    @property
    def version_label(self) -> str:
        """The pod label that names the version: ``version``, else
        ``app.kubernetes.io/version`` when only that one is set (``version`` when neither is)."""
        labels = self.template_labels
        return "version" if "version" in labels or "app.kubernetes.io/version" not in labels \
            else "app.kubernetes.io/version"

    def pod_template(self, version: str) -> dict:
        """The pod template of ``version`` (the canary's own, or the stable's: the same with
        its version label)."""
        t = json.loads(json.dumps(self.template))
        labels = t.setdefault("metadata", {}).setdefault("labels", {})
        labels[self.version_label] = version
        return t

    def pod_template_hash(self, version: str) -> str:
        return pod_template_hash(self.pod_template(version))


@dataclass
class MetricSpec:
    name: str
    interval: float | None
    initial_delay: float
    count: int | None
    success_condition: str
    failure_condition: str
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    consecutive_success_limit: int
    provider: str
    query: str
    address: str
    dry_run: bool = False
    raw: dict = field(default_factory=dict)

    def effective_count(self) -> int | None:
        """Argo's ``Metric.EffectiveCount``: count, else 1 without an interval, else None
        (runs until stopped)."""
        if not self.count:
            return 1 if self.interval is None else None
        return self.count


@dataclass
class TemplateSpec:
    kind: str
    namespace: str | None
    name: str
    args: list[dict]
    metrics: list[dict]
    dry_run: list[str]
    source: tuple[str, int] | None
    raw: dict


# --------------------------------------------------------------------------- helpers

def pod_template_hash(template: dict) -> str:
    """A ReplicaSet-style pod-template hash: FNV-1a (32 bit) of the template, encoded with
    Kubernetes' safe alphabet (what ``rollouts-pod-template-hash`` looks like)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(c) % len(alphabet)] for c in str(h))


def _raw(obj: Any) -> dict:
    if isinstance(obj, dict):
        return obj
    raw = getattr(obj, "raw", None)
    if isinstance(raw, dict):
        return raw
    return obj.to_dict()


class _Checker:
    def __init__(self, obj: Any, kind: str):
        self.raw = _raw(obj)
        meta = self.raw.get("metadata") or {}
        self.name = str(meta.get("name") or "")
        ns = meta.get("namespace")
        self.namespace = str(ns) if ns else ("" if kind == "ClusterAnalysisTemplate" else "default")
        src = getattr(obj, "source", None)
        self.source = src
        self.kind = kind
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        file, doc = self.source if self.source else ("<object>", 0)
        self.problems.append(Problem(file, doc, self.kind, self.namespace, self.name, path, message))

    def only(self, d: Any, path: str, allowed: dict[str, str | None]) -> dict:
        """Check a mapping's keys: ``allowed`` maps a key to None (modelled) or to the text
        of the error that key gets."""
        if d is None:
            return {}
        if not isinstance(d, dict):
            self.add(path, f"must be an object, not {type(d).__name__}")
            return {}
        for k in d:
            if k in allowed:
                if allowed[k] is not None:
                    self.add(f"{path}.{k}" if path else k, allowed[k])
            else:
                self.add(f"{path}.{k}" if path else k,
                         f"field not supported by gwlib (supported: {', '.join(sorted(a for a, v in allowed.items() if v is None))})")
        return d

    def int_field(self, d: dict, key: str, path: str, *, minimum: int | None = None,
                  maximum: int | None = None, default: int | None = None, int_or_string: bool = False) -> int | None:
        if key not in d or d[key] is None:
            return default
        v = d[key]
        if int_or_string and isinstance(v, str):
            if "{{" in v:
                return default   # resolved later from args
            if re.fullmatch(r"-?\d+", v.strip()):
                v = int(v.strip())
        if isinstance(v, bool) or not isinstance(v, int):
            self.add(f"{path}.{key}", f"must be an integer, not {v!r}")
            return default
        if minimum is not None and v < minimum or maximum is not None and v > maximum:
            rng = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.add(f"{path}.{key}", f"Invalid value: {v}: must be {rng}")
            return default
        return v

    def raise_if(self) -> None:
        if self.problems:
            raise RolloutSpecError(self.problems)


# ------------------------------------------------------------------------------ Rollout

_CANARY_FIELDS: dict[str, str | None] = {
    "canaryService": None, "stableService": None, "steps": None, "trafficRouting": None, "analysis": None,
    "maxSurge": None, "maxUnavailable": None, "dynamicStableScale": None, "abortScaleDownDelaySeconds": None,
    "scaleDownDelaySeconds": None, "minPodsPerReplicaSet": None, "canaryMetadata": None, "stableMetadata": None,
    "antiAffinity": None, "scaleDownDelayRevisionLimit": None,
    "pingPong": "ping-pong Services are an ALB feature; gwlib models canaryService/stableService",
    "rollbackWindow": "not modelled by gwlib",
    "replicaProgressThreshold": "not modelled by gwlib (pods are ready at once in the lab)",
}
_ROUTING_FIELDS: dict[str, str | None] = {
    "plugins": None, "managedRoutes": None, "maxTrafficWeight": None,
    "gatewayAPI": ("there is no trafficRouting.gatewayAPI field: Argo Rollouts silently ignores it and the "
                   "route keeps its default 1:1 weights (argo-rollouts #4569); use "
                   "trafficRouting.plugins: {argoproj-labs/gatewayAPI: {httpRoute: NAME}}"),
}
for _p in ("istio", "nginx", "alb", "smi", "ambassador", "traefik", "apisix", "appMesh"):
    _ROUTING_FIELDS[_p] = (f"the {_p} traffic router is not modelled: gwlib drives Gateway API routes through "
                           "trafficRouting.plugins argoproj-labs/gatewayAPI")
_PLUGIN_FIELDS: dict[str, str | None] = {
    "namespace": None, "disableInProgressLabel": None, "inProgressLabelKey": None, "inProgressLabelValue": None,
    "configMap": "removed in plugin v0.13.0 (header routes are no longer stored in a ConfigMap); delete the field",
}
for _k in ROUTE_KINDS:
    _PLUGIN_FIELDS[_k] = None
    _PLUGIN_FIELDS[_k + "s"] = None
    _PLUGIN_FIELDS[_k + "Selector"] = None


def parse_rollout(obj: Any) -> RolloutSpec:
    """Check a Rollout and read it; raises :class:`RolloutSpecError` listing every problem."""
    c = _Checker(obj, "Rollout")
    raw = c.raw
    if raw.get("apiVersion") != API_VERSION:
        c.add("apiVersion", f"gwlib reads Rollouts of {API_VERSION}, not {raw.get('apiVersion')!r}")
    spec = c.only(raw.get("spec"), "spec", {
        "replicas": None, "selector": None, "template": None, "strategy": None, "paused": None,
        "progressDeadlineSeconds": None, "progressDeadlineAbort": None, "revisionHistoryLimit": None,
        "minReadySeconds": None, "restartAt": None, "analysis": None,
        "workloadRef": "not modelled by gwlib: write the pod template in spec.template",
    })
    if not spec:
        c.add("spec", "Required value")
        c.raise_if()
    replicas = c.int_field(spec, "replicas", "spec", minimum=0, default=1)
    selector = spec.get("selector") or {}
    if not isinstance(selector, dict) or not selector.get("matchLabels"):
        c.add("spec.selector", "Required value: matchLabels (gwlib needs the pods' labels)")
        selector = {}
    template = spec.get("template") or {}
    labels = ((template.get("metadata") or {}).get("labels") or {}) if isinstance(template, dict) else {}
    if not isinstance(template, dict) or not template:
        c.add("spec.template", "Required value")
    elif selector.get("matchLabels") and any(labels.get(k) != v for k, v in selector["matchLabels"].items()):
        c.add("spec.template.metadata.labels", "`selector` does not match template `labels`")
    strategy = spec.get("strategy") or {}
    c.only(strategy, "spec.strategy", {"canary": None,
                                       "blueGreen": "not modelled by gwlib: it runs canary strategies"})
    canary = strategy.get("canary") if isinstance(strategy, dict) else None
    if not isinstance(canary, dict):
        c.add("spec.strategy.canary", "Required value: gwlib runs canary strategies")
        c.raise_if()
    c.only(canary, "spec.strategy.canary", _CANARY_FIELDS)
    path = "spec.strategy.canary"
    canary_svc = canary.get("canaryService")
    stable_svc = canary.get("stableService")
    routing = canary.get("trafficRouting")
    if not isinstance(routing, dict):
        c.add(f"{path}.trafficRouting", "Required value: gwlib shifts traffic through a Gateway API route "
                                        "(trafficRouting.plugins: {argoproj-labs/gatewayAPI: {...}})")
        routing = {}
    c.only(routing, f"{path}.trafficRouting", _ROUTING_FIELDS)
    if not canary_svc:
        c.add(f"{path}.canaryService", "Required value: traffic routing needs a canaryService")
    if not stable_svc:
        c.add(f"{path}.stableService", "Required value: traffic routing needs a stableService")
    if canary_svc and stable_svc and canary_svc == stable_svc:
        c.add(f"{path}.stableService", "stableService and canaryService must be different Services")
    mtw = c.int_field(routing, "maxTrafficWeight", f"{path}.trafficRouting", minimum=1)
    if mtw is not None and mtw != 100:
        c.add(f"{path}.trafficRouting.maxTrafficWeight",
              "the Gateway API plugin writes stable = 100 - canary, so only 100 works (it is the default)")
    managed = []
    for i, mr in enumerate(routing.get("managedRoutes") or []):
        if not isinstance(mr, dict) or not mr.get("name"):
            c.add(f"{path}.trafficRouting.managedRoutes[{i}].name", "Required value")
            continue
        c.only(mr, f"{path}.trafficRouting.managedRoutes[{i}]", {"name": None})
        if mr["name"] in managed:
            c.add(f"{path}.trafficRouting.managedRoutes[{i}].name", f"Duplicate value: {mr['name']!r}")
        managed.append(str(mr["name"]))
    plugins = routing.get("plugins") or {}
    ns = c.namespace
    routes: list[RouteRef] = []
    selectors: list[tuple[str, dict]] = []
    plugin_ns = ns
    in_progress: tuple[str, str] | None = (IN_PROGRESS_LABEL, "in-progress")
    if not isinstance(plugins, dict):
        c.add(f"{path}.trafficRouting.plugins", "must be an object keyed by plugin name")
        plugins = {}
    for pname in plugins:
        if pname != PLUGIN:
            c.add(f"{path}.trafficRouting.plugins.{pname}",
                  f"gwlib models only the {PLUGIN} traffic router plugin")
    cfg = plugins.get(PLUGIN)
    if routing and cfg is None and not any(k in routing for k in ("gatewayAPI",) + tuple(
            k for k, v in _ROUTING_FIELDS.items() if v and k != "gatewayAPI")):
        c.add(f"{path}.trafficRouting.plugins", f"Required value: {PLUGIN}")
    if isinstance(cfg, dict):
        ppath = f"{path}.trafficRouting.plugins.{PLUGIN}"
        c.only(cfg, ppath, _PLUGIN_FIELDS)
        plugin_ns = str(cfg.get("namespace") or ns)
        for key, kind in ROUTE_KINDS.items():
            if cfg.get(key):
                if not isinstance(cfg[key], str):
                    c.add(f"{ppath}.{key}", "must be a route name")
                else:   # the singular form means useHeaderRoutes: true
                    routes.append(RouteRef(kind, cfg[key], True))
            for i, item in enumerate(cfg.get(key + "s") or []):
                if not isinstance(item, dict) or not item.get("name"):
                    c.add(f"{ppath}.{key}s[{i}].name", "Required value")
                    continue
                c.only(item, f"{ppath}.{key}s[{i}]", {"name": None, "useHeaderRoutes": None})
                routes.append(RouteRef(kind, str(item["name"]), bool(item.get("useHeaderRoutes", False))))
            sel = cfg.get(key + "Selector")
            if sel:
                if not isinstance(sel, dict):
                    c.add(f"{ppath}.{key}Selector", "must be a label selector")
                else:
                    c.only(sel, f"{ppath}.{key}Selector", {"matchLabels": None, "matchExpressions": None})
                    selectors.append((kind, sel))
        if not routes and not selectors:
            c.add(ppath, "No routes configured. At least one of 'httpRoutes', 'grpcRoutes', 'tcpRoutes', "
                         "'tlsRoutes', 'httpRoute', 'grpcRoute', 'tcpRoute', 'tlsRoute' or a route selector must be set")
        if cfg.get("disableInProgressLabel"):
            in_progress = None
        else:
            in_progress = (str(cfg.get("inProgressLabelKey") or IN_PROGRESS_LABEL),
                           str(cfg.get("inProgressLabelValue") or "in-progress"))
    elif cfg is not None:
        c.add(f"{path}.trafficRouting.plugins.{PLUGIN}", "must be an object")

    steps = _parse_steps(c, canary.get("steps") or [], f"{path}.steps", managed)
    background = None
    if canary.get("analysis") is not None:
        background = _parse_analysis_ref(c, canary["analysis"], f"{path}.analysis", background=True)
        if background and background.starting_step is not None and steps and background.starting_step > len(steps):
            c.add(f"{path}.analysis.startingStep", f"Invalid value: {background.starting_step}: "
                                                   f"must be at most the number of steps ({len(steps)})")
    for key in ("canaryMetadata", "stableMetadata"):
        md = canary.get(key)
        if md is not None:
            c.only(md, f"{path}.{key}", {"labels": None, "annotations": None})
    c.int_field(spec, "progressDeadlineSeconds", "spec", minimum=1)
    c.raise_if()

    annotations = (raw.get("metadata") or {}).get("annotations") or {}
    canary_version = labels.get("version") or labels.get("app.kubernetes.io/version") or "canary"
    stable_version = str(annotations.get(STABLE_VERSION_ANNOTATION) or "stable")
    if stable_version == canary_version:
        c.add(f"metadata.annotations.{STABLE_VERSION_ANNOTATION}",
              f"the stable version must differ from the new template's version ({canary_version})")
        c.raise_if()
    return RolloutSpec(
        namespace=ns, name=c.name, replicas=replicas if replicas is not None else 1,
        selector=selector, template=template, canary_service=str(canary_svc), stable_service=str(stable_svc),
        steps=steps, routes=routes, route_selectors=selectors, plugin_namespace=plugin_ns,
        managed_routes=managed, background=background, in_progress_label=in_progress,
        canary_metadata=dict(canary.get("canaryMetadata") or {}),
        stable_metadata=dict(canary.get("stableMetadata") or {}),
        dynamic_stable_scale=bool(canary.get("dynamicStableScale", False)),
        paused=bool(spec.get("paused", False)), progress_deadline_abort=bool(spec.get("progressDeadlineAbort", False)),
        canary_version=str(canary_version), stable_version=stable_version, source=c.source, raw=raw)


def _parse_steps(c: _Checker, steps: Any, path: str, managed: list[str]) -> list[Step]:
    out: list[Step] = []
    if not isinstance(steps, list):
        c.add(path, "must be a list")
        return out
    for i, st in enumerate(steps):
        sp = f"{path}[{i}]"
        if not isinstance(st, dict) or len(st) != 1:
            c.add(sp, "a step must set exactly one of " + ", ".join(STEP_KINDS))
            continue
        kind, value = next(iter(st.items()))
        if kind == "experiment":
            c.add(f"{sp}.experiment", "experiment steps are not modelled by gwlib")
            continue
        if kind == "plugin":
            c.add(f"{sp}.plugin", "step plugins are not modelled by gwlib")
            continue
        if kind not in STEP_KINDS:
            c.add(f"{sp}.{kind}", f"unknown step (steps: {', '.join(STEP_KINDS)})")
            continue
        if kind == "setWeight":
            if isinstance(value, bool) or not isinstance(value, int):
                c.add(f"{sp}.setWeight", f"must be an integer, not {value!r}")
                continue
            if not 0 <= value <= 100:
                c.add(f"{sp}.setWeight", f"Invalid value: {value}: must be between 0 and 100")
                continue
        elif kind == "pause":
            value = value if value is not None else {}
            if not isinstance(value, dict):
                c.add(f"{sp}.pause", "must be an object: {} or {duration: 5m}")
                continue
            c.only(value, f"{sp}.pause", {"duration": None})
            if "duration" in value:
                try:
                    pause_seconds(value["duration"])
                except DurationError as exc:
                    c.add(f"{sp}.pause.duration", str(exc))
                    continue
        elif kind == "analysis":
            _parse_analysis_ref(c, value, f"{sp}.analysis", background=False)
        elif kind == "setCanaryScale":
            if not isinstance(value, dict):
                c.add(f"{sp}.setCanaryScale", "must be an object")
                continue
            c.only(value, f"{sp}.setCanaryScale", {"replicas": None, "weight": None, "matchTrafficWeight": None})
            given = [k for k in ("replicas", "weight", "matchTrafficWeight")
                     if value.get(k) is not None and value.get(k) is not False]
            if len(given) != 1:
                c.add(f"{sp}.setCanaryScale", "exactly one of replicas, weight or matchTrafficWeight must be set")
                continue
            if "replicas" in given:
                c.int_field(value, "replicas", f"{sp}.setCanaryScale", minimum=0)
            if "weight" in given:
                c.int_field(value, "weight", f"{sp}.setCanaryScale", minimum=0, maximum=100)
        elif kind in ("setHeaderRoute", "setMirrorRoute"):
            if not isinstance(value, dict) or not value.get("name"):
                c.add(f"{sp}.{kind}.name", "Required value")
                continue
            if kind == "setHeaderRoute":
                c.only(value, f"{sp}.{kind}", {"name": None, "match": None})
                for j, m in enumerate(value.get("match") or []):
                    mp = f"{sp}.{kind}.match[{j}]"
                    if not isinstance(m, dict) or not m.get("headerName"):
                        c.add(f"{mp}.headerName", "Required value")
                        continue
                    c.only(m, mp, {"headerName": None, "headerValue": None})
                    hv = m.get("headerValue")
                    if not isinstance(hv, dict) or len([k for k in ("exact", "regex", "prefix") if k in hv]) != 1:
                        c.add(f"{mp}.headerValue", "exactly one of exact, regex or prefix must be set")
                        continue
                    c.only(hv, f"{mp}.headerValue", {"exact": None, "regex": None, "prefix": None})
            else:
                c.only(value, f"{sp}.{kind}", {"name": None, "match": None, "percentage": None})
            if value["name"] not in managed:
                c.add(f"{sp}.{kind}.name", f"Invalid value: {value['name']!r}: the route must be listed in "
                                           "spec.strategy.canary.trafficRouting.managedRoutes")
                continue
        out.append(Step(i, kind, value, dict(st)))
    return out


def _parse_analysis_ref(c: _Checker, value: Any, path: str, *, background: bool) -> AnalysisRef | None:
    allowed: dict[str, str | None] = {"templates": None, "args": None, "dryRun": None, "measurementRetention": None,
                                      "analysisRunMetadata": None}
    if background:
        allowed["startingStep"] = None
    allowed["templateName"] = "deprecated: use templates: [{templateName: NAME}]"
    if not isinstance(value, dict):
        c.add(path, "must be an object with templates")
        return None
    c.only(value, path, allowed)
    templates = []
    for i, t in enumerate(value.get("templates") or []):
        if not isinstance(t, dict) or not t.get("templateName"):
            c.add(f"{path}.templates[{i}].templateName", "Required value")
            continue
        c.only(t, f"{path}.templates[{i}]", {"templateName": None, "clusterScope": None})
        templates.append((str(t["templateName"]), bool(t.get("clusterScope", False))))
    if not templates:
        c.add(f"{path}.templates", "Required value: at least one templateName")
    args = []
    for i, a in enumerate(value.get("args") or []):
        if not isinstance(a, dict) or not a.get("name"):
            c.add(f"{path}.args[{i}].name", "Required value")
            continue
        c.only(a, f"{path}.args[{i}]", {"name": None, "value": None, "valueFrom": None})
        vf = a.get("valueFrom")
        if vf is not None:
            c.only(vf, f"{path}.args[{i}].valueFrom", {"podTemplateHashValue": None, "fieldRef": None})
            if "podTemplateHashValue" in (vf or {}) and vf["podTemplateHashValue"] not in ("Stable", "Latest"):
                c.add(f"{path}.args[{i}].valueFrom.podTemplateHashValue",
                      f"Unsupported value: {vf['podTemplateHashValue']!r}: supported values: \"Latest\", \"Stable\"")
        args.append(dict(a))
    starting = None
    if background:
        starting = c.int_field(value, "startingStep", path, minimum=0)
    dry = [str(d.get("metricName")) for d in value.get("dryRun") or [] if isinstance(d, dict)]
    return AnalysisRef(templates, args, starting, dry)


# ---------------------------------------------------------------------- AnalysisTemplate

_METRIC_FIELDS: dict[str, str | None] = {
    "name": None, "interval": None, "initialDelay": None, "count": None, "successCondition": None,
    "failureCondition": None, "failureLimit": None, "inconclusiveLimit": None, "consecutiveErrorLimit": None,
    "consecutiveSuccessLimit": None, "provider": None,
}
_PROVIDERS_UNSUPPORTED = ("web", "job", "kayenta", "datadog", "newRelic", "wavefront", "cloudWatch", "graphite",
                          "influxdb", "skywalking", "plugin")


def parse_template(obj: Any) -> TemplateSpec:
    """Check an AnalysisTemplate / ClusterAnalysisTemplate (static checks; the numbers of a
    metric are checked again once its args are resolved)."""
    raw = _raw(obj)
    kind = raw.get("kind") or "AnalysisTemplate"
    c = _Checker(obj, kind)
    if raw.get("apiVersion") != API_VERSION:
        c.add("apiVersion", f"gwlib reads {kind}s of {API_VERSION}, not {raw.get('apiVersion')!r}")
    spec = c.only(raw.get("spec"), "spec", {"args": None, "metrics": None, "dryRun": None,
                                            "measurementRetention": None, "templates": "not modelled by gwlib"})
    metrics = spec.get("metrics") or []
    if not isinstance(metrics, list) or not metrics:
        c.add("spec.metrics", "Required value: at least one metric")
        metrics = []
    names: set[str] = set()
    for i, m in enumerate(metrics):
        mp = f"spec.metrics[{i}]"
        if not isinstance(m, dict):
            c.add(mp, "must be an object")
            continue
        c.only(m, mp, _METRIC_FIELDS)
        if not m.get("name"):
            c.add(f"{mp}.name", "Required value")
        elif m["name"] in names:
            c.add(f"{mp}.name", f"duplicate name '{m['name']}'")
        names.add(str(m.get("name")))
        prov = m.get("provider") or {}
        if not isinstance(prov, dict) or not prov:
            c.add(f"{mp}.provider", "no provider specified")
            continue
        if len(prov) > 1:
            c.add(f"{mp}.provider", "multiple providers specified")
        for pk in prov:
            if pk in _PROVIDERS_UNSUPPORTED:
                c.add(f"{mp}.provider.{pk}", f"the {pk} provider is not modelled by gwlib: it answers "
                                             "Prometheus queries (provider.prometheus)")
            elif pk != "prometheus":
                c.add(f"{mp}.provider.{pk}", "unknown provider")
        p = prov.get("prometheus")
        if isinstance(p, dict):
            c.only(p, f"{mp}.provider.prometheus", {
                "address": None, "query": None, "timeout": None, "headers": None, "insecure": None,
                "authentication": None,
                "rangeQuery": "range queries are not modelled by gwlib (use an instant query)"})
            if not p.get("query"):
                c.add(f"{mp}.provider.prometheus.query", "Required value")
        for key in ("interval", "initialDelay"):
            v = m.get(key)
            if v not in (None, "") and "{{" not in str(v):
                try:
                    parse_go_duration(str(v))
                except DurationError as exc:
                    c.add(f"{mp}.{key}", f"invalid {'interval' if key == 'interval' else 'startDelay'} string: {exc}")
    args = []
    for i, a in enumerate(spec.get("args") or []):
        if not isinstance(a, dict) or not a.get("name"):
            c.add(f"spec.args[{i}].name", "Required value")
            continue
        c.only(a, f"spec.args[{i}]", {"name": None, "value": None, "valueFrom": None})
        if a.get("valueFrom") is not None:
            c.only(a["valueFrom"], f"spec.args[{i}].valueFrom", {"secretKeyRef": None})
        args.append(dict(a))
    dry = [str(d.get("metricName")) for d in spec.get("dryRun") or [] if isinstance(d, dict)]
    c.raise_if()
    return TemplateSpec(kind, c.namespace or None, c.name, args, [dict(m) for m in metrics], dry, c.source, raw)


# ------------------------------------------------------------------- args and metrics

_ARG_RE = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")


def substitute(value: Any, args: dict[str, str], missing: list[str]) -> Any:
    """Replace ``{{args.NAME}}`` everywhere in a metric (strings in nested structures)."""
    if isinstance(value, str):
        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name not in args:
                missing.append(name)
                return m.group(0)
            return str(args[name])
        return _ARG_RE.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, args, missing) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, args, missing) for k, v in value.items()}
    return value


def secret_value(secrets: dict[str, dict], namespace: str, ref: dict) -> str | None:
    """``valueFrom.secretKeyRef`` from a Secret ``ns/name`` in ``secrets`` (data is base64)."""
    sec = secrets.get(f"{namespace}/{ref.get('name')}")
    if not sec:
        return None
    key = ref.get("key")
    if key in (sec.get("stringData") or {}):
        return str(sec["stringData"][key])
    data = (sec.get("data") or {}).get(key)
    if data is None:
        return None
    try:
        return base64.b64decode(data).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _as_int(v: Any, what: str, errors: list[str], default: int | None) -> int | None:
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        errors.append(f"{what} must be an integer")
        return default
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    errors.append(f"{what} must be an integer, not {v!r}")
    return default


def build_metric(m: dict, dry_run: bool = False) -> tuple[MetricSpec | None, list[str]]:
    """A resolved metric (no ``{{args}}`` left) → MetricSpec, with Argo's ``ValidateMetric``
    messages for what is wrong."""
    errors: list[str] = []
    count = _as_int(m.get("count"), "count", errors, None)
    failure_limit = _as_int(m.get("failureLimit"), "failureLimit", errors, 0)
    inconclusive_limit = _as_int(m.get("inconclusiveLimit"), "inconclusiveLimit", errors, 0)
    error_limit = _as_int(m.get("consecutiveErrorLimit"), "consecutiveErrorLimit", errors,
                          DEFAULT_CONSECUTIVE_ERROR_LIMIT)
    success_limit = _as_int(m.get("consecutiveSuccessLimit"), "consecutiveSuccessLimit", errors, 0)
    interval = initial = None
    if m.get("interval") not in (None, ""):
        try:
            interval = parse_go_duration(str(m["interval"]))
        except DurationError as exc:
            errors.append(f"invalid interval string: {exc}")
    if m.get("initialDelay") not in (None, ""):
        try:
            initial = parse_go_duration(str(m["initialDelay"]))
        except DurationError as exc:
            errors.append(f"invalid startDelay string: {exc}")
    if not errors:
        if count is not None and count > 0:
            if failure_limit is not None and count < failure_limit:
                errors.append("count must be >= failureLimit")
            if inconclusive_limit is not None and count < inconclusive_limit:
                errors.append("count must be >= inconclusiveLimit")
            if success_limit and count < success_limit:
                errors.append("count must be >= consecutiveSuccessLimit")
        if count is not None and count > 1 and interval is None:
            errors.append("interval must be specified when count > 1")
        if count is not None and count < 0:
            errors.append("count must be >= 0")
        if failure_limit is not None and failure_limit < -1:
            errors.append("failureLimit must be >= -1 (-1 disables it)")
        if inconclusive_limit is not None and inconclusive_limit < 0:
            errors.append("inconclusiveLimit must be >= 0")
        if error_limit is not None and error_limit < 0:
            errors.append("consecutiveErrorLimit must be >= 0")
        if success_limit is not None and success_limit < 0:
            errors.append("consecutiveSuccessLimit must be >= 0")
        if failure_limit == -1 and not success_limit:
            errors.append("failureLimit and consecutiveSuccessLimit cannot both be disabled "
                          "(failureLimit: -1 needs consecutiveSuccessLimit > 0)")
    prov = m.get("provider") or {}
    prom = prov.get("prometheus") if isinstance(prov, dict) else None
    if not isinstance(prom, dict):
        errors.append("no provider specified" if not prov else "gwlib answers only the prometheus provider")
        prom = {}
    if errors:
        return None, errors
    return MetricSpec(
        name=str(m.get("name")), interval=interval, initial_delay=initial or 0.0, count=count,
        success_condition=str(m.get("successCondition") or ""), failure_condition=str(m.get("failureCondition") or ""),
        failure_limit=int(failure_limit), inconclusive_limit=int(inconclusive_limit),
        consecutive_error_limit=int(error_limit), consecutive_success_limit=int(success_limit),
        provider="prometheus", query=str(prom.get("query") or ""), address=str(prom.get("address") or ""),
        dry_run=dry_run, raw=m), []


__all__ = ["API_VERSION", "AnalysisRef", "HASH_LABEL", "MetricSpec", "PLUGIN", "RolloutSpec", "RolloutSpecError",
           "RouteRef", "STABLE_VERSION_ANNOTATION", "Step", "TemplateSpec", "build_metric", "parse_rollout",
           "parse_template", "pod_template_hash", "substitute"]
