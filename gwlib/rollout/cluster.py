"""Cluster mode: Argo Rollouts runs the canary steps; gwlib starts the update, follows it,
sends the traffic and reads the results back into the same :class:`~gwlib.rollout.engine.Timeline`.

    conn = gwlib.connect("cluster")                        # e.g. kind from scripts/cluster-up.sh
    conn.apply("data/rollouts/talk", skip_foreign=True)    # the install objects are not gwlib's
    run = rollout.RolloutRun(conn, requests_per_step=200)  # -> ClusterRolloutRun
    tl = run.run()                                         # Healthy | Degraded | Paused
    tl.to_frame(); run.promote(); run.abort(); run.retry()

:class:`ClusterRolloutRun` is what :class:`~gwlib.rollout.engine.RolloutRun` returns for a
``cluster`` connection; the call, the checks and the timeline are the lab's.

**Checks** — the Rollout, its AnalysisTemplates, Services and routes are read from what the
connection applied and checked exactly as in the lab (the same
:class:`~gwlib.rollout.models.RolloutSpecError` lines, including a query gwlib's lab
could not answer), before anything is sent to the cluster.

**Starting the update, as a user would** — the manifests name the new version with the pod
template's ``version`` label (``app.kubernetes.io/version`` when only that one is set) and
the version it replaces with the annotation ``gwlib.dev/stable-version`` (the lab's rule,
:meth:`RolloutSpec.pod_template`). gwlib changes nothing else in the template: with the
echo backends both versions run the same echo image and differ by that label, which is
enough for a new pod-template hash, i.e. a new revision.

1. *the stable version first*: if the live Rollout's template does not carry the stable
   version (``conn.apply`` of the manifests creates the Rollout at the new version, which
   Argo deploys at once, without steps), gwlib sets the label to the stable version with a
   merge patch; if that revision is not fully promoted (``stableRS != currentPodHash``)
   gwlib promotes it fully (``status.promoteFull``, as ``kubectl argo rollouts promote
   --full``), then waits until it is Healthy. Going back to the stable ReplicaSet skips
   the steps on its own (Argo's "Rollback to stable"). A missing Rollout is created at the
   stable version (``conn.apply``).
2. *the canary*: a merge patch of the label to the new version — what ``kubectl argo
   rollouts set image`` or a Git change does — and Argo starts the steps.

**Following** — every ``poll`` seconds gwlib reads the Rollout (``status.phase``/``message``
once ``observedGeneration`` is the Rollout's generation, ``currentStepIndex``,
``pauseConditions``, ``abort``, ``canary.currentStepAnalysisRunStatus``) and the live
routes (the weights the Gateway API plugin wrote: canary ``w`` and stable ``100 - w``).
Each step index the Rollout passes through becomes a :class:`StepRecord`: its weights are
the route's while the step ran (for ``setWeight``, once the plugin wrote the step's
weight), its analysis is the step's AnalysisRun (found by the name in the status, else by
its labels ``rollout-type=Step``, ``step-index``, ``rollouts-pod-template-hash``):
``status.phase``, ``message`` and every ``metricResults[].measurements[]`` (the value
string ``"[0.99]"`` read back as 0.99). Steps that passed between two polls are recorded
with a note and no requests.

**Traffic** — each step gets ``requests_per_step`` requests through the real Gateway with
the connection's own requests (:meth:`ClusterConnection.request`, the answer's backend is
the Service whose endpoints hold the pod that answered): spread over a timed pause or an
analysis step's planned span (so Linkerd's metrics, which the analysis queries, see
traffic all along), sent at once for an instant step — for ``setWeight`` once the route
carries the step's weight. Shares and errors (5xx or no answer) are counted per backend.

**Outcomes** — Healthy: fully promoted (``stableRS == currentPodHash``). Degraded: the
Rollout aborted (``status.abort``, phase Degraded): ``aborted_at_step`` is the step whose
AnalysisRun failed (Argo resets ``currentStepIndex`` to 0 on abort), else the last step
seen; the message is Argo's (``RolloutAborted: Rollout aborted update to revision N: ...``).
Paused: a ``pause: {}`` step (``CanaryPauseStep``), an Inconclusive analysis or
``spec.paused`` — :meth:`promote` (``kubectl argo rollouts promote``) goes on, or
``auto_promote=True`` promotes ``pause: {}`` steps itself. A timed pause is also phase
Paused in Argo; gwlib waits it out.

**Time** is real: ``timeout`` (default: the steps' planned time plus Argo's default
progress deadline, 600 s) bounds each :meth:`run`/:meth:`promote`, with a one-line
:class:`RolloutTimeout`; progress lines go to stderr (``progress``); ``now`` and ``sleep``
are injectable, so tests run instantly. API errors are
:class:`~gwlib.cluster.ClusterError`\\ s: one line with the API's own message.

Not in cluster mode: :meth:`set_fault` (the conformance echo server has no fault
injection: roll out a failing image instead).
"""
from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..cluster import rollouts as argo
from ..cluster import safety
from ..cluster.errors import NotServed, UnsafeObject
from . import plugin
from .analysis import display_value
from .duration import format_duration, pause_seconds
from .engine import (Clock, RolloutError, RolloutRun, StepRecord, Timeline, _analysis_ref, _backend_key, _is_error,
                     _step_text)
from .models import build_metric

__all__ = ["ClusterRolloutRun", "RolloutTimeout"]

#: Argo Rollouts' default ``progressDeadlineSeconds``
PROGRESS_DEADLINE = 600.0
#: what a connection must offer to follow a Rollout
_NEEDS = ("get", "api", "resource", "request", "promote", "abort", "retry", "objects", "store")


class RolloutTimeout(RolloutError):
    """The Rollout did not get where gwlib waited for it to get within ``timeout``."""


class ClusterRolloutRun(RolloutRun):
    """Follow a real Argo Rollout (see the module text). The parameters are
    :class:`~gwlib.rollout.engine.RolloutRun`'s, plus ``timeout`` (seconds per
    :meth:`run`/:meth:`promote`; default from the steps), ``poll`` (seconds between reads
    of the Rollout), ``now``/``sleep`` (the clock, for tests) and ``progress`` (True: lines
    on stderr; a callable taking one line; False). ``seed`` and ``provider`` only matter for
    the checks: Argo's own Prometheus provider measures in the cluster."""

    MODES = ("cluster",)

    def __init__(self, conn, rollout: str | None = None, *, seed: int | None = 0, requests_per_step: int = 1000,
                 clock: Clock | None = None, request: dict | None = None, provider=None, concurrency: int = 8,
                 auto_promote: bool = False, timeout: float | None = None, poll: float = 2.0,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 progress: bool | Callable[[str], None] = True):
        missing = [a for a in _NEEDS if not hasattr(conn, a)]
        if missing:
            raise RolloutError(f"RolloutRun in mode 'cluster' follows Argo Rollouts through a "
                               f"gwlib.cluster.ClusterConnection; {type(conn).__name__} has no {', '.join(missing)}")
        self._read_inputs(conn, rollout, seed=seed, requests_per_step=requests_per_step, clock=clock,
                          request=request, provider=provider, concurrency=concurrency, auto_promote=auto_promote)
        self.poll = max(0.0, float(poll))
        self._now = now
        self._sleep = sleep
        self._progress = progress
        self._spans = [self._span(st) for st in self.spec.steps]
        self.timeout = float(timeout) if timeout is not None else \
            PROGRESS_DEADLINE + sum(self._spans) + 30.0 * (len(self.spec.steps) + 1)
        self.phase = "Progressing"
        self.pause_reason = ""
        self.index = 0
        self._started = False
        self._t0: float | None = None
        self._gen: int | None = None          # the Rollout's generation after the canary patch
        self._cur: StepRecord | None = None   # the step record being filled
        self._next = 0                        # the next step index to record
        self._last_index: int | None = None   # the last step index seen before an abort
        self._step_runs: dict[int, str] = {}  # step index -> AnalysisRun name (from the status)
        self._bg_run: str | None = None
        self._bg_seen: set[tuple] = set()
        self._old_runs: set[str] = set()      # AnalysisRuns from before this update (or retry)
        self._retrying = False
        self._line: str | None = None
        self._closed = 0
        self._opened: dict[int, float] = {}   # id(record) -> when it was opened (now())

    # ------------------------------------------------------------------ small helpers

    def _elapsed(self) -> float:
        return 0.0 if self._t0 is None else max(0.0, self._now() - self._t0)

    def _tick_clock(self) -> None:
        self.clock.advance_to(max(self.clock.now, self._elapsed()))

    def _say(self, line: str) -> None:
        if line == self._line:
            return
        self._line = line
        if callable(self._progress):
            self._progress(line)
        elif self._progress:
            print(line, file=sys.stderr, flush=True)

    def _event(self, event: str, **more: Any) -> None:
        self.timeline.events.append({"time": round(self._elapsed(), 3), "event": event, **more})

    def _wait(self, deadline: float, what: str) -> None:
        if self._now() >= deadline:
            raise RolloutTimeout(f"Rollout {self.spec.key}: {what} after {self.timeout:.0f} s (timeout)")
        self._sleep(self.poll)
        self._tick_clock()

    def _span(self, st) -> float:
        """The planned length of a step: a timed pause's duration, an analysis step's
        ``initialDelay + (count - 1) * interval`` (its longest metric); 0 otherwise."""
        if st.kind == "pause":
            d = st.value.get("duration") if isinstance(st.value, dict) else None
            return pause_seconds(d) if d is not None else 0.0
        if st.kind == "analysis":
            inputs, _errors = self._analysis_inputs(_analysis_ref(st.value))
            spans = []
            for _t, _i, m in inputs:
                spec, _ = build_metric(m)
                if spec is not None:
                    spans.append(spec.initial_delay + ((spec.effective_count() or 1) - 1) * (spec.interval or 0.0))
            return max(spans or [0.0])
        return 0.0

    @property
    def _key(self) -> str:
        return self.spec.key

    def _step_text(self, index: int | None) -> str:
        if index is None or index >= len(self.spec.steps):
            return "all steps done"
        return _step_text(self.spec.steps[index].to_dict())

    # ------------------------------------------------------------------ the cluster

    def _live(self) -> dict:
        ro = self.conn.get("Rollout", self._key, argo.ROLLOUT_API)
        if ro is None:
            raise RolloutError(f"Rollout {self._key} not found in the cluster (deleted while gwlib followed it?)")
        return ro

    def _live_version(self, ro: dict) -> str | None:
        labels = ((((ro.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}
        return labels.get(self.spec.version_label)

    def _set_version(self, ro: dict, version: str) -> dict:
        """A merge patch of the pod template's version label: a new revision for Argo."""
        ns, name = self.spec.namespace, self.spec.name
        if not safety.is_managed(ro):
            raise UnsafeObject(f"Rollout {ns}/{name} was not created by gwlib: not changing it")
        res = self.conn.resource(argo.ROLLOUT_API, "Rollout")
        body = {"spec": {"template": {"metadata": {"labels": {self.spec.version_label: version}}}}}
        out = self.conn.api.patch(res, ns, name, body, patch_type="merge",
                                  doing=f"set {self.spec.version_label}={version} in the pod template of "
                                        f"Rollout {ns}/{name}")
        self._event("pod template", version=version,
                    generation=(out.get("metadata") or {}).get("generation"))
        return out

    def _create_at_stable(self) -> None:
        doc = copy.deepcopy(self.spec.raw)
        doc.pop("status", None)
        doc.setdefault("spec", {})["template"] = self.spec.pod_template(self.spec.stable_version)
        services = [o.to_dict() for o in self.conn.objects
                    if o.kind == "Service" and o.namespace == self.spec.namespace
                    and o.name in (self.spec.stable_service, self.spec.canary_service)]
        self._say(f"gwlib: Rollout {self._key}: not in the cluster: creating it at {self.spec.stable_version}")
        self.conn.apply([doc] + services, wait=False)
        self._event("created", version=self.spec.stable_version)

    def _route(self, kind: str, key: str) -> dict | None:
        return self.conn.get(kind, key)

    def _weights(self) -> dict[str, int]:
        """The stable/canary weights the plugin wrote into the first route, by Service key."""
        kind, key = self.routes[0]
        route = self._route(kind, key)
        if route is None:
            return {}
        w = plugin.route_weights(route, self.spec.canary_service, self.spec.stable_service, self.spec.managed_routes)
        if not w:
            return {}
        return {self.stable_key: w[self.spec.stable_service], self.canary_key: w[self.spec.canary_service]}

    def _runs(self, selector: str) -> list[dict]:
        try:
            res = self.conn.resource(argo.ROLLOUT_API, "AnalysisRun")
        except NotServed:
            return []
        items = self.conn.api.list(res, namespace=self.spec.namespace, label_selector=selector)
        mine = []
        for it in items:
            owners = (it.get("metadata") or {}).get("ownerReferences") or []
            if owners and not any(o.get("kind") == "Rollout" and o.get("name") == self.spec.name for o in owners):
                continue
            mine.append(it)
        return sorted(mine, key=lambda r: (str((r.get("metadata") or {}).get("creationTimestamp") or ""),
                                           (r.get("metadata") or {}).get("name") or ""))

    def _run(self, name: str) -> dict | None:
        return self.conn.get("AnalysisRun", f"{self.spec.namespace}/{name}", argo.ROLLOUT_API)

    def _step_run(self, index: int) -> dict | None:
        name = self._step_runs.get(index)
        if name:
            run = self._run(name)
            if run is not None:
                return run
        runs = [r for r in self._runs(f"{argo.RUN_TYPE_LABEL}=Step,{argo.HASH_LABEL}={self.canary_hash}")
                if ((r.get("metadata") or {}).get("labels") or {}).get(argo.STEP_INDEX_LABEL) == str(index)
                and r["metadata"]["name"] not in self._old_runs]
        return runs[-1] if runs else None

    @staticmethod
    def _analysis(run: dict, background: bool = False, only: list[dict] | None = None) -> dict:
        s = argo.analysis_summary(run)
        rows = s["measurements"] if only is None else only
        out: dict[str, Any] = {"phase": s["phase"],
                               "measurements": [{"metric": m["metric"], "value": display_value(m["value"]),
                                                 "phase": m["phase"], **({"message": m["message"]}
                                                                         if m.get("message") else {})}
                                                for m in rows]}
        if background:
            out["background"] = True
        if s["message"]:
            out["message"] = s["message"]
        out["analysisRun"] = s["name"]
        return out

    # ------------------------------------------------------------------ traffic

    def _send(self, rec: StepRecord, n: int) -> None:
        if n <= 0:
            return
        req = self.request
        if self.concurrency > 1 and n > 1:
            with ThreadPoolExecutor(min(self.concurrency, n)) as pool:
                answers = list(pool.map(lambda _: self.conn.request(req), range(n)))
        else:
            answers = [self.conn.request(req) for _ in range(n)]
        for ans in answers:
            key = _backend_key(ans)
            rec.responses[key] = rec.responses.get(key, 0) + 1
            if _is_error(ans):
                rec.errors[key] = rec.errors.get(key, 0) + 1
        rec.requests += n

    def _due(self, rec: StepRecord) -> int:
        """Requests the step should have had by now (its share of its planned span)."""
        n = self.requests_per_step
        st = self.spec.steps[rec.index]
        if st.kind == "setWeight":   # once the route carries the step's weight
            return n - rec.requests if rec.weights.get(self.canary_key) == int(st.value) else 0
        span = self._spans[rec.index]
        if span <= 0:
            return n - rec.requests
        frac = min(1.0, max(0.0, (self._elapsed() - rec.start) / span))
        return max(0, int(round(n * frac)) - rec.requests)

    # ------------------------------------------------------------------ step records

    def _open(self, index: int, weights: dict, *, seen: bool = True) -> StepRecord:
        st = self.spec.steps[index]
        rec = StepRecord(index, st.to_dict(), dict(weights), start=self._elapsed())
        self._opened[id(rec)] = self._now()
        if not seen:
            if st.kind == "setWeight":
                w = int(st.value)
                rec.weights = {self.stable_key: 100 - w, self.canary_key: w}
            rec.notes.append(f"the step passed between two reads of the Rollout (every {self.poll:g} s): "
                             "no requests sent" + ("; weights from the step" if st.kind == "setWeight" else ""))
        self.timeline.steps.append(rec)
        self._next = index + 1
        return rec

    def _close(self, rec: StepRecord, weights: dict | None, *, flush: bool) -> None:
        st = self.spec.steps[rec.index]
        if st.kind == "setWeight" and weights and weights.get(self.canary_key) == int(st.value):
            rec.weights = dict(weights)          # the step's own weight, written as it completed
        if flush:
            self._send(rec, self.requests_per_step - rec.requests)
        self._finish_record(rec)
        self._closed += 1

    def _finish_record(self, rec: StepRecord) -> None:
        st = self.spec.steps[rec.index]
        rec.end = self._elapsed()
        rec.real_seconds = max(0.0, self._now() - self._opened.pop(id(rec), self._now()))
        if st.kind == "analysis":
            run = self._step_run(rec.index)
            rec.analysis = self._analysis(run) if run is not None else \
                {"phase": "Pending", "measurements": [], "message": "no AnalysisRun found for this step"}
        elif self._bg_run:
            run = self._run(self._bg_run)
            if run is not None:
                new = [m for m in argo.analysis_summary(run)["measurements"]
                       if (m["metric"], m.get("startedAt"), m.get("finishedAt")) not in self._bg_seen]
                for m in new:
                    self._bg_seen.add((m["metric"], m.get("startedAt"), m.get("finishedAt")))
                if new:
                    rec.analysis = self._analysis(run, background=True, only=new)
        for key in (self.stable_key, self.canary_key):
            rec.errors.setdefault(key, 0)
        order = [self.stable_key, self.canary_key] + sorted(k for k in rec.errors
                                                            if k not in (self.stable_key, self.canary_key))
        rec.errors = {k: rec.errors[k] for k in order}

    def _fill_to(self, last: int, weights: dict) -> None:
        """Record the steps up to ``last`` (inclusive) that passed between two reads."""
        for k in range(self._next, min(last, len(self.spec.steps) - 1) + 1):
            rec = self._open(k, weights, seen=False)
            self._finish_record(rec)
            self._closed += 1

    def _at(self, index: int | None, weights: dict, ro: dict) -> None:
        """The Rollout is at step ``index``: close what is done, open the step's record."""
        n = len(self.spec.steps)
        index = n if index is None else index
        if self._cur is not None and self._cur.index == index:
            self._cur.weights = dict(weights) if weights else self._cur.weights
        else:
            if self._cur is not None:
                self._close(self._cur, weights, flush=True)
                self._cur = None
            if index < self._next:        # back to an earlier step (a retry): a new pass
                self._next = index
            self._fill_to(index - 1, weights)
            if index < n:
                self._cur = self._open(index, weights)
        if index < n:
            self._last_index = index
            run = argo.step_analysis_run(ro)
            if run and self.spec.steps[index].kind == "analysis" and run.get("name"):
                self._step_runs[index] = run["name"]
        bg = argo.background_analysis_run(ro)
        if bg and bg.get("name"):
            self._bg_run = bg["name"]

    # ------------------------------------------------------------------ start

    def _settle_on_stable(self) -> None:
        """The live Rollout runs the stable version, fully promoted (see the module text)."""
        key, stable = self._key, self.spec.stable_version
        live = self.conn.get("Rollout", key, argo.ROLLOUT_API)
        if live is None:
            self._create_at_stable()
            live = self._live()
        gen = int((live.get("metadata") or {}).get("generation") or 1)
        if self._live_version(live) != stable:
            self._say(f"gwlib: Rollout {key}: setting {self.spec.version_label}={stable} (the stable version) first")
            gen = int((self._set_version(live, stable).get("metadata") or {}).get("generation") or gen)
        deadline = self._now() + self.timeout
        promoted_for: str | None = None
        while True:
            live = self._live()
            st = live.get("status") or {}
            ph, msg = argo.phase(live)
            fresh = argo.observed(live) and int((live.get("metadata") or {}).get("generation") or 1) >= gen
            paused_spec = bool((live.get("spec") or {}).get("paused"))
            if fresh and argo.is_fully_promoted(live) and (ph == "Healthy" or (ph == "Paused" and paused_spec)):
                self.stable_hash = str(st.get("stableRS"))
                self._event("stable", version=stable, hash=self.stable_hash)
                return
            if fresh and not argo.is_fully_promoted(live) and st.get("currentPodHash") \
                    and promoted_for != st.get("currentPodHash") and not st.get("promoteFull"):
                if paused_spec:
                    raise RolloutError(f"Rollout {key} has spec.paused: true: gwlib cannot make {stable} its stable "
                                       "version; promote it (or remove spec.paused) first")
                self._say(f"gwlib: Rollout {key}: promoting {stable} fully (kubectl argo rollouts promote --full)")
                self.conn.promote(key, full=True)
                promoted_for = st.get("currentPodHash")
                self._event("promote --full", version=stable)
            else:
                self._say(f"gwlib: Rollout {key}: waiting for {stable} to be Healthy: {ph}"
                          + (f" ({msg})" if msg else ""))
            self._wait(deadline, f"the stable version {stable} is not Healthy ({ph}{': ' + msg if msg else ''})")

    def _start(self) -> None:
        if self._started:
            return
        if self._t0 is None:
            self._t0 = self._now()
        self._settle_on_stable()
        self._old_runs = {r["metadata"]["name"] for r in self._runs(f"{argo.RUN_TYPE_LABEL}=Step")}
        self._say(f"gwlib: Rollout {self._key}: rolling out {self.spec.canary_version} "
                  f"(stable {self.spec.stable_version})")
        patched = self._set_version(self._live(), self.spec.canary_version)
        self._gen = int((patched.get("metadata") or {}).get("generation") or 1)
        self.canary_hash = ""        # Argo's, once the controller has seen the new template
        self.timeline.weights = self._weights()
        self._started = True         # only now: after an API error, run() starts again

    # ------------------------------------------------------------------ following

    def _follow(self, max_steps: int | None = None) -> Timeline:
        key, n = self._key, len(self.spec.steps)
        deadline = self._now() + self.timeout
        closed0 = self._closed
        while True:
            live = self._live()
            st = live.get("status") or {}
            gen = int((live.get("metadata") or {}).get("generation") or 1)
            if not argo.observed(live) or gen < (self._gen or 0):
                self._say(f"gwlib: Rollout {key}: waiting for Argo Rollouts to observe generation {gen}")
                self._wait(deadline, f"Argo Rollouts has not observed generation {gen} (is its controller running?)")
                continue
            cur_hash = str(st.get("currentPodHash") or "")
            if not self.canary_hash:
                self.canary_hash = cur_hash
                self._event("start", stable=f"{self.spec.stable_version} ({self.stable_hash})",
                            canary=f"{self.spec.canary_version} ({cur_hash})", weights=self._weights())
            elif cur_hash != self.canary_hash:
                raise RolloutError(f"Rollout {key}: its pod template changed while gwlib followed it "
                                   f"(revision {cur_hash}, not {self.canary_hash}): start a new RolloutRun")
            ph, msg = argo.phase(live)
            idx = argo.current_step(live)
            weights = self._weights()
            reasons = argo.pause_reasons(live)
            if self._retrying and (st.get("abort") or ph != "Degraded"):
                self._retrying = False
            shown = " ".join(f"{k.split('/')[-1]}={v}" for k, v in weights.items())
            where = "aborted" if st.get("abort") else \
                f"at step {n if idx is None else idx}/{n} ({self._step_text(idx)})"
            self._say(f"gwlib: Rollout {key}: {ph} {where}" + (f", weights {shown}" if shown else "")
                      + (f": {msg}" if msg else ""))
            if st.get("abort") or ph == "Degraded":
                if ph == "Degraded" and not self._retrying:
                    return self._degraded(live, msg, weights)
                self._wait(deadline, f"aborting, still {ph}")
                continue
            self._at(idx, weights, live)
            if self._cur is not None:
                self._send(self._cur, self._due(self._cur))
            if ph == "Healthy" and argo.is_fully_promoted(live):
                return self._healthy(weights)
            if ph == "Paused" and not st.get("promoteFull"):
                step = self.spec.steps[idx] if idx is not None and idx < n else None
                indefinite = step is not None and step.kind == "pause" and "CanaryPauseStep" in reasons \
                    and not (isinstance(step.value, dict) and "duration" in step.value)
                paused_spec = bool((live.get("spec") or {}).get("paused"))
                if paused_spec or indefinite or "InconclusiveAnalysisRun" in reasons:
                    if indefinite and self.auto_promote and not paused_spec \
                            and "InconclusiveAnalysisRun" not in reasons:
                        self._send(self._cur, self.requests_per_step - self._cur.requests)
                        self._say(f"gwlib: Rollout {key}: promoting the pause at step {idx} (auto_promote)")
                        self.conn.promote(key)
                        self._event("promote (auto_promote)", step=idx)
                        self._wait(deadline, "promoting")
                        continue
                    return self._paused(live, idx, reasons, paused_spec)
            if max_steps is not None and self._closed - closed0 >= max_steps:
                self.phase = self.timeline.phase = "Progressing"
                self.index = n if idx is None else idx
                self.timeline.weights = weights
                return self.timeline
            self._wait(deadline, f"still {ph} at step {n if idx is None else idx}/{n} ({self._step_text(idx)})"
                       + (f": {msg}" if msg else ""))

    def _healthy(self, weights: dict) -> Timeline:
        n = len(self.spec.steps)
        if self._cur is not None:
            self._close(self._cur, weights, flush=True)
            self._cur = None
        self._fill_to(n - 1, weights)
        self.phase = self.timeline.phase = "Healthy"
        self.index = n
        self.pause_reason = ""
        self.timeline.aborted_at_step = None
        self.timeline.message = (f"Rollout is healthy: {self.spec.canary_version} ({self.canary_hash}) promoted "
                                 f"after {n} steps")
        self.timeline.weights = weights
        self._event("promoted", hash=self.canary_hash)
        self._tick_clock()
        self._say(f"gwlib: Rollout {self._key}: Healthy: {self.spec.canary_version} promoted")
        return self.timeline

    def _aborted_step(self) -> int | None:
        failed = []
        for r in self._runs(f"{argo.RUN_TYPE_LABEL}=Step,{argo.HASH_LABEL}={self.canary_hash}"):
            labels = (r.get("metadata") or {}).get("labels") or {}
            phase = (r.get("status") or {}).get("phase")
            if r["metadata"]["name"] in self._old_runs or phase not in ("Failed", "Error"):
                continue
            try:
                failed.append(int(labels.get(argo.STEP_INDEX_LABEL)))
            except (TypeError, ValueError):
                continue
        later = [k for k in failed if self._last_index is None or k >= self._last_index]
        return max(later) if later else self._last_index

    def _degraded(self, live: dict, message: str, weights: dict) -> Timeline:
        at = self._aborted_step()
        if self._cur is not None:
            if at is not None and at > self._cur.index:   # it completed before the failing step
                self._close(self._cur, weights, flush=True)
            else:                                          # the step that failed: as far as it got
                if self._cur.requests < self.requests_per_step:
                    self._cur.notes.append(f"the rollout aborted during this step: {self._cur.requests} of "
                                           f"{self.requests_per_step} requests sent")
                self._finish_record(self._cur)
                self._closed += 1
            self._cur = None
        if at is not None:
            self._fill_to(at, weights)
        self.phase = self.timeline.phase = "Degraded"
        self.index = at if at is not None else 0
        self.timeline.aborted_at_step = at
        self.timeline.message = message or "RolloutAborted"
        self.timeline.weights = weights
        self._event("abort", step=at, reason=message)
        self._tick_clock()
        self._say(f"gwlib: Rollout {self._key}: Degraded" + (f" at step {at}" if at is not None else "")
                  + (f": {message}" if message else ""))
        return self.timeline

    def _paused(self, live: dict, idx: int | None, reasons: list[str], paused_spec: bool) -> Timeline:
        rec = self._cur
        if rec is not None:
            rec.end = self._elapsed()
            st = self.spec.steps[rec.index]
            if st.kind == "analysis":
                run = self._step_run(rec.index)
                if run is not None:
                    rec.analysis = self._analysis(run)
        self.phase = self.timeline.phase = "Paused"
        self.index = idx if idx is not None else len(self.spec.steps)
        if paused_spec:
            self.pause_reason = "spec.paused"
            self.timeline.message = "manually paused (spec.paused); promote() or abort()"
        elif "InconclusiveAnalysisRun" in reasons:
            self.pause_reason = "InconclusiveAnalysisRun"
            why = ((rec.analysis or {}).get("message") if rec is not None else "") or \
                (argo.step_analysis_run(live) or {}).get("message") or ""
            self.timeline.message = (f"InconclusiveAnalysisRun: step {self.index} analysis"
                                     + (f": {why}" if why else "") + "; promote() or abort()")
        else:
            self.pause_reason = "CanaryPauseStep"
            self.timeline.message = (f"CanaryPauseStep: paused at step {self.index} (pause without a duration); "
                                     "promote() or abort()")
        self.timeline.weights = self._weights()
        self._event("paused", step=self.index, reason=self.pause_reason)
        self._tick_clock()
        return self.timeline

    # ------------------------------------------------------------------ the public face

    def run(self, max_steps: int | None = None) -> Timeline:
        """Start the update (once) and follow it until it is Healthy, Degraded or Paused (or
        ``max_steps`` more steps are done: phase Progressing); returns the timeline."""
        if self._started and self.phase in ("Healthy", "Degraded"):
            return self.timeline
        self._start()
        return self._follow(max_steps)

    def step(self) -> Timeline:
        """Follow the Rollout through one more step."""
        return self.run(max_steps=1)

    def promote(self, full: bool = False) -> Timeline:
        """``kubectl argo rollouts promote [--full]`` on the live Rollout, then follow it."""
        if not self._started:
            self._start()
        if self.phase in ("Healthy", "Degraded"):
            raise RolloutError(f"the rollout is {self.phase}: nothing to promote"
                               + (" (use retry() after an abort)" if self.phase == "Degraded" else ""))
        live = self._live()
        if full or argo.pause_reasons(live) or (live.get("spec") or {}).get("paused"):
            self.conn.promote(self._key, full=full)
            self._event("promote --full" if full else "promote")
        self.phase, self.pause_reason = "Progressing", ""
        self.timeline.message = ""
        return self._follow()

    def abort(self) -> Timeline:
        """``kubectl argo rollouts abort``: Argo sets the canary weight to 0 and the canary
        Service back on the stable pods; returns the Degraded timeline."""
        if not self._started:
            self._start()
        if self.phase == "Healthy":
            raise RolloutError("the rollout is Healthy: nothing to abort")
        if self.phase == "Degraded":
            return self.timeline
        self.conn.abort(self._key)
        self._event("abort (user)")
        return self._follow()

    def retry(self) -> Timeline:
        """``kubectl argo rollouts retry rollout``: Argo starts the aborted update again
        from step 0; the new steps are added to the timeline."""
        if self.phase != "Degraded":
            raise RolloutError(f"the rollout is {self.phase}: only an aborted rollout can be retried")
        self._old_runs |= {r["metadata"]["name"] for r in self._runs(f"{argo.RUN_TYPE_LABEL}=Step")}
        self.conn.retry(self._key)
        self._event("retry")
        self._retrying = True
        self.phase, self.pause_reason = "Progressing", ""
        self.timeline.aborted_at_step = None
        self.timeline.message = ""
        self._cur, self._next, self._last_index = None, 0, None
        self._step_runs.clear()
        return self._follow()

    def set_fault(self, version: str, *, error_rate: float = 0.0, latency_ms: Any = None,
                  seed: int | None = None) -> None:
        raise RolloutError("faults cannot be injected in cluster mode: the echo server behind the Services has "
                           "no fault injection; roll out a canary image that fails instead")

    def clear_faults(self) -> None:
        """Nothing to clear: cluster mode injects no faults."""

    def route_weights(self) -> dict[str, dict[str, int]]:
        """The stable/canary weights written in each managed route right now (live)."""
        out = {}
        for kind, key in self.routes:
            route = self._route(kind, key)
            out[key] = plugin.route_weights(route, self.spec.canary_service, self.spec.stable_service,
                                            self.spec.managed_routes) if route else {}
        return out

    def query(self, query: str, t: float | None = None):
        """Ask the cluster's Prometheus (linkerd-viz's) an instant query, answered as Argo's
        Prometheus provider reads it: a list of floats for a vector, a float for a scalar."""
        result = self.conn.prometheus_query(query)
        values = []
        for r in result:
            v = r.get("value")
            if isinstance(v, list) and len(v) == 2:
                values.append(argo.measurement_value(str(v[1])))
        if len(result) == 1 and "metric" not in result[0]:
            return values[0] if values else None
        return values

    def status(self) -> dict:
        """The live Rollout (:func:`gwlib.cluster.rollouts.summary`)."""
        return argo.summary(self._live())

    def __repr__(self) -> str:
        return (f"<ClusterRolloutRun {self._key}: {self.phase}, step {self.index}/{len(self.spec.steps)}, "
                f"t={format_duration(self._elapsed())}>")

