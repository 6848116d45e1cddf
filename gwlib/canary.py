"""Canary weights, measured: what a split *is*, what samples of it look like, and why.

* **exact splits** come from the IR (:func:`exact_splits`): a backendRef's share is
  ``weight / sum(weights of its rule)``; the default weight is 1 (so a route that lists a
  stable and a canary Service without weights splits 50/50); weight 0 takes no traffic,
  even for a Service that does not exist; the share of an invalid backend answers 500.
* **samples** of a split are binomial: :func:`binomial_ci` (Wilson, or exact
  Clopper–Pearson) and :func:`observed` put a confidence interval on every observed share.
* **data planes pick differently**: Envoy draws each request at random
  (``weighted_clusters``), Traefik runs a deterministic weighted round robin (an
  earliest-deadline-first schedule). :func:`picks` models both; :func:`share_spread`
  compares them over small and large counts; :func:`dataplane_shares` measures real traffic
  through both proxies in the lab.
* **weights that shift** (a canary moving 5 → 10 → 20 → 50 %): :func:`weight_series` sends
  real traffic at each weight and records the shares, :func:`plot_weight_series` draws them.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["binomial_ci", "dataplane_shares", "exact_splits", "observed", "picks", "plot_dataplane_shares",
           "plot_share_spread", "plot_weight_series", "sample", "share_spread", "weight_series", "wrr_schedule"]


# ------------------------------------------------------------------------- exact splits

def exact_splits(conn, requests: Iterable[dict], labels: Sequence[str] | None = None):
    """The exact split of each request (``conn.split``), one row per (request, backend).

    Backends that answer 500 (invalid) appear as ``"500"``; a request that is not forwarded
    (404, redirect) has no rows."""
    import pandas as pd
    rows = []
    for i, req in enumerate(requests):
        label = labels[i] if labels else (req.get("path") or str(i))
        for backend, share in sorted(conn.split(req).items()):
            rows.append({"request": label, "backend": backend, "share": round(share, 6)})
    return pd.DataFrame(rows, columns=["request", "backend", "share"])


# -------------------------------------------------------------------------- intervals

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Numerical Recipes)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(lbeta)
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def _beta_ppf(q: float, a: float, b: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if _betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def binomial_ci(k: int, n: int, level: float = 0.95, method: str = "wilson") -> tuple[float, float]:
    """A confidence interval for a share from ``k`` of ``n``: ``"wilson"`` (score interval,
    good coverage at any n) or ``"exact"`` (Clopper–Pearson, conservative)."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n ({k} of {n})")
    alpha = 1 - level
    if method == "exact":
        lo = 0.0 if k == 0 else _beta_ppf(alpha / 2, k, n - k + 1)
        hi = 1.0 if k == n else _beta_ppf(1 - alpha / 2, k + 1, n - k)
        return (lo, hi)
    if method != "wilson":
        raise ValueError("method must be 'wilson' or 'exact'")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def observed(counts: Mapping[str, int], expected: Mapping[str, float] | None = None, level: float = 0.95,
             method: str = "wilson"):
    """Observed shares with confidence intervals, next to the exact split if given; ``inside``
    says whether the exact share lies in the interval (it should, ~95 % of the time)."""
    import pandas as pd
    n = sum(counts.values())
    keys = sorted(set(counts) | set(expected or {}))
    rows = []
    for key in keys:
        k = counts.get(key, 0)
        lo, hi = binomial_ci(k, n, level, method)
        row = {"backend": key, "count": k, "share": round(k / n, 4) if n else None,
               "ci low": round(lo, 4), "ci high": round(hi, 4)}
        if expected is not None:
            e = expected.get(key, 0.0)
            row["exact"] = round(e, 4)
            row["inside"] = bool(lo - 1e-12 <= e <= hi + 1e-12)
        rows.append(row)
    return pd.DataFrame(rows)


def sample(conn, request: dict, n: int = 100, level: float = 0.95):
    """Send ``request`` ``n`` times through ``conn``; observed shares with intervals and the exact split."""
    return observed(conn.sample(request, n=n), conn.split(request), level)


# ------------------------------------------------------------------------ pick models

def wrr_schedule(weights: Sequence[float]) -> list[int]:
    """Traefik's weighted round robin for one round: indexes of the backends, in the order
    Traefik's earliest-deadline-first balancer (``wrr.go``) picks them. A backend's deadline
    starts at ``1/weight`` and grows by ``1/weight`` each time it is picked; ties go to the
    backend listed first (Traefik's heap may order ties differently; the counts are the same).
    With integer weights the schedule repeats every ``sum(weights)`` picks."""
    heap = [(1.0 / w, i) for i, w in enumerate(weights) if w > 0]
    heapq.heapify(heap)
    total = int(round(sum(w for w in weights if w > 0)))
    out = []
    for _ in range(total):
        d, i = heapq.heappop(heap)
        out.append(i)
        heapq.heappush(heap, (d + 1.0 / weights[i], i))
    return out


def picks(weights: Sequence[float] | Mapping[str, float], n: int, model: str = "random",
          seed: int | None = 0) -> np.ndarray:
    """``n`` backend choices (indexes into ``weights``): ``"random"`` draws each pick
    independently with probability weight/sum, like Envoy; ``"wrr"`` follows Traefik's
    deterministic schedule (integer weights)."""
    w = list(weights.values()) if isinstance(weights, Mapping) else list(weights)
    if not w or sum(w) <= 0:
        raise ValueError("weights must contain a positive weight")
    if model == "random":
        p = np.asarray(w, float) / float(sum(w))
        return np.random.default_rng(seed).choice(len(w), size=int(n), p=p)
    if model == "wrr":
        if any(abs(x - round(x)) > 1e-9 for x in w):
            raise ValueError("the WRR model takes integer weights")
        period = np.asarray(wrr_schedule(w), dtype=np.int64)
        reps = -(-int(n) // len(period))
        return np.tile(period, reps)[: int(n)]
    raise ValueError("model must be 'random' (Envoy) or 'wrr' (Traefik)")


def share_spread(weights: Sequence[float] = (80, 20), ns: Sequence[int] = (7, 13, 23, 67, 133, 333, 1001, 9999),
                 batches: int = 200, seed: int = 0, backend: int = -1):
    """How far the observed share of one backend (default: the last, the canary) strays from
    its exact share after n requests, for Envoy's random picks and Traefik's round robin:
    median and 95th percentile of |observed − exact| over ``batches`` consecutive batches."""
    import pandas as pd
    w = list(weights)
    exact = w[backend] / sum(w)
    idx = backend % len(w)
    rows = []
    for model, name in (("random", "envoy (random)"), ("wrr", "traefik (round robin)")):
        for n in ns:
            seq = picks(w, n * batches, model, seed)
            shares = (seq.reshape(batches, n) == idx).mean(axis=1)
            dev = np.abs(shares - exact)
            rows.append({"dataplane": name, "n": n, "median |error|": float(np.median(dev)),
                         "p95 |error|": float(np.quantile(dev, 0.95)), "max |error|": float(dev.max())})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------- real lab traffic

def dataplane_shares(manifests: Any, request: dict, ns: Sequence[int] = (10, 100, 1000),
                     dataplanes: Sequence[str] = ("envoy", "traefik"), batches: int = 5, backend: str | None = None):
    """Real traffic through each data plane: for every n, ``batches`` consecutive batches of n
    requests; the canary's share in each batch and its Wilson interval. ``backend`` names the
    canary (``"ns/name"``; default: the smallest share of the exact split)."""
    import pandas as pd

    from .lab import Lab
    rows = []
    for dp in dataplanes:
        with Lab(dataplane=dp) as lab:
            lab.apply(manifests)
            split = lab.split(request)
            target = backend or min(split, key=split.get)
            for n in ns:
                for b in range(batches):
                    counts = lab.sample(request, n=n)
                    k = counts.get(target, 0)
                    lo, hi = binomial_ci(k, n)
                    rows.append({"dataplane": dp, "n": n, "batch": b, "canary": k, "share": k / n,
                                 "exact": split.get(target, 0.0), "ci low": lo, "ci high": hi})
    return pd.DataFrame(rows)


def weight_series(conn, route: str, request: dict, weights: Sequence[int] = (0, 5, 10, 20, 50, 100),
                  per_step: int = 200, stable: str | None = None, canary: str | None = None, rule: int = 0,
                  kind: str = "HTTPRoute"):
    """Shift a route's weights step by step (as a canary controller does) and send
    ``per_step`` real requests at each: one row per step with the observed canary share and
    its interval. ``stable``/``canary`` default to the rule's first and second backendRef."""
    import pandas as pd
    obj = conn.store.get(kind, route)
    refs = ((obj.to_dict().get("spec") or {}).get("rules") or [{}])[rule].get("backendRefs") or []
    stable = stable or refs[0]["name"]
    canary = canary or refs[1]["name"]
    ns = obj.namespace
    rows = []
    for step, w in enumerate(weights):
        conn.set_weights(route, {stable: 100 - int(w), canary: int(w)}, rule=rule, kind=kind)
        counts = conn.sample(request, n=per_step)
        k = counts.get(f"{ns}/{canary}", 0)
        lo, hi = binomial_ci(k, per_step)
        rows.append({"step": step, "weight": int(w), "requests": per_step, "canary": k,
                     "share": k / per_step, "ci low": lo, "ci high": hi})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ plots

def plot_share_spread(df, ax=None):
    """|observed − exact| against n (log-log) for both data planes."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for name, g in df.groupby("dataplane"):
        line, = ax.plot(g["n"], g["p95 |error|"].clip(lower=1e-4), marker="o", label=f"{name}: p95")
        ax.plot(g["n"], g["median |error|"].clip(lower=1e-4), ls="--", color=line.get_color(),
                label=f"{name}: median")
    ns = sorted(set(df["n"]))
    ax.plot(ns, [1 / n for n in ns], color="gray", ls=":", label="one request (1/n)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests in the batch (n)")
    ax.set_ylabel("|observed share − exact share|")
    ax.set_title("How far a batch strays from the weights")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return ax


def plot_dataplane_shares(df, ax=None):
    """Observed canary share per batch with Wilson intervals, per data plane and n."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    groups = list(df.groupby(["n", "dataplane"], sort=True))
    for x, ((n, dp), g) in enumerate(groups):
        xs = x + np.linspace(-0.25, 0.25, len(g))
        ax.errorbar(xs, g["share"], yerr=[g["share"] - g["ci low"], g["ci high"] - g["share"]], fmt="o",
                    color="C0" if dp == "envoy" else "C1", capsize=2, ms=4)
    exact = float(df["exact"].iloc[0])
    ax.axhline(exact, color="k", ls=":", label=f"exact share {exact:.0%}")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{dp}\nn={n}" for (n, dp), _ in groups], fontsize=8)
    ax.set_ylabel("canary share per batch")
    ax.set_title("Real traffic: Envoy picks at random, Traefik in a fixed order")
    ax.legend()
    return ax


def plot_weight_series(df, ax=None):
    """The canary's share per step (with intervals) against the weight it was set to."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    ax.step(df["step"], df["weight"] / 100, where="mid", color="k", label="weight set on the route")
    ax.errorbar(df["step"], df["share"], yerr=[df["share"] - df["ci low"], df["ci high"] - df["share"]],
                fmt="o", capsize=3, label="observed share (95% CI)")
    ax.set_xticks(df["step"])
    ax.set_xticklabels([f"{w}%" for w in df["weight"]])
    ax.set_xlabel("canary weight at each step")
    ax.set_ylabel("share of requests to the canary")
    ax.set_title("Shares while the weights shift")
    ax.legend()
    return ax
