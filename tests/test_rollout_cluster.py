"""Rollouts in cluster mode: Argo Rollouts runs the steps, gwlib starts the update, follows it,
sends traffic through the Gateway and reads weights and AnalysisRuns back.

Argo Rollouts and its Gateway API plugin are played by ``fakeapi.FakeArgoRollouts`` (status
and AnalysisRun objects in the shapes the Argo Rollouts API documents) on the fake API
server; ``fakeapi.RolloutGateway`` sends each request where the live route's weights say;
``fakeapi.FakeTime`` makes every sleep of the run one reconcile of the controller, so whole
rollouts with minute-long pauses run in a fraction of a second.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "cluster"))

from fakeapi import ControllerThread, FakeApiServer, FakeArgoRollouts, FakeTime, RolloutGateway  # noqa: E402
from support import connect, fixture, reconcile  # noqa: E402

import gwlib  # noqa: E402
from gwlib.cluster import ClusterError, UnsafeObject  # noqa: E402
from gwlib.cluster import rollouts as argo  # noqa: E402
from gwlib.rollout import RolloutError, RolloutRun, RolloutSpecError  # noqa: E402
from gwlib.rollout.cluster import ClusterRolloutRun, RolloutTimeout  # noqa: E402
from gwlib.rollout.manifests import talk_setup  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::gwlib.cluster.ClusterWarning")

NS = "rollouts-demo"
KEY = f"{NS}/rollouts-demo"
STABLE, CANARY = f"{NS}/rollouts-demo-stable", f"{NS}/rollouts-demo-canary"
HOST = "demo.example.com"
ROLLOUT_PATH = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/rollouts-demo"


def docs(steps=None, edit=None) -> list[dict]:
    d = talk_setup(steps=steps, install=False)
    if edit:
        edit(d)
    return d


def template(d: list[dict], name: str = "linkerd-success-rate") -> dict:
    return next(x for x in d if x["kind"] == "AnalysisTemplate" and x["metadata"]["name"] == name)


class Cluster:
    """A fake cluster holding the talk's manifests (applied by gwlib), its Argo Rollouts
    controller, a Gateway on 127.0.0.1 and a clock."""

    def __init__(self, api, conn, ctl, gw, clock):
        self.api, self.conn, self.ctl, self.gw, self.clock = api, conn, ctl, gw, clock
        self.lines: list[str] = []
        self.since = len(api.requests)        # requests gwlib made after applying the manifests

    def run(self, **kw) -> ClusterRolloutRun:
        kw.setdefault("requests_per_step", 100)
        kw.setdefault("poll", 5.0)
        return RolloutRun(self.conn, now=self.clock.now, sleep=self.clock.sleep, progress=self.lines.append, **kw)

    def rollout(self) -> dict:
        return self.api.get_object("Rollout", "rollouts-demo", NS)

    def runs(self) -> list[dict]:
        return [o for (plural, _g, ns, _n), o in self.api.objects.items() if plural == "analysisruns"]

    def rollout_patches(self) -> list:
        return [r for r in self.api.requests[self.since:] if r.method == "PATCH" and r.path.startswith(ROLLOUT_PATH)]


@contextlib.contextmanager
def cluster(tmp_path, d: list[dict] | None = None, analysis=None, errors=None, ticks: int = 1, seed: int = 0):
    with FakeApiServer() as api:
        ctl = FakeArgoRollouts(api, KEY, analysis=analysis)
        clock = FakeTime(ctl, ticks=ticks)
        with RolloutGateway(api, ctl, KEY, HOST, errors=errors, seed=seed) as gw:
            conn = connect(api, tmp_path, ports={80: gw.port})
            conn.apply(d if d is not None else docs(), wait=False)
            ctl.tick()                     # Argo deploys the Rollout as written (v2), at once
            yield Cluster(api, conn, ctl, gw, clock)
            assert not api.violations, api.violations


def expected_weight(steps: list[dict], index: int) -> int:
    """The canary weight in force at a step: the last setWeight at or before it."""
    for st in reversed(steps[:index + 1]):
        if "setWeight" in st:
            return st["setWeight"]
    return 0


# ------------------------------------------------------ reading Argo's objects (fixtures)

def test_an_analysis_run_read_back():
    s = argo.analysis_summary(fixture("analysisrun-failed.json"))
    assert (s["name"], s["phase"]) == ("rollouts-demo-7bf84f9696-2-2", "Failed")
    assert s["message"] == 'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'
    # in the order they were taken; the Prometheus provider's "[v]" strings as numbers
    assert [(m["metric"], m["value"], m["phase"]) for m in s["measurements"]] == [
        ("success-rate", [0.9966555183946488], "Successful"), ("p99-latency", [9.5], "Successful"),
        ("success-rate", [0.9411764705882353], "Failed")]
    assert [argo.measurement_value(v) for v in ("[1,2.5]", "0.5", "[]")] == [[1.0, 2.5], 0.5, []]
    assert math.isnan(argo.measurement_value("NaN")) and math.isnan(argo.measurement_value("[NaN]")[0])
    assert argo.measurement_value("") is None and argo.measurement_value('{"a": 1}') == '{"a": 1}'   # a Web provider


def _ro(status: dict, generation: int = 2, **spec) -> dict:
    return {"metadata": {"name": "rollouts-demo", "namespace": NS, "generation": generation},
            "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}, **spec},
            "status": status}


def test_the_phase_as_the_argo_cli_computes_it():
    aborted = fixture("rollout-aborted.json")
    assert argo.phase(_ro(aborted)) == ("Degraded", aborted["message"])
    assert argo.phase(_ro(aborted, generation=3))[0] == "Progressing"      # not observed yet
    legacy = {k: v for k, v in aborted.items() if k not in ("phase", "message")}   # Rollouts < 1.0
    assert argo.phase(_ro(legacy)) == ("Degraded", "RolloutAborted: " + aborted["conditions"][1]["message"])
    paused = fixture("rollout-paused.json")
    assert argo.phase(_ro(paused)) == ("Paused", "CanaryPauseStep")
    unpausing = {**paused, "pauseConditions": None}                       # promoted, not yet picked up
    assert argo.phase(_ro(unpausing)) == ("Progressing", "waiting for rollout to unpause")
    assert not argo.is_fully_promoted(_ro(paused))
    assert argo.is_fully_promoted(_ro({**paused, "stableRS": paused["currentPodHash"]}))


# --------------------------------------------------------------------- one entry point

def test_a_cluster_connection_gets_the_cluster_run(tmp_path):
    with cluster(tmp_path) as c:
        run = c.run()
        assert type(run) is ClusterRolloutRun and isinstance(run, RolloutRun)
        assert run.request == {"gateway": f"{NS}/traefik-gateway", "port": 80, "host": HOST, "path": "/"}
        assert c.rollout_patches() == []          # nothing changes before run()


def test_the_checks_are_the_lab_s_and_nothing_is_sent(tmp_path):
    def edit(d):
        template(d)["spec"]["metrics"][0]["provider"]["prometheus"]["query"] = \
            'sum(rate(istio_requests_total{reporter="source"}[1m]))'
    ref = gwlib.connect("reference")
    ref.apply(docs(edit=edit))
    with pytest.raises(RolloutSpecError) as lab_err:
        RolloutRun(ref)
    with cluster(tmp_path, docs(edit=edit)) as c:
        with pytest.raises(RolloutSpecError) as cluster_err:
            c.run()
        assert [p.line().split(" ", 1)[1] for p in cluster_err.value.problems] == \
            [p.line().split(" ", 1)[1] for p in lab_err.value.problems]
        assert "istio_requests_total" in str(cluster_err.value)
        assert c.rollout_patches() == []


# --------------------------------------------------------------------------- Healthy

def test_a_healthy_rollout_followed_step_by_step(tmp_path):
    with cluster(tmp_path, seed=1) as c:
        run = c.run(requests_per_step=200)
        tl = run.run()
        ro = c.rollout()
        steps = ro["spec"]["strategy"]["canary"]["steps"]
        assert (tl.phase, tl.aborted_at_step) == ("Healthy", None)
        assert [s.index for s in tl.steps] == list(range(10))
        assert [s.step for s in tl.steps] == steps
        # Argo's state at the end: the new revision is the stable one, the route back at 0
        st = ro["status"]
        assert st["stableRS"] == st["currentPodHash"] == run.canary_hash != run.stable_hash
        assert ro["spec"]["template"]["metadata"]["labels"]["version"] == "v2"
        assert tl.message == f"Rollout is healthy: v2 ({run.canary_hash}) promoted after 10 steps"
        assert tl.weights == {STABLE: 100, CANARY: 0}
        for s in tl.steps:
            w = expected_weight(steps, s.index)
            assert s.weights == {STABLE: 100 - w, CANARY: w}, s
            assert s.requests == 200 == sum(s.responses.values())
            assert abs(s.responses.get(CANARY, 0) / 200 - w / 100) < 0.1, (s.index, s.responses)
            assert s.errors == {STABLE: 0, CANARY: 0}
            assert s.notes == []
        # the shares are what the data plane did: every request reached a pod of the right side
        assert sum(c.gw.seen.values()) == 2000
        # every analysis step carries its AnalysisRun, as the controller wrote it
        for s in tl.steps:
            if "analysis" not in s.step:
                assert s.analysis is None
                continue
            ar = c.api.get_object("AnalysisRun", s.analysis["analysisRun"], NS)
            assert ar["metadata"]["labels"]["step-index"] == str(s.index)
            assert ar["metadata"]["labels"]["rollouts-pod-template-hash"] == run.canary_hash
            assert s.analysis["phase"] == ar["status"]["phase"] == "Successful"
            assert [(m["metric"], m["phase"]) for m in s.analysis["measurements"]] == \
                [(r["name"], m["phase"]) for r in ar["status"]["metricResults"] for m in r["measurements"]]
            assert all(m["value"] == 1.0 for m in s.analysis["measurements"])   # "[1]" read as a number
        # simulated minutes: the pauses took their time on the run's clock
        pause = tl.steps[1]
        assert pause.end - pause.start >= 60


def test_the_update_is_started_as_a_user_would(tmp_path):
    with cluster(tmp_path) as c:
        first = copy.deepcopy(c.rollout()["status"])
        assert first["stableRS"] == first["currentPodHash"]          # applied at v2: deployed at once
        c.run(requests_per_step=10).run()
        bodies = [(r.path.endswith("/status"), r.body) for r in c.rollout_patches()]
        assert bodies == [
            (False, {"spec": {"template": {"metadata": {"labels": {"version": "v1"}}}}}),   # the stable first
            (True, {"status": {"promoteFull": True}}),                  # kubectl argo rollouts promote --full
            (False, {"spec": {"template": {"metadata": {"labels": {"version": "v2"}}}}}),   # then the canary
        ]
        # only the label changed: the echo containers gwlib applied are untouched
        assert c.rollout()["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
            "gcr.io/k8s-staging-gateway-api/echo-basic")


def test_a_second_run_starts_from_the_stable_version_again(tmp_path):
    with cluster(tmp_path) as c:
        a = c.run(requests_per_step=10).run()
        b = c.run(requests_per_step=10).run()
        assert a.phase == b.phase == "Healthy"
        assert [s.index for s in b.steps] == list(range(10))
        revisions = [line for line in c.ctl.log if line.startswith("revision ")]
        assert len(revisions) == 4       # v1 and v2, twice


def test_step_by_step_and_what_the_run_reads_live(tmp_path):
    with cluster(tmp_path) as c:
        run = c.run(requests_per_step=10)
        tl = run.step()                              # one step, then back to the caller
        assert tl.phase == "Progressing" and [s.index for s in tl.steps] == [0, 1]
        assert tl.steps[0].end <= tl.steps[1].start and tl.steps[1].requests < 10   # the pause goes on
        assert run.route_weights() == {f"{NS}/rollouts-demo": {"rollouts-demo-stable": 80,
                                                               "rollouts-demo-canary": 20}}
        s = run.status()
        assert (s["phase"], s["step"], s["canary_hash"]) == ("Progressing", 1, run.canary_hash)   # pause not yet added
        assert repr(run).startswith("<ClusterRolloutRun rollouts-demo/rollouts-demo: Progressing, step 1/10")

        def prometheus(rec):
            assert rec.q("query") == "sum(rate(response_total[1m]))"
            return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [1788256900.0, "0.9975"]}]}})
        c.api.proxy[("linkerd-viz", "svc/prometheus", 9090, "api/v1/query")] = prometheus
        assert run.query("sum(rate(response_total[1m]))") == [0.9975]
        assert run.run().phase == "Healthy" and [s.index for s in run.timeline.steps] == list(range(10))


def test_steps_that_pass_between_two_reads_are_recorded_with_a_note(tmp_path):
    steps = [{"setWeight": 10}, {"setWeight": 20}, {"setWeight": 30}, {"pause": {"duration": "2m"}},
             {"setWeight": 100}]
    with cluster(tmp_path, docs(steps=steps), ticks=4) as c:
        tl = c.run(requests_per_step=50).run()
        assert tl.phase == "Healthy"
        assert [s.index for s in tl.steps] == [0, 1, 2, 3, 4]
        skipped = [s for s in tl.steps if s.notes]
        assert skipped and all(s.requests == 0 and "passed between two reads" in s.notes[0] for s in skipped)
        for s in skipped:
            w = steps[s.index].get("setWeight")
            if w is not None:
                assert s.weights == {STABLE: 100 - w, CANARY: w}
        seen = [s for s in tl.steps if not s.notes]
        assert seen and all(s.requests == 50 for s in seen)


# -------------------------------------------------------------------------- Degraded

FAILING = {5: [("success-rate", "[0.9987]", "Successful"), ("p99-latency", "[12.4]", "Successful"),
               ("success-rate", "[0.9412]", "Failed")]}


def test_an_analysis_failure_is_degraded_at_its_step(tmp_path):
    with cluster(tmp_path, analysis=FAILING, errors={"v2": 0.06}, seed=3) as c:
        run = c.run(requests_per_step=300)
        tl = run.run()
        st = c.rollout()["status"]
        assert st["abort"] is True and st["currentStepIndex"] == 0     # Argo resets the index on abort
        assert (tl.phase, tl.aborted_at_step) == ("Degraded", 5)
        assert [s.index for s in tl.steps] == [0, 1, 2, 3, 4, 5]
        assert all(s.requests == 300 and not s.notes for s in tl.steps[:5])
        assert tl.steps[5].notes == [f"the rollout aborted during this step: {tl.steps[5].requests} of 300 "
                                     "requests sent"]
        assert tl.message.startswith("RolloutAborted: Rollout aborted update to revision ")
        assert tl.message.endswith('Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)')
        assert tl.message == st["message"]
        a = tl.steps[5].analysis
        assert a["phase"] == "Failed" and a["message"] == 'Metric "success-rate" assessed Failed due to failed (1) > ' \
                                                          'failureLimit (0)'
        assert [(m["metric"], m["value"], m["phase"]) for m in a["measurements"]] == \
            [("success-rate", 0.9987, "Successful"), ("p99-latency", 12.4, "Successful"),
             ("success-rate", 0.9412, "Failed")]
        # traffic back on the stable side: weight 0, the canary Service on the stable pods
        assert tl.weights == {STABLE: 100, CANARY: 0}
        canary_svc = c.api.get_object("Service", "rollouts-demo-canary", NS)
        assert canary_svc["spec"]["selector"]["rollouts-pod-template-hash"] == st["stableRS"]
        # the canary's 500s were counted on the canary, none on the stable side
        assert sum(s.errors[CANARY] for s in tl.steps) > 0
        assert sum(s.errors[STABLE] for s in tl.steps) == 0


def test_an_analysis_failing_between_two_reads_is_still_found(tmp_path):
    # several reconciles per read: the analysis step starts and fails unseen
    with cluster(tmp_path, analysis={2: [("success-rate", "[0.5]", "Failed")]}, ticks=6) as c:
        tl = c.run(requests_per_step=20).run()
        assert (tl.phase, tl.aborted_at_step) == ("Degraded", 2)
        assert tl.steps[-1].index == 2 and tl.steps[-1].analysis["phase"] == "Failed"
        assert tl.steps[-1].analysis["measurements"] == [{"metric": "success-rate", "value": 0.5, "phase": "Failed"}]


def test_abort_by_hand_and_retry(tmp_path):
    steps = [{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}]
    with cluster(tmp_path, docs(steps=steps)) as c:
        run = c.run(requests_per_step=20)
        assert run.run().phase == "Paused"
        tl = run.abort()
        assert (tl.phase, tl.aborted_at_step) == ("Degraded", 1)
        assert tl.message == "RolloutAborted: Rollout aborted update to revision 3"
        assert [r.body for r in c.rollout_patches() if r.path.endswith("/status")][-1] == {"status": {"abort": True}}
        with pytest.raises(RolloutError, match="nothing to promote"):
            run.promote()
        tl = run.retry()
        assert [r.body for r in c.rollout_patches() if r.path.endswith("/status")][-1] == {"status": {"abort": False}}
        assert tl.phase == "Paused" and tl.aborted_at_step is None
        assert [s.index for s in tl.steps] == [0, 1, 0, 1]             # the second pass is added
        assert run.promote().phase == "Healthy"


# ---------------------------------------------------------------------------- Paused

GATED = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}, {"setWeight": 100}]


def test_an_indefinite_pause_is_paused_until_promoted(tmp_path):
    with cluster(tmp_path, docs(steps=GATED), seed=2) as c:
        run = c.run(requests_per_step=100)
        tl = run.run()
        assert (tl.phase, tl.aborted_at_step) == ("Paused", None)
        assert tl.message == "CanaryPauseStep: paused at step 1 (pause without a duration); promote() or abort()"
        assert c.rollout()["status"]["pauseConditions"][0]["reason"] == "CanaryPauseStep"
        assert [s.index for s in tl.steps] == [0, 1]
        assert tl.steps[1].requests == 100 and tl.steps[1].weights == {STABLE: 75, CANARY: 25}
        assert tl.weights == {STABLE: 75, CANARY: 25}
        assert run.run().phase == "Paused" and len(run.timeline.steps) == 2     # still waiting, nothing added
        before = len(c.rollout_patches())
        tl = run.promote()
        (p,) = c.rollout_patches()[before:]
        assert p.path.endswith("/status") and p.body == {"status": {"pauseConditions": None}}
        assert tl.phase == "Healthy"
        assert [s.index for s in tl.steps] == [0, 1, 2, 3, 4]
        assert [s.weights[CANARY] for s in tl.steps] == [25, 25, 50, 50, 100]
        assert all(s.requests == 100 for s in tl.steps)


def test_auto_promote_releases_indefinite_pauses(tmp_path):
    with cluster(tmp_path, docs(steps=GATED)) as c:
        run = c.run(requests_per_step=20, auto_promote=True)
        tl = run.run()
        assert tl.phase == "Healthy" and [s.index for s in tl.steps] == [0, 1, 2, 3, 4]
        assert [e["step"] for e in tl.events if e["event"] == "promote (auto_promote)"] == [1]
        assert any("promoting the pause at step 1 (auto_promote)" in line for line in c.lines)


def test_an_inconclusive_analysis_pauses(tmp_path):
    script = {2: [("success-rate", "[]", "Inconclusive")]}
    with cluster(tmp_path, analysis=script) as c:
        run = c.run(requests_per_step=20)
        tl = run.run()
        assert tl.phase == "Paused" and run.pause_reason == "InconclusiveAnalysisRun"
        assert tl.message == ('InconclusiveAnalysisRun: step 2 analysis: Metric "success-rate" assessed '
                              'Inconclusive due to inconclusive (1) > inconclusiveLimit (0); promote() or abort()')
        assert tl.steps[-1].analysis["measurements"] == [{"metric": "success-rate", "value": [],
                                                          "phase": "Inconclusive"}]
        assert run.promote().phase == "Healthy"


def test_auto_promote_in_the_lab_engine_too():
    ref = gwlib.connect("reference")
    ref.apply(docs(steps=GATED))
    paused = RolloutRun(ref, requests_per_step=50).run()
    done = RolloutRun(ref, requests_per_step=50, auto_promote=True).run()
    assert paused.phase == "Paused" and done.phase == "Healthy"
    assert [s.index for s in done.steps] == [0, 1, 2, 3, 4]


# -------------------------------------------------------------------- errors, one line

def test_a_409_on_the_template_patch_is_one_line(tmp_path):
    msg = ('Operation cannot be fulfilled on rollouts.argoproj.io "rollouts-demo": the object has been modified; '
           "please apply your changes to the latest version and try again")
    with cluster(tmp_path) as c:
        c.api.fail("PATCH", "/rollouts/rollouts-demo$", 409, "Conflict", msg,
                   {"name": "rollouts-demo", "group": "argoproj.io", "kind": "rollouts"})
        with pytest.raises(ClusterError) as err:
            c.run().run()
        assert str(err.value) == ("set version=v1 in the pod template of Rollout rollouts-demo/rollouts-demo: "
                                  f"{msg} (409 Conflict)")
        assert err.value.status == 409 and "\n" not in str(err.value)


def test_a_422_on_promote_is_one_line(tmp_path):
    msg = 'Rollout.argoproj.io "rollouts-demo" is invalid: status.pauseConditions: Invalid value: "null"'
    with cluster(tmp_path, docs(steps=GATED)) as c:
        run = c.run(requests_per_step=10)
        assert run.run().phase == "Paused"
        c.api.fail("PATCH", "/rollouts/rollouts-demo/status$", 422, "Invalid", msg)
        with pytest.raises(ClusterError) as err:
            run.promote()
        assert str(err.value) == f"promote Rollout rollouts-demo/rollouts-demo: {msg} (422 Invalid)"


def test_a_rollout_deleted_while_followed(tmp_path):
    with cluster(tmp_path) as c:
        run = c.run(requests_per_step=10)
        run.run(max_steps=2)
        assert run.phase == "Progressing" and len(run.timeline.steps) >= 2
        with c.api._lock:
            del c.api.objects[("rollouts", "argoproj.io", NS, "rollouts-demo")]
        with pytest.raises(RolloutError) as err:
            run.run()
        assert str(err.value) == ("Rollout rollouts-demo/rollouts-demo not found in the cluster "
                                  "(deleted while gwlib followed it?)")


def test_a_rollout_gwlib_did_not_create_is_not_changed(tmp_path):
    with cluster(tmp_path) as c:
        with c.api._lock:
            c.rollout()["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
        with pytest.raises(UnsafeObject, match="was not created by gwlib: not changing it"):
            c.run().run()
        assert c.rollout_patches() == []


def test_a_controller_that_does_nothing_times_out_in_one_line(tmp_path):
    with cluster(tmp_path) as c:
        c.clock.controller = None                 # Argo Rollouts is not running
        run = c.run(timeout=60)
        with pytest.raises(RolloutTimeout) as err:
            run.run()
        assert str(err.value) == ("Rollout rollouts-demo/rollouts-demo: the stable version v1 is not Healthy "
                                  "(Progressing: waiting for rollout spec update to be observed) after 60 s (timeout)")
        assert c.clock.t <= 70                     # simulated: no real waiting


def test_faults_cannot_be_injected_in_a_cluster(tmp_path):
    with cluster(tmp_path) as c:
        with pytest.raises(RolloutError, match="faults cannot be injected in cluster mode"):
            c.run().set_fault("v2", error_rate=0.05)


# ----------------------------------------------------------------------- the JSON shape

def test_the_json_timeline_has_the_design_s_shape(tmp_path):
    ref = gwlib.connect("reference")
    ref.apply(docs())
    lab = RolloutRun(ref, requests_per_step=50).run().to_dict()
    with cluster(tmp_path, analysis=FAILING) as c:
        tl = c.run(requests_per_step=50).run()
    d = json.loads(tl.to_json())
    assert list(d) == ["rollout", "phase", "aborted_at_step", "message", "steps", "weights"] == list(lab)
    assert d["rollout"] == KEY and d["phase"] == "Degraded" and d["aborted_at_step"] == 5
    assert isinstance(d["message"], str)
    for s, lab_s in zip(d["steps"], lab["steps"]):
        # index, step, weights, analysis, requests, errors, responses, time (+ notes when there are any)
        assert [k for k in s if k != "notes"] == [k for k in lab_s if k != "notes"]
        assert "notes" not in s or (s["notes"] and all(isinstance(n, str) for n in s["notes"]))
        assert {"index", "step", "weights", "analysis", "requests", "errors"} <= set(s)
        assert isinstance(s["index"], int) and isinstance(s["requests"], int)
        assert set(s["weights"]) == {STABLE, CANARY} and sum(s["weights"].values()) == 100
        assert all(isinstance(v, int) for v in s["errors"].values())
    a = d["steps"][2]["analysis"]
    assert a["phase"] in ("Successful", "Failed", "Inconclusive", "Error")
    for m in a["measurements"]:
        assert {"metric", "value", "phase"} <= set(m) and isinstance(m["value"], float)
    assert d["weights"] == {STABLE: 100, CANARY: 0}


# ------------------------------------------------------------------------- the command

def _write(tmp_path: Path, d: list[dict]) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "talk.yaml").write_text(yaml.safe_dump_all(d, sort_keys=False))
    return folder


def _cli(capsys, *argv: str):
    from gwlib import cli
    try:
        code = cli.main(["rollout", "run", *argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


@pytest.mark.parametrize("analysis, code, phase", [(None, 0, "Healthy"),
                                                    ({2: [("success-rate", "[0.9]", "Failed")]}, 1, "Degraded")])
def test_the_command_in_cluster_mode(tmp_path, capsys, monkeypatch, analysis, code, phase):
    steps = [{"setWeight": 20}, {"pause": {"duration": "30s"}},
             {"analysis": talk_setup()[-1]["spec"]["strategy"]["canary"]["steps"][2]["analysis"]},
             {"setWeight": 100}]
    folder = _write(tmp_path, talk_setup(steps=steps))      # with the install objects: skipped, not gwlib's
    with FakeApiServer() as api:
        ctl = FakeArgoRollouts(api, KEY, analysis=analysis)
        with RolloutGateway(api, ctl, KEY, HOST) as gw, \
                ControllerThread(ctl, every=0.03, also=lambda: reconcile(api)) as th:
            monkeypatch.setenv("GWLIB_CLUSTER_PORTS", f"80={gw.port}")
            monkeypatch.setenv("GWLIB_MODE", "cluster")          # neither --mode nor --dataplane: the env decides
            kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
            got, out, err = _cli(capsys, "-f", str(folder), "--kubeconfig", kubeconfig, "--poll", "0.01",
                                 "--requests-per-step", "20", "--timeout", "60")
        assert not th.errors and not api.violations
    assert got == code, err
    d = json.loads(out)
    assert d["phase"] == phase and d["rollout"] == KEY
    assert d["aborted_at_step"] == (2 if phase == "Degraded" else None)
    assert [s["index"] for s in d["steps"]] == ([0, 1, 2, 3] if phase == "Healthy" else [0, 1, 2])
    assert d["steps"][0]["weights"] == {STABLE: 80, CANARY: 20}
    for s in d["steps"]:     # real time here: a step may pass between two reads, or abort early (it says so)
        assert s["requests"] == sum(s["responses"].values())
        assert s["requests"] == 20 or s.get("notes"), s
    assert sum(s["requests"] for s in d["steps"]) >= 40
    lines = err.splitlines()
    assert any(line.startswith("gwlib rollout run: warning: skipped (outside gwlib's reach): ") for line in lines)
    assert any(line.startswith("gwlib: Rollout rollouts-demo/rollouts-demo: ") for line in lines)


def test_the_command_s_cluster_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GWLIB_MODE", raising=False)
    folder = _write(tmp_path, docs())
    code, out, err = _cli(capsys, "-f", str(folder), "--mode", "cluster", "--fault", "v2:error-rate=0.05")
    assert (code, out) == (2, "") and err.startswith("gwlib rollout run: --fault cannot be used in cluster mode")
    code, out, err = _cli(capsys, "-f", str(folder), "--mode", "cluster", "--dataplane", "envoy")
    assert code == 2 and err == ("gwlib rollout run: --dataplane is a lab setting: in cluster mode the cluster's "
                                 "own Gateway controller answers\n")
    code, out, err = _cli(capsys, "-f", str(folder), "--context", "kind-x")
    assert code == 2 and err == "gwlib rollout run: --context: only with --mode cluster\n"
    msg = 'rollouts.argoproj.io "rollouts-demo" is forbidden: User "dev" cannot patch resource "rollouts"'
    with FakeApiServer() as api:
        ctl = FakeArgoRollouts(api, KEY)
        with ControllerThread(ctl, also=lambda: reconcile(api)):
            api.fail("PATCH", "/rollouts/rollouts-demo$", 403, "Forbidden", msg, times=50)
            kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
            code, out, err = _cli(capsys, "-f", str(folder), "--mode", "cluster", "--kubeconfig", kubeconfig,
                                  "--poll", "0.01", "--timeout", "30")
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == f"gwlib rollout run: apply Rollout rollouts-demo/rollouts-demo: {msg} (403 Forbidden)"
