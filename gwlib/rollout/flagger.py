"""Flagger's linear schedule, for comparison with Argo Rollouts' explicit steps.

Flagger (``pkg/controller/scheduler.go``) advances one step per ``interval``:

1. run the metric checks on the canary (``request-success-rate`` in %, ``request-duration``
   p99 in ms, or a query with a ``thresholdRange``); "no values" is a failed check;
2. a failed check **halts** the canary (the weight stays) and counts towards ``threshold``
   — cumulative, not consecutive; at ``threshold`` failed checks Flagger rolls back (all
   traffic to the primary, phase ``Failed``);
3. otherwise ``weight += stepWeight`` (or the next ``stepWeights`` entry); once the weight
   reaches ``maxWeight`` the canary is promoted (phase ``Succeeded``). The last step can
   overshoot ``maxWeight``: stepWeight 20, maxWeight 50 → 20, 40, 60.

:func:`schedule` lists the weights; :class:`FlaggerRun` runs the algorithm on a gwlib
connection with the same traffic, routes and metrics as :class:`~gwlib.rollout.RolloutRun`
(the Rollout supplies the Services and the route; its steps are not used).
"""
from __future__ import annotations

import math
import time
from typing import Any

from .duration import parse_go_duration
from .engine import RolloutRun, StepRecord, Timeline
from .models import MetricSpec

__all__ = ["FlaggerRun", "schedule", "promotion_seconds", "rollback_seconds"]


def schedule(step_weight: int | None = None, max_weight: int = 50, step_weights: list[int] | None = None) -> list[int]:
    """The canary weights Flagger visits before promotion, in order."""
    if step_weights:
        out = []
        for w in step_weights:
            out.append(int(w))
            if w >= max_weight:
                break
        return out
    if not step_weight or step_weight <= 0:
        raise ValueError("stepWeight must be a positive number (or give stepWeights)")
    out, w = [], 0
    while w < max_weight:
        w += int(step_weight)
        out.append(w)
    return out


def promotion_seconds(interval: str | float, max_weight: int, step_weight: int) -> float:
    """Flagger's rule of thumb: the shortest time to promote, ``interval × (maxWeight / stepWeight)``."""
    secs = parse_go_duration(interval) if isinstance(interval, str) else float(interval)
    return secs * math.ceil(max_weight / step_weight)


def rollback_seconds(interval: str | float, threshold: int) -> float:
    """``interval × threshold``: the time a failing canary keeps its weight before rollback."""
    secs = parse_go_duration(interval) if isinstance(interval, str) else float(interval)
    return secs * threshold


_BUILTIN = {
    "request-success-rate": (
        'sum(rate(response_total{{namespace="{ns}", direction="inbound", rollouts_pod_template_hash="{hash}", '
        'classification!="failure"}}[{interval}])) / sum(rate(response_total{{namespace="{ns}", '
        'direction="inbound", rollouts_pod_template_hash="{hash}"}}[{interval}])) * 100'),
    "request-duration": (
        'histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{{namespace="{ns}", direction="inbound", '
        'rollouts_pod_template_hash="{hash}"}}[{interval}])) by (le))'),
}


class FlaggerRun:
    """Flagger's canary analysis on a gwlib connection.

    ``metrics``: Flagger's ``analysis.metrics`` — ``{"name": "request-success-rate",
    "thresholdRange": {"min": 99}}``, ``{"name": "request-duration", "thresholdRange": {"max": 500}}``
    or ``{"name": ..., "query": "<PromQL>", "thresholdRange": {...}}``. The timeline's phases
    are Flagger's: ``Succeeded`` or ``Failed``."""

    def __init__(self, conn, rollout: str | None = None, *, step_weight: int | None = 10, max_weight: int = 50,
                 step_weights: list[int] | None = None, threshold: int = 5, interval: str = "1m",
                 metrics: list[dict] | None = None, requests_per_step: int = 1000, seed: int | None = 0,
                 **options: Any):
        self.engine = RolloutRun(conn, rollout, seed=seed, requests_per_step=requests_per_step, **options)
        self.weights = schedule(step_weight, max_weight, step_weights)
        self.threshold = int(threshold)
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.interval_text = interval
        self.interval = parse_go_duration(interval)
        self.metrics = metrics or [{"name": "request-success-rate", "thresholdRange": {"min": 99}},
                                   {"name": "request-duration", "thresholdRange": {"max": 500}}]
        e = self.engine
        self._specs = []
        for m in self.metrics:
            query = m.get("query") or _BUILTIN.get(m["name"])
            if query is None:
                raise ValueError(f"metric {m['name']!r}: give a query (built-ins: {', '.join(_BUILTIN)})")
            query = query.format(ns=e.spec.namespace, hash=e.canary_hash, interval=interval) \
                if m["name"] in _BUILTIN and not m.get("query") else query
            spec = MetricSpec(m["name"], None, 0.0, 1, "", "", 0, 0, 4, 0, "prometheus", query, "")
            e.provider.check(spec)
            self._specs.append((spec, m.get("thresholdRange") or {}))
        self.timeline = Timeline(e.spec.key, phase="Progressing", versions=dict(e.timeline.versions))
        self.failed_checks = 0

    def set_fault(self, version: str, **fault: Any) -> None:
        self.engine.set_fault(version, **fault)

    def _check(self, now: float) -> tuple[bool, list[dict]]:
        ok = True
        out = []
        for spec, rng in self._specs:
            try:
                value = self.engine.provider.measure(spec, now)
            except Exception as exc:  # noqa: BLE001 - a failed check, as in Flagger
                out.append({"metric": spec.name, "value": None, "phase": "Failed", "message": str(exc)})
                ok = False
                continue
            v = value[0] if isinstance(value, list) and value else (value if not isinstance(value, list) else None)
            good = v is not None and not (isinstance(v, float) and math.isnan(v))
            if good and "min" in rng and v < float(rng["min"]):
                good = False
            if good and "max" in rng and v > float(rng["max"]):
                good = False
            entry = {"metric": spec.name, "value": v if v is None or not math.isnan(v) else "NaN",
                     "phase": "Successful" if good else "Failed"}
            if v is None or isinstance(v, float) and math.isnan(v):
                entry["message"] = "no values found"
            out.append(entry)
            ok = ok and good
        return ok, out

    def run(self) -> Timeline:
        """Run to promotion (Succeeded) or rollback (Failed)."""
        e = self.engine
        e._start()
        weights = list(self.weights)
        i = 0
        index = 0
        e.weight = weights[0]
        e._sync()
        while True:
            t0 = e.clock.now
            real0 = time.perf_counter()
            w = e.weight
            rec = StepRecord(index, {"setWeight": w}, e._weights(w), start=t0)
            ch = e._send(e.requests_per_step, t0, t0 + self.interval)
            e.clock.advance_to(t0 + self.interval)
            rec.requests, rec.responses, rec.errors = ch.requests, dict(ch.responses), dict(ch.errors)
            for key in (e.stable_key, e.canary_key):
                rec.errors.setdefault(key, 0)
            ok, measurements = self._check(e.clock.now)
            for m in measurements:
                m["time"] = round(e.clock.now, 3)
            rec.analysis = {"phase": "Successful" if ok else "Failed", "measurements": measurements}
            rec.end = e.clock.now
            index += 1
            if not ok:
                self.failed_checks += 1
                rec.notes.append(f"failed checks {self.failed_checks}/{self.threshold}: weight stays at {w}")
            rec.real_seconds = time.perf_counter() - real0
            self.timeline.steps.append(rec)
            if not ok and self.failed_checks >= self.threshold:
                e.weight = 0
                e._apply(weight=0, canary_hash=e.stable_hash, stable_hash=e.stable_hash, canary_replicas=0,
                         stable_replicas=e.spec.replicas)
                self.timeline.phase = "Failed"
                self.timeline.aborted_at_step = rec.index
                self.timeline.message = (f"Canary failed! Failed checks threshold reached {self.failed_checks}: "
                                         "all traffic back to the primary")
                break
            if ok:
                if w >= weights[-1] or i + 1 >= len(weights):
                    e._promote_fully()
                    self.timeline.phase = "Succeeded"
                    self.timeline.message = (f"Promotion completed after {index} checks "
                                             f"({e.spec.canary_version} copied to the primary)")
                    break
                i += 1
                e.weight = weights[i]
                e._sync()
        self.timeline.weights = e._weights(0)
        return self.timeline
