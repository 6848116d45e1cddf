"""Argo Rollouts' analysis rules, one by one (analysis/analysis.go, utils/evaluate)."""
from __future__ import annotations

import math

import pytest

from gwlib.rollout.analysis import (ERROR_RETRY_SECONDS, AnalysisRun, MeasurementError, assess_measurement, worse)
from gwlib.rollout.models import build_metric

PROM = {"prometheus": {"address": "http://prometheus:9090", "query": "q"}}


def metric(**kw) -> dict:
    return {"name": kw.pop("name", "m"), "provider": PROM, **kw}


def feed(*values):
    """A provider answering the given values in turn (the last one repeats); a value that is
    an exception class is raised."""
    seq = list(values)
    calls = []

    def measure(m, t):
        calls.append(t)
        v = seq.pop(0) if len(seq) > 1 else seq[0]
        if isinstance(v, type) and issubclass(v, Exception):
            raise v("provider down")
        return v
    measure.calls = calls
    return measure


def run(*metrics, values=([1.0],), start=0.0, **kw) -> AnalysisRun:
    r = AnalysisRun("run", list(metrics), feed(*values), start=start, **kw)
    r.run_until_done()
    return r


# -------------------------------------------------------------- one measurement

@pytest.mark.parametrize("success, failure, value, phase", [
    ("", "", [0.1], "Successful"),                               # no conditions: Successful
    ("result[0] >= 0.9", "", [0.95], "Successful"),
    ("result[0] >= 0.9", "", [0.5], "Failed"),                   # only success: false -> Failed
    ("", "result[0] < 0.9", [0.95], "Successful"),               # only failure: false -> Successful
    ("", "result[0] < 0.9", [0.5], "Failed"),
    ("result[0] >= 0.9", "result[0] < 0.5", [0.7], "Inconclusive"),   # neither holds
    ("result[0] >= 0.5", "result[0] >= 0.5", [0.7], "Failed"),         # both hold: failure wins
    ("result[0] >= 0.9", "", [math.nan], "Failed"),              # NaN compares false
    ("result[0] >= 0.9", "result[0] < 0.9", [math.nan], "Inconclusive"),
])
def test_measurement_phase(success, failure, value, phase):
    spec, errors = build_metric(metric(successCondition=success, failureCondition=failure))
    assert not errors
    assert assess_measurement(spec, value)[0] == phase


def test_empty_result_is_an_error_measurement_with_argos_message():
    spec, _ = build_metric(metric(successCondition="result[0] >= 0.9"))
    phase, message = assess_measurement(spec, [])
    assert phase == "Error"
    assert message == ('could not evaluate successCondition "result[0] >= 0.9": metric result is nil or empty: '
                       "no data returned from the metric provider")


def test_a_vector_compared_with_a_number_is_an_error():
    spec, _ = build_metric(metric(successCondition="result >= 0.9"))
    assert assess_measurement(spec, [0.95]) == (
        "Error", 'could not evaluate successCondition "result >= 0.9": invalid operation: []float64 >= float64')


# ------------------------------------------------------------------- failureLimit

def test_failure_limit_default_0_first_failure_fails():
    r = run(metric(interval="1m", count=5, successCondition="result[0] >= 0.9"), values=([0.5], [1.0]))
    assert r.phase == "Failed"
    assert len(r.log) == 1
    assert r.message == 'Metric "m" assessed Failed due to failed (1) > failureLimit (0)'


def test_failure_limit_tolerates_that_many_failures():
    m = metric(interval="1m", count=5, failureLimit=2, successCondition="result[0] >= 0.9")
    assert run(m, values=([0.5], [0.5], [1.0])).phase == "Successful"
    r = run(m, values=([0.5], [0.5], [1.0], [0.5]))
    assert r.phase == "Failed" and len(r.log) == 4
    assert "failed (3) > failureLimit (2)" in r.message


def test_failure_limit_minus_one_disables_failing():
    # -1 alone is invalid: something must be able to decide
    _, errors = build_metric(metric(interval="1m", count=3, failureLimit=-1, successCondition="result[0] > 0"))
    assert errors == ["failureLimit and consecutiveSuccessLimit cannot both be disabled "
                      "(failureLimit: -1 needs consecutiveSuccessLimit > 0)"]
    # with a consecutive-success limit: failures are ignored until N successes in a row
    m = metric(interval="1m", count=10, failureLimit=-1, consecutiveSuccessLimit=2,
               successCondition="result[0] >= 0.9")
    r = run(m, values=([0.5], [0.5], [0.5], [1.0], [0.5], [1.0], [1.0]))
    assert r.phase == "Successful"
    assert [x.phase for x in r.log] == ["Failed"] * 3 + ["Successful", "Failed", "Successful", "Successful"]
    assert r.results["m"].message == "consecutiveSuccessful (2) >= consecutiveSuccessLimit (2)"
    # count reached without N successes in a row: Failed
    r = run(dict(m, count=3), values=([0.5],))
    assert r.phase == "Failed"
    assert r.results["m"].message == "count reached and consecutiveSuccessLimit was not reached"


def test_both_limits_count_reached_undecided_is_inconclusive():
    m = metric(interval="1m", count=3, failureLimit=2, consecutiveSuccessLimit=3, successCondition="result[0] >= 0.9")
    r = run(m, values=([1.0], [0.5], [1.0]))
    assert r.phase == "Inconclusive"
    m2 = dict(m, consecutiveSuccessLimit=2)
    assert run(m2, values=([0.5], [1.0], [1.0])).phase == "Successful"   # success limit reached first


def test_count_must_not_be_below_the_limits():
    assert build_metric(metric(interval="1m", count=2, failureLimit=3))[1] == ["count must be >= failureLimit"]
    assert build_metric(metric(interval="1m", count=2, inconclusiveLimit=3))[1] == ["count must be >= inconclusiveLimit"]


# ---------------------------------------------------------------- inconclusive

def test_inconclusive_limit_default_0():
    m = metric(interval="1m", count=3, successCondition="result[0] >= 0.9", failureCondition="result[0] < 0.5")
    r = run(m, values=([0.7], [1.0]))
    assert r.phase == "Inconclusive"
    assert r.message == 'Metric "m" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)'
    assert run(dict(m, inconclusiveLimit=1), values=([0.7], [1.0])).phase == "Successful"
    assert run(dict(m, inconclusiveLimit=1), values=([0.7], [0.7], [1.0])).phase == "Inconclusive"


def test_no_conditions_is_successful():
    assert run(metric(), values=([0.0],)).phase == "Successful"


# ----------------------------------------------------------- consecutive errors

def test_consecutive_error_limit_default_4_and_retry_after_10s():
    m = metric(interval="1m", count=3, successCondition="result[0] >= 0.9")
    r = run(m, values=(MeasurementError,))
    assert r.phase == "Error"
    assert len(r.log) == 5                                           # 5 consecutive errors > 4
    assert [x.time for x in r.log] == [0, 10, 20, 30, 40]            # retried every 10 s, not every minute
    assert r.message.startswith('Metric "m" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4)')
    assert '"Error Message: provider down"' in r.message
    assert ERROR_RETRY_SECONDS == 10


def test_errors_do_not_count_and_a_success_resets_the_streak():
    m = metric(interval="1m", count=2, consecutiveErrorLimit=1, successCondition="result[0] >= 0.9")
    r = run(m, values=(MeasurementError, [1.0], MeasurementError, [1.0]))
    assert r.phase == "Successful"
    assert [x.phase for x in r.log] == ["Error", "Successful", "Error", "Successful"]
    assert [x.time for x in r.log] == [0, 10, 70, 80]
    r = run(dict(m, consecutiveErrorLimit=0), values=(MeasurementError,))
    assert r.phase == "Error" and len(r.log) == 1


def test_consecutive_error_limit_must_not_be_negative():
    assert build_metric(metric(consecutiveErrorLimit=-1))[1] == ["consecutiveErrorLimit must be >= 0"]


# ------------------------------------------------------------ count and interval

def test_count_without_interval_is_an_invalid_spec():
    r = AnalysisRun("run", [metric(count=3, successCondition="true")], feed([1.0]))
    assert r.phase == "Error"
    assert r.message == "analysis spec invalid: metrics[0]: interval must be specified when count > 1"


def test_no_count_no_interval_measures_once():
    r = run(metric(successCondition="result[0] >= 0.9"), values=([1.0],))
    assert r.phase == "Successful" and len(r.log) == 1


def test_count_zero_is_like_unset():
    assert run(metric(count=0, successCondition="result[0] >= 0.9"), values=([1.0],)).log.__len__() == 1


def test_interval_without_count_runs_until_terminated():
    r = AnalysisRun("bg", [metric(interval="30s", successCondition="result[0] >= 0.9", failureLimit=1)],
                    feed([1.0]), background=True)
    for t in (0, 30, 60, 90):
        assert r.next_time() == t
        r.advance(t)
    assert r.phase == "Running" and len(r.log) == 4
    assert r.terminate() == "Successful"                              # stopped at the end of the rollout
    # a background run that already violated failureLimit stays Failed
    r = AnalysisRun("bg", [metric(interval="30s", successCondition="result[0] >= 0.9", failureLimit=1)],
                    feed([0.5]), background=True)
    r.advance(0)
    r.advance(30)
    assert r.phase == "Failed"


def test_terminated_before_any_measurement_is_successful():
    r = AnalysisRun("bg", [metric(interval="1m", initialDelay="5m", successCondition="false")], feed([1.0]))
    r.advance(0)
    assert r.log == [] and r.phase == "Running"
    assert r.terminate() == "Successful"


def test_initial_delay():
    r = AnalysisRun("run", [metric(initialDelay="2m", interval="1m", count=2, successCondition="true")],
                    feed([1.0]), start=100)
    assert r.next_time() == 220
    r.run_until_done()
    assert [m.time for m in r.log] == [220, 280]


def test_invalid_durations():
    assert build_metric(metric(interval="5"))[1] == ['invalid interval string: time: missing unit in duration "5"']
    assert build_metric(metric(initialDelay="soon"))[1] == ['invalid startDelay string: time: invalid duration "soon"']


# --------------------------------------------------------------- several metrics

def test_worst_phase_wins_and_a_failure_stops_the_others():
    ok = metric(name="ok", interval="1m", count=5, successCondition="result[0] >= 0")
    bad = metric(name="bad", interval="1m", count=5, successCondition="result[0] > 1")
    r = run(ok, bad, values=([0.5],))
    assert r.phase == "Failed"
    assert len(r.log) == 2                                           # one round, then it stops
    assert r.results["ok"].phase == "Successful"                    # undecided metrics end Successful


def test_phase_order():
    assert worse("Successful", "Failed") == "Failed"
    assert worse("Inconclusive", "Error") == "Error"
    assert worse("Failed", "Error") == "Failed"
    assert worse("Running", "Pending") == "Pending"


def test_dry_run_metrics_do_not_decide():
    bad = metric(name="bad", successCondition="result[0] > 1")
    ok = metric(name="ok", successCondition="result[0] >= 0")
    r = run(bad, ok, values=([0.5],), dry_run=["bad"])
    assert r.phase == "Successful"
    assert r.results["bad"].phase == "Failed"


def test_summary_shape():
    r = run(metric(name="success-rate", successCondition="result[0] >= 0.99"), values=([0.995],))
    assert r.summary() == {"phase": "Successful", "message": "",
                           "measurements": [{"metric": "success-rate", "value": 0.995, "phase": "Successful",
                                             "time": 0.0}]}
