"""Cluster mode against a fake API server: the requests gwlib sends (server-side apply with
field manager gwlib, dry runs, patches, deletes, discovery) and how it reads the answers
(objects with status, Status errors 404/409/422, an unreachable server)."""
from __future__ import annotations

import json
import socket
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "cluster"))

from fakeapi import FakeApiServer, RESOURCES  # noqa: E402
from support import SHOP, connect, fixture, managed, reconcile  # noqa: E402

import gwlib  # noqa: E402
from gwlib.cluster import ClusterError, ClusterTimeout  # noqa: E402
from gwlib.cluster.echo import ECHO_IMAGE  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::gwlib.cluster.ClusterWarning")
ROOT = Path(__file__).resolve().parents[1]


def writes(api, dry=None):
    out = [r for r in api.requests if r.method in ("PATCH", "DELETE")]
    if dry is not None:
        out = [r for r in out if (r.q("dryRun") == "All") == dry]
    return out


# -- apply ----------------------------------------------------------------------------------

def test_apply_is_server_side_apply_with_field_manager_gwlib(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        stored = conn.apply(SHOP, wait=False)
        assert [o.kind for o in stored] == ["Namespace", "GatewayClass", "Gateway", "Service", "Service",
                                            "Deployment", "HTTPRoute"]
        real = writes(api, dry=False)
        for r in real:
            assert r.method == "PATCH"
            assert r.headers["Content-Type"] == "application/apply-patch+yaml"
            assert r.q("fieldManager") == "gwlib" and r.q("force") == "true"
            assert r.body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gwlib"
            assert "status" not in r.body and "creationTimestamp" not in r.body["metadata"]
            assert r.headers["Authorization"] == f"Bearer {api.token}"
        assert [r.path for r in real] == [
            "/api/v1/namespaces/shop",
            "/api/v1/namespaces/shop/services/web-v1",
            "/api/v1/namespaces/shop/services/web-v2",
            "/apis/gateway.networking.k8s.io/v1/gatewayclasses/traefik",
            "/apis/gateway.networking.k8s.io/v1/namespaces/shop/gateways/web",
            "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/web",
            "/apis/apps/v1/namespaces/shop/deployments/web-v2",
            "/apis/apps/v1/namespaces/shop/deployments/gwlib-echo-web-v1",
        ]
        # the live objects: created by the API server with generation 1 and the manager recorded
        route = api.get_object("HTTPRoute", "web", "shop")
        assert route["metadata"]["generation"] == 1
        assert route["metadata"]["managedFields"][0]["manager"] == "gwlib"
        assert route["spec"]["rules"][0]["backendRefs"][1] == {"name": "web-v2", "port": 8080, "weight": 10}
        # the same manifests again: nothing changes but the resourceVersion
        conn.apply(SHOP, wait=False)
        assert api.get_object("HTTPRoute", "web", "shop")["metadata"]["generation"] == 1
        conn.apply(SHOP.replace("weight: 10}", "weight: 20}"), wait=False)
        assert api.get_object("HTTPRoute", "web", "shop")["metadata"]["generation"] == 2


def test_dry_run_first_for_objects_whose_namespace_exists(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP, wait=False)
        n = len(api.requests)
        conn.apply(SHOP, wait=False)
        later = [r for r in api.requests[n:] if r.method == "PATCH"]
        dry = [r.path for r in later if r.q("dryRun") == "All"]
        real = [r.path for r in later if r.q("dryRun") is None]
        assert dry == real and len(dry) == 8
        assert later.index(next(r for r in later if r.q("dryRun") is None)) == 8   # every dry run before any write
        conn.apply(SHOP.replace("weight: 10}", "weight: 30}"), dry_run=True)
        assert api.get_object("HTTPRoute", "web", "shop")["spec"]["rules"][0]["backendRefs"][1]["weight"] == 10


def test_invalid_manifests_send_nothing(tmp_path):
    bad = SHOP.replace("port: 8080, weight: 10", "port: 70000, weight: 10")
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        with pytest.raises(gwlib.InvalidManifest) as err:
            conn.apply(bad)
        assert "port" in str(err.value)
        assert api.requests == []


def test_an_api_server_422_stops_before_any_write(tmp_path):
    message = ('HTTPRoute.gateway.networking.k8s.io "web" is invalid: spec.rules[0].backendRefs[1].weight: '
               'Invalid value: 20000000: spec.rules[0].backendRefs[1].weight in body should be less than or equal '
               'to 1000000')
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP, wait=False)
        n = len(api.requests)
        api.fail("PATCH", r"/httproutes/web$", 422, "Invalid", message,
                 {"name": "web", "group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                  "causes": [{"reason": "FieldValueInvalid", "field": "spec.rules[0].backendRefs[1].weight",
                              "message": "Invalid value: 20000000"}]})
        with pytest.raises(ClusterError) as err:
            conn.apply(SHOP.replace("weight: 10}", "weight: 20}"), wait=False)
        line = str(err.value)
        assert line == f"dry-run apply HTTPRoute shop/web: {message} (422 Invalid)"
        assert err.value.status == 422 and err.value.reason == "Invalid" and err.value.api_message == message
        assert [r for r in api.requests[n:] if r.method == "PATCH" and r.q("dryRun") is None] == []
        assert err.value._render_traceback_() == [f"ClusterError: {line}"]


def test_a_kind_the_cluster_does_not_serve_is_named_before_any_write(tmp_path):
    with FakeApiServer(resources=[r for r in RESOURCES if r[0] != "argoproj.io"]) as api:
        conn = connect(api, tmp_path)
        rollout = (ROOT / "data" / "rollouts" / "talk" / "60-rollout.yaml")
        with pytest.raises(ClusterError) as err:
            conn.apply(SHOP, rollout)
        assert str(err.value) == ("the cluster does not serve argoproj.io/v1alpha1 (needed for Rollout): "
                                  "install Argo Rollouts (scripts/cluster-up.sh does)")
        assert writes(api) == []


def test_a_missing_namespace_404_from_the_server_is_one_line(tmp_path):
    with FakeApiServer() as api:
        api.put(managed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        conn = connect(api, tmp_path)
        api.fail("PATCH", "/namespaces/shop/services/web-v1$", 404, "NotFound", 'namespaces "shop" not found',
                 {"name": "shop", "kind": "namespaces"}, times=2)
        with pytest.raises(ClusterError) as err:
            conn.apply(SHOP, wait=False)
        assert str(err.value) == 'dry-run apply Service shop/web-v1: namespaces "shop" not found (404 NotFound)'


def test_an_unreachable_api_server_is_one_line(tmp_path):
    with FakeApiServer() as api:
        path = api.kubeconfig(tmp_path / "kubeconfig")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    text = Path(path).read_text().replace(api.url, f"http://127.0.0.1:{port}")
    Path(path).write_text(text)
    from gwlib.cluster import ClusterConnection
    conn = ClusterConnection(kubeconfig=path, progress=False)
    conn.api_client.configuration.retries = 0
    with pytest.raises(ClusterError) as err:
        conn.status()
    line = str(err.value)
    assert "cannot reach the API server of context kind-gwlib" in line and "connection refused" in line
    assert "\n" not in line


def test_gwlib_controller_class_becomes_the_cluster_controller(tmp_path):
    doc = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: gwlib}\n" \
          "spec: {controllerName: gwlib.dev/gateway-controller}\n"
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            (obj,) = conn.apply(doc, wait=False)
        assert obj.spec.controller_name == "gwlib.dev/gateway-controller"      # gwlib's model: as written
        assert api.get_object("GatewayClass", "gwlib")["spec"]["controllerName"] == "traefik.io/gateway-controller"
        assert any("gwlib.dev/gateway-controller" in str(x.message) for x in w)


# -- status and waiting ----------------------------------------------------------------------

def test_status_reads_back_what_the_controllers_wrote(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP, wait=False)
        reconcile(api, route_status="httproute-backend-not-found.json")
        st = conn.status()
        assert [(i["kind"], i["metadata"]["name"]) for i in st] == [("GatewayClass", "traefik"), ("Gateway", "web"),
                                                                     ("HTTPRoute", "web")]
        assert all("managedFields" not in i["metadata"] for i in st)
        rows = st.conditions()
        assert {"kind": "Gateway", "object": "shop/web", "where": "", "type": "Programmed", "status": "True",
                "reason": "Programmed"} in rows
        assert {"kind": "Gateway", "object": "shop/web", "where": "listener http", "type": "ResolvedRefs",
                "status": "True", "reason": "ResolvedRefs"} in rows
        assert {"kind": "HTTPRoute", "object": "shop/web", "where": "parent shop/web (http)", "type": "ResolvedRefs",
                "status": "False", "reason": "BackendNotFound"} in rows
        assert list(st.to_frame().columns) == ["kind", "object", "where", "type", "status", "reason"]
        lists = [r for r in api.requests if r.method == "GET" and r.q("labelSelector")]
        assert {r.q("labelSelector") for r in lists} == {"app.kubernetes.io/managed-by=gwlib"}


def test_wait_polls_until_reconciled_and_reports_progress(tmp_path):
    lines = []
    with FakeApiServer() as api:
        polls = {"n": 0}

        def controller_sleep(_seconds):      # the controllers catch up after two polls
            polls["n"] += 1
            if polls["n"] == 1:
                for name, ns, kind in (("web", "shop", "Gateway"),):
                    api.set_status(kind, name, ns, fixture("gateway-pending.json"))
            if polls["n"] == 2:
                reconcile(api)

        conn = connect(api, tmp_path, progress=lines.append, sleep=controller_sleep, timeout=60)
        conn.apply(SHOP)
        assert polls["n"] == 2
        assert lines[0].startswith("gwlib: waiting for ") and "HTTPRoute shop/web (parent Gateway shop/web http): " \
            "no status from traefik.io/gateway-controller yet" in lines[0]
        assert "Gateway shop/web: Accepted Unknown (Pending)" in lines[1]
        assert "Deployment shop/web-v2: not observed yet" in lines[0]
        assert lines[-1].startswith("gwlib: reconciled after")
        # a spec change is only reconciled once the controller has observed the new generation
        conn.apply(SHOP.replace("weight: 10}", "weight: 20}"), wait=False)
        with pytest.raises(ClusterTimeout) as err:
            conn.wait(timeout=0)
        assert "HTTPRoute shop/web (parent Gateway shop/web http): Accepted not observed at generation 2 yet" \
            in err.value.pending
        reconcile(api, route_status="httproute-backend-not-found.json")
        conn.wait(timeout=0)                          # reconciled, though not every condition is True
        with pytest.raises(ClusterTimeout) as err:
            conn.wait(timeout=0, ready=True)
        assert err.value.pending == ["HTTPRoute shop/web (parent Gateway shop/web http): ResolvedRefs False "
                                     "(BackendNotFound: Cannot load HTTPBackendRef shop/missing: "
                                     "service shop/missing not found)"]


def test_apply_warns_instead_of_failing_when_the_wait_times_out(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path, timeout=0)
        with pytest.warns(gwlib.cluster.ClusterWarning, match="not reconciled after 0 s"):
            conn.apply(SHOP)


# -- set_weights ------------------------------------------------------------------------------

def test_set_weights_is_a_guarded_json_patch_of_the_route(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP, wait=False)
        route = conn.set_weights("shop/web", {"web-v1": 50, "web-v2": 50}, wait=False)
        (patch,) = [r for r in api.requests if r.method == "PATCH" and r.path.endswith("/httproutes/web")
                    and r.headers["Content-Type"] == "application/json-patch+json"]
        assert patch.body == [
            {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": "web-v1"},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 50},
            {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "web-v2"},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50}]
        assert patch.q("fieldManager") == "gwlib"
        assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [50, 50]
        assert route["metadata"]["generation"] == 2
        # gwlib's model follows: the split of the spec for the same request
        req = {"gateway": "shop/web", "host": "shop.example.com", "path": "/"}
        assert conn.split(req) == {"shop/web-v1": 0.5, "shop/web-v2": 0.5}
        with pytest.raises(ValueError, match="has no backendRef named web-v3"):
            conn.set_weights("shop/web", {"web-v3": 1})
        with pytest.raises(ValueError, match="has no rule 4"):
            conn.set_weights("shop/web", {"web-v1": 1}, rule=4)
        with pytest.raises(ClusterError, match="HTTPRoute shop/nope not found"):
            conn.set_weights("shop/nope", {"a": 1})


def test_set_weights_when_the_route_changed_underneath(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP, wait=False)
        api.fail("PATCH", "/httproutes/web$", 422, "Invalid", "the server rejected our request due to an error in "
                 "our request: testing value /spec/rules/0/backendRefs/0/name failed")
        with pytest.raises(ClusterError) as err:
            conn.set_weights("shop/web", {"web-v1": 1}, wait=False)
        assert str(err.value) == ("set weights of HTTPRoute shop/web: the server rejected our request due to an "
                                  "error in our request: testing value /spec/rules/0/backendRefs/0/name failed "
                                  "(422 Invalid)")


def test_set_weights_waits_until_the_controller_observed_the_new_generation(tmp_path):
    with FakeApiServer() as api:
        naps = []

        def controller_reconciles_meanwhile(seconds):
            naps.append(seconds)
            if len(naps) == 2:      # Traefik writes the route's status on the second poll
                reconcile(api)

        conn = connect(api, tmp_path, timeout=30.0, sleep=controller_reconciles_meanwhile)
        conn.apply(SHOP, wait=False)
        reconcile(api)              # everything reconciled at generation 1
        route = conn.set_weights("shop/web", {"web-v1": 50, "web-v2": 50})
        assert len(naps) == 2
        assert route["metadata"]["generation"] == 2
        observed = {c["observedGeneration"] for p in route["status"]["parents"] for c in p["conditions"]}
        assert observed == {2}


def test_set_weights_says_when_the_controller_never_catches_up(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path, timeout=0.0)
        conn.apply(SHOP, wait=False)
        reconcile(api)
        with pytest.raises(ClusterTimeout, match=r"HTTPRoute shop/web: new weights not reconciled after 0 s "
                                                 r"\(conditions not observed at generation 2\)"):
            conn.set_weights("shop/web", {"web-v1": 50, "web-v2": 50})
    with FakeApiServer() as api:    # no Gateway controller wrote anything at all
        conn = connect(api, tmp_path, timeout=0.0)
        conn.apply(SHOP, wait=False)
        with pytest.raises(ClusterTimeout, match="no status from traefik.io/gateway-controller"):
            conn.set_weights("shop/web", {"web-v1": 50})


def test_a_weight_that_was_never_set_is_added(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP.replace(", weight: 10}", "}"), wait=False)
        conn.set_weights("shop/web", {"web-v2": 0}, wait=False)
        (patch,) = [r for r in api.requests if r.headers.get("Content-Type") == "application/json-patch+json"]
        assert patch.body[-1] == {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 0}


# -- Argo Rollouts --------------------------------------------------------------------------------

ROLLOUT = ROOT / "data" / "rollouts" / "talk"


def _rollout_cluster(api, conn, status: str, **spec):
    conn.apply(*(ROLLOUT / f for f in ("10-namespace.yaml", "20-gateway.yaml", "30-services.yaml",
                                        "40-httproute.yaml", "50-analysis.yaml", "60-rollout.yaml")), wait=False)
    ro = api.get_object("Rollout", "rollouts-demo", "rollouts-demo")
    ro["metadata"]["generation"] = 2
    ro["spec"].update(spec)
    api.set_status("Rollout", "rollouts-demo", "rollouts-demo", fixture(status))


def test_rollout_status_reads_argo_s_status(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        _rollout_cluster(api, conn, "rollout-paused.json")
        s = conn.rollout_status("rollouts-demo/rollouts-demo")
        assert s == {
            "rollout": "rollouts-demo/rollouts-demo", "phase": "Paused", "message": "CanaryPauseStep",
            "step": 1, "steps": 10, "current_step": {"pause": {"duration": "1m"}}, "paused": True,
            "pause_reasons": ["CanaryPauseStep"], "aborted": False, "weights": {"stable": 80, "canary": 20},
            "stable_hash": "687d76d795", "canary_hash": "7bf84f9696", "replicas": 6, "updated": 1, "ready": 5,
            "available": 5, "analysis": None, "observed": True}
        with pytest.raises(ClusterError, match="Rollout rollouts-demo/nope not found"):
            conn.rollout_status("rollouts-demo/nope")


def test_promote_clears_the_pause_on_the_status_subresource(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        _rollout_cluster(api, conn, "rollout-paused.json")
        conn.promote("rollouts-demo/rollouts-demo")
        (p,) = [r for r in api.requests if r.path.endswith("/rollouts/rollouts-demo/status")]
        assert p.method == "PATCH" and p.headers["Content-Type"] == "application/merge-patch+json"
        assert p.body == {"status": {"pauseConditions": None}}
        assert "pauseConditions" not in api.get_object("Rollout", "rollouts-demo", "rollouts-demo")["status"]


def test_promote_after_an_inconclusive_analysis_moves_to_the_next_step(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        _rollout_cluster(api, conn, "rollout-inconclusive.json", paused=True)
        s = conn.rollout_status("rollouts-demo/rollouts-demo")
        assert s["analysis"] == {"name": "rollouts-demo-7bf84f9696-2-2", "phase": "Inconclusive",
                                 "message": 'Metric "success-rate" assessed Inconclusive due to consecutiveErrors'}
        conn.promote("rollouts-demo/rollouts-demo")
        status_patch, spec_patch = [r for r in api.requests if r.method == "PATCH" and "/rollouts/" in r.path
                                    and r.headers["Content-Type"] == "application/merge-patch+json"]
        assert status_patch.path.endswith("/status")
        assert status_patch.body == {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 3}}
        assert spec_patch.body == {"spec": {"paused": False}} and not spec_patch.path.endswith("/status")


def test_promote_full_abort_and_retry(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        _rollout_cluster(api, conn, "rollout-paused.json")
        conn.promote("rollouts-demo/rollouts-demo", full=True)
        s = conn.abort("rollouts-demo/rollouts-demo")
        assert s["aborted"] and s["phase"] == "Degraded"
        s = conn.retry("rollouts-demo/rollouts-demo")
        assert not s["aborted"]
        bodies = [r.body for r in api.requests if r.method == "PATCH" and r.path.endswith("/status")]
        assert bodies == [{"status": {"promoteFull": True}}, {"status": {"abort": True}}, {"status": {"abort": False}}]


def test_rollouts_without_the_status_subresource_are_patched_directly(tmp_path):
    res = [r if r[2] != "Rollout" else (*r[:5], ("scale",)) for r in RESOURCES]
    with FakeApiServer(resources=res) as api:
        conn = connect(api, tmp_path)
        _rollout_cluster(api, conn, "rollout-paused.json")
        conn.abort("rollouts-demo/rollouts-demo")
        merges = [r for r in api.requests if r.method == "PATCH" and "/rollouts/" in r.path
                  and r.headers["Content-Type"] == "application/merge-patch+json"]
        paths = [r.path for r in merges]
        assert paths == ["/apis/argoproj.io/v1alpha1/namespaces/rollouts-demo/rollouts/rollouts-demo/status",
                         "/apis/argoproj.io/v1alpha1/namespaces/rollouts-demo/rollouts/rollouts-demo"]
        conn.promote("rollouts-demo/rollouts-demo")
        assert api.requests[-1].body == \
            {"spec": {"paused": False}, "status": {"pauseConditions": None}}


def test_a_409_conflict_is_the_api_s_own_message(tmp_path):
    msg = ('Operation cannot be fulfilled on rollouts.argoproj.io "rollouts-demo": the object has been modified; '
           'please apply your changes to the latest version and try again')
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        _rollout_cluster(api, conn, "rollout-paused.json")
        api.fail("PATCH", "/rollouts/rollouts-demo/status$", 409, "Conflict", msg,
                 {"name": "rollouts-demo", "group": "argoproj.io", "kind": "rollouts"})
        with pytest.raises(ClusterError) as err:
            conn.abort("rollouts-demo/rollouts-demo")
        assert str(err.value) == f"abort Rollout rollouts-demo/rollouts-demo: {msg} (409 Conflict)"
        assert err.value.status == 409


def test_wait_rollout(tmp_path):
    with FakeApiServer() as api:
        lines = []
        conn = connect(api, tmp_path, progress=lines.append)
        _rollout_cluster(api, conn, "rollout-paused.json")
        assert conn.wait_rollout("rollouts-demo/rollouts-demo")["phase"] == "Paused"
        with pytest.raises(ClusterTimeout, match="is Paused after 0 s, not Healthy"):
            conn.wait_rollout("rollouts-demo/rollouts-demo", phases=("Healthy",), timeout=0)
        assert lines == ["gwlib: Rollout rollouts-demo/rollouts-demo: Paused step 1/10 (CanaryPauseStep)"]


# -- delete and clean -------------------------------------------------------------------------------

def test_delete_removes_the_objects_and_their_echo_backends(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP, wait=False)
        services = SHOP.split("---")[3]
        assert conn.delete(services) == 2          # the Service and gwlib's echo Deployment for it
        deleted = [r.path for r in api.requests if r.method == "DELETE"]
        assert deleted == ["/apis/apps/v1/namespaces/shop/deployments/gwlib-echo-web-v1",
                           "/api/v1/namespaces/shop/services/web-v1"]
        assert all(r.body == {"propagationPolicy": "Background"} for r in api.requests if r.method == "DELETE")
        assert conn.delete(services) == 0


def _cluster_with_neighbours(api):
    """gwlib's objects next to objects of others."""
    api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    api.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "theirs", "namespace": "team"}})
    api.put(managed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stray", "namespace": "team"}}))
    api.put({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "theirs"},
             "spec": {"controllerName": "example.com/x"}})
    api.put(managed({"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterAnalysisTemplate",
                     "metadata": {"name": "success-rate"}, "spec": {"metrics": []}}))


def test_clean_selects_exactly_what_gwlib_created(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP, wait=False)
        _cluster_with_neighbours(api)
        before = set(api.objects)
        targets = conn.clean(dry_run=True)
        assert targets == [
            {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "team", "name": "stray"},
            {"apiVersion": "v1", "kind": "Namespace", "namespace": None, "name": "shop"},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "namespace": None, "name": "traefik"},
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterAnalysisTemplate", "namespace": None,
             "name": "success-rate"}]
        assert set(api.objects) == before and not [r for r in api.requests[-30:] if r.method == "DELETE"]
        conn.clean()
        left = {(k[0], k[2], k[3]) for k in api.objects}
        assert left == {("namespaces", None, "team"), ("services", "team", "theirs"),
                        ("gatewayclasses", None, "theirs")}
        assert conn.status() == [] and conn.objects == []


def test_clean_command(tmp_path, monkeypatch, capsys):
    from gwlib.cli import main
    from gwlib import cli
    if "cluster" not in cli._COMMAND_MODULES:
        monkeypatch.setattr(cli, "_COMMAND_MODULES", (*cli._COMMAND_MODULES, "cluster"))
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP, wait=False)
        path = str(tmp_path / "kubeconfig")
        assert main(["cluster", "clean", "--kubeconfig", path, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines() == ["context kind-gwlib: would delete 2 object(s) gwlib created",
                                    "  Namespace shop (and everything in it)", "  GatewayClass traefik"]
        assert main(["cluster", "clean", "--kubeconfig", path, "-o", "json", "--wait"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["dry_run"] is False and [i["name"] for i in data["items"]] == ["shop", "traefik"]
        assert api.get_object("Namespace", "shop") is None
        assert main(["cluster", "clean", "--kubeconfig", path]) == 0
        assert capsys.readouterr().out == "context kind-gwlib: nothing gwlib created\n"
        api.fail("GET", "/api/v1/namespaces$", 403, "Forbidden", 'namespaces is forbidden: User "dev" cannot list '
                 'resource "namespaces" in API group "" at the cluster scope')
        assert main(["cluster", "clean", "--kubeconfig", path]) == 1
        err = capsys.readouterr().err
        assert err == ('gwlib cluster clean: list namespaces: namespaces is forbidden: User "dev" cannot list resource '
                       '"namespaces" in API group "" at the cluster scope (403 Forbidden)\n')


def test_echo_backends_in_the_applied_objects(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        with pytest.warns(gwlib.cluster.ClusterWarning, match="Deployment shop/web-v2: ghcr.io/example/web:2.0.0"):
            conn.apply(SHOP, wait=False)
        web2 = api.get_object("Deployment", "web-v2", "shop")
        tpl = web2["spec"]["template"]
        assert tpl["metadata"] == {"labels": {"app": "web", "version": "v2"},
                                   "annotations": {"linkerd.io/inject": "enabled"}}
        (c,) = tpl["spec"]["containers"]
        assert c["image"] == ECHO_IMAGE and c["ports"] == [{"containerPort": 8080, "protocol": "TCP", "name": "http"}]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
        assert env["SERVICE_NAME"] == "web-v2" and env["HTTP_PORT"] == "8080"
        assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert "readinessProbe" not in c and "args" not in c
        echo1 = api.get_object("Deployment", "gwlib-echo-web-v1", "shop")
        assert echo1["spec"]["template"]["metadata"]["labels"] == {"app": "web", "version": "v1",
                                                                   "gwlib.dev/echo": "web-v1"}
        assert echo1["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gwlib"


def test_as_written_backends_apply_workloads_unchanged(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path, backends="as-written")
        conn.apply(SHOP, wait=False)
        c = api.get_object("Deployment", "web-v2", "shop")["spec"]["template"]["spec"]["containers"][0]
        assert c["image"] == "ghcr.io/example/web:2.0.0"
        assert api.get_object("Deployment", "gwlib-echo-web-v1", "shop") is None
    with pytest.raises(ValueError, match="backends must be"):
        connect(api, tmp_path, backends="fake")


# -- options ------------------------------------------------------------------------------------

def test_host_ports_from_the_environment(tmp_path, monkeypatch):
    from gwlib.cluster import DEFAULT_PORTS

    with FakeApiServer() as api:
        monkeypatch.delenv("GWLIB_CLUSTER_PORTS", raising=False)
        assert connect(api, tmp_path).host_ports == DEFAULT_PORTS == {80: 8080, 443: 8443}
        monkeypatch.setenv("GWLIB_CLUSTER_PORTS", "80=9080, 443=9443")
        assert connect(api, tmp_path).host_ports == {80: 9080, 443: 9443}
        assert connect(api, tmp_path, ports={8000: 1}).host_ports == {8000: 1}
        monkeypatch.setenv("GWLIB_CLUSTER_PORTS", "80:9080")
        with pytest.raises(ValueError, match="is not GATEWAY_PORT=LOCAL_PORT"):
            connect(api, tmp_path)


def test_lab_options_are_accepted(tmp_path):
    with FakeApiServer() as api:
        with pytest.warns(gwlib.cluster.ClusterWarning, match="dataplane='envoy' is a lab setting"):
            connect(api, tmp_path, dataplane="envoy", seed=3)
        conn = connect(api, tmp_path, dataplane="traefik")
        assert repr(conn) == "<gwlib cluster connection: context kind-gwlib, 0 objects applied>"
        with conn:
            pass


def test_the_live_suite_s_manifests_apply(tmp_path):
    import test_live

    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(test_live.MANIFESTS, wait=False)
        conn.apply(test_live.ROLLOUT.replace("VERSION", "v1"), wait=False)
        assert api.get_object("GatewayClass", "gwlib-live")["spec"]["controllerName"] == "traefik.io/gateway-controller"
        ro = api.get_object("Rollout", "demo", "gwlib-live")
        assert ro["spec"]["template"]["spec"]["containers"][0]["image"] == ECHO_IMAGE
        assert api.get_object("Deployment", "gwlib-echo-web-v1", "gwlib-live") is not None
        assert api.get_object("Deployment", "gwlib-echo-demo-stable", "gwlib-live") is None   # the Rollout backs it
        conn.set_weights("gwlib-live/web", {"web-v1": 50, "web-v2": 50}, wait=False)
        assert [t["name"] for t in conn.clean()] == ["gwlib-live", "gwlib-live"]


def test_wait_is_for_what_this_connection_applied(tmp_path):
    with FakeApiServer() as api:
        api.put(managed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old"}}))
        api.put(managed({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                         "metadata": {"name": "stale", "namespace": "old"},
                         "spec": {"gatewayClassName": "traefik", "listeners": [{"name": "h", "port": 80,
                                                                                  "protocol": "HTTP"}]}}))
        conn = connect(api, tmp_path, sleep=lambda _s: reconcile(api), timeout=60)
        conn.apply(SHOP)
        api.set_status("Gateway", "stale", "old", fixture("gateway-pending.json"))
        assert conn.wait(timeout=0)       # the stale Gateway of an earlier session does not hold it up
        assert len(conn.status()) == 4
