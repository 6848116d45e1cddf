"""Progressive delivery, Argo Rollouts style, against any gwlib connection.

    import gwlib
    from gwlib import rollout

    lab = gwlib.connect("lab")
    lab.apply("data/rollouts/talk")                   # Gateway, Services, HTTPRoute, Rollout, AnalysisTemplates
    run = rollout.RolloutRun(lab, seed=0, requests_per_step=2000)
    run.set_fault("v2", error_rate=0.05)              # the canary answers 5 % errors
    tl = run.run()                                    # -> Timeline: Degraded, aborted at step 2
    tl.to_frame(); tl.plot()

The parts:

* :mod:`~gwlib.rollout.models` — Rollout and AnalysisTemplate as gwlib reads them, with a
  clear error for every field it does not model;
* :mod:`~gwlib.rollout.engine` — :class:`RolloutRun` (steps, the plugin's route writes,
  abort / pause / promote), :class:`Clock` (simulated time), :class:`Timeline`;
* :mod:`~gwlib.rollout.cluster` — the same :class:`RolloutRun` call with a ``cluster``
  connection: Argo Rollouts runs the steps, gwlib starts the update (the version label),
  follows the Rollout, sends the traffic and reads weights and AnalysisRuns back;
* :mod:`~gwlib.rollout.analysis` — :class:`AnalysisRun` with Argo's measurement rules;
* :mod:`~gwlib.rollout.metrics`, :mod:`~gwlib.rollout.promql`, :mod:`~gwlib.rollout.series`
  — Linkerd-style series recorded from real traffic and a PromQL subset to query them;
* :mod:`~gwlib.rollout.plugin` — what the Gateway API plugin writes into routes;
* :mod:`~gwlib.rollout.flagger` — Flagger's linear schedule, for comparison;
* :mod:`~gwlib.rollout.stats` — how many requests a canary needs, and which analysis rules
  abort healthy canaries or miss bad ones;
* :mod:`~gwlib.rollout.manifests` — the talk's manifests for a real cluster.
"""
from __future__ import annotations

from .analysis import AnalysisRun, MeasurementError, replay
from .engine import Clock, RolloutError, RolloutRun, StepRecord, Timeline, run_rollout
from .metrics import LabPrometheus, PrometheusHTTP, UnsupportedMetric
from .models import RolloutSpecError, parse_rollout, parse_template

__all__ = ["AnalysisRun", "Clock", "LabPrometheus", "MeasurementError", "PrometheusHTTP", "RolloutError",
           "RolloutRun", "RolloutSpecError", "StepRecord", "Timeline", "UnsupportedMetric", "parse_rollout",
           "parse_template", "replay", "run_rollout"]
