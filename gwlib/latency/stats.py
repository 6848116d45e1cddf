"""Percentiles with honest uncertainty: bootstrap intervals, overheads, merging runs.

* :func:`percentile_ci` — a percentile and its bootstrap confidence interval;
* :func:`overhead` — mesh minus baseline per percentile, with an interval for the difference;
* :func:`merge` — pool runs by adding their histograms (exact);
* :func:`aggregations` — why averaging per-run percentiles, as many published studies do,
  gives a number that is not a percentile of anything.

The bootstrap resamples the *counts* of a histogram (a multinomial draw), which is the same
as resampling the raw latencies with replacement, without keeping them. Percentile
intervals for tails need many samples: a p99.9 from 2,000 requests rests on two values,
and its interval says so.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np
import pandas as pd

from .histogram import Histogram
from .result import Result

Data = Union[Histogram, Result, Sequence[float], np.ndarray]

DEFAULT_PERCENTILES = (50, 90, 99, 99.9)


def as_histogram(data: Data | Iterable[Data]) -> Histogram:
    """A histogram from a Histogram, a Result with one, an array of ms, or a list of those."""
    if isinstance(data, Histogram):
        return data
    if isinstance(data, Result):
        if data.histogram is None:
            raise ValueError(f"{data.tool} result has percentiles only, no distribution: "
                             "bootstrap and merging need the full histogram (wrk2 --latency, fortio -json, "
                             "gwlib.traffic)")
        return data.histogram
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, (Histogram, Result)) for d in data):
        return merge(data)
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("expected a non-empty 1-d array of latencies in ms")
    return Histogram.from_values(arr)


def merge(runs: Iterable[Histogram | Result]) -> Histogram:
    """Pool runs into one distribution by adding histograms (never by averaging percentiles)."""
    hs = [as_histogram(r) for r in runs]
    return Histogram.merge(hs)


def _boot_percentiles(h: Histogram, ps: np.ndarray, n_boot: int, rng: np.random.Generator,
                      chunk: int = 200) -> np.ndarray:
    """Bootstrap replicates of the percentiles: shape (n_boot, len(ps)), in ms."""
    idx, c = h._nonzero()
    n = int(c.sum())
    p = c / n
    out = []
    done = 0
    while done < n_boot:
        k = min(chunk, n_boot - done)
        draws = rng.multinomial(n, p, size=k)
        cum = np.cumsum(draws, axis=1)
        out.append(h._percentiles_from(idx, cum, np.broadcast_to(ps, (k, ps.size))) / 1e6)
        done += k
    return np.concatenate(out)


def percentile_ci(data: Data, percentiles: Sequence[float] = DEFAULT_PERCENTILES, *, n_boot: int = 1000,
                  confidence: float = 0.95, seed: int | None = 0) -> pd.DataFrame:
    """Each percentile with a bootstrap (percentile-method) confidence interval, in ms.

    Columns: ``percentile``, ``estimate_ms``, ``low_ms``, ``high_ms``, ``count`` (requests)
    and ``tail_count`` (how many requests lie above the percentile: few means the tail
    estimate rests on few values).
    """
    h = as_histogram(data)
    ps = np.asarray(percentiles, dtype=float)
    rng = np.random.default_rng(seed)
    boot = _boot_percentiles(h, ps, n_boot, rng)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [a, 1 - a], axis=0)
    n = h.count
    return pd.DataFrame({"percentile": ps, "estimate_ms": h.percentiles(ps), "low_ms": lo, "high_ms": hi,
                         "count": n, "tail_count": np.floor(n * (1 - ps / 100)).astype(int)})


def overhead(mesh: Data | Iterable[Data], baseline: Data | Iterable[Data],
             percentiles: Sequence[float] = DEFAULT_PERCENTILES, *, n_boot: int = 1000,
             confidence: float = 0.95, seed: int | None = 0) -> pd.DataFrame:
    """Latency added by a mesh (or any hop): ``mesh - baseline`` per percentile, with intervals.

    The two samples are independent, so each is resampled on its own and the interval is
    taken over the differences of the replicates. Lists of runs are merged first.
    Columns: ``percentile``, ``baseline_ms``, ``mesh_ms``, ``overhead_ms``, ``low_ms``,
    ``high_ms``, ``ratio`` (mesh / baseline).
    """
    hm, hb = as_histogram(mesh), as_histogram(baseline)
    ps = np.asarray(percentiles, dtype=float)
    rng = np.random.default_rng(seed)
    bm = _boot_percentiles(hm, ps, n_boot, rng)
    bb = _boot_percentiles(hb, ps, n_boot, rng)
    diff = bm - bb
    a = (1 - confidence) / 2
    lo, hi = np.quantile(diff, [a, 1 - a], axis=0)
    pm, pb = hm.percentiles(ps), hb.percentiles(ps)
    return pd.DataFrame({"percentile": ps, "baseline_ms": pb, "mesh_ms": pm, "overhead_ms": pm - pb,
                         "low_ms": lo, "high_ms": hi, "ratio": pm / pb})


def aggregations(runs: Sequence[Histogram | Result], percentiles: Sequence[float] = (50, 99, 99.9),
                 drop_worst: int = 1) -> pd.DataFrame:
    """Three ways to summarise several runs, side by side (ms).

    * ``mean of runs`` — the mean of each run's percentile (what the Kinvolk harness, and so
      the 2019/2021 studies, report);
    * ``mean, worst run dropped`` — the same after discarding the ``drop_worst`` runs with
      the highest max (as those studies did);
    * ``merged`` — the percentile of all requests pooled (add the histograms): the only one
      that answers "what latency did p % of requests beat?".
    """
    hs = [as_histogram(r) for r in runs]
    if len(hs) < 2:
        raise ValueError("need at least two runs")
    ps = np.asarray(percentiles, dtype=float)
    per_run = np.array([h.percentiles(ps) for h in hs])
    maxes = np.array([h.max for h in hs])
    keep = np.argsort(maxes)[: len(hs) - drop_worst] if drop_worst else np.arange(len(hs))
    rows = {
        "mean of runs": per_run.mean(axis=0),
        f"mean, {drop_worst} worst run{'s' if drop_worst != 1 else ''} dropped": per_run[keep].mean(axis=0),
        "merged": merge(hs).percentiles(ps),
    }
    df = pd.DataFrame(rows, index=pd.Index([_label(p) for p in ps], name="percentile")).T
    return df


def _label(p: float) -> str:
    return "max" if p >= 100 else f"p{p:g}"


def demo_runs(seed: int = 0, runs: int = 5, requests: int = 20_000, hiccup_run: int = 2,
              hiccup_fraction: float = 0.03, hiccup_ms: float = 200.0, offset_ms: float = 0.0,
              median_ms: float = 6.0) -> list[Histogram]:
    """Synthetic runs for teaching: lognormal latencies (median ``median_ms``), one with a hiccup.

    In run ``hiccup_run``, ``hiccup_fraction`` of the requests take up to ``hiccup_ms``
    longer (a GC pause, a node that stalls). ``offset_ms`` is added to every request (a hop
    that costs a fixed time). Seeded: the same runs every time.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(runs):
        v = rng.lognormal(mean=np.log(median_ms), sigma=0.35, size=requests) + offset_ms
        if i == hiccup_run:
            hit = rng.random(requests) < hiccup_fraction
            v[hit] += hiccup_ms * rng.uniform(0.5, 1.0, hit.sum())
        out.append(Histogram.from_values(v))
    return out
