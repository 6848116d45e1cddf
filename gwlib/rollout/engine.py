"""The rollout engine: an Argo Rollouts canary, step by step, against any gwlib connection.

    lab = gwlib.connect("lab")
    lab.apply("data/rollouts/talk")
    run = RolloutRun(lab, "rollouts-demo/rollouts-demo", seed=0, requests_per_step=2000)
    run.set_fault("v2", error_rate=0.05)
    timeline = run.run()          # Healthy | Degraded (aborted) | Paused
    timeline.to_frame()

What the engine does, as the Argo Rollouts controller and its Gateway API plugin would:

* **ReplicaSets and Services** — the stable and the new pod template each get a ReplicaSet
  stand-in (a Deployment named ``<rollout>-<pod-template-hash>``, labelled
  ``rollouts-pod-template-hash``), and the controller's selector injection points the
  ``stableService`` and ``canaryService`` at them. In the lab this is what gives each echo
  endpoint its version, so faults and statistics are per version, for real.
* **Weights** — the plugin's writes (:mod:`gwlib.rollout.plugin`): canary ``w``, stable
  ``100-w`` in every rule that lists them, header rules for ``setHeaderRoute``, the
  in-progress label. The route starts at 0 and ends at 0 (after promotion both Services
  select the new version).
* **Steps** — ``setWeight``, ``pause`` (with a duration: simulated time passes; without:
  the rollout is *Paused* until :meth:`RolloutRun.promote`), ``analysis`` (an
  :class:`~gwlib.rollout.analysis.AnalysisRun` that blocks the step: Successful → next
  step, Failed/Error → abort, Inconclusive → Paused), ``setCanaryScale`` (canary pod count;
  a canary with 0 pods gets weight 0 and its header routes removed, as Argo does),
  ``setHeaderRoute``, ``setMirrorRoute`` (a no-op, as in the plugin). Background analysis
  (``strategy.canary.analysis``, ``startingStep``) runs across steps.
* **Outcomes** — all steps done → promotion → **Healthy**; a failed or errored analysis →
  abort: weight 0, canary Service back on the stable pods, header rules removed →
  **Degraded**; Inconclusive or ``pause: {}`` → **Paused** until ``promote()`` or
  ``abort()``.

**Time** is simulated (:class:`Clock`): a ``pause: {duration: 5m}`` takes five logical
minutes and a fraction of a real second. Each step sends ``requests_per_step`` requests
spread evenly over its logical span (steps without a duration send theirs at one instant,
before any measurement at that instant); analysis measurements query what was recorded in
their window (``[1m]``). The timeline records logical and real time.

**In a cluster** (``RolloutRun(conn)`` with a ``cluster`` connection) none of the above is
simulated: Argo Rollouts and its Gateway API plugin run the steps, and
:class:`gwlib.rollout.cluster.ClusterRolloutRun` follows them into the same timeline.
"""
from __future__ import annotations

import copy
import json
import math
import random
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..backends.grpcecho import GRPC_ECHO_SERVICE
from ..problems import Problem
from . import plugin
from .analysis import AnalysisRun
from .duration import format_duration, pause_seconds
from .metrics import LabPrometheus, UnsupportedMetric
from .models import (HASH_LABEL, AnalysisRef, RolloutSpec, RolloutSpecError, Step, TemplateSpec, build_metric,
                     parse_rollout, parse_template, secret_value, substitute)
from .series import Observation, SeriesStore

__all__ = ["Clock", "RolloutError", "RolloutRun", "StepRecord", "Timeline", "run_rollout"]

MANAGED_BY = "argo-rollouts.argoproj.io/managed-by-rollouts"
#: The echo backend's own latency in the reference mode (the lab measures real latency):
#: log-normal, mean 1 ms, p99 ≈ 2.8 ms.
BASE_LATENCY = {"distribution": "lognormal", "mean_ms": 1.0, "sigma": 0.5}


class RolloutError(RuntimeError):
    """An action the rollout's state does not allow (promote a Healthy rollout, …)."""


class Clock:
    """Simulated time in seconds (``now``), advanced only by the engine."""

    def __init__(self, start: float = 0.0):
        self.now = float(start)

    def advance_to(self, t: float) -> None:
        if t < self.now - 1e-9:
            raise ValueError(f"the clock cannot go back from {self.now} to {t}")
        self.now = max(self.now, float(t))

    def __repr__(self) -> str:
        return f"<Clock t={format_duration(self.now)}>"


@dataclass
class StepRecord:
    """What happened during one step."""

    index: int
    step: dict
    weights: dict[str, int]
    analysis: dict | None = None
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    responses: dict[str, int] = field(default_factory=dict)
    start: float = 0.0
    end: float = 0.0
    real_seconds: float = 0.0
    canary_replicas: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The design's step object (plus the logical time and the responses per backend)."""
        d = {"index": self.index, "step": self.step, "weights": dict(self.weights), "analysis": self.analysis,
             "requests": self.requests, "errors": dict(self.errors), "responses": dict(self.responses),
             "time": {"start": round(self.start, 3), "end": round(self.end, 3)}}
        if self.notes:
            d["notes"] = list(self.notes)
        return d


@dataclass
class Timeline:
    """A rollout's record: phase, where it stopped, every step, the current weights."""

    rollout: str
    phase: str = "Progressing"
    aborted_at_step: int | None = None
    message: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON timeline of ``gwlib rollout run`` (design §4.1); ``weights`` are the
        route's weights when the run stopped. Deterministic for a seed: real time is left
        out (see :attr:`StepRecord.real_seconds`)."""
        return {"rollout": self.rollout, "phase": self.phase, "aborted_at_step": self.aborted_at_step,
                "message": self.message, "steps": [s.to_dict() for s in self.steps], "weights": dict(self.weights)}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_frame(self):
        """One row per step: step, weights, requests, canary share and errors, analysis, time."""
        import pandas as pd
        rows = []
        for s in self.steps:
            canary = _canary_key(s.weights, self.versions)
            total = sum(s.responses.values())
            a = s.analysis or {}
            vals = [m.get("value") for m in a.get("measurements", [])]
            rows.append({
                "index": s.index, "step": _step_text(s.step), "canary weight": s.weights.get(canary, 0),
                "requests": s.requests,
                "canary share": round(s.responses.get(canary, 0) / total, 3) if total else None,
                "canary errors": s.errors.get(canary, 0),
                "analysis": a.get("phase", ""), "values": ", ".join(_fmt_value(v) for v in vals),
                "t start": format_duration(s.start), "t end": format_duration(s.end),
            })
        return pd.DataFrame(rows)

    def table(self) -> str:
        """The timeline as text (``gwlib rollout run -o table``)."""
        head = [f"rollout {self.rollout}: {self.phase}" + (f" (aborted at step {self.aborted_at_step})"
                                                           if self.aborted_at_step is not None else ""),
                f"  {self.message}" if self.message else ""]
        cols = ["#", "step", "weights", "requests", "errors", "analysis", "logical time", "real"]
        body = []
        for s in self.steps:
            a = s.analysis or {}
            vals = ", ".join(f"{m['metric']}={_fmt_value(m.get('value'))} {m['phase']}"
                             for m in a.get("measurements", []))
            body.append([str(s.index), _step_text(s.step),
                         " ".join(f"{k.split('/')[-1]}={v}" for k, v in s.weights.items()),
                         str(s.requests), " ".join(f"{k.split('/')[-1]}={v}" for k, v in s.errors.items() if v) or "-",
                         (a.get("phase", "") + (f": {vals}" if vals else "")) or "-",
                         f"{format_duration(s.start)}→{format_duration(s.end)}", f"{s.real_seconds:.2f}s"])
        widths = [max(len(r[i]) for r in [cols] + body) for i in range(len(cols))]
        lines = [h for h in head if h]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in body]
        lines.append("final weights: " + ", ".join(f"{k}={v}" for k, v in self.weights.items()))
        return "\n".join(lines)

    def plot(self, ax=None):
        from .plots import plot_timeline
        return plot_timeline(self, ax=ax)

    def __repr__(self) -> str:
        where = f", aborted at step {self.aborted_at_step}" if self.aborted_at_step is not None else ""
        return f"<Timeline {self.rollout}: {self.phase}{where}, {len(self.steps)} steps>"


def _canary_key(weights: dict, versions: dict) -> str:
    key = versions.get("canary_service_key")
    if key:
        return key
    return list(weights)[-1] if weights else ""


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _step_text(step: dict) -> str:
    kind, value = next(iter(step.items()))
    if kind == "setWeight":
        return f"setWeight {value}"
    if kind == "pause":
        return f"pause {value.get('duration')}" if isinstance(value, dict) and "duration" in value else "pause"
    if kind == "analysis":
        return "analysis " + ",".join(t.get("templateName", "") for t in value.get("templates") or [])
    if kind == "setCanaryScale":
        return "setCanaryScale " + " ".join(f"{k}={v}" for k, v in value.items())
    if kind in ("setHeaderRoute", "setMirrorRoute"):
        return f"{kind} {value.get('name')}"
    return kind


# ----------------------------------------------------------------------- traffic

@dataclass
class _Chunk:
    requests: int = 0
    responses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)


class _SimFleet:
    """Fault injection and latency for the reference mode (the lab's echo server does it for
    real): the same :class:`~gwlib.backends._common.Fault` draws, per version, seeded."""

    def __init__(self, seed: int | None):
        from ..backends._common import Fault, latency_sampler
        self._Fault = Fault
        self.seed = seed
        self.faults: dict[tuple[str, str, str], Any] = {}
        self._base = latency_sampler(BASE_LATENCY)
        self._rngs: dict[tuple, random.Random] = {}

    def set_fault(self, ns: str, svc: str, version: str, error_rate: float = 0.0, latency_ms: Any = None,
                  seed: int | None = None) -> None:
        self.faults[(ns, svc, version)] = self._Fault(error_rate=error_rate, latency_ms=latency_ms, seed=seed)

    def clear(self) -> None:
        self.faults.clear()

    def decide(self, ns: str, svc: str, version: str) -> tuple[bool, float]:
        key = (ns, svc, version)
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = random.Random(f"{self.seed}/{ns}/{svc}/{version}/latency")
        base = self._base(rng)
        fault = self.faults.get(key)
        if fault is None or not fault.active:
            return False, base
        err, delay = fault.decide()
        return err, base + delay * 1000.0


def _is_error(ans: dict) -> bool:
    status = ans.get("status")
    if status is None:
        return True
    if "grpc_status" in ans and ans.get("grpc_status") not in (0, None):
        return True
    return status >= 500


def _backend_key(ans: dict) -> str:
    b = ans.get("backend")
    if b:
        return f"{b['namespace']}/{b['name']}"
    return "error" if ans.get("status") is None else str(ans.get("status"))


# ------------------------------------------------------------------------ engine

class RolloutRun:
    """Run one Rollout's canary steps against ``conn`` (a ``reference`` or ``lab``
    connection holding the Rollout, its AnalysisTemplates, Services and routes).

    ``rollout``: ``"ns/name"`` (optional when the connection holds one Rollout).
    ``requests_per_step``: requests sent during each step. ``seed``: makes the reference
    router's picks, the reference faults and the lab's fault draws repeatable.
    ``request``: the request to send (default: derived from the first route — its Gateway,
    first hostname and the path of the rule that lists both Services). ``provider``: who
    answers the AnalysisTemplates' queries (default :class:`LabPrometheus` over this run's
    traffic). ``concurrency``: parallel requests in the lab (injected latency overlaps, as
    with real clients). ``auto_promote``: release ``pause: {}`` steps at once, as
    ``kubectl argo rollouts promote`` would (an Inconclusive analysis still pauses).

    With a ``cluster`` connection (:class:`gwlib.cluster.ClusterConnection`) the same call
    returns a :class:`gwlib.rollout.cluster.ClusterRolloutRun`: Argo Rollouts runs the steps
    in the cluster and gwlib starts the update, follows it, sends the traffic and reads the
    results back into the same :class:`Timeline`.

    Raises :class:`~gwlib.rollout.models.RolloutSpecError` (one line per problem, naming
    file, object and field) for a Rollout or AnalysisTemplate gwlib cannot run — including
    a query it cannot answer — before anything changes.
    """

    #: the connection modes this class drives (cluster connections get :class:`ClusterRolloutRun`)
    MODES: tuple[str, ...] = ("lab", "reference")

    def __new__(cls, conn=None, *args: Any, **kwargs: Any):
        # one public entry point: with a cluster connection, Argo Rollouts itself runs the
        # steps and gwlib follows them (gwlib.rollout.cluster)
        if cls is RolloutRun and getattr(conn, "mode", None) == "cluster":
            from .cluster import ClusterRolloutRun
            return super().__new__(ClusterRolloutRun)
        return super().__new__(cls)

    def __init__(self, conn, rollout: str | None = None, *, seed: int | None = 0, requests_per_step: int = 1000,
                 clock: Clock | None = None, request: dict | None = None, provider=None, concurrency: int = 8,
                 auto_promote: bool = False):
        self._read_inputs(conn, rollout, seed=seed, requests_per_step=requests_per_step, clock=clock,
                          request=request, provider=provider, concurrency=concurrency, auto_promote=auto_promote)
        self.phase = "Progressing"
        self.pause_reason = ""
        self.index = 0
        self.weight = 0
        self.scale: tuple[str, int] | None = None
        self.header_routes: dict[str, list[dict]] = {}
        self.inline: AnalysisRun | None = None
        self.background: AnalysisRun | None = None
        self._background_done = False
        self._started = False
        self._chunks = 0
        self._aborted_for: str = ""
        self._sim = _SimFleet(seed) if conn.mode != "lab" else None
        self._fault_specs: dict[str, dict] = {}
        if self.spec.paused:
            self.phase, self.pause_reason = "Paused", "spec.paused"

    def _read_inputs(self, conn, rollout: str | None, *, seed: int | None, requests_per_step: int,
                     clock: Clock | None, request: dict | None, provider, concurrency: int,
                     auto_promote: bool) -> None:
        """Read and check the Rollout, its AnalysisTemplates, Services and routes (every
        mode: the same checks, the same errors)."""
        if getattr(conn, "mode", None) not in self.MODES:
            raise RolloutError(f"{type(self).__name__} drives the {' and '.join(self.MODES)} mode"
                               f"{'s' if len(self.MODES) > 1 else ''}; mode {getattr(conn, 'mode', conn)!r} "
                               "is not supported by it")
        self.conn = conn
        self.seed = seed
        self.requests_per_step = int(requests_per_step)
        if self.requests_per_step < 0:
            raise ValueError("requests_per_step must be >= 0")
        self.clock = clock or Clock()
        self.concurrency = max(1, int(concurrency))
        self.auto_promote = bool(auto_promote)
        obj = self._find_rollout(rollout)
        self.spec: RolloutSpec = parse_rollout(obj)
        self.templates = self._templates()
        self.stable_hash = self.spec.pod_template_hash(self.spec.stable_version)
        self.canary_hash = self.spec.pod_template_hash(self.spec.canary_version)
        ns = self.spec.namespace
        self.canary_key = f"{ns}/{self.spec.canary_service}"
        self.stable_key = f"{ns}/{self.spec.stable_service}"
        self.store = SeriesStore()
        self.provider = provider if provider is not None else LabPrometheus(self.store)
        self.routes = self._routes()
        self._check_services()
        self._check_analyses()
        self.request = dict(request) if request is not None else self._derive_request()
        self.timeline = Timeline(self.spec.key, versions={"stable": self.spec.stable_version,
                                                          "canary": self.spec.canary_version,
                                                          "canary_service_key": self.canary_key,
                                                          "stable_service_key": self.stable_key})

    # ------------------------------------------------------------------ reading input

    def _objects(self, kind: str) -> list:
        return [o for o in self.conn.objects if o.kind == kind]

    def _find_rollout(self, key: str | None):
        rollouts = self._objects("Rollout")
        if key is not None:
            ns, _, name = key.rpartition("/")
            for o in rollouts:
                if o.name == name and (not ns or o.namespace == ns):
                    return o
            raise RolloutError(f"no Rollout {key} (the connection holds: "
                               f"{', '.join(o.namespace + '/' + o.name for o in rollouts) or 'none'})")
        if len(rollouts) != 1:
            raise RolloutError("say which Rollout to run: the connection holds "
                               f"{', '.join(o.namespace + '/' + o.name for o in rollouts) or 'no Rollout'}")
        return rollouts[0]

    def _templates(self) -> dict[tuple[str, str, str], TemplateSpec]:
        out = {}
        problems: list[Problem] = []
        for kind in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
            for o in self._objects(kind):
                try:
                    t = parse_template(o)
                except RolloutSpecError as exc:
                    problems.extend(exc.problems)
                    continue
                out[(kind, t.namespace or "", t.name)] = t
        if problems:
            raise RolloutSpecError(problems)
        return out

    def _problem(self, path: str, message: str) -> Problem:
        file, doc = self.spec.source if self.spec.source else ("<object>", 0)
        return Problem(file, doc, "Rollout", self.spec.namespace, self.spec.name, path, message)

    def _service(self, name: str):
        for o in self._objects("Service"):
            if o.namespace == self.spec.namespace and o.name == name:
                return o
        return None

    def _check_services(self) -> None:
        problems = []
        for field_name, name in (("canaryService", self.spec.canary_service), ("stableService", self.spec.stable_service)):
            if self._service(name) is None:
                problems.append(self._problem(f"spec.strategy.canary.{field_name}",
                                              f"Service {self.spec.namespace}/{name} not found"))
        if problems:
            raise RolloutSpecError(problems)

    def _routes(self) -> list[tuple[str, str]]:
        """[(kind, "ns/name")] of the routes the plugin manages; checks each lists both."""
        ns = self.spec.plugin_namespace
        found: list[tuple[str, str, bool]] = []
        problems = []
        path = f"spec.strategy.canary.trafficRouting.plugins.{'argoproj-labs/gatewayAPI'}"
        for ref in self.spec.routes:
            obj = next((o for o in self._objects(ref.kind) if o.namespace == ns and o.name == ref.name), None)
            if obj is None:
                problems.append(self._problem(path, f"{ref.kind.lower()}s.gateway.networking.k8s.io "
                                                    f"\"{ref.name}\" not found in namespace {ns}"))
                continue
            found.append((ref.kind, f"{ns}/{ref.name}", ref.use_header_routes))
        for kind, sel in self.spec.route_selectors:
            for o in self._objects(kind):
                if o.namespace == ns and _selects(sel, o.labels):
                    if not any(k == kind and key == f"{ns}/{o.name}" for k, key, _ in found):
                        found.append((kind, f"{ns}/{o.name}", False))
        for kind, key, _ in found:
            route = self.conn.store.get(kind, key).to_dict()
            try:
                plugin.set_weight(route, self.spec.canary_service, self.spec.stable_service, 0,
                                  self.spec.managed_routes)
            except plugin.BackendRefNotFound as exc:
                problems.append(self._problem(path, f"{kind} {key}: {exc}"))
        if not found and not problems:
            problems.append(self._problem(path, "no route matches the configured route selectors"))
        if problems:
            raise RolloutSpecError(problems)
        self._header_route_kinds = {key: use for _, key, use in found}
        return [(k, key) for k, key, _ in found]

    def _resolve_args(self, ref: AnalysisRef, templates: list[TemplateSpec]) -> tuple[dict[str, str], list[str]]:
        args: dict[str, str | None] = {}
        errors: list[str] = []
        secrets = {f"{o.namespace}/{o.name}": o.to_dict() for o in self._objects("Secret")}
        for t in templates:
            for a in t.args:
                name = a["name"]
                if "value" in a and a["value"] is not None:
                    prev = args.get(name)
                    if prev is not None and prev != str(a["value"]):
                        errors.append(f"Argument `{name}` specified multiple times with different values: "
                                      f"'{prev}', '{a['value']}'")
                    args[name] = str(a["value"])
                elif a.get("valueFrom"):
                    ref_ = (a["valueFrom"] or {}).get("secretKeyRef") or {}
                    v = secret_value(secrets, t.namespace or self.spec.namespace, ref_)
                    if v is None:
                        errors.append(f"args.{name}: Secret {self.spec.namespace}/{ref_.get('name')} key "
                                      f"{ref_.get('key')!r} not found")
                    args[name] = v
                else:
                    args.setdefault(name, None)
        for a in ref.args:
            name = a["name"]
            if a.get("value") is not None:
                args[name] = str(a["value"])
                continue
            vf = a.get("valueFrom") or {}
            if "podTemplateHashValue" in vf:
                args[name] = self.stable_hash if vf["podTemplateHashValue"] == "Stable" else self.canary_hash
            elif "fieldRef" in vf:
                value = _field_ref(self.spec.raw, (vf["fieldRef"] or {}).get("fieldPath", ""))
                if value is None:
                    errors.append(f"args.{name}: fieldPath {(vf['fieldRef'] or {}).get('fieldPath')!r} "
                                  "resolves to nothing")
                args[name] = value
            elif name not in args:
                args[name] = None
        for name, v in args.items():
            if v is None and not any(e.startswith(f"args.{name}:") for e in errors):
                errors.append(f"args.{name} was not resolved")
        return {k: v for k, v in args.items() if v is not None}, errors

    def _analysis_inputs(self, ref: AnalysisRef) -> tuple[list[tuple[TemplateSpec, int, dict]], list[str]]:
        """[(template, metric index, resolved metric dict)] and the errors on the way."""
        templates = []
        errors: list[str] = []
        for name, cluster in ref.templates:
            key = ("ClusterAnalysisTemplate", "", name) if cluster else ("AnalysisTemplate", self.spec.namespace, name)
            t = self.templates.get(key)
            if t is None:
                errors.append(f"{key[0]} {name!r} not found" + ("" if cluster else f" in namespace {self.spec.namespace}"))
                continue
            templates.append(t)
        args, arg_errors = self._resolve_args(ref, templates)
        errors += arg_errors
        out = []
        seen: set[str] = set()
        for t in templates:
            for i, m in enumerate(t.metrics):
                if m.get("name") in seen:
                    errors.append(f"two metrics have the same name '{m.get('name')}'")
                seen.add(str(m.get("name")))
                missing: list[str] = []
                resolved = substitute(m, args, missing)
                for name in missing:
                    errors.append(f"failed to resolve {{{{args.{name}}}}} in metric {m.get('name')!r} of "
                                  f"{t.kind} {t.name}")
                out.append((t, i, resolved))
        return out, errors

    def _check_analyses(self) -> None:
        problems: list[Problem] = []
        refs: list[tuple[str, AnalysisRef, bool]] = []
        for st in self.spec.steps:
            if st.kind == "analysis":
                refs.append((f"spec.strategy.canary.steps[{st.index}].analysis", _analysis_ref(st.value), False))
        if self.spec.background is not None:
            refs.append(("spec.strategy.canary.analysis", self.spec.background, True))
        self._resolved: dict[int, list] = {}
        for path, ref, background in refs:
            inputs, errors = self._analysis_inputs(ref)
            for e in errors:
                problems.append(self._problem(path, e))
            for t, i, m in inputs:
                spec, merrs = build_metric(m, dry_run=str(m.get("name")) in set(ref.dry_run + t.dry_run))
                file, doc = t.source if t.source else ("<object>", 0)

                def tp(p: str, msg: str, t=t) -> Problem:
                    return Problem(file, doc, t.kind, t.namespace or "", t.name, p, msg)
                for e in merrs:
                    problems.append(tp(f"spec.metrics[{i}]", e))
                if spec is None:
                    continue
                if not background and spec.effective_count() is None:
                    problems.append(self._problem(
                        path, f"AnalysisTemplate {t.name} has metric {spec.name} which runs indefinitely. "
                              f"Invalid value for count: {m.get('count')} (an analysis step must end: set count)"))
                try:
                    self.provider.check(spec)
                except UnsupportedMetric as exc:
                    problems.append(tp(f"spec.metrics[{i}].provider.prometheus.query", str(exc)))
        if problems:
            raise RolloutSpecError(problems)

    def _derive_request(self) -> dict:
        kind, key = self.routes[0]
        route = self.conn.store.get(kind, key).to_dict()
        ns = key.split("/")[0]
        spec = route.get("spec") or {}
        parents = spec.get("parentRefs") or []
        gw_parent = next((p for p in parents if p.get("kind", "Gateway") == "Gateway"), None)
        if gw_parent is None:
            raise RolloutSpecError([self._problem(
                "spec.strategy.canary.trafficRouting",
                f"{kind} {key} has no Gateway parent (a GAMMA route): pass request=... to say what to send")])
        gw_ns = gw_parent.get("namespace") or ns
        req: dict[str, Any] = {"gateway": f"{gw_ns}/{gw_parent['name']}"}
        gw = next((o for o in self._objects("Gateway") if o.namespace == gw_ns and o.name == gw_parent["name"]), None)
        listener = None
        if gw is not None:
            listeners = (gw.to_dict().get("spec") or {}).get("listeners") or []
            if gw_parent.get("sectionName"):
                listener = next((lis for lis in listeners if lis.get("name") == gw_parent["sectionName"]), None)
            elif gw_parent.get("port"):
                listener = next((lis for lis in listeners if lis.get("port") == gw_parent["port"]), None)
            else:
                listener = next((lis for lis in listeners if lis.get("protocol") in ("HTTP", "HTTPS")), None)
        if listener is not None:
            req["port"] = listener.get("port")
            if listener.get("protocol") == "HTTPS":
                req["scheme"] = "https"
        hosts = spec.get("hostnames") or []
        host = hosts[0] if hosts else (listener or {}).get("hostname")
        if host:
            req["host"] = host.replace("*", "canary", 1)
        rule = next((r for r in spec.get("rules") or []
                     if not plugin.is_managed_rule(r, self.spec.managed_routes, self.spec.canary_service)
                     and {self.spec.canary_service, self.spec.stable_service}
                     <= {b.get("name") for b in r.get("backendRefs") or []}), {})
        match = (rule.get("matches") or [{}])[0]
        if kind == "GRPCRoute":
            method = match.get("method") or {}
            # a route that does not name the service: call the conformance echo's, which the
            # echo backends answer in every mode (the lab's and a cluster's)
            req["grpc"] = {"service": method.get("service") or GRPC_ECHO_SERVICE,
                           "method": method.get("method") or "Echo"}
        else:
            path = match.get("path") or {}
            if path.get("type") == "RegularExpression":
                raise RolloutSpecError([self._problem(
                    "spec.strategy.canary.trafficRouting",
                    f"{kind} {key}: the rule matches a regular expression: pass request=... to say what to send")])
            req["path"] = path.get("value") or "/"
            if match.get("method"):
                req["method"] = match["method"]
        headers = {h["name"]: h["value"] for h in match.get("headers") or [] if h.get("type", "Exact") == "Exact"}
        if headers:
            req["headers"] = headers
        return req

    # ------------------------------------------------------------------ faults

    @property
    def versions(self) -> dict[str, str]:
        return {"stable": self.spec.stable_version, "canary": self.spec.canary_version}

    def _version_of(self, name: str) -> str:
        if name in ("canary", "stable") and name not in (self.spec.stable_version, self.spec.canary_version):
            return self.versions[name]
        if name not in (self.spec.stable_version, self.spec.canary_version):
            raise ValueError(f"no version {name!r}: the rollout runs {self.spec.stable_version} (stable) and "
                             f"{self.spec.canary_version} (canary)")
        return name

    def set_fault(self, version: str, *, error_rate: float = 0.0, latency_ms: Any = None,
                  seed: int | None = None) -> None:
        """Inject faults into every pod of ``version`` (``"v2"``, or ``"canary"``/``"stable"``):
        a share ``error_rate`` of answers is 500, every answer is delayed by ``latency_ms``."""
        v = self._version_of(version)
        self._fault_specs[v] = {"error_rate": float(error_rate), "latency_ms": latency_ms,
                                "seed": seed if seed is not None else _derive_seed(self.seed, v)}
        self._program_faults()

    def clear_faults(self) -> None:
        self._fault_specs.clear()
        if self._sim is not None:
            self._sim.clear()
        else:
            for svc in (self.spec.canary_service, self.spec.stable_service):
                self.conn.fleet.clear_faults(self.spec.namespace, svc)

    def _program_faults(self) -> None:
        ns = self.spec.namespace
        for v, f in self._fault_specs.items():
            for i, svc in enumerate((self.spec.stable_service, self.spec.canary_service)):
                seed = None if f["seed"] is None else f["seed"] + i
                if self._sim is not None:
                    self._sim.set_fault(ns, svc, v, f["error_rate"], f["latency_ms"], seed)
                else:
                    self.conn.fleet.set_fault(ns, svc, v, error_rate=f["error_rate"], latency_ms=f["latency_ms"],
                                              seed=seed)

    # ------------------------------------------------------------------ cluster state

    def _canary_replicas(self) -> int:
        r = self.spec.replicas
        if self.scale is not None:
            kind, v = self.scale
            return v if kind == "replicas" else math.ceil(r * v / 100)
        return math.ceil(r * self.weight / 100)

    def _replicaset(self, version: str, pod_hash: str, replicas: int, metadata: dict) -> dict:
        t = self.spec.pod_template(version)
        meta = t.setdefault("metadata", {})
        labels = dict(meta.get("labels") or {})
        labels.update(metadata.get("labels") or {})
        labels[HASH_LABEL] = pod_hash
        meta["labels"] = labels
        if metadata.get("annotations"):
            meta["annotations"] = {**(meta.get("annotations") or {}), **metadata["annotations"]}
        pod_spec = t.setdefault("spec", {})
        if not pod_spec.get("containers"):
            pod_spec["containers"] = [{"name": "app", "image": f"gwlib/echo:{version}"}]
        selector = dict((self.spec.selector or {}).get("matchLabels") or {})
        selector[HASH_LABEL] = pod_hash
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": f"{self.spec.name}-{pod_hash}", "namespace": self.spec.namespace,
                             "labels": dict(labels), "annotations": {MANAGED_BY: self.spec.name,
                                                                     "gwlib.dev/stands-for": "ReplicaSet"}},
                "spec": {"replicas": int(replicas), "selector": {"matchLabels": selector}, "template": t}}

    def _service_with(self, name: str, pod_hash: str) -> dict:
        d = copy.deepcopy(self._service(name).to_dict())
        d.pop("status", None)
        spec = d.setdefault("spec", {})
        selector = dict(spec.get("selector") or {})
        selector[HASH_LABEL] = pod_hash
        spec["selector"] = selector
        meta = d.setdefault("metadata", {})
        meta["annotations"] = {**(meta.get("annotations") or {}), MANAGED_BY: self.spec.name}
        return d

    def _route_docs(self, weight: int) -> list[dict]:
        docs = []
        active = dict(self.header_routes) if self._canary_replicas() > 0 else {}
        for kind, key in self.routes:
            d = copy.deepcopy(self.conn.store.get(kind, key).to_dict())
            d.pop("status", None)
            d = plugin.remove_managed_rules(d, [n for n in self.spec.managed_routes if n not in active])
            d = plugin.set_weight(d, self.spec.canary_service, self.spec.stable_service, weight,
                                  self.spec.managed_routes)
            if self._header_route_kinds.get(key) and kind in ("HTTPRoute", "GRPCRoute"):
                for name, match in active.items():
                    d = plugin.set_header_route(d, self.spec.canary_service, self.spec.stable_service, name, match,
                                                self.spec.managed_routes)
            d = plugin.in_progress_label(d, self.spec.in_progress_label, weight)
            docs.append(d)
        return docs

    def _apply(self, *, weight: int, canary_hash: str, stable_hash: str, canary_replicas: int,
               stable_replicas: int, stable_rs_replicas: int | None = None) -> None:
        docs = [self._replicaset(self.spec.stable_version, self.stable_hash,
                                 stable_replicas if stable_rs_replicas is None else stable_rs_replicas,
                                 self.spec.stable_metadata),
                self._replicaset(self.spec.canary_version, self.canary_hash, canary_replicas,
                                 self.spec.canary_metadata),
                self._service_with(self.spec.stable_service, stable_hash),
                self._service_with(self.spec.canary_service, canary_hash)]
        docs += self._route_docs(weight)
        self.conn.apply(docs)

    def _effective_weight(self) -> int:
        return self.weight if self._canary_replicas() > 0 or self.weight == 0 else 0

    def _sync(self) -> None:
        self._apply(weight=self._effective_weight(), canary_hash=self.canary_hash, stable_hash=self.stable_hash,
                    canary_replicas=self._canary_replicas(), stable_replicas=self.spec.replicas)

    def _weights(self, weight: int) -> dict[str, int]:
        return {self.stable_key: 100 - weight, self.canary_key: weight}

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._sync()
        if self._sim is None:
            self.conn.fleet.reset_stats()
        self._program_faults()
        self.timeline.weights = self._weights(self._effective_weight())
        self.timeline.events.append({"time": self.clock.now, "event": "start", "weights": dict(self.timeline.weights),
                                     "stable": f"{self.spec.stable_version} ({self.stable_hash})",
                                     "canary": f"{self.spec.canary_version} ({self.canary_hash})"})

    # ------------------------------------------------------------------ traffic

    def _workload(self, svc: str) -> tuple[str, dict, str, str]:
        """(pod, pod labels, workload, replicaset) behind a Service right now."""
        svc_obj = self._service(svc)
        selector = ((svc_obj.to_dict().get("spec") or {}).get("selector") or {}) if svc_obj else {}
        for o in self._objects("Deployment"):
            if o.namespace != self.spec.namespace or not selector:
                continue
            labels = ((o.to_dict().get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                rs = o.name if (o.to_dict().get("metadata") or {}).get("annotations", {}).get(MANAGED_BY) else ""
                workload = self.spec.name if rs else o.name
                return f"{o.name}-lab-0", labels, workload, rs
        return f"{svc}-lab-0", {}, svc, ""

    def _send(self, n: int, t0: float, t1: float) -> _Chunk:
        """Send ``n`` requests for the simulated span (t0, t1] and record what the backends saw."""
        chunk = _Chunk(requests=n)
        self._chunks += 1
        gw_ns = str(self.request.get("gateway", "")).split("/")[0] or None
        if self._sim is not None:
            stats: dict[tuple[str, str], dict] = {}
            versions: dict[str, str] = {}
            router = self.conn.router
            router.rng = random.Random(f"{self.seed}/chunk/{self._chunks}")
            for _ in range(n):
                ans = self.conn.request(self.request)
                key = _backend_key(ans)
                chunk.responses[key] = chunk.responses.get(key, 0) + 1
                err = _is_error(ans)
                b = ans.get("backend")
                if b and not err:
                    ns, svc = b["namespace"], b["name"]
                    if key not in versions:
                        pod, labels, _, _ = self._workload(svc) if ns == self.spec.namespace else ("", {}, "", "")
                        versions[key] = labels.get("version") or labels.get("app.kubernetes.io/version") or ""
                    err, ms = self._sim.decide(ns, svc, versions[key])
                    st = stats.setdefault((ns, svc), {"requests": 0, "statuses": {}, "lat": []})
                    st["requests"] += 1
                    code = "500" if err else "200"
                    st["statuses"][code] = st["statuses"].get(code, 0) + 1
                    st["lat"].append(ms)
                if err:
                    chunk.errors[key] = chunk.errors.get(key, 0) + 1
            for (ns, svc), st in stats.items():
                chunk.observations.append(self._observation(ns, svc, st["requests"], st["statuses"], st["lat"], gw_ns))
        else:
            lab = self.conn
            req = self.request
            if n:
                if self.concurrency > 1 and n > 1:
                    with ThreadPoolExecutor(min(self.concurrency, n)) as pool:
                        answers = list(pool.map(lambda _: lab.request(req), range(n)))
                else:
                    answers = [lab.request(req) for _ in range(n)]
            else:
                answers = []
            for ans in answers:
                key = _backend_key(ans)
                chunk.responses[key] = chunk.responses.get(key, 0) + 1
                if _is_error(ans):
                    chunk.errors[key] = chunk.errors.get(key, 0) + 1
            for (ns, svc, _version), st in lab.fleet.stats(reset=True).items():
                if st.requests:
                    chunk.observations.append(self._observation(ns, svc, st.requests, st.statuses, st.latency_ms, gw_ns))
        self.store.record(t0, t1, chunk.observations)
        return chunk

    def _observation(self, ns: str, svc: str, requests: int, statuses: dict, latencies: Iterable[float],
                     client_ns: str | None) -> Observation:
        if ns == self.spec.namespace:
            pod, labels, workload, rs = self._workload(svc)
        else:
            pod, labels, workload, rs = f"{svc}-lab-0", {}, svc, ""
        return Observation(ns, svc, pod, labels, workload=workload, replicaset=rs, requests=requests,
                           statuses=dict(statuses), latencies_ms=list(latencies), client_namespace=client_ns)

    # ------------------------------------------------------------------ analysis

    def _measure(self, metric, t: float):
        return self.provider.measure(metric, t)

    def _new_run(self, ref: AnalysisRef, name: str, background: bool) -> AnalysisRun:
        inputs, errors = self._analysis_inputs(ref)
        run = AnalysisRun(name, [m for _, _, m in inputs], self._measure, start=self.clock.now,
                          dry_run=list(ref.dry_run) + [d for t, _, _ in inputs for d in t.dry_run],
                          background=background)
        if errors:
            run.phase, run.message = "Error", f"unable to resolve metric arguments: {errors[0]}"
        return run

    # ------------------------------------------------------------------ stepping

    def run(self, max_steps: int | None = None) -> Timeline:
        """Run steps until the rollout is Healthy, Degraded or Paused (or ``max_steps``
        steps have run); returns the timeline."""
        self._start()
        done = 0
        while True:
            while self.phase == "Progressing" and (max_steps is None or done < max_steps):
                if self.index >= len(self.spec.steps):
                    self._promote_fully()
                    break
                self._execute(self.spec.steps[self.index])
                done += 1
            if self.auto_promote and self.phase == "Paused" and self.pause_reason == "CanaryPauseStep" \
                    and self.index < len(self.spec.steps) and (max_steps is None or done < max_steps):
                # what `kubectl argo rollouts promote` does for a `pause: {}` step
                self.timeline.events.append({"time": self.clock.now, "event": "promote (auto_promote)"})
                self.index += 1
                self.phase, self.pause_reason = "Progressing", ""
                self.timeline.message = ""
                continue
            break
        if self.phase == "Progressing" and self.index >= len(self.spec.steps):
            self._promote_fully()
        self._sync_timeline()
        return self.timeline

    def step(self) -> Timeline:
        """Run one step (or finish the rollout when every step is done)."""
        return self.run(max_steps=1)

    def promote(self, full: bool = False) -> Timeline:
        """``kubectl argo rollouts promote``: release a pause (``pause: {}`` or an Inconclusive
        analysis) and go on; ``full=True`` skips the remaining steps. Runs until the next stop."""
        self._start()
        if self.phase in ("Healthy", "Degraded"):
            raise RolloutError(f"the rollout is {self.phase}: nothing to promote"
                               + (" (use retry() after an abort)" if self.phase == "Degraded" else ""))
        if self.phase == "Paused":
            if self.pause_reason in ("CanaryPauseStep", "InconclusiveAnalysisRun") and self.index < len(self.spec.steps):
                if self.pause_reason == "InconclusiveAnalysisRun" and self.inline is None \
                        and self.background is not None and self.background.phase == "Inconclusive":
                    self.background = None        # a new background run starts on the next step
                    self._background_done = False
                else:
                    self.index += 1
                self.inline = None
            self.phase, self.pause_reason = "Progressing", ""
            self.timeline.events.append({"time": self.clock.now, "event": "promote"})
        if full:
            self.index = len(self.spec.steps)
            self.timeline.events.append({"time": self.clock.now, "event": "promote --full"})
        return self.run()

    def abort(self) -> Timeline:
        """``kubectl argo rollouts abort``: weight 0, canary Service back on the stable pods."""
        self._start()
        if self.phase == "Healthy":
            raise RolloutError("the rollout is Healthy: nothing to abort")
        if self.phase != "Degraded":
            self._abort("Rollout aborted by user")
        self._sync_timeline()
        return self.timeline

    def retry(self) -> Timeline:
        """``kubectl argo rollouts retry``: start the aborted update again from step 0."""
        if self.phase != "Degraded":
            raise RolloutError(f"the rollout is {self.phase}: only an aborted rollout can be retried")
        self.phase, self.index, self.weight, self.scale = "Progressing", 0, 0, None
        self.header_routes.clear()
        self.inline = self.background = None
        self._background_done = False
        self.timeline.aborted_at_step = None
        self.timeline.message = ""
        self.timeline.events.append({"time": self.clock.now, "event": "retry"})
        self._sync()
        return self.run()

    # -- one step ---------------------------------------------------------------------

    def _planned_span(self, st: Step) -> float:
        if st.kind == "pause":
            d = (st.value or {}).get("duration") if isinstance(st.value, dict) else None
            return pause_seconds(d) if d is not None else 0.0
        if st.kind == "analysis" and self.inline is not None:
            spans = []
            for m in self.inline.metrics:
                eff = m.effective_count() or 1
                spans.append(m.initial_delay + (eff - 1) * (m.interval or 0.0))
            return max(spans or [0.0])
        return 0.0

    def _execute(self, st: Step) -> None:
        t0 = self.clock.now
        real0 = time.perf_counter()
        rec = StepRecord(st.index, st.to_dict(), {}, start=t0)
        bg_seen = len(self.background.log) if self.background is not None else 0
        if self.spec.background is not None and self.background is None and not self._background_done \
                and st.index >= (self.spec.background.starting_step or 0):
            self.background = self._new_run(self.spec.background, f"{self.spec.name}-background", background=True)
            self.timeline.events.append({"time": t0, "event": "background analysis started"})
            bg_seen = 0
        # -- the step's action
        if st.kind == "setWeight":
            self.weight = int(st.value)
            if self.scale is None and self.spec.replicas == 0 and self.weight > 0:
                rec.notes.append("spec.replicas is 0: the canary has no pods, so its weight stays 0")
        elif st.kind == "setCanaryScale":
            v = st.value
            if v.get("matchTrafficWeight"):
                self.scale = None
            elif v.get("replicas") is not None:
                self.scale = ("replicas", int(v["replicas"]))
            else:
                self.scale = ("weight", int(v["weight"]))
        elif st.kind == "setHeaderRoute":
            name, match = st.value["name"], st.value.get("match") or []
            if match:
                self.header_routes[name] = match
                if self._canary_replicas() == 0:
                    rec.notes.append(f"header route {name} removed at once: the canary has 0 pods, and Argo "
                                     "removes managed routes while it has none (argo-rollouts #4486, plugin #147); "
                                     "put setCanaryScale before setHeaderRoute")
            else:
                self.header_routes.pop(name, None)
        elif st.kind == "setMirrorRoute":
            rec.notes.append("setMirrorRoute does nothing with the Gateway API plugin (its SetMirrorRoute "
                             "returns without an error)")
        elif st.kind == "pause" and not (isinstance(st.value, dict) and "duration" in st.value):
            self.phase, self.pause_reason = "Paused", "CanaryPauseStep"
            self.timeline.message = (f"CanaryPauseStep: paused at step {st.index} (pause without a duration); "
                                     "promote() or abort()")
        elif st.kind == "analysis":
            self.inline = self._new_run(_analysis_ref(st.value), f"{self.spec.name}-step-{st.index}", background=False)
        if self._effective_weight() != self.weight and st.kind == "setWeight" and self.weight > 0 \
                and self._canary_replicas() == 0 and not rec.notes:
            rec.notes.append("the canary has 0 pods (setCanaryScale replicas: 0): its weight stays 0")
        self._sync()
        w = self._effective_weight()
        rec.weights = self._weights(w)
        rec.canary_replicas = self._canary_replicas()
        if self.phase == "Paused":
            rec.end = self.clock.now
            rec.real_seconds = time.perf_counter() - real0
            self.timeline.steps.append(rec)
            return
        # -- traffic and time
        span = self._planned_span(st)
        n_total = self.requests_per_step
        sent = 0
        end = t0 + span
        outcome = None

        # beyond its plan (an analysis retrying errors) a step keeps its rate; an instant
        # step's rate is its requests per minute
        rate = n_total / span if span > 0 else n_total / 60.0

        def planned(t: float) -> int:
            if t <= end:
                return n_total if span <= 0 else int(round(n_total * (t - t0) / span))
            return n_total + int(round(rate * (t - end)))

        now = t0
        first = True
        for _guard in range(1_000_000):
            candidates = [end] if self.inline is None or end > now else []
            for run in (self.inline, self.background):
                if run is not None and not run.completed:
                    nt = run.next_time()
                    if nt is not None:
                        candidates.append(nt)
            if self.inline is not None and self.inline.completed:
                candidates = [now]
            nxt = max(now, min(candidates)) if candidates else now
            if self.inline is None and nxt > end:
                nxt = end
            n = max(0, planned(nxt) - sent)
            if n or first:
                ch = self._send(n, now, nxt)
                sent += n
                rec.requests += n
                for k, v in ch.responses.items():
                    rec.responses[k] = rec.responses.get(k, 0) + v
                for k, v in ch.errors.items():
                    rec.errors[k] = rec.errors.get(k, 0) + v
            first = False
            self.clock.advance_to(nxt)
            now = nxt
            for run in (self.inline, self.background):
                if run is not None and not run.completed:
                    run.advance(now)
            if self.background is not None and self.background.completed:
                ph = self.background.phase
                if ph in ("Failed", "Error"):
                    outcome = ("abort", f"Background analysis phase {ph}: {self.background.message}")
                    break
                if ph == "Inconclusive" and self.pause_reason != "InconclusiveAnalysisRun":
                    outcome = ("pause", f"InconclusiveAnalysisRun: background analysis: {self.background.message}")
                    break
            if self.inline is not None:
                if self.inline.completed:
                    ph = self.inline.phase
                    if ph in ("Failed", "Error"):
                        outcome = ("abort", f"Step-based analysis phase {ph}: {self.inline.message}")
                    elif ph == "Inconclusive":
                        outcome = ("pause", f"InconclusiveAnalysisRun: step {st.index} analysis: {self.inline.message}")
                    break
                if self.inline.next_time() is None:   # nothing more to measure: settle it
                    self.inline.terminate(now)
                    continue
            elif now >= end:
                break
        else:  # pragma: no cover - a guard against a bug, not a user error
            raise RolloutError(f"step {st.index} did not finish")
        # -- record
        rec.end = self.clock.now
        if self.inline is not None:
            rec.analysis = {"phase": self.inline.phase, "measurements": [m.to_dict() for m in self.inline.log]}
            if self.inline.message:
                rec.analysis["message"] = self.inline.message
        elif self.background is not None and len(self.background.log) > bg_seen:
            rec.analysis = {"phase": self.background.phase, "background": True,
                            "measurements": [m.to_dict() for m in self.background.log[bg_seen:]]}
        for key in (self.stable_key, self.canary_key):
            rec.errors.setdefault(key, 0)
        order = [self.stable_key, self.canary_key] + sorted(k for k in rec.errors if k not in (self.stable_key, self.canary_key))
        rec.errors = {k: rec.errors[k] for k in order}
        rec.real_seconds = time.perf_counter() - real0
        self.timeline.steps.append(rec)
        if outcome is None:
            self.inline = None
            self.index += 1
        elif outcome[0] == "abort":
            self._abort(outcome[1])
        else:
            self.phase, self.pause_reason = "Paused", "InconclusiveAnalysisRun"
            self.timeline.message = outcome[1] + "; promote() or abort()"

    def _abort(self, reason: str) -> None:
        self.phase = "Degraded"
        self.timeline.aborted_at_step = self.index if self.index < len(self.spec.steps) else None
        self.timeline.message = f"RolloutAborted: Rollout aborted update to revision 2: {reason}"
        for run in (self.inline, self.background):
            if run is not None and not run.completed:
                run.terminate(self.clock.now)
        self.header_routes.clear()
        self.weight = 0
        self.scale = None
        # canary Service back on the stable pods; managed routes removed; the canary pods are
        # scaled down after abortScaleDownDelaySeconds (default 30 s)
        self._apply(weight=0, canary_hash=self.stable_hash, stable_hash=self.stable_hash, canary_replicas=0,
                    stable_replicas=self.spec.replicas)
        self.timeline.events.append({"time": self.clock.now, "event": "abort", "reason": reason})
        self.timeline.weights = self._weights(0)

    def _promote_fully(self) -> None:
        if self.background is not None and not self.background.completed:
            self.background.terminate(self.clock.now)
            if self.background.phase in ("Failed", "Error"):
                self._abort(f"Background analysis phase {self.background.phase}: {self.background.message}")
                return
        self._background_done = True
        # all steps done: the new ReplicaSet becomes stable; both Services select it; weight 0
        self.header_routes.clear()
        self.weight = 0
        self.scale = None
        self._apply(weight=0, canary_hash=self.canary_hash, stable_hash=self.canary_hash,
                    canary_replicas=self.spec.replicas, stable_replicas=self.spec.replicas, stable_rs_replicas=0)
        self.phase = "Healthy"
        self.timeline.message = (f"Rollout is healthy: {self.spec.canary_version} ({self.canary_hash}) promoted "
                                 f"after {len(self.spec.steps)} steps")
        self.timeline.events.append({"time": self.clock.now, "event": "promoted"})
        self.timeline.weights = self._weights(0)

    def _sync_timeline(self) -> None:
        self.timeline.phase = self.phase
        if self.phase not in ("Healthy", "Degraded"):
            self.timeline.weights = self._weights(self._effective_weight())

    # ------------------------------------------------------------------ helpers

    def route_weights(self) -> dict[str, dict[str, int]]:
        """The stable/canary weights written in each managed route right now."""
        return {key: plugin.route_weights(self.conn.store.get(kind, key).to_dict(), self.spec.canary_service,
                                          self.spec.stable_service, self.spec.managed_routes)
                for kind, key in self.routes}

    def query(self, query: str, t: float | None = None):
        """Ask the run's metrics (``LabPrometheus``) a PromQL query at logical time ``t``."""
        return self.provider.query(query, self.clock.now if t is None else t)

    def __repr__(self) -> str:
        return (f"<RolloutRun {self.spec.key}: {self.phase}, step {self.index}/{len(self.spec.steps)}, "
                f"t={format_duration(self.clock.now)}>")


def _analysis_ref(value: dict) -> AnalysisRef:
    return AnalysisRef([(t["templateName"], bool(t.get("clusterScope", False))) for t in value.get("templates") or []],
                       [dict(a) for a in value.get("args") or []], None,
                       [str(d.get("metricName")) for d in value.get("dryRun") or [] if isinstance(d, dict)])


def _selects(sel: dict, labels: dict) -> bool:
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values or op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels or op == "DoesNotExist" and key in labels:
            return False
    return True


def _field_ref(raw: dict, path: str) -> str | None:
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        v = ((raw.get("metadata") or {}).get(m.group(1)) or {}).get(m.group(2))
        return None if v is None else str(v)
    cur: Any = raw
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return None if isinstance(cur, (dict, list)) or cur is None else str(cur)


def _derive_seed(seed: int | None, text: str) -> int | None:
    if seed is None:
        return None
    h = 0
    for ch in text:
        h = (h * 131 + ord(ch)) % 1_000_003
    return int(seed) * 1_000_003 + h


def run_rollout(conn, rollout: str | None = None, *, faults: dict[str, dict] | None = None, **options) -> Timeline:
    """Run a Rollout to its end (Healthy, Degraded or Paused) and return its timeline;
    ``faults``: ``{"v2": {"error_rate": 0.05, "latency_ms": 50}}``."""
    run = RolloutRun(conn, rollout, **options)
    for version, f in (faults or {}).items():
        run.set_fault(version, **f)
    return run.run()

