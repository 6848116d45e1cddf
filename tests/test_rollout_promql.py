"""The PromQL subset and Linkerd's series recorded from traffic."""
from __future__ import annotations

import math

import pytest

from gwlib.rollout import promql
from gwlib.rollout.manifests import LATENCY_QUERY, SUCCESS_RATE_QUERY
from gwlib.rollout.series import LINKERD_BUCKETS_MS, Observation, SeriesStore, prom_label


def _store() -> SeriesStore:
    s = SeriesStore()
    s.record(0, 60, [
        Observation("demo", "canary", "demo-abc-lab-0", {"app": "demo", "rollouts-pod-template-hash": "abc"},
                    workload="demo", replicaset="demo-abc", requests=400, statuses={"200": 370, "404": 10, "500": 20},
                    latencies_ms=[0.5] * 390 + [60.0] * 10, client_namespace="gw"),
        Observation("demo", "stable", "demo-old-lab-0", {"app": "demo", "rollouts-pod-template-hash": "old"},
                    workload="demo", replicaset="demo-old", requests=1600, statuses={"200": 1600},
                    latencies_ms=[0.4] * 1600, client_namespace="gw"),
    ])
    return s


def _q(template: str, ns: str = "demo", h: str = "abc") -> str:
    return template.replace("{{args.namespace}}", ns).replace("{{args.canary-hash}}", h)


def value(query: str, store: SeriesStore, t: float):
    return promql.argo_result(promql.evaluate(query, store, t))


def test_linkerd_success_rate_counts_4xx_as_success():
    # 370 + 10 (404 is a success for Linkerd) of 400
    assert value(_q(SUCCESS_RATE_QUERY), _store(), 60) == [pytest.approx(380 / 400)]
    assert value(_q(SUCCESS_RATE_QUERY, h="old"), _store(), 60) == [pytest.approx(1.0)]


def test_window_takes_the_share_of_a_chunk_inside_it():
    s = _store()
    q = 'sum(rate(response_total{rollouts_pod_template_hash="abc"}[1m]))'
    # the outbound copies carry dst_rollouts_pod_template_hash instead: 400 requests in 60 s
    assert value(q, s, 60) == [pytest.approx(400 / 60)]
    assert value(q, s, 30) == [pytest.approx(200 / 60)]           # half the chunk is in (−30, 30]
    assert value('sum(increase(response_total{direction="inbound", rollouts_pod_template_hash="abc"}[1m]))',
                 s, 60) == [pytest.approx(400)]


def test_no_traffic_in_the_window_is_nan_and_no_series_is_empty():
    s = _store()
    assert math.isnan(value(_q(SUCCESS_RATE_QUERY), s, 500)[0])   # 0/0
    assert value(_q(SUCCESS_RATE_QUERY, h="nope"), s, 60) == []    # no series at all


def test_histogram_quantile_interpolates_in_linkerd_buckets():
    s = _store()
    # rank 396 of 400 falls in (50, 100] which holds the 10 slow requests: 50 + 50 * 6/10
    assert value(_q(LATENCY_QUERY), s, 60) == [pytest.approx(80.0)]
    assert value(_q(LATENCY_QUERY, h="old"), s, 60) == [pytest.approx(0.99)]
    assert LINKERD_BUCKETS_MS[:5] == (1, 2, 3, 4, 5)


def test_bucket_quantile_edges():
    b = [(1.0, 0.0), (2.0, 0.0), (math.inf, 10.0)]
    assert promql._bucket_quantile(0.5, b) == 2.0                  # rank in +Inf: highest finite bound
    assert math.isnan(promql._bucket_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))
    assert promql._bucket_quantile(0.5, [(1.0, 4.0), (2.0, 8.0), (math.inf, 8.0)]) == 1.0
    assert promql._bucket_quantile(-1, b) == -math.inf


def test_outbound_series_carry_dst_labels():
    s = _store()
    q = ('sum(rate(response_total{direction="outbound", dst_service="canary", classification!="failure"}[1m])) '
         '/ sum(rate(response_total{direction="outbound", dst_service="canary"}[1m])) * 100')
    assert value(q, s, 60) == [pytest.approx(95.0)]
    q = 'sum(rate(request_total{namespace="gw", dst_rollouts_pod_template_hash="abc"}[1m]))'
    assert value(q, s, 60) == [pytest.approx(400 / 60)]


def test_flagger_style_deployment_matcher_and_aggregations():
    s = _store()
    assert value('sum(rate(request_total{deployment=~"de.*", direction="inbound"}[1m]))', s, 60) == \
        [pytest.approx(2000 / 60)]
    by = promql.evaluate('sum by (rollouts_pod_template_hash) (increase(request_total{direction="inbound"}[1m]))', s, 60)
    assert by == ("vector", [({"rollouts_pod_template_hash": "abc"}, pytest.approx(400)),
                             ({"rollouts_pod_template_hash": "old"}, pytest.approx(1600))])
    assert value('count(increase(request_total{direction="inbound"}[1m]))', s, 60) == [2.0]
    assert value('max(increase(request_total{direction="inbound"}[1m])) - 1600', s, 60) == [pytest.approx(0)]
    assert value('sum(increase(request_total{direction="inbound"}[1m])) > 100', s, 60) == [pytest.approx(2000)]
    assert value('sum(increase(request_total{direction="inbound"}[1m])) > bool 1e6', s, 60) == [0.0]
    assert value('vector(1) or sum(rate(request_total{app="none"}[1m]))', s, 60) == [1.0]
    assert value('scalar(vector(0.5))', s, 60) == 0.5
    assert value('clamp_max(vector(5), 2) + abs(vector(-1))', s, 60) == [3.0]


def test_label_names_from_pod_labels():
    assert prom_label("rollouts-pod-template-hash") == "rollouts_pod_template_hash"
    assert prom_label("app.kubernetes.io/version") == "app_kubernetes_io_version"


@pytest.mark.parametrize("query, message", [
    ('sum(rate(istio_requests_total{reporter="source"}[5m]))', "no series named 'istio_requests_total'"),
    ("rate(response_total[1m] offset 5m)", "offset is not supported"),
    ("sum(rate(response_total[1m:10s]))", "subqueries"),
    ("topk(3, response_total)", "topk() is not supported"),
    ("frobnicate(response_total)", "unknown function frobnicate()"),
    ('{app="x"}', "without a metric name"),
    ("sum(rate(response_total[1m]) by (le)", "expected ')'"),
    ("rate(response_total)", "needs a range vector"),
    ("response_total[1m]", "cannot be the result"),
    ('response_total{app=~"("}', "bad regex"),
    ("sum(rate(response_total[1m])) / on(x) group_left rate(response_total[1m])", "group_left"),
])
def test_queries_gwlib_cannot_answer_are_errors(query, message):
    with pytest.raises(promql.PromQLError) as exc:
        promql.check(query)
    assert message in str(exc.value)


def test_many_to_many_is_an_error():
    with pytest.raises(promql.PromQLError, match="many-to-many"):
        promql.evaluate("rate(response_total[1m]) / on() rate(request_total[1m])", _store(), 60)


def test_metric_names():
    assert promql.metric_names(_q(LATENCY_QUERY)) == ["response_latency_ms_bucket"]
