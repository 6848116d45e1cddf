"""AnalysisRuns on a simulated clock, with Argo Rollouts' rules.

The measurement and assessment rules follow ``analysis/analysis.go`` and
``utils/evaluate/evaluate.go`` of Argo Rollouts:

* **a measurement** evaluates ``successCondition`` and ``failureCondition`` on the result:
  neither set → Successful; only a success condition → Failed when it is false; only a
  failure condition → Successful when it is false; both → Failed if the failure condition
  holds, Inconclusive if neither holds. A provider or expression error is an **Error**
  measurement (it does not count towards ``count``), retried after 10 s.
* **a metric** is Failed when ``failed > failureLimit`` (default 0: the first failure fails;
  ``-1`` disables the limit), Inconclusive when ``inconclusive > inconclusiveLimit``
  (default 0), Error when ``consecutiveErrors > consecutiveErrorLimit`` (default 4);
  Successful after ``consecutiveSuccessLimit`` successes in a row (default 0: off) or when
  ``count`` is reached — unless both limits apply, then reaching ``count`` undecided is
  Inconclusive (and with only the success limit, Failed). Without ``interval`` a metric
  measures once; with ``interval`` and no ``count`` it measures until the run is stopped,
  and a stopped run's undecided metrics are Successful.
* **the run** takes the worst metric phase (Successful < Running < Pending < Inconclusive <
  Error < Failed), ignoring ``dryRun`` metrics; once a metric is Failed, Error or
  Inconclusive the run stops measuring the others.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .expr import ExprError, evaluate_condition
from .models import MetricSpec, build_metric

ERROR_RETRY_SECONDS = 10.0
PHASE_ORDER = ("Successful", "Running", "Pending", "Inconclusive", "Error", "Failed")
COMPLETED = ("Successful", "Failed", "Error", "Inconclusive")


class MeasurementError(RuntimeError):
    """The metric provider could not answer (the measurement is an Error)."""


def worse(a: str, b: str) -> str:
    return b if PHASE_ORDER.index(b) > PHASE_ORDER.index(a) else a


def assess_measurement(metric: MetricSpec, result: Any) -> tuple[str, str]:
    """(phase, message) of one measurement (Argo's ``EvaluateResult``)."""
    ok = fail = False
    try:
        if metric.success_condition:
            ok = evaluate_condition(metric.success_condition, result)
        if metric.failure_condition:
            fail = evaluate_condition(metric.failure_condition, result)
    except ExprError as exc:
        which = "successCondition" if metric.success_condition and not _evaluates(metric.success_condition, result) \
            else "failureCondition"
        expression = metric.success_condition if which == "successCondition" else metric.failure_condition
        if result is None or isinstance(result, (list, tuple)) and not result:
            return "Error", (f'could not evaluate {which} "{expression}": metric result is nil or empty: '
                             "no data returned from the metric provider")
        return "Error", f'could not evaluate {which} "{expression}": {exc}'
    if not metric.success_condition and not metric.failure_condition:
        return "Successful", ""
    if metric.success_condition and not metric.failure_condition:
        fail = not ok
    elif metric.failure_condition and not metric.success_condition:
        ok = not fail
    if fail:
        return "Failed", ""
    if not ok:
        return "Inconclusive", ""
    return "Successful", ""


def _evaluates(condition: str, result: Any) -> bool:
    try:
        evaluate_condition(condition, result)
        return True
    except ExprError:
        return False


def display_value(result: Any) -> Any:
    """A measurement's value for timelines: a float for a one-element vector or a scalar, a
    list otherwise; NaN and infinities as strings (JSON has no NaN)."""
    def one(v: Any) -> Any:
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
        return v
    if isinstance(result, (list, tuple)):
        return one(result[0]) if len(result) == 1 else [one(v) for v in result]
    return one(result)


@dataclass
class Measurement:
    metric: str
    phase: str
    value: Any
    time: float
    message: str = ""

    def to_dict(self) -> dict:
        d = {"metric": self.metric, "value": display_value(self.value), "phase": self.phase}
        if self.message:
            d["message"] = self.message
        d["time"] = round(self.time, 3)
        return d


@dataclass
class MetricResult:
    name: str
    phase: str = "Pending"
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    consecutive_success: int = 0
    measurements: list[Measurement] = field(default_factory=list)
    message: str = ""
    dry_run: bool = False


def _limit_phase(metric: MetricSpec, r: MetricResult) -> tuple[str, str]:
    """Argo's ``assessMetricFailureInconclusiveOrError`` (later checks win)."""
    phase, message = "", ""
    if metric.consecutive_success_limit > 0 and r.consecutive_success >= metric.consecutive_success_limit:
        phase = "Successful"
        message = (f"consecutiveSuccessful ({r.consecutive_success}) >= consecutiveSuccessLimit "
                   f"({metric.consecutive_success_limit})")
    if metric.failure_limit >= 0 and r.failed > metric.failure_limit:
        phase, message = "Failed", f"failed ({r.failed}) > failureLimit ({metric.failure_limit})"
    if r.inconclusive > metric.inconclusive_limit:
        phase = "Inconclusive"
        message = f"inconclusive ({r.inconclusive}) > inconclusiveLimit ({metric.inconclusive_limit})"
    if r.consecutive_error > metric.consecutive_error_limit:
        phase = "Error"
        message = f"consecutiveErrors ({r.consecutive_error}) > consecutiveErrorLimit ({metric.consecutive_error_limit})"
    return phase, message


def assess_metric(metric: MetricSpec, r: MetricResult, terminating: bool) -> tuple[str, str]:
    """Argo's ``assessMetricStatus``: (phase, reason)."""
    if r.phase in COMPLETED:
        return r.phase, r.message
    if not r.measurements:
        return ("Successful", "run terminated") if terminating else ("Pending", "")
    phase, message = _limit_phase(metric, r)
    if phase:
        return phase, message
    eff = metric.effective_count()
    if eff is not None and r.count >= eff:
        failure_applies = metric.failure_limit >= 0
        success_applies = metric.consecutive_success_limit > 0
        if failure_applies and success_applies:
            return "Inconclusive", ("count reached and neither was failureLimit violated nor "
                                    "consecutiveSuccessLimit reached")
        if success_applies:
            return "Failed", "count reached and consecutiveSuccessLimit was not reached"
        return "Successful", f"count ({eff}) reached"
    if terminating:
        return "Successful", "run terminated"
    return "Running", ""


Measure = Callable[[MetricSpec, float], Any]


class AnalysisRun:
    """One AnalysisRun: metrics measured on a simulated clock by ``measure(metric, t)``.

    ``metrics``: resolved metric dicts (args substituted) or :class:`MetricSpec`. A metric
    whose spec is invalid makes the run **Error** at once with Argo's message
    (*analysis spec invalid: metrics[0]: interval must be specified when count > 1*).
    """

    def __init__(self, name: str, metrics: list, measure: Measure, start: float = 0.0,
                 dry_run: tuple[str, ...] | list[str] = (), background: bool = False):
        self.name = name
        self.measure = measure
        self.started_at = float(start)
        self.background = background
        self.phase = "Running"
        self.message = ""
        self.terminated = False
        self.metrics: list[MetricSpec] = []
        self.results: dict[str, MetricResult] = {}
        self.log: list[Measurement] = []
        for i, m in enumerate(metrics):
            if isinstance(m, MetricSpec):
                spec, errors = m, []
            else:
                spec, errors = build_metric(m, dry_run=str(m.get("name")) in set(dry_run))
            if errors:
                self.phase = "Error"
                self.message = f"analysis spec invalid: metrics[{i}]: {errors[0]}"
                self.metrics = []
                self.results = {}
                return
            self.metrics.append(spec)
            self.results[spec.name] = MetricResult(spec.name, dry_run=spec.dry_run)

    # -- scheduling -----------------------------------------------------------------

    @property
    def completed(self) -> bool:
        return self.phase in COMPLETED

    def _terminating(self) -> bool:
        if self.terminated:
            return True
        return any(r.phase in ("Failed", "Error", "Inconclusive") and not r.dry_run for r in self.results.values())

    def _due_time(self, metric: MetricSpec) -> float | None:
        r = self.results[metric.name]
        if r.phase in COMPLETED:
            return None
        if not r.measurements:
            return self.started_at + metric.initial_delay
        eff = metric.effective_count()
        if eff is not None and r.count >= eff:
            return None
        last = r.measurements[-1]
        if last.phase == "Error":
            return last.time + ERROR_RETRY_SECONDS
        if metric.interval is None:
            return None
        return last.time + metric.interval

    def next_time(self) -> float | None:
        """When the next measurement is due (None: none will be, the run is done or waits
        to be stopped)."""
        if self.completed or self._terminating():
            return None
        times = [t for t in (self._due_time(m) for m in self.metrics) if t is not None]
        return min(times) if times else None

    def advance(self, now: float) -> list[Measurement]:
        """Take every measurement due at ``now`` (at most one per metric), then assess."""
        taken: list[Measurement] = []
        if self.completed:
            return taken
        if not self._terminating():
            for metric in self.metrics:
                due = self._due_time(metric)
                if due is None or due > now + 1e-9:
                    continue
                m = self._take(metric, now)
                taken.append(m)
        self._assess()
        return taken

    def _take(self, metric: MetricSpec, now: float) -> Measurement:
        r = self.results[metric.name]
        try:
            value = self.measure(metric, now)
        except MeasurementError as exc:
            m = Measurement(metric.name, "Error", None, now, str(exc))
        else:
            phase, message = assess_measurement(metric, value)
            m = Measurement(metric.name, phase, value, now, message)
        if m.phase == "Successful":
            r.successful += 1
            r.count += 1
            r.consecutive_error = 0
            r.consecutive_success += 1
        elif m.phase == "Failed":
            r.failed += 1
            r.count += 1
            r.consecutive_error = 0
            r.consecutive_success = 0
        elif m.phase == "Inconclusive":
            r.inconclusive += 1
            r.count += 1
            r.consecutive_error = 0
            r.consecutive_success = 0
        else:
            r.error += 1
            r.consecutive_error += 1
            r.consecutive_success = 0
        r.measurements.append(m)
        self.log.append(m)
        return m

    def _assess(self) -> None:
        # a metric that just failed makes the whole run terminate (Argo sees it on its next
        # reconcile): assess until that settles
        for _ in range(3):
            terminating = self._terminating()
            for metric in self.metrics:
                r = self.results[metric.name]
                phase, reason = assess_metric(metric, r, terminating)
                if phase != r.phase:
                    r.phase, r.message = phase, reason
            if self._terminating() == terminating:
                break
        worst = ""
        worst_message = ""
        everything = True
        for metric in self.metrics:
            r = self.results[metric.name]
            phase, reason = r.phase, r.message
            if phase not in COMPLETED:
                everything = False
                continue
            if r.dry_run:
                worst = worst or "Successful"
                continue
            if not worst or worse(worst, phase) != worst:
                worst = phase
                if phase != "Successful" and reason:
                    worst_message = f'Metric "{metric.name}" assessed {phase} due to {reason}'
                    last = r.measurements[-1] if r.measurements else None
                    if last is not None and last.message:
                        worst_message += f': "Error Message: {last.message}"'
        if terminating:
            self.phase = worst or "Successful"
            self.message = worst_message
        elif everything and worst:
            self.phase = worst
            self.message = worst_message
        else:
            self.phase = "Running"
        # once terminating, metrics not yet decided end Successful (run terminated)
        if self.phase in COMPLETED:
            for metric in self.metrics:
                r = self.results[metric.name]
                if r.phase not in COMPLETED:
                    r.phase, r.message = "Successful", "run terminated"

    def terminate(self, now: float | None = None) -> str:
        """Stop the run (the rollout finished or aborted); returns the final phase."""
        self.terminated = True
        if not self.completed:
            self._assess()
        return self.phase

    def run_until_done(self, now: float | None = None, limit: int = 10000) -> str:
        """Measure until the run completes (no traffic: for unit tests and previews)."""
        t = self.started_at if now is None else now
        for _ in range(limit):
            if self.completed:
                break
            nt = self.next_time()
            if nt is None:
                break
            t = max(t, nt)
            self.advance(t)
        return self.phase

    def summary(self) -> dict:
        return {"phase": self.phase, "message": self.message,
                "measurements": [m.to_dict() for m in self.log]}

    def __repr__(self) -> str:
        return f"<AnalysisRun {self.name}: {self.phase}, {len(self.log)} measurements>"


def replay(metrics: list | dict, values: list, start: float = 0.0, **options: Any) -> AnalysisRun:
    """An AnalysisRun fed canned results (one per measurement, the last one repeats; an
    exception instance is raised as a provider error) and run to its end: Argo's rules
    without any traffic.

        replay({"name": "sr", "interval": "1m", "count": 3, "failureLimit": 1,
                "successCondition": "result[0] >= 0.99", "provider": {"prometheus": {"query": "q"}}},
               [[0.97], [0.995], [0.999]]).phase      # 'Successful'
    """
    seq = list(values)

    def measure(metric: MetricSpec, t: float) -> Any:
        v = seq.pop(0) if len(seq) > 1 else seq[0]
        if isinstance(v, BaseException):
            raise MeasurementError(str(v))
        return v
    run = AnalysisRun("replay", metrics if isinstance(metrics, list) else [metrics], measure, start=start, **options)
    run.run_until_done()
    return run


__all__ = ["AnalysisRun", "COMPLETED", "replay", "ERROR_RETRY_SECONDS", "Measurement", "MeasurementError", "MetricResult",
           "assess_measurement", "assess_metric", "display_value", "worse"]
