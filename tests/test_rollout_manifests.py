"""Manifests for a real cluster, written and checked by gwlib."""
from __future__ import annotations

import copy
from pathlib import Path

import gwlib
from gwlib.rollout import manifests as M

DATA = Path(__file__).resolve().parent.parent / "data" / "rollouts"


def test_the_talks_manifests_are_valid():
    docs = M.talk_setup()
    assert M.check(docs) == []
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ConfigMap", "ClusterRole", "ClusterRoleBinding", "Namespace", "GatewayClass", "Gateway",
                     "Service", "Service", "HTTPRoute", "AnalysisTemplate", "AnalysisTemplate", "Rollout"]
    rollout = docs[-1]
    assert rollout["spec"]["strategy"]["canary"]["trafficRouting"] == {
        "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "rollouts-demo", "namespace": "rollouts-demo"}}}
    route = next(d for d in docs if d["kind"] == "HTTPRoute")
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["rollouts-demo-stable",
                                                                             "rollouts-demo-canary"]
    assert 'classification="success"' in docs[9]["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    assert "rollouts_pod_template_hash" in docs[10]["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    assert "argoproj-labs/gatewayAPI" in docs[0]["data"]["trafficRouterPlugins"]


def test_gateway_api_parts_pass_gwlib_validate_in_the_standard_channel():
    for folder in ("talk", "header-route", "background", "weights"):
        assert gwlib.validate(DATA / folder, channel="standard") == []


def test_the_committed_examples_are_what_gwlib_writes(tmp_path):
    M.write_examples(tmp_path)
    for name in M.EXAMPLES:
        written = sorted(p.name for p in (tmp_path / name).iterdir())
        assert written == sorted(p.name for p in (DATA / name).iterdir())
        for fname in written:
            assert (tmp_path / name / fname).read_text() == (DATA / name / fname).read_text(), f"{name}/{fname}"


def test_check_names_what_is_wrong():
    docs = M.talk_setup()
    bad = copy.deepcopy(docs)
    bad[-1]["spec"]["strategy"]["canary"]["trafficRouting"]["istio"] = {}
    bad[8]["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1
    lines = [p.line() for p in M.check(bad)]
    assert any("HTTPRoute rollouts-demo/rollouts-demo: spec.rules[0].backendRefs[0].weight" in x for x in lines)
    assert any("Rollout rollouts-demo/rollouts-demo: spec.strategy.canary.trafficRouting.istio" in x for x in lines)
    assert [p.message for p in M.check([{"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                                         "metadata": {"name": "e"}}])] == ["not modelled by gwlib"]


def test_options():
    docs = M.talk_setup(name="shop", namespace="web", latency=False, managed_routes=["h"], background_from_step=2,
                        install=False, steps=[{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}])
    assert M.check(docs) == []
    canary = docs[-1]["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"]["managedRoutes"] == [{"name": "h"}]
    assert canary["analysis"]["startingStep"] == 2
    assert [d["kind"] for d in docs].count("AnalysisTemplate") == 2
    assert docs[0]["kind"] == "Namespace"


def test_write_groups_files(tmp_path):
    files = M.write(tmp_path, M.talk_setup() + [{"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": "x"}}], header="# hi")
    assert [f.name for f in files][:2] == ["00-install.yaml", "10-namespace.yaml"]
    assert all(f.read_text().startswith("# hi") for f in files)
    assert len(gwlib.load(tmp_path)) == 13
