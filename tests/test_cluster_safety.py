"""Cluster mode's safety guard: contexts, namespaces and objects gwlib may touch.

A refused context is refused before any API call: the kubeconfig points at a fake API
server that records every request, the REST layer of the kubernetes client fails the test
when called, and the kubeconfig's exec credential plugin would leave a marker file if it ran.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "cluster"))

from fakeapi import FakeApiServer  # noqa: E402
from support import SHOP, connect, managed  # noqa: E402

from gwlib.cluster import ClusterConnection, ClusterError, ContextRefused, UnsafeObject  # noqa: E402
from gwlib.cluster import safety  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::gwlib.cluster.ClusterWarning")


# -- the allowlist ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["kind-gwlib", "kind-kind", "k3d-demo", "k3d-x-y"])
def test_local_clusters_are_allowed(name):
    assert safety.is_allowed(name, env={})
    safety.check_context(name, env={})


@pytest.mark.parametrize("name", ["prod", "gke_acme_europe-west1_prod", "arn:aws:eks:eu-west-1:1:cluster/prod",
                                  "minikube", "docker-desktop", "kind", "xkind-gwlib", "K3D-demo", ""])
def test_other_contexts_are_refused(name):
    assert not safety.is_allowed(name, env={})
    with pytest.raises(ContextRefused) as err:
        safety.check_context(name, env={})
    assert "\n" not in str(err.value) and "GWLIB_ALLOW_CONTEXT" in str(err.value)


def test_allow_env_names_exact_contexts():
    env = {"GWLIB_ALLOW_CONTEXT": "minikube, docker-desktop staging"}
    for name in ("minikube", "docker-desktop", "staging", "kind-x"):
        assert safety.is_allowed(name, env=env)
    for name in ("prod", "minikube2", "staging*", "stag"):
        assert not safety.is_allowed(name, env=env)
    assert not safety.is_allowed("prod", env={"GWLIB_ALLOW_CONTEXT": "*"})  # names, not patterns


# -- refused before any API call ------------------------------------------------------------

@pytest.fixture
def no_http(monkeypatch):
    """The kubernetes client's REST layer fails the test if anything reaches it."""
    from kubernetes.client import rest

    def boom(*a, **k):
        raise AssertionError(f"an API call was made: {a[1:3]}")
    monkeypatch.setattr(rest.RESTClientObject, "request", boom)


def _kubeconfig_with_exec(api, tmp_path, marker: Path) -> str:
    """A kubeconfig whose "prod" user gets credentials from an exec plugin that leaves a file."""
    plugin = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "sh",
                       "args": ["-c", f"touch {marker}; echo '{{\"apiVersion\": \"client.authentication.k8s.io/v1\", "
                                      "\"kind\": \"ExecCredential\", \"status\": {\"token\": \"x\"}}'"],
                       "interactiveMode": "Never"}}
    path = api.kubeconfig(tmp_path / "kubeconfig", context="kind-gwlib", extra_contexts={"prod": plugin})
    cfg = yaml.safe_load(Path(path).read_text())
    cfg["current-context"] = "prod"
    Path(path).write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("how", ["current-context", "argument", "GWLIB_CONTEXT"])
def test_refused_context_makes_no_api_call(tmp_path, monkeypatch, no_http, how):
    marker = tmp_path / "exec-plugin-ran"
    with FakeApiServer(forbid=True) as api:
        path = _kubeconfig_with_exec(api, tmp_path, marker)
        monkeypatch.delenv("GWLIB_ALLOW_CONTEXT", raising=False)
        monkeypatch.delenv("GWLIB_CONTEXT", raising=False)
        kw = {}
        if how == "argument":
            kw["context"] = "prod"
        elif how == "GWLIB_CONTEXT":
            monkeypatch.setenv("GWLIB_CONTEXT", "prod")
        with pytest.raises(ContextRefused) as err:
            ClusterConnection(kubeconfig=path, **kw)
        assert api.requests == [] and api.violations == []
    assert not marker.exists(), "the credential plugin ran before the context was checked"
    assert "'prod' is not allowed" in str(err.value)
    assert err.value._render_traceback_() == [f"ContextRefused: {err.value}"]


def test_refused_context_in_the_cli_is_one_line(tmp_path, monkeypatch, no_http, capsys):
    from gwlib.cli import main

    with FakeApiServer(forbid=True) as api:
        path = _kubeconfig_with_exec(api, tmp_path, tmp_path / "ran")
        monkeypatch.delenv("GWLIB_ALLOW_CONTEXT", raising=False)
        monkeypatch.delenv("GWLIB_CONTEXT", raising=False)
        _register(monkeypatch)
        code = main(["cluster", "clean", "--kubeconfig", path])
        assert api.requests == []
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("gwlib cluster clean: kube context 'prod' is not allowed")


def _register(monkeypatch):
    """Until cli._COMMAND_MODULES lists "cluster", register it for the test."""
    from gwlib import cli
    if "cluster" not in cli._COMMAND_MODULES:
        monkeypatch.setattr(cli, "_COMMAND_MODULES", (*cli._COMMAND_MODULES, "cluster"))


def test_allowed_by_env_then_calls_are_made(tmp_path, monkeypatch):
    with FakeApiServer() as api:
        path = api.kubeconfig(tmp_path / "kubeconfig", context="staging")
        monkeypatch.setenv("GWLIB_ALLOW_CONTEXT", "staging")
        conn = ClusterConnection(kubeconfig=path, progress=False)
        assert conn.context == "staging" and api.requests == []   # connecting sends nothing
        assert conn.status() == []
        assert api.requests


def test_missing_or_unknown_kubeconfig_context_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("GWLIB_CONTEXT", raising=False)
    with pytest.raises(ClusterError) as err:
        ClusterConnection(kubeconfig=str(tmp_path / "nope"))
    assert "no kubeconfig at" in str(err.value) and "cluster-up.sh" in str(err.value)
    with FakeApiServer(forbid=True) as api:
        path = api.kubeconfig(tmp_path / "kubeconfig")
        with pytest.raises(ClusterError) as err:
            ClusterConnection(kubeconfig=path, context="kind-other")
        assert "has no context 'kind-other' (it has kind-gwlib)" in str(err.value)
        assert api.requests == []


def test_connect_cluster_mode_returns_a_cluster_connection(tmp_path, monkeypatch):
    import gwlib

    with FakeApiServer(forbid=True) as api:
        path = api.kubeconfig(tmp_path / "kubeconfig")
        try:
            conn = gwlib.connect("cluster", kubeconfig=path, progress=False)
        except NotImplementedError:
            pytest.skip("gwlib.connect('cluster') is not wired to ClusterConnection yet (gwlib/connection.py)")
        assert isinstance(conn, ClusterConnection) and conn.context == "kind-gwlib"
        monkeypatch.setenv("GWLIB_MODE", "cluster")
        monkeypatch.delenv("GWLIB_ALLOW_CONTEXT", raising=False)
        assert isinstance(gwlib.connect(kubeconfig=path, progress=False), ClusterConnection)
        assert api.requests == []


# -- namespaces and objects ---------------------------------------------------------------------

def _writes(api):
    return [r for r in api.requests if r.method in ("PATCH", "DELETE", "POST", "PUT")]


def test_default_and_kube_namespaces_are_never_written(tmp_path):
    with FakeApiServer() as api:
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        conn = connect(api, tmp_path)
        svc = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"
        with pytest.raises(UnsafeObject) as err:
            conn.apply(svc)
        assert "gwlib never writes into namespace default" in str(err.value)
        with pytest.raises(UnsafeObject):
            conn.apply(svc.replace("name: a}", "name: a, namespace: kube-system}"))
        with pytest.raises(UnsafeObject):
            conn.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-public}\n")
        assert _writes(api) == []


def test_a_namespace_someone_else_made_is_refused_and_nothing_is_written(tmp_path):
    with FakeApiServer() as api:
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})   # not gwlib's
        conn = connect(api, tmp_path)
        with pytest.raises(UnsafeObject) as err:
            conn.apply(SHOP)
        line = str(err.value)
        assert line.startswith("nothing applied: Namespace shop exists and was not created by gwlib")
        assert "namespace shop was not created by gwlib" in line and "\n" not in line
        assert _writes(api) == []


def test_an_object_someone_else_made_is_refused(tmp_path):
    with FakeApiServer() as api:
        api.put(managed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        api.put({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "traefik"},
                 "spec": {"controllerName": "traefik.io/gateway-controller"}})    # the chart's, say
        conn = connect(api, tmp_path)
        with pytest.raises(UnsafeObject) as err:
            conn.apply(SHOP)
        assert "GatewayClass traefik exists and was not created by gwlib" in str(err.value)
        assert _writes(api) == []


def test_cluster_wide_installation_objects_are_refused_or_skipped(tmp_path):
    install = Path(__file__).resolve().parents[1] / "data" / "rollouts" / "talk" / "00-install.yaml"
    with FakeApiServer() as api:
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argo-rollouts"}})
        conn = connect(api, tmp_path)
        with pytest.raises(UnsafeObject) as err:
            conn.apply(install)
        assert "ConfigMap argo-rollouts/argo-rollouts-config: namespace argo-rollouts was not created by gwlib" \
            in str(err.value)
        assert "a cluster-wide ClusterRole is installation" in str(err.value)
        assert _writes(api) == []
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            assert conn.apply(install, SHOP, skip_foreign=True, wait=False)
        assert any("skipped (outside gwlib's reach)" in str(x.message) for x in w)
        written = {r.path for r in _writes(api)}
        assert not any("argo-rollouts" in p or "clusterrole" in p for p in written)
        assert "/api/v1/namespaces/shop/services/web-v1" in written


def test_missing_namespaces_are_created_with_the_label(tmp_path):
    with FakeApiServer() as api:
        conn = connect(api, tmp_path)
        conn.apply(SHOP.split("---", 1)[1].replace("namespace: shop", "namespace: shop2"), wait=False)
        ns = api.get_object("Namespace", "shop2")
        assert ns["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "gwlib"}
        first = next(r for r in _writes(api) if "dryRun" not in r.query)
        assert first.path == "/api/v1/namespaces/shop2"          # namespaces first


def test_changes_to_objects_gwlib_did_not_create_are_refused(tmp_path):
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "web", "namespace": "team"},
             "spec": {"rules": [{"backendRefs": [{"name": "a", "port": 80, "weight": 1}]}]}}
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r", "namespace": "team"},
               "spec": {"strategy": {"canary": {"steps": [{"pause": {}}]}}}, "status": {"pauseConditions": [{}]}}
    with FakeApiServer() as api:
        api.put(route)
        api.put(rollout)
        conn = connect(api, tmp_path)
        with pytest.raises(UnsafeObject, match="was not created by gwlib: not changing it"):
            conn.set_weights("team/web", {"a": 5})
        for action in (conn.promote, conn.abort, conn.retry):
            with pytest.raises(UnsafeObject):
                action("team/r")
        with pytest.raises(UnsafeObject, match="nothing deleted"):
            conn.delete(route)
        assert _writes(api) == []
