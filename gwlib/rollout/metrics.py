"""Metric providers: who answers an AnalysisTemplate's Prometheus query.

* :class:`LabPrometheus` — in the ``lab`` and ``reference`` modes: gwlib's own record of
  each version's traffic (:class:`~gwlib.rollout.series.SeriesStore`), queried with
  :mod:`gwlib.rollout.promql`. The AnalysisTemplate is the one you would apply to a cluster
  (Linkerd's ``response_total`` / ``response_latency_ms_bucket`` queries); a query it cannot
  answer is an error naming the metric (:meth:`LabPrometheus.check`), never a silent pass.
* :class:`PrometheusHTTP` — a real Prometheus (cluster mode): ``GET /api/v1/query``.

A provider is ``measure(metric, t) -> result`` (a list of floats for a vector, a float for a
scalar), raising :class:`~gwlib.rollout.analysis.MeasurementError` when it cannot answer.
"""
from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import promql
from .analysis import MeasurementError
from .models import MetricSpec
from .series import SeriesStore

__all__ = ["LabPrometheus", "PrometheusHTTP", "UnsupportedMetric"]


class UnsupportedMetric(ValueError):
    """An AnalysisTemplate metric gwlib cannot answer (named in the message)."""


class LabPrometheus:
    """Answers Prometheus queries from gwlib's recorded series at simulated time ``t``."""

    name = "lab"

    def __init__(self, store: SeriesStore | None = None):
        self.store = store if store is not None else SeriesStore()

    def check(self, metric: MetricSpec) -> None:
        """Raise :class:`UnsupportedMetric` naming ``metric`` if its query cannot be answered."""
        try:
            promql.check(metric.query)
        except promql.PromQLError as exc:
            raise UnsupportedMetric(f"metric {metric.name!r}: gwlib cannot answer its query: {exc}") from None

    def measure(self, metric: MetricSpec, t: float) -> Any:
        try:
            return promql.argo_result(promql.evaluate(metric.query, self.store, t))
        except promql.PromQLError as exc:
            raise MeasurementError(f"metric {metric.name!r}: {exc}") from None

    def query(self, query: str, t: float) -> Any:
        """A query's answer as Argo would see it (for notebooks)."""
        return promql.argo_result(promql.evaluate(query, self.store, t))

    def __call__(self, metric: MetricSpec, t: float) -> Any:
        return self.measure(metric, t)


class PrometheusHTTP:
    """A real Prometheus: ``address`` (or each metric's ``provider.prometheus.address``)."""

    name = "prometheus"

    def __init__(self, address: str | None = None, timeout: float = 10.0, clock_offset: float | None = None):
        self.address = address
        self.timeout = timeout
        self.clock_offset = clock_offset   # wall-clock seconds at simulated t=0 (None: now)

    def check(self, metric: MetricSpec) -> None:
        if not (self.address or metric.address):
            raise UnsupportedMetric(f"metric {metric.name!r}: provider.prometheus.address is empty")
        try:
            promql.parse(metric.query)
        except promql.UnsupportedQuery:
            pass   # a real Prometheus answers more than gwlib's lab
        except promql.PromQLError as exc:
            raise UnsupportedMetric(f"metric {metric.name!r}: the query does not parse: {exc}") from None

    def measure(self, metric: MetricSpec, t: float) -> Any:
        base = (self.address or metric.address).rstrip("/")
        params = {"query": metric.query}
        if self.clock_offset is not None:
            params["time"] = f"{self.clock_offset + t:.3f}"
        url = f"{base}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 - the user's Prometheus
                body = json.loads(resp.read().decode("utf-8"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise MeasurementError(f"metric {metric.name!r}: Prometheus at {base}: {exc}") from None
        if body.get("status") != "success":
            raise MeasurementError(f"metric {metric.name!r}: Prometheus: {body.get('error') or body}")
        data = body.get("data") or {}
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            return _float(result[1])
        if kind == "vector":
            return [_float(s["value"][1]) for s in result or []]
        raise MeasurementError(f"metric {metric.name!r}: Prometheus metric type not supported ({kind})")

    __call__ = measure


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan
