"""Linkerd proxy metrics in cluster mode: Prometheus text parsed with prometheus_client,
labelled as a Prometheus scrape labels it, golden metrics, and reading them through the
API server's pod proxy."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "cluster"))

from fakeapi import FakeApiServer  # noqa: E402
from support import connect, fixture  # noqa: E402

from gwlib.cluster import metrics  # noqa: E402

TEXT = fixture("linkerd-proxy-metrics.txt")
POD_LABELS = {"app": "web", "rollouts-pod-template-hash": "7bf84f9696", "linkerd.io/control-plane-ns": "linkerd",
              "linkerd.io/proxy-deployment": "web-v2", "linkerd.io/workload-ns": "shop",
              "app.kubernetes.io/version": "2.0.0"}


def test_target_labels_follow_the_scrape_config():
    labels = metrics.target_labels("shop", "web-v2-abc", POD_LABELS)
    assert labels == {"namespace": "shop", "pod": "web-v2-abc", "deployment": "web-v2", "control_plane_ns": "linkerd",
                      "workload_ns": "shop", "app": "web", "rollouts_pod_template_hash": "7bf84f9696",
                      "app_kubernetes_io_version": "2.0.0"}


def test_parse_the_proxy_s_exposition():
    samples = metrics.parse(TEXT, metrics.target_labels("shop", "web-v2-abc", POD_LABELS))
    names = {s.name for s in samples}
    assert {"request_total", "response_total", "response_latency_ms_bucket", "response_latency_ms_count",
            "response_latency_ms_sum", "process_start_time_seconds", "tcp_open_total"} <= names
    ok = [s for s in samples if s.name == "response_total" and s.labels["classification"] == "success"
          and s.labels["direction"] == "inbound"]
    assert [s.value for s in ok] == [200.0]
    assert ok[0].labels["rollouts_pod_template_hash"] == "7bf84f9696" and ok[0].labels["namespace"] == "shop"
    tcp = next(s for s in samples if s.name == "tcp_open_total")
    assert tcp.labels["exported_namespace"] == "shop" and tcp.labels["namespace"] == "shop"  # a clash, as Prometheus
    inf = [s for s in samples if s.name == "response_latency_ms_bucket" and s.labels["le"] == "+Inf"]
    assert sorted(s.value for s in inf) == [4.0, 200.0]


def test_histogram_quantile_matches_prometheus():
    buckets = [(1.0, 100.0), (5.0, 160.0), (20.0, 190.0), (100.0, 200.0), (math.inf, 200.0)]
    assert metrics.histogram_quantile(0.5, buckets) == 1.0
    assert metrics.histogram_quantile(0.75, buckets) == pytest.approx(1 + 4 * (150 - 100) / 60)
    assert metrics.histogram_quantile(0.99, buckets) == pytest.approx(20 + 80 * (198 - 190) / 10)
    assert metrics.histogram_quantile(0.999, [(1.0, 1.0), (math.inf, 10.0)]) == 1.0   # in +Inf: highest bound
    assert math.isnan(metrics.histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))
    assert math.isnan(metrics.histogram_quantile(0.5, []))


def test_golden_metrics_and_deltas():
    extra = metrics.target_labels("shop", "web-v2-abc", POD_LABELS)
    later = metrics.Scrape(metrics.parse(TEXT, extra))
    frame = later.golden()
    assert list(frame.columns) == ["namespace", "workload", "requests", "success_rate", "p50_ms", "p99_ms"]
    row = frame.iloc[0]
    assert (row["namespace"], row["workload"], row["requests"]) == ("shop", "web-v2", 204)
    assert row["success_rate"] == pytest.approx(200 / 204)
    # the 200 and 500 buckets summed: le=1 holds 100, le=2 holds 104 (the 4 errors took 2 ms); rank 102
    assert row["p50_ms"] == pytest.approx(1 + (2 - 1) * (102 - 100) / (104 - 100))
    earlier_text = TEXT.replace("} 200\n", "} 150\n").replace("} 4\n", "} 4\n")
    earlier = metrics.Scrape(metrics.parse(earlier_text, extra))
    delta = later.golden(since=earlier)
    assert delta.iloc[0]["requests"] == 50 and delta.iloc[0]["success_rate"] == 1.0
    by_hash = later.golden(by=("namespace", "rollouts_pod_template_hash"))
    assert by_hash.iloc[0]["rollouts_pod_template_hash"] == "7bf84f9696"
    out = later.golden(direction="outbound")
    assert out.iloc[0]["requests"] == 40 and math.isnan(out.iloc[0]["p99_ms"])
    assert len(later.select("response_total", direction="inbound", classification="failure")) == 1
    assert set(later.to_frame().columns) >= {"metric", "value", "namespace", "pod", "direction"}


def _pod(name, labels, meshed=True, phase="Running", native=False):
    proxy = {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.6.3",
             "ports": [{"name": "linkerd-admin", "containerPort": 4191}]}
    spec = {"containers": [{"name": "web", "image": "echo"}]}
    if meshed and native:
        spec["initContainers"] = [{**proxy, "restartPolicy": "Always"}]
    elif meshed:
        spec["containers"].append(proxy)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": spec, "status": {"phase": phase, "podIP": "10.244.0.22"}}


def test_scrape_proxies_through_the_api_server_pod_proxy(tmp_path):
    with FakeApiServer() as api:
        api.put(_pod("web-v2-abc", POD_LABELS, native=True))
        api.put(_pod("web-v1-xyz", {"app": "web"}, meshed=False))
        api.put(_pod("web-v2-pending", POD_LABELS, phase="Pending"))
        api.put(_pod("web-v2-down", POD_LABELS))
        api.proxy[("shop", "web-v2-abc", 4191, "metrics")] = TEXT
        conn = connect(api, tmp_path)
        scrape = conn.scrape_proxies("shop", selector="app=web")
        proxied = [r.path for r in api.requests if "/proxy/" in r.path]
        assert proxied == ["/api/v1/namespaces/shop/pods/web-v2-abc:4191/proxy/metrics",
                           "/api/v1/namespaces/shop/pods/web-v2-down:4191/proxy/metrics"]
        assert [r.q("labelSelector") for r in api.requests if r.path.endswith("/pods")] == ["app=web"]
        assert len(scrape.errors) == 1 and scrape.errors[0].startswith(
            "read metrics of pod shop/web-v2-down:4191: error trying to reach service")
        assert {s.labels["pod"] for s in scrape.samples} == {"web-v2-abc"}
        frame = conn.mesh_metrics("shop")
        assert frame.iloc[0]["requests"] == 204


def test_mesh_metrics_of_every_namespace_gwlib_created(tmp_path):
    with FakeApiServer() as api:
        for ns in ("shop", "team"):
            api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": ns, "labels": {"app.kubernetes.io/managed-by": "gwlib"} if ns == "shop" else {}}})
        api.put(_pod("web-v2-abc", POD_LABELS))
        api.proxy[("shop", "web-v2-abc", 4191, "metrics")] = TEXT
        team = _pod("other", POD_LABELS)
        team["metadata"]["namespace"] = "team"
        api.put(team)
        frame = connect(api, tmp_path).mesh_metrics()
        assert list(frame["namespace"]) == ["shop"] and frame.iloc[0]["requests"] == 204
        assert not [r for r in api.requests if "/namespaces/team/" in r.path]


def test_prometheus_query_through_the_api_server_service_proxy(tmp_path):
    import json as _json

    from gwlib.cluster import ClusterError

    def prometheus(rec):
        q = rec.q("query")
        if "bad(" in q:
            return _json.dumps({"status": "error", "errorType": "bad_data",
                                "error": 'invalid parameter "query": 1:5: parse error: unexpected "("'})
        return _json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1788256900.0, "0.9803921568627451"]}]}})

    with FakeApiServer() as api:
        api.proxy[("linkerd-viz", "svc/prometheus", 9090, "api/v1/query")] = prometheus
        conn = connect(api, tmp_path)
        query = 'sum(rate(response_total{namespace="shop", classification="success"}[1m]))'
        assert conn.prometheus_query(query, at=1788256900) == [{"metric": {}, "value": [1788256900.0,
                                                                                        "0.9803921568627451"]}]
        (rec,) = [r for r in api.requests if "/proxy/" in r.path]
        assert rec.path == "/api/v1/namespaces/linkerd-viz/services/prometheus:9090/proxy/api/v1/query"
        assert rec.q("query") == query and rec.q("time") == "1788256900.000"
        with pytest.raises(ClusterError, match='bad_data: invalid parameter "query"'):
            conn.prometheus_query("bad(")
        with pytest.raises(ClusterError, match='no endpoints available for service "prometheus:9090"'):
            conn.prometheus_query("up", namespace="monitoring")
