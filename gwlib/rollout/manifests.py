"""Manifests for a real cluster, written by gwlib: the talk's progressive-delivery setup.

:func:`talk_setup` returns the objects of the talk's stack — Traefik as the Gateway, Argo
Rollouts with the Gateway API traffic-router plugin, Linkerd's proxy metrics for analysis:

* the ``argo-rollouts-config`` ConfigMap that installs the plugin, and the RBAC it needs
  (Services ``get``; HTTPRoutes/GRPCRoutes ``get, list, update, patch``);
* a Namespace with ``linkerd.io/inject: enabled``; the GatewayClass (Traefik's
  ``traefik.io/gateway-controller``) and a Gateway;
* the stable and canary Services, and an HTTPRoute that lists **both** (weights 100/0, so
  nothing splits 1:1 before the plugin's first write);
* AnalysisTemplates with Linkerd's success-rate query and a p99 latency query, selecting
  the canary by ``rollouts_pod_template_hash``;
* the Rollout: ``trafficRouting.plugins.argoproj-labs/gatewayAPI``, steps with pauses and
  analysis.

:func:`check` validates such a set: the Gateway API and core objects with
:func:`gwlib.validate` (the standard channel of the pinned Gateway API release), the Argo
kinds against the fields gwlib models (:mod:`gwlib.rollout.models`). :func:`write` writes
one YAML file per group, as in ``data/rollouts``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..problems import Problem
from .models import PLUGIN, RolloutSpecError, parse_rollout, parse_template

__all__ = ["SUCCESS_RATE_QUERY", "LATENCY_QUERY", "check", "talk_setup", "write", "DEFAULT_STEPS"]

PLUGIN_VERSION = "v0.15.0"

SUCCESS_RATE_QUERY = (
    'sum(rate(response_total{namespace="{{args.namespace}}", direction="inbound",\n'
    '    rollouts_pod_template_hash="{{args.canary-hash}}", classification="success"}[1m]))\n'
    "/\n"
    'sum(rate(response_total{namespace="{{args.namespace}}", direction="inbound",\n'
    '    rollouts_pod_template_hash="{{args.canary-hash}}"}[1m]))\n')

LATENCY_QUERY = (
    "histogram_quantile(0.99,\n"
    '  sum(rate(response_latency_ms_bucket{namespace="{{args.namespace}}", direction="inbound",\n'
    '      rollouts_pod_template_hash="{{args.canary-hash}}"}[1m])) by (le))\n')

DEFAULT_STEPS: list[dict] = [
    {"setWeight": 20}, {"pause": {"duration": "1m"}}, {"analysis": None},
    {"setWeight": 50}, {"pause": {"duration": "1m"}}, {"analysis": None},
    {"setWeight": 80}, {"pause": {"duration": "1m"}}, {"analysis": None},
    {"setWeight": 100},
]


def _analysis_step(templates: list[str]) -> dict:
    return {"analysis": {"templates": [{"templateName": t} for t in templates],
                         "args": [{"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                  {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}}


def talk_setup(name: str = "rollouts-demo", namespace: str = "rollouts-demo", *, host: str = "demo.example.com",
               stable_version: str = "v1", canary_version: str = "v2", image: str = "argoproj/rollouts-demo:yellow",
               replicas: int = 5, steps: list[dict] | None = None, latency: bool = True,
               success_rate: float = 0.99, p99_ms: float = 50, prometheus: str =
               "http://prometheus.linkerd-viz.svc.cluster.local:9090", install: bool = True,
               managed_routes: list[str] | None = None, background_from_step: int | None = None) -> list[dict]:
    """The talk's progressive-delivery objects, ready for ``kubectl apply`` (and gwlib).

    ``steps``: the canary steps (``{"analysis": None}`` stands for an analysis step with the
    Linkerd templates). ``managed_routes``: names for ``setHeaderRoute`` steps.
    ``background_from_step``: also run a background success-rate analysis from that step."""
    templates = ["linkerd-success-rate"] + (["linkerd-latency"] if latency else [])
    steps = [(_analysis_step(templates) if s.get("analysis", 0) is None else s) for s in (steps or DEFAULT_STEPS)]
    labels = {"app": name}
    docs: list[dict] = []
    if install:
        docs += [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "argo-rollouts-config", "namespace": "argo-rollouts"},
             "data": {"trafficRouterPlugins": yaml.safe_dump([{
                 "name": PLUGIN,
                 "location": ("https://github.com/argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi/releases/"
                              f"download/{PLUGIN_VERSION}/gatewayapi-plugin-linux-amd64")}], sort_keys=False)}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "gateway-controller-role"},
             "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
                       {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes", "grpcroutes"],
                        "verbs": ["get", "list", "update", "patch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "gateway-admin"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "gateway-controller-role"},
             "subjects": [{"namespace": "argo-rollouts", "kind": "ServiceAccount", "name": "argo-rollouts"}]},
        ]
    docs += [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "annotations": {"linkerd.io/inject": "enabled"}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": "traefik"}, "spec": {"controllerName": "traefik.io/gateway-controller"}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "traefik-gateway", "namespace": namespace},
         "spec": {"gatewayClassName": "traefik",
                  "listeners": [{"name": "web", "protocol": "HTTP", "port": 80, "hostname": host,
                                 "allowedRoutes": {"namespaces": {"from": "Same"}}}]}},
    ]
    for role in ("stable", "canary"):
        docs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": f"{name}-{role}", "namespace": namespace},
                     "spec": {"selector": dict(labels),
                              "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                 "metadata": {"name": name, "namespace": namespace},
                 "spec": {"parentRefs": [{"name": "traefik-gateway", "sectionName": "web"}],
                          "hostnames": [host],
                          "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                     "backendRefs": [{"name": f"{name}-stable", "port": 80, "weight": 100},
                                                     {"name": f"{name}-canary", "port": 80, "weight": 0}]}]}})
    common_args = [{"name": "namespace"}, {"name": "canary-hash"}, {"name": "prometheus", "value": prometheus}]
    docs.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                 "metadata": {"name": "linkerd-success-rate", "namespace": namespace},
                 "spec": {"args": common_args, "metrics": [{
                     "name": "success-rate", "interval": "30s", "count": 2, "failureLimit": 0,
                     "successCondition": f"len(result) > 0 && result[0] >= {success_rate}",
                     "failureCondition": f"len(result) > 0 && result[0] < {success_rate}",
                     "provider": {"prometheus": {"address": "{{args.prometheus}}", "query": SUCCESS_RATE_QUERY}}}]}})
    if latency:
        docs.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                     "metadata": {"name": "linkerd-latency", "namespace": namespace},
                     "spec": {"args": common_args, "metrics": [{
                         "name": "p99-latency", "interval": "30s", "count": 2, "failureLimit": 0,
                         "successCondition": f"len(result) > 0 && result[0] <= {p99_ms:g}",
                         "failureCondition": f"len(result) > 0 && result[0] > {p99_ms:g}",
                         "provider": {"prometheus": {"address": "{{args.prometheus}}", "query": LATENCY_QUERY}}}]}})
    if background_from_step is not None:
        docs.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                     "metadata": {"name": "linkerd-success-rate-background", "namespace": namespace},
                     "spec": {"args": common_args, "metrics": [{
                         "name": "success-rate-background", "interval": "30s", "failureLimit": 1,
                         "successCondition": f"len(result) > 0 && result[0] >= {success_rate}",
                         "failureCondition": f"len(result) > 0 && result[0] < {success_rate}",
                         "provider": {"prometheus": {"address": "{{args.prometheus}}", "query": SUCCESS_RATE_QUERY}}}]}})
    canary: dict[str, Any] = {"canaryService": f"{name}-canary", "stableService": f"{name}-stable",
                              "trafficRouting": {"plugins": {PLUGIN: {"httpRoute": name, "namespace": namespace}}}}
    if managed_routes:
        canary["trafficRouting"]["managedRoutes"] = [{"name": m} for m in managed_routes]
    if background_from_step is not None:
        bg = _analysis_step(["linkerd-success-rate-background"])["analysis"]
        canary["analysis"] = {"templates": bg["templates"], "startingStep": background_from_step, "args": bg["args"]}
    canary["steps"] = steps
    docs.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                 "metadata": {"name": name, "namespace": namespace,
                              "annotations": {"gwlib.dev/stable-version": stable_version}},
                 "spec": {"replicas": replicas, "revisionHistoryLimit": 2,
                          "selector": {"matchLabels": dict(labels)},
                          "template": {"metadata": {"labels": {**labels, "version": canary_version}},
                                       "spec": {"containers": [{"name": name, "image": image,
                                                                "ports": [{"name": "http", "containerPort": 8080}]}]}},
                          "strategy": {"canary": canary}}})
    return docs


def check(docs: list[Any], channel: str = "standard") -> list[Problem]:
    """Problems of a manifest set: Gateway API/core objects as the API server would see them,
    Argo kinds against what gwlib models. Empty: the set is good to apply."""
    from ..validation import validate
    problems: list[Problem] = []
    plain = []
    for d in docs:
        raw = d if isinstance(d, dict) else getattr(d, "raw", None) or d.to_dict()
        plain.append(raw)
    for i, raw in enumerate(plain):
        kind = raw.get("kind")
        if str(raw.get("apiVersion", "")).startswith("argoproj.io/"):
            try:
                if kind == "Rollout":
                    parse_rollout(raw)
                elif kind in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
                    parse_template(raw)
                else:
                    meta = raw.get("metadata") or {}
                    problems.append(Problem("<object>", i, str(kind), str(meta.get("namespace") or ""),
                                            str(meta.get("name") or ""), "kind", "not modelled by gwlib"))
            except RolloutSpecError as exc:
                problems.extend(exc.problems)
        else:
            problems.extend(validate(raw, channel=channel))
    return problems


_GROUPS = [("00-install.yaml", ("ConfigMap", "ClusterRole", "ClusterRoleBinding")),
           ("10-namespace.yaml", ("Namespace",)),
           ("20-gateway.yaml", ("GatewayClass", "Gateway")),
           ("30-services.yaml", ("Service",)),
           ("40-httproute.yaml", ("HTTPRoute", "GRPCRoute")),
           ("50-analysis.yaml", ("AnalysisTemplate", "ClusterAnalysisTemplate")),
           ("60-rollout.yaml", ("Rollout",))]


def write(folder: str | Path, docs: list[dict], header: str = "") -> list[Path]:
    """Write ``docs`` as YAML, one file per group (install, namespace, gateway, services,
    route, analysis, rollout); returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    used: set[int] = set()
    for fname, kinds in _GROUPS:
        group = [d for i, d in enumerate(docs) if d.get("kind") in kinds and i not in used]
        used |= {i for i, d in enumerate(docs) if d.get("kind") in kinds}
        if not group:
            continue
        text = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in group)
        path = folder / fname
        path.write_text((header + "\n" if header else "") + text)
        written.append(path)
    rest = [d for i, d in enumerate(docs) if i not in used]
    if rest:
        path = folder / "90-other.yaml"
        path.write_text("---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in rest))
        written.append(path)
    return written


#: The example sets in ``data/rollouts`` (regenerate: ``python -m gwlib.rollout.manifests data/rollouts``).
EXAMPLES: dict[str, dict] = {
    "talk": {
        "about": "The talk's setup: Traefik, the Gateway API plugin, Linkerd success rate and p99 latency; "
                 "10 steps, 20 → 50 → 80 → 100 % with a pause and an analysis at each weight.",
        "options": {}},
    "header-route": {
        "about": "A header route first (X-Canary: yes reaches the canary, nobody else does), a manual gate "
                 "(pause: {}), then weights with analysis. setCanaryScale gives the canary a pod before "
                 "setHeaderRoute, as Argo needs.",
        "options": {"managed_routes": ["canary-header"], "latency": False, "steps": [
            {"setCanaryScale": {"replicas": 1}},
            {"setHeaderRoute": {"name": "canary-header",
                                "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
            {"pause": {}},
            {"setHeaderRoute": {"name": "canary-header"}},
            {"setWeight": 20}, {"pause": {"duration": "1m"}}, {"analysis": None},
            {"setWeight": 60}, {"pause": {"duration": "1m"}}, {"analysis": None}]}},
    "background": {
        "about": "Background analysis: a success-rate metric every 30 s from step 1 on, no analysis steps; "
                 "two failed measurements abort the rollout wherever it is.",
        "options": {"background_from_step": 1, "latency": False, "steps": [
            {"setWeight": 10}, {"pause": {"duration": "2m"}}, {"setWeight": 30}, {"pause": {"duration": "2m"}},
            {"setWeight": 60}, {"pause": {"duration": "2m"}}]}},
}


def write_examples(root: str | Path) -> list[Path]:
    """(Re)write every example set under ``root`` (one folder each)."""
    out = []
    for name, ex in EXAMPLES.items():
        header = (f"# data/rollouts/{name}: {ex['about']}\n"
                  "# Written by gwlib (python -m gwlib.rollout.manifests data/rollouts); valid for a cluster with\n"
                  f"# Gateway API >= 1.2, Argo Rollouts with the Gateway API plugin {PLUGIN_VERSION}, Traefik and Linkerd.")
        out += write(Path(root) / name, talk_setup(**ex["options"]), header=header)
    return out


if __name__ == "__main__":  # pragma: no cover
    import sys
    for p in write_examples(sys.argv[1] if len(sys.argv) > 1 else "data/rollouts"):
        print(p)
