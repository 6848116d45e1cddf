"""Echo backends in cluster mode: which workloads run the conformance echo server, on which
ports, and which Services get an echo Deployment of their own."""
from __future__ import annotations

from pathlib import Path

import gwlib
from gwlib.cluster import echo

ROOT = Path(__file__).resolve().parents[1]


def _docs(*sources):
    return [o.to_dict() for o in gwlib.load(*sources)]


def _env(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_rollout_demo_runs_the_echo_on_its_port():
    docs = _docs(ROOT / "data" / "rollouts" / "talk")
    out, notes = echo.plan(docs)
    assert notes == ["Rollout rollouts-demo/rollouts-demo: argoproj/rollouts-demo:yellow"]
    ro = next(o for o in out if o["kind"] == "Rollout")
    (c,) = ro["spec"]["template"]["spec"]["containers"]
    assert c["name"] == "rollouts-demo" and c["image"] == echo.ECHO_IMAGE
    env = _env(c)
    assert env["HTTP_PORT"] == "8080" and "SERVICE_NAME" not in env     # stable and canary both select it
    assert ro["spec"]["template"]["metadata"]["labels"] == {"app": "rollouts-demo", "version": "v2"}
    assert ro["spec"]["strategy"] == next(o for o in docs if o["kind"] == "Rollout")["spec"]["strategy"]
    assert not any(o["kind"] == "Deployment" for o in out)               # the Rollout backs both Services
    assert gwlib.validate(out) == []


def test_services_without_a_workload_get_an_echo_deployment():
    docs = _docs(ROOT / "data" / "manifests" / "talk")
    out, notes = echo.plan(docs)
    assert notes == []
    (dep,) = [o for o in out if o["kind"] == "Deployment"]
    assert dep["metadata"] == {"name": "gwlib-echo-argocd-server", "namespace": "argocd",
                               "labels": {"app.kubernetes.io/name": "gwlib-echo", "gwlib.dev/echo": "argocd-server"}}
    assert dep["spec"]["selector"] == {"matchLabels": {"gwlib.dev/echo": "argocd-server"}}
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/name": "argocd-server", "gwlib.dev/echo": "argocd-server"}
    (c,) = dep["spec"]["template"]["spec"]["containers"]    # ports 80 and 443 both target 8080
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert _env(c)["SERVICE_NAME"] == "argocd-server"
    assert "securityContext" not in dep["spec"]["template"]["spec"]
    assert gwlib.validate(out) == []


def test_several_ports_named_targets_and_privileged_ports():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "multi", "namespace": "x"},
           "spec": {"selector": {"app": "m"}, "ports": [
               {"name": "http", "port": 80, "targetPort": 80},
               {"name": "admin", "port": 9000, "targetPort": "admin"},
               {"name": "dns", "port": 53, "protocol": "UDP"}]}}
    dep = echo.echo_deployment(svc)
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["echo", "echo-3001"]
    assert [c["ports"] for c in containers] == [[{"containerPort": 80, "protocol": "TCP"}],
                                                [{"containerPort": 3001, "protocol": "TCP", "name": "admin"}]]
    h2c = [_env(c)["H2C_PORT"] for c in containers]
    assert len(set(h2c)) == 2 and not {"80", "3001"} & set(h2c)    # no two containers of a pod share a port
    assert dep["spec"]["template"]["spec"]["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]


def test_grpc_backends_run_the_echo_s_grpc_server():
    docs = _docs(ROOT / "data" / "manifests" / "talk-mesh")
    out, _ = echo.plan(docs)
    api = next(o for o in out if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
    web = next(o for o in out if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")
    assert _env(api["spec"]["template"]["spec"]["containers"][0]).get("GRPC_ECHO_SERVER") == "1"
    assert "GRPC_ECHO_SERVER" not in _env(web["spec"]["template"]["spec"]["containers"][0])
    client = next(o for o in out if o["kind"] == "Deployment" and o["metadata"]["name"] == "client")
    assert client == next(o for o in docs if o["metadata"]["name"] == "client")     # a client stays as written


def test_external_name_and_selectorless_services_get_nothing():
    docs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "x"},
             "spec": {"type": "ExternalName", "externalName": "example.com", "selector": {"a": "b"}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual", "namespace": "x"},
             "spec": {"ports": [{"port": 80}]}}]
    assert echo.plan(docs) == (docs, [])
