"""What a Prometheus scraping Linkerd's proxies would hold, recorded from gwlib's traffic.

Every chunk of traffic the rollout engine sends (seconds ``t0``→``t1`` on the simulated
clock) becomes counter increments on the series Linkerd's proxies export
(https://linkerd.io/2/reference/proxy-metrics):

* ``request_total``;
* ``response_total`` with ``classification`` (``success`` | ``failure``: HTTP status ≥ 500 or
  a gRPC status other than 0 is a failure; **4xx is a success**) and ``status_code``;
* ``response_latency_ms_bucket`` (``le`` = Linkerd's buckets), ``_count`` and ``_sum``.

Each series carries the labels Linkerd's documented external-Prometheus scrape config
produces: ``namespace``, ``pod``, ``direction`` (``inbound`` on the server's proxy), ``tls``
and **every pod label** with non-alphanumerics replaced by ``_``
(``rollouts-pod-template-hash`` → ``rollouts_pod_template_hash``,
``app.kubernetes.io/version`` → ``app_kubernetes_io_version``); gwlib also sets
``deployment`` and ``rollout`` to the workload's name, and ``replicaset``. The same requests
are recorded once more on the client side (``direction="outbound"`` in the Gateway's
namespace) with ``dst_service``, ``dst_namespace``, ``dst_pod`` and ``dst_<pod label>``, the
labels a meshed client's proxy exports.

Counters grow linearly inside a chunk, so ``increase(x[1m])`` at time t counts exactly the
share of each chunk that falls in (t-60s, t].
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: Linkerd's proxy latency buckets (ms), upper bounds; +Inf follows.
LINKERD_BUCKETS_MS: tuple[float, ...] = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
                                         1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000)

#: Metric names gwlib records (what the lab's Prometheus can answer).
METRIC_NAMES = ("request_total", "response_total", "response_latency_ms_bucket",
                "response_latency_ms_count", "response_latency_ms_sum")

Labels = tuple[tuple[str, str], ...]


def prom_label(name: str) -> str:
    """A Kubernetes label key as Prometheus relabelling turns it into a label name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _fmt_le(le: float) -> str:
    return str(int(le)) if float(le).is_integer() else repr(float(le))


@dataclass
class Observation:
    """Requests one workload answered during one chunk of simulated time."""

    namespace: str
    service: str
    pod: str
    pod_labels: Mapping[str, str]
    workload: str = ""
    replicaset: str = ""
    requests: int = 0
    statuses: Mapping[str, int] = field(default_factory=dict)   # "200" -> n, "500" -> n
    latencies_ms: Iterable[float] = ()
    client_namespace: str | None = None                        # the Gateway's namespace


@dataclass
class _Chunk:
    t0: float
    t1: float
    values: dict[Labels, float]


class SeriesStore:
    """Counter series over simulated time, filled chunk by chunk."""

    def __init__(self) -> None:
        self.chunks: list[_Chunk] = []
        self._names: dict[str, set[Labels]] = {}

    def __len__(self) -> int:
        return len(self.chunks)

    def names(self) -> set[str]:
        return set(self._names)

    def series(self, name: str) -> set[Labels]:
        return set(self._names.get(name, ()))

    def add(self, t0: float, t1: float, values: Mapping[Labels, float]) -> None:
        if t1 < t0:
            raise ValueError("a chunk ends before it starts")
        chunk = _Chunk(float(t0), float(t1), {k: float(v) for k, v in values.items() if v})
        for labels in chunk.values:
            name = dict(labels)["__name__"]
            self._names.setdefault(name, set()).add(labels)
        self.chunks.append(chunk)

    def record(self, t0: float, t1: float, observations: Iterable[Observation]) -> None:
        """Turn per-workload counts into Linkerd's series for the chunk (t0, t1]."""
        values: dict[Labels, float] = {}

        def add(labels: dict[str, str], v: float) -> None:
            key = tuple(sorted(labels.items()))
            values[key] = values.get(key, 0.0) + v

        for ob in observations:
            if not ob.requests:
                continue
            pod_labels = {prom_label(k): str(v) for k, v in ob.pod_labels.items()}
            inbound = dict(pod_labels)
            inbound.update({"namespace": ob.namespace, "pod": ob.pod, "direction": "inbound", "tls": "true"})
            if ob.workload:
                inbound.setdefault("deployment", ob.workload)
                inbound.setdefault("rollout", ob.workload)
            if ob.replicaset:
                inbound.setdefault("replicaset", ob.replicaset)
            sides = [inbound]
            if ob.client_namespace is not None:
                outbound = {"namespace": ob.client_namespace, "direction": "outbound", "tls": "true",
                            "dst_namespace": ob.namespace, "dst_service": ob.service, "dst_pod": ob.pod}
                for k, v in pod_labels.items():
                    outbound[f"dst_{k}"] = v
                if ob.workload:
                    outbound["dst_deployment"] = ob.workload
                sides.append(outbound)
            lat = sorted(float(x) for x in ob.latencies_ms)
            total_ms = sum(lat)
            cum = [bisect.bisect_right(lat, le) for le in LINKERD_BUCKETS_MS]
            # latencies are a sample when the server keeps only the last N: scale to requests
            scale = ob.requests / len(lat) if lat else 0.0
            for base in sides:
                add({**base, "__name__": "request_total"}, ob.requests)
                for status, n in ob.statuses.items():
                    code = int(status) if str(status).isdigit() else 0
                    cls = "failure" if code >= 500 or code == 0 else "success"
                    add({**base, "__name__": "response_total", "classification": cls,
                         "status_code": str(status)}, n)
                if lat:
                    for le, c in zip(LINKERD_BUCKETS_MS, cum):
                        add({**base, "__name__": "response_latency_ms_bucket", "le": _fmt_le(le)}, c * scale)
                    add({**base, "__name__": "response_latency_ms_bucket", "le": "+Inf"}, ob.requests)
                    add({**base, "__name__": "response_latency_ms_count"}, ob.requests)
                    add({**base, "__name__": "response_latency_ms_sum"}, total_ms * scale)
        self.add(t0, t1, values)

    def increase(self, name: str, matches, start: float, end: float) -> dict[Labels, float]:
        """Σ of each matching series' increments in (start, end] (``matches(labels)``)."""
        wanted = {lab for lab in self._names.get(name, ()) if matches(lab)}
        out: dict[Labels, float] = {}
        if not wanted:
            return out
        for ch in self.chunks:
            if ch.t1 == ch.t0:
                frac = 1.0 if start < ch.t0 <= end else 0.0
            else:
                lo, hi = max(start, ch.t0), min(end, ch.t1)
                frac = max(0.0, hi - lo) / (ch.t1 - ch.t0)
            if frac <= 0:
                continue
            for lab, v in ch.values.items():
                if lab in wanted:
                    out[lab] = out.get(lab, 0.0) + v * frac
        for lab in wanted:   # a series that exists but did not move in the window reads 0
            out.setdefault(lab, 0.0)
        return out


__all__ = ["LINKERD_BUCKETS_MS", "METRIC_NAMES", "Observation", "SeriesStore", "prom_label"]
