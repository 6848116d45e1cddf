"""The rollout engine in the reference mode: every step type, Argo's outcomes, determinism."""
from __future__ import annotations

import copy
import json

import pytest

import gwlib
from gwlib.rollout import RolloutError, RolloutRun, RolloutSpecError, flagger
from gwlib.rollout.manifests import talk_setup

NS = "rollouts-demo"
STABLE, CANARY = f"{NS}/rollouts-demo-stable", f"{NS}/rollouts-demo-canary"
REQ = {"gateway": f"{NS}/traefik-gateway", "host": "demo.example.com", "path": "/"}


def docs(steps=None, edit=None, **opts) -> list[dict]:
    d = talk_setup(steps=steps, **opts)
    if edit:
        edit(d)
    return d


def connect(*a, **kw):
    c = gwlib.connect("reference")
    c.apply(docs(*a, **kw))
    return c


def template(d: list[dict], name: str = "linkerd-success-rate") -> dict:
    return next(x for x in d if x["kind"] == "AnalysisTemplate" and x["metadata"]["name"] == name)


def route(c) -> dict:
    return c.store.get("HTTPRoute", f"{NS}/rollouts-demo").to_dict()


def selector(c, svc: str) -> dict:
    return c.store.get("Service", f"{NS}/{svc}").to_dict()["spec"]["selector"]


# --------------------------------------------------------------------- outcomes

def test_healthy_rollout_is_promoted():
    c = connect()
    run = RolloutRun(c, requests_per_step=500)
    tl = run.run()
    assert (tl.phase, tl.aborted_at_step) == ("Healthy", None)
    assert [s.weights[CANARY] for s in tl.steps] == [20, 20, 20, 50, 50, 50, 80, 80, 80, 100]
    assert all(s.requests == 500 for s in tl.steps)
    assert [s.analysis["phase"] for s in tl.steps if s.analysis] == ["Successful"] * 3
    assert tl.weights == {STABLE: 100, CANARY: 0}
    # after promotion both Services select the new pods, and the route is back at 100/0
    assert selector(c, "rollouts-demo-stable")["rollouts-pod-template-hash"] == run.canary_hash
    assert selector(c, "rollouts-demo-canary")["rollouts-pod-template-hash"] == run.canary_hash
    assert run.route_weights() == {f"{NS}/rollouts-demo": {"rollouts-demo-stable": 100, "rollouts-demo-canary": 0}}
    assert "labels" not in route(c)["metadata"]
    # observed canary shares follow the weights
    for s in tl.steps[:9]:
        assert abs(s.responses.get(CANARY, 0) / 500 - s.weights[CANARY] / 100) < 0.08


@pytest.mark.parametrize("fault, metric", [({"error_rate": 0.05}, "success-rate"), ({"latency_ms": 50}, "p99-latency")])
def test_a_faulty_canary_is_aborted_at_the_first_analysis(fault, metric):
    c = connect()
    run = RolloutRun(c, requests_per_step=1000)
    run.set_fault("v2", **fault)
    tl = run.run()
    assert (tl.phase, tl.aborted_at_step) == ("Degraded", 2)
    assert tl.message.startswith("RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase "
                                 f'Failed: Metric "{metric}" assessed Failed due to failed (1) > failureLimit (0)')
    assert tl.steps[2].analysis["phase"] == "Failed"
    # abort: weight 0, the canary Service back on the stable pods, no in-progress label
    assert tl.weights == {STABLE: 100, CANARY: 0}
    assert run.route_weights()[f"{NS}/rollouts-demo"] == {"rollouts-demo-stable": 100, "rollouts-demo-canary": 0}
    assert selector(c, "rollouts-demo-canary")["rollouts-pod-template-hash"] == run.stable_hash
    assert "labels" not in route(c)["metadata"]
    if "error_rate" in fault:
        assert tl.steps[0].errors[CANARY] > 0 and tl.steps[0].errors[STABLE] == 0


def test_the_same_seed_gives_the_same_timeline():
    def once(seed):
        run = RolloutRun(connect(), seed=seed, requests_per_step=300)
        run.set_fault("canary", error_rate=0.02)
        return run.run().to_dict()
    a, b, other = once(7), once(7), once(8)
    assert json.dumps(a) == json.dumps(b)
    assert json.dumps(a) != json.dumps(other)


def test_the_json_timeline_contract():
    run = RolloutRun(connect(), requests_per_step=200)
    run.set_fault("v2", error_rate=0.05)
    d = json.loads(run.run().to_json())
    assert list(d)[:5] == ["rollout", "phase", "aborted_at_step", "message", "steps"]
    assert d["rollout"] == f"{NS}/rollouts-demo" and d["phase"] == "Degraded" and d["aborted_at_step"] == 2
    s0, s2 = d["steps"][0], d["steps"][2]
    assert s0["index"] == 0 and s0["step"] == {"setWeight": 20}
    assert s0["weights"] == {STABLE: 80, CANARY: 20}
    assert s0["analysis"] is None and s0["requests"] == 200
    assert set(s0["errors"]) == {STABLE, CANARY} and all(isinstance(v, int) for v in s0["errors"].values())
    assert s2["analysis"]["phase"] == "Failed"
    m = s2["analysis"]["measurements"][0]
    assert m["metric"] == "success-rate" and m["phase"] == "Failed" and isinstance(m["value"], float)


# ------------------------------------------------------------------------ steps

def test_set_weight_writes_the_route_and_the_in_progress_label():
    c = connect(steps=[{"setWeight": 30}, {"pause": {}}])
    run = RolloutRun(c, requests_per_step=100)
    run.run()
    rule = route(c)["spec"]["rules"][0]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("rollouts-demo-stable", 70),
                                                                       ("rollouts-demo-canary", 30)]
    assert route(c)["metadata"]["labels"] == {"rollouts.argoproj.io/gatewayapi-canary": "in-progress"}
    assert c.split(REQ) == {STABLE: 0.7, CANARY: 0.3}
    # the ReplicaSet stand-ins: canary scaled to ceil(5 * 30 %) = 2 pods
    rs = c.store.get("Deployment", f"{NS}/rollouts-demo-{run.canary_hash}").to_dict()
    assert rs["spec"]["replicas"] == 2
    assert rs["spec"]["template"]["metadata"]["labels"]["version"] == "v2"


def test_pause_with_a_duration_takes_simulated_time_only():
    run = RolloutRun(connect(steps=[{"setWeight": 10}, {"pause": {"duration": "1h"}}, {"pause": {"duration": 90}}]),
                     requests_per_step=100)
    tl = run.run()
    assert [(s.start, s.end) for s in tl.steps] == [(0, 0), (0, 3600), (3600, 3690)]
    assert run.clock.now == 3690
    assert sum(s.real_seconds for s in tl.steps) < 30


def test_pause_without_duration_waits_for_promote():
    c = connect(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}])
    run = RolloutRun(c, requests_per_step=100)
    tl = run.run()
    assert tl.phase == "Paused" and tl.aborted_at_step is None
    assert tl.message.startswith("CanaryPauseStep: paused at step 1")
    assert tl.steps[-1].requests == 0
    assert run.run().phase == "Paused"                       # nothing moves without promote
    tl = run.promote()
    assert tl.phase == "Healthy"
    assert [s.step for s in tl.steps] == [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]


def test_promote_full_skips_the_remaining_steps():
    run = RolloutRun(connect(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]),
                     requests_per_step=50)
    run.run()
    tl = run.promote(full=True)
    assert tl.phase == "Healthy" and len(tl.steps) == 2
    with pytest.raises(RolloutError, match="Healthy"):
        run.promote()
    with pytest.raises(RolloutError, match="nothing to abort"):
        run.abort()


def test_abort_by_hand_and_retry():
    c = connect(steps=[{"setWeight": 40}, {"pause": {}}, {"setWeight": 80}])
    run = RolloutRun(c, requests_per_step=50)
    run.run()
    tl = run.abort()
    assert (tl.phase, tl.aborted_at_step) == ("Degraded", 1)
    assert tl.message == "RolloutAborted: Rollout aborted update to revision 2: Rollout aborted by user"
    assert c.split(REQ) == {STABLE: 1.0}
    with pytest.raises(RolloutError, match="retry"):
        run.promote()
    tl = run.retry()
    assert tl.phase == "Paused" and tl.aborted_at_step is None
    assert run.promote().phase == "Healthy"


def test_inconclusive_analysis_pauses_and_promote_goes_on():
    def edit(d):
        m = template(d)["spec"]["metrics"][0]
        m["successCondition"] = "result[0] >= 0.999"
        m["failureCondition"] = "result[0] < 0.5"
    c = connect(edit=edit, latency=False)
    run = RolloutRun(c, requests_per_step=1000)
    run.set_fault("v2", error_rate=0.01)
    tl = run.run()
    assert (tl.phase, tl.aborted_at_step) == ("Paused", None)
    assert tl.message.startswith("InconclusiveAnalysisRun: step 2 analysis: Metric \"success-rate\" assessed "
                                 "Inconclusive due to inconclusive (1) > inconclusiveLimit (0)")
    assert tl.weights[CANARY] == 20                                 # paused, not aborted
    run.clear_faults()
    tl = run.promote()
    assert tl.steps[3].step == {"setWeight": 50}                    # the inconclusive step counts as done
    assert tl.phase == "Healthy"


def test_analysis_error_aborts():
    def edit(d):
        template(d)["spec"]["metrics"][0]["successCondition"] = "result >= 0.99"   # a vector is not a number
        template(d)["spec"]["metrics"][0].pop("failureCondition")
    run = RolloutRun(connect(edit=edit, latency=False), requests_per_step=200)
    tl = run.run()
    assert tl.phase == "Degraded" and tl.aborted_at_step == 2
    ms = tl.steps[2].analysis["measurements"]
    assert [m["phase"] for m in ms] == ["Error"] * 5                # consecutiveErrorLimit 4, retried every 10 s
    assert [m["time"] - ms[0]["time"] for m in ms] == [0, 10, 20, 30, 40]
    assert "invalid operation: []float64 >= float64" in ms[0]["message"]
    assert "Step-based analysis phase Error" in tl.message
    assert tl.steps[2].requests > 200                               # traffic goes on while it retries


def test_set_canary_scale_zero_keeps_the_weight_at_zero():
    c = connect(steps=[{"setCanaryScale": {"replicas": 0}}, {"setWeight": 50}, {"pause": {"duration": "1m"}},
                       {"setCanaryScale": {"matchTrafficWeight": True}}, {"pause": {"duration": "1m"}}])
    tl = RolloutRun(c, requests_per_step=200).run()
    assert [s.weights[CANARY] for s in tl.steps] == [0, 0, 0, 50, 50]
    assert "the canary has 0 pods" in tl.steps[1].notes[0]
    assert tl.steps[2].responses.get(CANARY, 0) == 0
    assert [s.canary_replicas for s in tl.steps] == [0, 0, 0, 3, 3]


def test_set_canary_scale_weight_and_replicas():
    c = connect(steps=[{"setCanaryScale": {"weight": 40}}, {"setWeight": 10}, {"setCanaryScale": {"replicas": 4}}])
    tl = RolloutRun(c, requests_per_step=20).run()
    assert [s.canary_replicas for s in tl.steps] == [2, 2, 4]
    assert [s.weights[CANARY] for s in tl.steps] == [0, 10, 10]


def test_header_route_reaches_the_canary():
    c = gwlib.connect("reference")
    c.apply("data/rollouts/header-route")
    run = RolloutRun(c, requests_per_step=100)
    tl = run.run()
    assert tl.phase == "Paused" and len(tl.steps) == 3
    rules = route(c)["spec"]["rules"]
    assert [r.get("name") for r in rules] == [None, "canary-header"]
    assert c.sample(dict(REQ, headers={"X-Canary": "yes"}), n=20) == {CANARY: 20}
    assert c.sample(REQ, n=20) == {STABLE: 20}
    tl = run.promote()
    assert tl.phase == "Healthy"
    assert [r.get("name") for r in route(c)["spec"]["rules"]] == [None]     # removed by step 3, and at the end


def test_header_route_without_canary_pods_is_removed_at_once():
    c = connect(steps=[{"setHeaderRoute": {"name": "h", "match": [{"headerName": "X-Canary",
                                                                    "headerValue": {"exact": "yes"}}]}},
                       {"pause": {}}], managed_routes=["h"])
    tl = RolloutRun(c, requests_per_step=10).run()
    assert "header route h removed at once: the canary has 0 pods" in tl.steps[0].notes[0]
    assert [r.get("name") for r in route(c)["spec"]["rules"]] == [None]
    assert c.sample(dict(REQ, headers={"X-Canary": "yes"}), n=10) == {STABLE: 10}


def test_set_mirror_route_does_nothing_as_in_the_plugin():
    c = connect(steps=[{"setMirrorRoute": {"name": "m", "percentage": 50}}], managed_routes=["m"])
    tl = RolloutRun(c, requests_per_step=10).run()
    assert "setMirrorRoute does nothing with the Gateway API plugin" in tl.steps[0].notes[0]
    assert tl.phase == "Healthy"


def test_background_analysis_aborts_wherever_the_rollout_is():
    c = gwlib.connect("reference")
    c.apply("data/rollouts/background")
    run = RolloutRun(c, requests_per_step=1000)
    run.set_fault("v2", error_rate=0.03)
    tl = run.run()
    assert (tl.phase, tl.aborted_at_step) == ("Degraded", 1)
    assert tl.steps[1].analysis["background"] is True
    assert [m["time"] for m in tl.steps[1].analysis["measurements"]] == [0, 30]
    assert tl.message.startswith("RolloutAborted: Rollout aborted update to revision 2: Background analysis phase "
                                 'Failed: Metric "success-rate-background" assessed Failed due to failed (2) > failureLimit (1)')
    assert tl.steps[1].end == 30                                   # it stops mid-pause


def test_background_analysis_is_stopped_successful_at_the_end():
    c = gwlib.connect("reference")
    c.apply("data/rollouts/background")
    run = RolloutRun(c, requests_per_step=500)
    tl = run.run()
    assert tl.phase == "Healthy"
    assert run.background.phase == "Successful" and len(run.background.log) == 13


def test_spec_paused_starts_paused():
    def edit(d):
        next(x for x in d if x["kind"] == "Rollout")["spec"]["paused"] = True
    run = RolloutRun(connect(steps=[{"setWeight": 10}], edit=edit), requests_per_step=10)
    assert run.run().phase == "Paused"
    assert run.promote().phase == "Healthy"


# --------------------------------------------------------------- bad input

def _spec_error(**kw) -> list[str]:
    with pytest.raises(RolloutSpecError) as exc:
        RolloutRun(connect(**kw))
    return [p.line() for p in exc.value.problems]


def test_a_query_gwlib_cannot_answer_is_an_error_naming_the_metric():
    def edit(d):
        template(d)["spec"]["metrics"][0]["provider"]["prometheus"]["query"] = \
            'sum(rate(istio_requests_total{reporter="source"}[1m]))'
    lines = _spec_error(edit=edit)
    assert [line.split(" ", 1)[1] for line in lines] == ["AnalysisTemplate rollouts-demo/linkerd-success-rate: "
                     "spec.metrics[0].provider.prometheus.query: metric 'success-rate': gwlib cannot answer its query: "
                     "gwlib records no series named 'istio_requests_total': it records Linkerd's proxy metrics "
                     "(request_total, response_total, response_latency_ms_bucket, response_latency_ms_count, "
                     "response_latency_ms_sum)"] * 3                 # once per analysis step


def test_count_without_interval_and_indefinite_step_metrics_are_spec_errors():
    def no_interval(d):
        template(d)["spec"]["metrics"][0].pop("interval")
    assert "spec.metrics[0]: interval must be specified when count > 1" in _spec_error(edit=no_interval)[0]

    def indefinite(d):
        template(d)["spec"]["metrics"][0].pop("count")
    line = _spec_error(edit=indefinite)[0]
    assert "Rollout rollouts-demo/rollouts-demo: spec.strategy.canary.steps[2].analysis: AnalysisTemplate " \
           "linkerd-success-rate has metric success-rate which runs indefinitely" in line


def test_a_route_must_list_both_services():
    def edit(d):
        r = next(x for x in d if x["kind"] == "HTTPRoute")
        r["spec"]["rules"][0]["backendRefs"].pop()
    line = _spec_error(edit=edit)[0]
    assert "HTTPRoute rollouts-demo/rollouts-demo: backendRef was not found in httpRoute" in line


def test_missing_things_are_named():
    def no_template(d):
        d.remove(template(d, "linkerd-latency"))
    assert "AnalysisTemplate 'linkerd-latency' not found in namespace rollouts-demo" in _spec_error(edit=no_template)[0]

    def no_service(d):
        d.remove(next(x for x in d if x["kind"] == "Service" and x["metadata"]["name"].endswith("canary")))
        r = next(x for x in d if x["kind"] == "HTTPRoute")
        r["spec"]["rules"][0]["backendRefs"][1]["weight"] = 0
    assert "spec.strategy.canary.canaryService: Service rollouts-demo/rollouts-demo-canary not found" in \
        _spec_error(edit=no_service)[0]

    def unresolved(d):
        r = next(x for x in d if x["kind"] == "Rollout")
        r["spec"]["strategy"]["canary"]["steps"][2]["analysis"]["args"].pop()
    assert "args.canary-hash was not resolved" in _spec_error(edit=unresolved)[0]


def test_args_from_secrets_and_field_refs():
    def edit(d):
        t = template(d, "linkerd-success-rate")
        t["spec"]["args"].append({"name": "floor", "valueFrom": {"secretKeyRef": {"name": "slo", "key": "floor"}}})
        t["spec"]["metrics"][0]["successCondition"] = "len(result) > 0 && result[0] >= {{args.floor}}"
        t["spec"]["metrics"][0]["failureCondition"] = "len(result) > 0 && result[0] < {{args.floor}}"
        d.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "slo", "namespace": NS},
                  "data": {"floor": "MC45OTk="}})                       # 0.999
        r = next(x for x in d if x["kind"] == "Rollout")
        r["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 20}, {"analysis": {
            "templates": [{"templateName": "linkerd-success-rate"}],
            "args": [{"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
                     {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}}]
        r["metadata"]["labels"] = {"team": NS}
    run = RolloutRun(connect(edit=edit, latency=False), requests_per_step=1000)
    run.set_fault("v2", error_rate=0.003)
    tl = run.run()
    assert tl.phase == "Degraded"                                   # 99.7 % < 0.999 from the Secret


def test_which_rollout():
    c = connect()
    with pytest.raises(RolloutError, match="no Rollout a/b"):
        RolloutRun(c, "a/b")
    extra = copy.deepcopy(next(x for x in talk_setup() if x["kind"] == "Rollout"))
    extra["metadata"]["name"] = "second"
    c.apply(extra)
    with pytest.raises(RolloutError, match="say which Rollout"):
        RolloutRun(c)
    assert RolloutRun(c, f"{NS}/rollouts-demo").spec.name == "rollouts-demo"


def test_unknown_fault_version():
    with pytest.raises(ValueError, match="no version 'v9': the rollout runs v1 \\(stable\\) and v2 \\(canary\\)"):
        RolloutRun(connect()).set_fault("v9", error_rate=0.1)


# --------------------------------------------------------------- the record

def test_request_query_frame_and_table():
    run = RolloutRun(connect(), requests_per_step=300)
    assert run.request == {"gateway": f"{NS}/traefik-gateway", "port": 80, "host": "demo.example.com", "path": "/"}
    tl = run.run(max_steps=3)
    assert tl.phase == "Progressing" and len(tl.steps) == 3
    q = (f'sum(rate(response_total{{namespace="{NS}", rollouts_pod_template_hash="{run.canary_hash}"}}[1m]))')
    assert run.query(q, t=60) == [pytest.approx(300 * 0.2 / 60, rel=0.25)]   # the pause's traffic, (0, 60]
    frame = tl.to_frame()
    assert list(frame["step"]) == ["setWeight 20", "pause 1m", "analysis linkerd-success-rate,linkerd-latency"]
    assert "final weights" in tl.table()
    assert repr(run).startswith("<RolloutRun rollouts-demo/rollouts-demo: Progressing, step 3/10")


# ------------------------------------------------------------------- Flagger

def test_flagger_schedule_overshoots_max_weight():
    assert flagger.schedule(20, 50) == [20, 40, 60]
    assert flagger.schedule(10, 30) == [10, 20, 30]
    assert flagger.schedule(step_weights=[1, 2, 10, 80], max_weight=50) == [1, 2, 10, 80]
    assert flagger.promotion_seconds("1m", 50, 20) == 180
    assert flagger.rollback_seconds("1m", 5) == 300
    with pytest.raises(ValueError):
        flagger.schedule(0, 50)


def test_flagger_run():
    c = connect()
    tl = flagger.FlaggerRun(c, step_weight=20, max_weight=50, threshold=2, requests_per_step=500).run()
    assert tl.phase == "Succeeded" and [s.weights[CANARY] for s in tl.steps] == [20, 40, 60]
    f = flagger.FlaggerRun(c, step_weight=20, max_weight=50, threshold=3, requests_per_step=500)
    f.set_fault("v2", error_rate=0.05)
    tl = f.run()
    # a failed check halts the weight; three of them roll back
    assert tl.phase == "Failed" and [s.weights[CANARY] for s in tl.steps] == [20, 20, 20]
    assert tl.steps[1].notes == ["failed checks 2/3: weight stays at 20"]
    assert c.split(REQ) == {STABLE: 1.0}


def test_a_grpc_route():
    def edit(d):
        r = next(x for x in d if x["kind"] == "HTTPRoute")
        r["kind"] = "GRPCRoute"
        r["spec"]["rules"][0]["matches"] = [{"method": {"service": "gwlib.echo.EchoService"}}]
        ro = next(x for x in d if x["kind"] == "Rollout")
        ro["spec"]["strategy"]["canary"]["trafficRouting"]["plugins"]["argoproj-labs/gatewayAPI"] = {
            "grpcRoute": "rollouts-demo"}
    run = RolloutRun(connect(edit=edit), requests_per_step=300)
    assert run.request["grpc"] == {"service": "gwlib.echo.EchoService", "method": "Echo"}
    run.set_fault("v2", error_rate=0.05)
    tl = run.run()
    assert (tl.phase, tl.aborted_at_step) == ("Degraded", 2)
    assert tl.steps[0].errors[CANARY] > 0


def test_cluster_mode_needs_a_cluster_connection():
    class NotAConnection:
        mode = "cluster"
    with pytest.raises(RolloutError, match="follows Argo Rollouts through a gwlib.cluster.ClusterConnection"):
        RolloutRun(NotAConnection())


def test_unknown_modes_are_refused():
    class Elsewhere:
        mode = "elsewhere"
    with pytest.raises(RolloutError, match="elsewhere"):
        RolloutRun(Elsewhere())
