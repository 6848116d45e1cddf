"""The cluster recipe: manifests (validated offline) and reading Job logs back."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import gwlib.latency as L
from gwlib.latency import cluster

FIX = Path(__file__).parent / "fixtures" / "latency" / "cluster"


def test_echo_manifests_mesh_one_namespace_only():
    objs = cluster.echo_manifests()
    ns = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Namespace"}
    assert ns["bench-mesh"]["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    assert ns["bench-baseline"]["metadata"]["annotations"]["linkerd.io/inject"] == "disabled"
    deps = [o for o in objs if o["kind"] == "Deployment"]
    assert {d["metadata"]["namespace"] for d in deps} == {"bench-mesh", "bench-baseline"}
    assert deps[0]["spec"]["template"]["spec"]["containers"][0]["args"][0] == "server"
    assert yaml.safe_load_all(cluster.to_yaml(objs))


def test_jobs_interleave_baseline_and_mesh_and_mesh_the_client():
    jobs = cluster.plan("fortio", rates=(20, 200), runs=2, duration_s=30)
    assert len(jobs) == 8
    assert [j["metadata"]["labels"]["gwlib.dev/mesh"] for j in jobs[:4]] == ["baseline", "linkerd"] * 2
    mesh = next(j for j in jobs if j["metadata"]["namespace"] == "bench-mesh")
    ann = mesh["spec"]["template"]["metadata"]["annotations"]
    assert ann["linkerd.io/inject"] == "enabled"
    assert ann["config.beta.linkerd.io/proxy-enable-native-sidecar"] == "true"
    args = mesh["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["load", "-qps", "20"] and "-json" in args and args[-1].startswith("http://echo.bench-mesh")
    assert mesh["spec"]["backoffLimit"] == 0 and mesh["spec"]["activeDeadlineSeconds"] == 330


def test_wrk2_job():
    j = cluster.job_manifest("wrk2", "baseline", 2000, 1, connections=64)
    c = j["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["wrk"] and "-R2000" in c["args"] and "--latency" in c["args"]
    assert j["metadata"]["name"] == "wrk2-base-2000rps-run1"
    with pytest.raises(ValueError):
        cluster.job_manifest("ab", "baseline", 1, 1)
    with pytest.raises(ValueError):
        cluster.job_manifest("fortio", "istio", 1, 1)


def test_manifests_validate_as_the_api_server_would():
    import gwlib
    objs = cluster.echo_manifests() + cluster.plan("fortio", rates=(200,), runs=1)
    assert gwlib.validate(cluster.to_yaml(objs)) == []


def test_from_logs():
    df, results = cluster.from_logs(FIX)
    assert set(df["mesh"]) == {"linkerd", "baseline"}
    fortio = next(r for r in results if r.tool == "fortio")
    assert fortio.run == "1" and fortio.rate == 200 and fortio.meta["mesh"] == "linkerd"
    wrk = next(r for r in results if r.tool == "wrk2")
    assert wrk.rate == 200.0 and wrk.meta["mesh"] == "baseline"   # the rate comes from the Job name
    assert list(df.columns[:2]) == ["tool", "mesh"]


class FakeCore:
    """Just enough of kubernetes.client.CoreV1Api for collect()."""

    def __init__(self, logs):
        self.logs = logs

    def list_namespaced_pod(self, ns, label_selector):
        assert "app.kubernetes.io/part-of=gwlib-latency" in label_selector
        items = []
        for (pod_ns, name), (labels, _) in self.logs.items():
            if pod_ns == ns:
                items.append(SimpleNamespace(metadata=SimpleNamespace(name=name, labels=labels),
                                             status=SimpleNamespace(phase="Succeeded")))
        return SimpleNamespace(items=items)

    def read_namespaced_pod_log(self, name, ns, container=None):
        return self.logs[(ns, name)][1]


def test_collect_reads_pod_logs(tmp_path):
    fortio_log = (FIX / "fortio-mesh-200rps-run1.log").read_text()
    api = FakeCore({("bench-mesh", "fortio-mesh-200rps-run1-abcde"): (
        {"gwlib.dev/tool": "fortio", "gwlib.dev/mesh": "linkerd", "gwlib.dev/rate": "200", "gwlib.dev/run": "1",
         "job-name": "fortio-mesh-200rps-run1"}, fortio_log)})
    df, results = cluster.collect(api, save_dir=tmp_path)
    assert results[0].meta["mesh"] == "linkerd" and results[0].source == "bench-mesh/fortio-mesh-200rps-run1-abcde"
    assert (tmp_path / "fortio-mesh-200rps-run1.log").exists()
    df2, _ = cluster.from_logs(tmp_path)
    assert df2["latency_ms"].tolist() == df["latency_ms"].tolist()
    bad = FakeCore({("bench-mesh", "p"): ({"gwlib.dev/tool": "fortio"}, "no output\n")})
    with pytest.raises(L.ParseError, match="bench-mesh/p"):
        cluster.collect(bad)
    with pytest.raises(LookupError):
        cluster.collect(FakeCore({}))
