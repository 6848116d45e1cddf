"""A thin client for real Argo Rollouts: read the status, promote, abort, retry.

The patches are the ones ``kubectl argo rollouts`` sends (argoproj/argo-rollouts
``pkg/kubectl-argo-rollouts/cmd/{promote,abort,retry}``): JSON merge patches, on the
``status`` subresource first (Rollouts >= v0.10), falling back to the object itself when
the subresource is not served (404).

* promote: ``{"spec":{"paused":false}}`` when the Rollout is paused by the user, and on
  ``status``: ``{"pauseConditions":null}`` (a pause step or an Inconclusive analysis), or
  ``{"pauseConditions":null,"controllerPause":false,"currentStepIndex":N+1}`` after an
  Inconclusive analysis paused the controller, or ``{"pauseConditions":null,
  "currentStepIndex":N+1}`` in the middle of a step;
* promote full: ``{"status":{"promoteFull":true}}`` (when the canary is not the stable yet);
* abort: ``{"status":{"abort":true}}``;
* retry: ``{"status":{"abort":false}}``.

Reading a Rollout as the CLI does (``utils/rollout/rolloututil.go``): :func:`phase` is
``GetRolloutPhase`` — Progressing until ``status.observedGeneration`` (a string) equals
``metadata.generation`` and while a cleared pause is not yet picked up (``controllerPause``
without ``pauseConditions``), then the controller's own ``status.phase``/``message``
(Argo Rollouts >= 1.0), else the client-side ``CalculateRolloutPhase``;
:func:`is_fully_promoted` is ``stableRS == currentPodHash``. :func:`analysis_summary`
reads an AnalysisRun's ``status.metricResults[].measurements`` (the Prometheus provider
stores a vector result as the string ``"[0.99]"``, a scalar as ``"0.99"``).
"""
from __future__ import annotations

import math
import re

ROLLOUT_API = "argoproj.io/v1alpha1"
#: labels Argo Rollouts puts on the AnalysisRuns it creates (``pkg/apis/rollouts/v1alpha1/types.go``)
RUN_TYPE_LABEL = "rollout-type"
STEP_INDEX_LABEL = "step-index"
HASH_LABEL = "rollouts-pod-template-hash"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"


def _steps(ro: dict) -> list:
    canary = ((ro.get("spec") or {}).get("strategy") or {}).get("canary")
    return list((canary or {}).get("steps") or []) if canary is not None else []


def _is_canary(ro: dict) -> bool:
    return ((ro.get("spec") or {}).get("strategy") or {}).get("canary") is not None


def current_step(ro: dict) -> int | None:
    """``replicasetutil.GetCurrentCanaryStep``: the step index, 0 when unset, None without steps."""
    steps = _steps(ro)
    if not steps:
        return None
    idx = (ro.get("status") or {}).get("currentStepIndex")
    return int(idx) if isinstance(idx, int) else 0


def promote_patches(ro: dict, full: bool = False) -> tuple[dict | None, dict | None, dict | None]:
    """(spec patch, status patch, unified patch for clusters without the status subresource)."""
    spec = ro.get("spec") or {}
    status = ro.get("status") or {}
    spec_patch = status_patch = unified = None
    if full:
        if status.get("currentPodHash") != status.get("stableRS"):
            status_patch = {"status": {"promoteFull": True}}
        return spec_patch, status_patch, unified
    unified = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
    if spec.get("paused"):
        spec_patch = {"spec": {"paused": False}}
    analysis = ((status.get("canary") or {}).get("currentStepAnalysisRunStatus") or {})
    inconclusive = _is_canary(ro) and analysis.get("status") == "Inconclusive"
    steps = _steps(ro)
    if inconclusive and status.get("pauseConditions") and status.get("controllerPause"):
        idx = current_step(ro)
        if idx is not None:
            idx = idx + 1 if idx < len(steps) else idx
            status_patch = {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": idx}}
    elif status.get("pauseConditions"):
        status_patch = {"status": {"pauseConditions": None}}
    elif _is_canary(ro):
        idx = current_step(ro)
        if idx is not None:
            idx = idx + 1 if idx < len(steps) else idx
            status_patch = {"status": {"pauseConditions": None, "currentStepIndex": idx}}
            unified = {"spec": {"paused": False}, "status": {"pauseConditions": None, "currentStepIndex": idx}}
    return spec_patch, status_patch, unified


ABORT = {"status": {"abort": True}}
RETRY = {"status": {"abort": False}}


def summary(ro: dict) -> dict:
    """What ``kubectl argo rollouts get rollout`` shows, as a dict (the design's timeline
    vocabulary where it overlaps: ``phase`` Healthy | Progressing | Paused | Degraded)."""
    meta = ro.get("metadata") or {}
    status = ro.get("status") or {}
    canary = status.get("canary") or {}
    weights = canary.get("weights") or {}
    analysis = canary.get("currentStepAnalysisRunStatus") or canary.get("currentBackgroundAnalysisRunStatus")
    steps = _steps(ro)
    idx = current_step(ro)
    gen = meta.get("generation")
    phase = status.get("phase") or ("Paused" if status.get("pauseConditions") else "Progressing")
    if status.get("abort") and phase != "Degraded":
        phase = "Degraded"
    return {
        "rollout": f"{meta.get('namespace')}/{meta.get('name')}",
        "phase": phase,
        "message": status.get("message") or "",
        "step": idx,
        "steps": len(steps),
        "current_step": steps[idx] if idx is not None and idx < len(steps) else None,
        "paused": bool(status.get("pauseConditions")) or bool((ro.get("spec") or {}).get("paused")),
        "pause_reasons": [c.get("reason") for c in status.get("pauseConditions") or []],
        "aborted": bool(status.get("abort")),
        "weights": {"stable": (weights.get("stable") or {}).get("weight"),
                    "canary": (weights.get("canary") or {}).get("weight")} if weights else {},
        "stable_hash": status.get("stableRS"),
        "canary_hash": status.get("currentPodHash"),
        "replicas": status.get("replicas"), "updated": status.get("updatedReplicas"),
        "ready": status.get("readyReplicas"), "available": status.get("availableReplicas"),
        "analysis": ({"name": analysis.get("name"), "phase": analysis.get("status"),
                      "message": analysis.get("message") or ""} if analysis else None),
        # Argo writes observedGeneration as a string
        "observed": gen is None or str(status.get("observedGeneration")) == str(gen),
    }


# -- reading a Rollout as `kubectl argo rollouts get` does ------------------------------------

def observed(ro: dict) -> bool:
    """``isGenerationObserved``: Argo writes ``status.observedGeneration`` as a string; a
    non-numeric one (Rollouts < 0.10) counts as observed."""
    gen = (ro.get("metadata") or {}).get("generation")
    obs = (ro.get("status") or {}).get("observedGeneration")
    if gen is None:
        return True
    try:
        n = int(str(obs))
    except (TypeError, ValueError):
        return True
    return n >= int(gen)    # a v0.9 hash that happens to be all digits is larger: observed


def is_fully_promoted(ro: dict) -> bool:
    status = ro.get("status") or {}
    return bool(status.get("stableRS")) and status.get("stableRS") == status.get("currentPodHash")


def _condition(status: dict, ctype: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def phase(ro: dict) -> tuple[str, str]:
    """(phase, message) as ``GetRolloutPhase`` computes them on the client side."""
    status = ro.get("status") or {}
    spec = ro.get("spec") or {}
    if not observed(ro):
        return "Progressing", "waiting for rollout spec update to be observed"
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return "Progressing", "waiting for rollout to unpause"
    if status.get("phase"):
        return str(status["phase"]), str(status.get("message") or "")
    for c in status.get("conditions") or []:   # CalculateRolloutPhase, for controllers < 1.0
        if c.get("type") == "InvalidSpec":
            return "Degraded", f"InvalidSpec: {c.get('message', '')}"
        if c.get("reason") in ("RolloutAborted", "TimedOut"):
            return "Degraded", f"{c['reason']}: {c.get('message', '')}"
    if spec.get("paused"):
        return "Paused", "manually paused"
    for pc in status.get("pauseConditions") or []:
        return "Paused", str(pc.get("reason") or "")
    if _is_canary(ro) and not is_fully_promoted(ro):
        return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""


def pause_reasons(ro: dict) -> list[str]:
    return [str(c.get("reason")) for c in (ro.get("status") or {}).get("pauseConditions") or []]


def step_analysis_run(ro: dict) -> dict | None:
    """``status.canary.currentStepAnalysisRunStatus`` ({name, status, message}) or None."""
    return ((ro.get("status") or {}).get("canary") or {}).get("currentStepAnalysisRunStatus") or None


def background_analysis_run(ro: dict) -> dict | None:
    return ((ro.get("status") or {}).get("canary") or {}).get("currentBackgroundAnalysisRunStatus") or None


def revision(ro: dict) -> str | None:
    return ((ro.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)


# -- AnalysisRuns ------------------------------------------------------------------------

_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|NaN|[+-]?Inf)\s*")


def _number(text: str):
    t = text.strip()
    if t in ("NaN", "+Inf", "-Inf", "Inf"):
        return {"NaN": math.nan, "-Inf": -math.inf}.get(t, math.inf)
    return float(t)


def measurement_value(text):
    """A measurement's ``value`` string as numbers: ``"[0.99]"`` → ``[0.99]``, ``"[1,2]"``
    → ``[1.0, 2.0]``, ``"0.99"`` → ``0.99``; anything else (a Job's, a Web provider's JSON)
    stays a string; missing → None."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        return text
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        parts = [x for x in t[1:-1].split(",") if x.strip()]
        if all(_NUMBER.fullmatch(x) for x in parts):
            return [_number(x) for x in parts]
        return text
    if _NUMBER.fullmatch(t):
        return _number(t)
    return text


def analysis_summary(run: dict) -> dict:
    """An AnalysisRun as the timeline shows it: ``{"name", "phase", "message",
    "measurements": [{"metric", "value", "phase", "message"?, "startedAt"?, "finishedAt"?}]}``,
    measurements in the order they were taken (by ``startedAt``, metric order breaking ties)."""
    status = run.get("status") or {}
    rows = []
    for mi, mr in enumerate(status.get("metricResults") or []):
        for j, m in enumerate(mr.get("measurements") or []):
            row = {"metric": mr.get("name"), "value": measurement_value(m.get("value")),
                   "phase": m.get("phase")}
            if m.get("message"):
                row["message"] = m["message"]
            for k in ("startedAt", "finishedAt"):
                if m.get(k):
                    row[k] = m[k]
            rows.append((str(m.get("startedAt") or ""), j, mi, row))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return {"name": (run.get("metadata") or {}).get("name"), "phase": status.get("phase") or "Pending",
            "message": status.get("message") or "", "measurements": [r[3] for r in rows]}
