"""Reading Argo kinds: what gwlib models, and one clear error for everything else."""
from __future__ import annotations

import copy

import pytest

import gwlib
from gwlib.rollout.manifests import talk_setup
from gwlib.rollout.models import (RolloutSpecError, parse_rollout, parse_template, pod_template_hash)


def rollout(**canary_changes) -> dict:
    r = copy.deepcopy(next(d for d in talk_setup() if d["kind"] == "Rollout"))
    r["spec"]["strategy"]["canary"].update(canary_changes)
    return r


def problems(obj) -> list[str]:
    with pytest.raises(RolloutSpecError) as exc:
        parse_rollout(obj) if obj.get("kind") == "Rollout" else parse_template(obj)
    return [f"{p.path}: {p.message}" for p in exc.value.problems]


def test_the_talks_rollout():
    spec = parse_rollout(rollout())
    assert spec.key == "rollouts-demo/rollouts-demo"
    assert (spec.canary_service, spec.stable_service) == ("rollouts-demo-canary", "rollouts-demo-stable")
    assert [s.kind for s in spec.steps] == ["setWeight", "pause", "analysis"] * 3 + ["setWeight"]
    assert [(r.kind, r.name, r.use_header_routes) for r in spec.routes] == [("HTTPRoute", "rollouts-demo", True)]
    assert (spec.stable_version, spec.canary_version) == ("v1", "v2")
    assert spec.in_progress_label == ("rollouts.argoproj.io/gatewayapi-canary", "in-progress")


def test_routes_singular_and_list_forms():
    cfg = {"httpRoutes": [{"name": "a", "useHeaderRoutes": True}, {"name": "b"}], "grpcRoute": "g",
           "namespace": "other", "disableInProgressLabel": True}
    spec = parse_rollout(rollout(trafficRouting={"plugins": {"argoproj-labs/gatewayAPI": cfg}}))
    assert [(r.kind, r.name, r.use_header_routes) for r in spec.routes] == [
        ("HTTPRoute", "a", True), ("HTTPRoute", "b", False), ("GRPCRoute", "g", True)]
    assert spec.plugin_namespace == "other"
    assert spec.in_progress_label is None


def test_loaded_from_a_file_the_error_names_file_object_and_field(tmp_path):
    r = rollout(trafficRouting={"istio": {"virtualService": {"name": "vs"}}})
    path = tmp_path / "rollout.yaml"
    import yaml
    path.write_text(yaml.safe_dump(r))
    (obj,) = gwlib.load(path)
    with pytest.raises(RolloutSpecError) as exc:
        parse_rollout(obj)
    line = exc.value.problems[0].line()
    assert line.startswith(f"{path}:0 Rollout rollouts-demo/rollouts-demo: spec.strategy.canary.trafficRouting.istio: ")
    assert "gwlib drives Gateway API routes" in line


@pytest.mark.parametrize("change, expected", [
    ({"trafficRouting": {"gatewayAPI": {"httpRoute": "r"}}},
     "spec.strategy.canary.trafficRouting.gatewayAPI: there is no trafficRouting.gatewayAPI field"),
    ({"trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {"configMap": "x", "httpRoute": "r"}}}},
     "spec.strategy.canary.trafficRouting.plugins.argoproj-labs/gatewayAPI.configMap: removed in plugin v0.13.0"),
    ({"trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {}}}},
     "spec.strategy.canary.trafficRouting.plugins.argoproj-labs/gatewayAPI: No routes configured."),
    ({"trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r"}}, "maxTrafficWeight": 1000}},
     "spec.strategy.canary.trafficRouting.maxTrafficWeight: the Gateway API plugin writes stable = 100 - canary"),
    ({"trafficRouting": {"plugins": {"someone/else": {}}}},
     "spec.strategy.canary.trafficRouting.plugins.someone/else: gwlib models only the argoproj-labs/gatewayAPI"),
    ({"stableService": "rollouts-demo-canary"},
     "spec.strategy.canary.stableService: stableService and canaryService must be different Services"),
    ({"canaryService": None}, "spec.strategy.canary.canaryService: Required value"),
    ({"steps": [{"setWeight": 120}]}, "spec.strategy.canary.steps[0].setWeight: Invalid value: 120"),
    ({"steps": [{"setWeight": 10, "pause": {}}]}, "spec.strategy.canary.steps[0]: a step must set exactly one of"),
    ({"steps": [{"experiment": {"templates": []}}]}, "spec.strategy.canary.steps[0].experiment: experiment steps"),
    ({"steps": [{"pause": {"duration": "soon"}}]}, 'spec.strategy.canary.steps[0].pause.duration: time: invalid duration "soon"'),
    ({"steps": [{"setCanaryScale": {"replicas": 1, "weight": 10}}]},
     "spec.strategy.canary.steps[0].setCanaryScale: exactly one of replicas, weight or matchTrafficWeight"),
    ({"steps": [{"setHeaderRoute": {"name": "h", "match": []}}]},
     "spec.strategy.canary.steps[0].setHeaderRoute.name: Invalid value: 'h': the route must be listed in"),
    ({"steps": [{"analysis": {"templates": []}}]}, "spec.strategy.canary.steps[0].analysis.templates: Required value"),
    ({"steps": [{"analysis": {"templates": [{"templateName": "t"}],
                              "args": [{"name": "h", "valueFrom": {"podTemplateHashValue": "Newest"}}]}}]},
     "spec.strategy.canary.steps[0].analysis.args[0].valueFrom.podTemplateHashValue: Unsupported value: 'Newest'"),
    ({"pingPong": {"pingService": "a", "pongService": "b"}}, "spec.strategy.canary.pingPong: ping-pong Services"),
    ({"frobnicate": 1}, "spec.strategy.canary.frobnicate: field not supported by gwlib"),
])
def test_what_gwlib_does_not_model_is_named(change, expected):
    found = problems(rollout(**change))
    assert any(p.startswith(expected) for p in found), found


def test_header_route_needs_managed_routes_and_exactly_one_value_type():
    r = rollout(trafficRouting={"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r"}},
                                "managedRoutes": [{"name": "h"}]},
                steps=[{"setHeaderRoute": {"name": "h", "match": [{"headerName": "X", "headerValue": {}}]}}])
    assert problems(r) == ["spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerValue: "
                           "exactly one of exact, regex or prefix must be set"]


def test_blue_green_and_workload_ref():
    r = rollout()
    r["spec"]["strategy"] = {"blueGreen": {"activeService": "a"}}
    assert "spec.strategy.blueGreen: not modelled by gwlib: it runs canary strategies" in problems(r)
    r = rollout()
    r["spec"]["workloadRef"] = {"kind": "Deployment", "name": "x"}
    assert any(p.startswith("spec.workloadRef: not modelled") for p in problems(r))


def test_selector_must_match_template():
    r = rollout()
    r["spec"]["selector"]["matchLabels"] = {"app": "other"}
    assert "spec.template.metadata.labels: `selector` does not match template `labels`" in problems(r)


def test_versions_come_from_the_label_and_the_annotation():
    r = rollout()
    del r["metadata"]["annotations"]
    spec = parse_rollout(r)
    assert (spec.stable_version, spec.canary_version) == ("stable", "v2")
    r["metadata"]["annotations"] = {"gwlib.dev/stable-version": "v2"}
    assert problems(r)[0].startswith("metadata.annotations.gwlib.dev/stable-version: the stable version must differ")


def test_pod_template_hash_is_stable_and_version_specific():
    spec = parse_rollout(rollout())
    assert spec.pod_template_hash("v1") == spec.pod_template_hash("v1")
    assert spec.pod_template_hash("v1") != spec.pod_template_hash("v2")
    assert set(pod_template_hash({"a": 1})) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_analysis_templates():
    t = next(d for d in talk_setup() if d["kind"] == "AnalysisTemplate")
    spec = parse_template(t)
    assert spec.name == "linkerd-success-rate" and spec.metrics[0]["name"] == "success-rate"
    bad = copy.deepcopy(t)
    bad["spec"]["metrics"][0]["provider"] = {"web": {"url": "http://x"}}
    assert problems(bad) == ["spec.metrics[0].provider.web: the web provider is not modelled by gwlib: it answers "
                             "Prometheus queries (provider.prometheus)"]
    bad = copy.deepcopy(t)
    bad["spec"]["metrics"].append(copy.deepcopy(bad["spec"]["metrics"][0]))
    assert problems(bad) == ["spec.metrics[1].name: duplicate name 'success-rate'"]
    bad = copy.deepcopy(t)
    bad["spec"]["metrics"][0]["provider"]["prometheus"]["rangeQuery"] = {"step": "1m"}
    assert problems(bad)[0].startswith("spec.metrics[0].provider.prometheus.rangeQuery: range queries")
    bad = copy.deepcopy(t)
    bad["spec"]["metrics"][0]["interval"] = "30"
    assert problems(bad) == ['spec.metrics[0].interval: invalid interval string: time: missing unit in duration "30"']


def test_durations():
    from gwlib.rollout.duration import DurationError, format_duration, parse_go_duration, pause_seconds
    assert parse_go_duration("1h30m") == 5400 and parse_go_duration("1.5m") == 90
    assert parse_go_duration("500ms") == 0.5 and parse_go_duration("0") == 0
    for bad, msg in (("5", "missing unit"), ("", "invalid duration"), ("1x", "invalid duration")):
        with pytest.raises(DurationError, match=msg):
            parse_go_duration(bad)
    assert pause_seconds(30) == 30 and pause_seconds("45") == 45 and pause_seconds("1m30s") == 90
    with pytest.raises(DurationError):
        pause_seconds(-1)
    assert [format_duration(x) for x in (0, 0.5, 90, 300, 3700)] == ["0s", "500ms", "1m30s", "5m0s", "1h1m40s"]
