"""Linkerd proxy metrics, read from the proxies themselves.

Every linkerd2-proxy serves Prometheus text on its admin port (4191, ``/metrics``). gwlib
reads it through the API server's pod proxy (no port-forward, no Prometheus needed) and
parses it with ``prometheus_client``'s parser — the Prometheus project's own Python
implementation of the text format.

Samples get the labels a Prometheus that scrapes the proxy would add (as linkerd-viz's
scrape configuration does): ``namespace``, ``pod``, and every pod label with its name made
a valid label name (``rollouts-pod-template-hash`` → ``rollouts_pod_template_hash``);
``linkerd.io/proxy-<kind>`` labels become ``<kind>`` (``deployment``), other
``linkerd.io/<x>`` labels become ``<x>``. A label the proxy itself exported under the same
name is kept as ``exported_<name>``, as Prometheus does. So the AnalysisTemplates' query
shapes (``response_total{namespace=..., rollouts_pod_template_hash=..., classification=...}``)
select the same series here as on a real Prometheus.

Counters are totals since each proxy started: compare two scrapes (``golden(since=...)``)
for what happened in between.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

ADMIN_PORT = 4191
PROXY_CONTAINER = "linkerd-proxy"


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict
    value: float

    def key(self) -> tuple:
        return (self.name, tuple(sorted(self.labels.items())))


def _label_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def target_labels(namespace: str, pod: str, pod_labels: dict | None = None) -> dict:
    """The labels Prometheus (linkerd-viz's scrape config) attaches to a proxy's samples."""
    out = {"namespace": namespace, "pod": pod}
    tmp: dict[str, str] = {}
    for k, v in sorted((pod_labels or {}).items()):
        n = _label_name(k)
        if n == "linkerd_io_proxy_job":
            out["k8s_job"] = v
            continue
        if n.startswith("linkerd_io_proxy_"):
            out[n[len("linkerd_io_proxy_"):]] = v
            continue
        if n.startswith("linkerd_io_"):
            out[n[len("linkerd_io_"):]] = v
            continue
        tmp[n] = v
    for n, v in tmp.items():
        out.setdefault(n, v)
    return out


def parse(text: str, extra: dict | None = None) -> list[Sample]:
    """Samples of a Prometheus text exposition, with ``extra`` target labels attached
    (a clashing exported label becomes ``exported_<name>``)."""
    from prometheus_client.parser import text_string_to_metric_families

    extra = extra or {}
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = {}
            for k, v in s.labels.items():
                labels[f"exported_{k}" if k in extra else k] = v
            labels.update(extra)
            out.append(Sample(s.name, labels, float(s.value)))
    return out


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile`` over cumulative (upper bound, count) buckets:
    linear interpolation inside the bucket; the highest finite bound when the rank falls in
    the +Inf bucket; NaN without observations."""
    buckets = sorted(buckets, key=lambda b: b[0])
    if not buckets or buckets[-1][1] <= 0 or not math.isinf(buckets[-1][0]):
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


@dataclass
class Scrape:
    """The samples of several proxies, read at ``time`` (seconds since the epoch)."""

    samples: list[Sample] = field(default_factory=list)
    time: float = field(default_factory=time.time)
    errors: list[str] = field(default_factory=list)

    def select(self, name: str, **match: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name
                and all(s.labels.get(k) == v for k, v in match.items())]

    def to_frame(self):
        import pandas as pd
        rows = [{"metric": s.name, **s.labels, "value": s.value} for s in self.samples]
        return pd.DataFrame(rows)

    def golden(self, since: "Scrape | None" = None, by: tuple[str, ...] = ("namespace", "workload"),
               direction: str = "inbound"):
        """Requests, success rate and latency quantiles per group (a pandas DataFrame), from
        ``response_total`` and ``response_latency_ms_bucket`` of ``direction``; with
        ``since``, only what happened after that earlier scrape. ``workload`` is the
        Deployment (``deployment`` label) or, for Argo Rollouts, ``rollout/<hash>``."""
        import pandas as pd

        before = {s.key(): s.value for s in (since.samples if since else [])}

        def delta(s: Sample) -> float:
            v = s.value - before.get(s.key(), 0.0)
            return v if v >= 0 else s.value  # a restarted proxy starts from 0

        def group(s: Sample) -> tuple:
            labels = dict(s.labels)
            wl = labels.get("deployment")
            if not wl and labels.get("rollouts_pod_template_hash"):
                wl = f"rollout/{labels['rollouts_pod_template_hash']}"
            labels["workload"] = wl or labels.get("pod", "")
            return tuple(labels.get(k, "") for k in by)

        totals: dict[tuple, list[float]] = {}
        buckets: dict[tuple, dict[float, float]] = {}
        for s in self.samples:
            if s.labels.get("direction") != direction:
                continue
            if s.name == "response_total":
                t = totals.setdefault(group(s), [0.0, 0.0])
                d = delta(s)
                t[0] += d
                if s.labels.get("classification") == "success":
                    t[1] += d
            elif s.name == "response_latency_ms_bucket":
                le = float(s.labels.get("le", "inf").replace("+Inf", "inf"))
                b = buckets.setdefault(group(s), {})
                b[le] = b.get(le, 0.0) + delta(s)
        rows = []
        for g in sorted(set(totals) | set(buckets)):
            n, ok = totals.get(g, [0.0, 0.0])
            bs = list((buckets.get(g) or {}).items())
            rows.append({**dict(zip(by, g)), "requests": int(n),
                         "success_rate": (ok / n) if n else math.nan,
                         "p50_ms": histogram_quantile(0.5, bs), "p99_ms": histogram_quantile(0.99, bs)})
        return pd.DataFrame(rows, columns=[*by, "requests", "success_rate", "p50_ms", "p99_ms"])


def is_meshed(pod: dict) -> bool:
    """A pod with a linkerd2-proxy (a sidecar, or a native sidecar among initContainers)."""
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == PROXY_CONTAINER:
            return True
    return False
