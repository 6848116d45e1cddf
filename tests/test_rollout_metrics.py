"""Metric providers: the lab's Prometheus and a real one over HTTP."""
from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from gwlib.rollout import LabPrometheus, MeasurementError, PrometheusHTTP, UnsupportedMetric
from gwlib.rollout.models import build_metric


def spec(query: str, address: str = ""):
    m, errors = build_metric({"name": "sr", "provider": {"prometheus": {"address": address, "query": query}}})
    assert not errors
    return m


class _Prom(BaseHTTPRequestHandler):
    answers: dict = {}

    def do_GET(self):  # noqa: N802
        q = parse_qs(urlsplit(self.path).query)
        body = self.answers.get(q["query"][0], {"status": "error", "error": "bad query"})
        raw = json.dumps(body).encode()
        self.send_response(200 if body.get("status") == "success" else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *a):
        pass


@pytest.fixture()
def prometheus():
    _Prom.answers = {
        "vec": {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1700000000, "0.995"]}]}},
        "empty": {"status": "success", "data": {"resultType": "vector", "result": []}},
        "nan": {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]}},
        "scalar": {"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}},
        "matrix": {"status": "success", "data": {"resultType": "matrix", "result": []}},
    }
    server = HTTPServer(("127.0.0.1", 0), _Prom)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    t.join()


def test_prometheus_over_http(prometheus):
    p = PrometheusHTTP()
    assert p.measure(spec("vec", prometheus), 0) == [0.995]
    assert p.measure(spec("empty", prometheus), 0) == []
    assert math.isnan(p.measure(spec("nan", prometheus), 0)[0])
    assert PrometheusHTTP(prometheus, clock_offset=1e9).measure(spec("scalar"), 5) == 3.0
    with pytest.raises(MeasurementError, match="metric type not supported"):
        p.measure(spec("matrix", prometheus), 0)
    with pytest.raises(MeasurementError, match="metric 'sr': Prometheus at"):
        p.measure(spec("unknown", prometheus), 0)
    with pytest.raises(UnsupportedMetric, match="address is empty"):
        p.check(spec("vec"))
    p.check(spec("sum(rate(istio_requests_total[1m]))", prometheus))     # a real Prometheus answers more


def test_lab_prometheus_checks_and_measures():
    lab = LabPrometheus()
    with pytest.raises(UnsupportedMetric, match="metric 'sr': gwlib cannot answer its query"):
        lab.check(spec("up"))
    lab.check(spec("sum(rate(response_total[1m]))"))
    assert lab.measure(spec("sum(rate(response_total[1m]))"), 60) == []
    with pytest.raises(MeasurementError, match="metric 'sr'"):
        lab.measure(spec("up"), 60)
