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
"""
from __future__ import annotations

ROLLOUT_API = "argoproj.io/v1alpha1"


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
