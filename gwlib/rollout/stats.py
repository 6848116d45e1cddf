"""How many requests a canary needs, and how analysis rules behave — with numbers.

* :func:`requests_needed` — requests to detect an error-rate regression ``p0 → p1`` at canary
  weight ``w`` with a one-sided two-proportion z-test (canary:stable = w:(1−w)), and with a
  sequential test (:func:`sequential_requests`); :func:`detection_table` for a grid.
* :class:`SequentialTest` — Wald's SPRT on **where the errors land**: with weight w and equal
  error rates, each error is the canary's with probability w; if the canary's error rate is
  r times the stable's, with probability wr / (wr + 1 − w). Two counters are enough, it can
  be checked after every request without inflating false alarms, and it needs no baseline
  error rate.
* :func:`simulate_policies` — many simulated canaries: how often a fixed threshold (Argo's
  ``result[0] >= 0.99`` with ``failureLimit``), a z-test and the SPRT abort a healthy canary
  (false abort) or let a bad one through (missed regression).

Plain numpy and the standard library (``statistics.NormalDist``); seeded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = ["SequentialTest", "detection_table", "requests_needed", "sequential_requests", "simulate_policies",
           "two_proportion_test"]

_N = NormalDist()


def _check(p0: float, p1: float, weight: float) -> None:
    if not 0 < weight < 1:
        raise ValueError("weight must be between 0 and 1 (exclusive), e.g. 0.05 for 5 %")
    if not 0 < p0 < 1 or not 0 < p1 < 1:
        raise ValueError("error rates must be between 0 and 1 (exclusive)")
    if p1 <= p0:
        raise ValueError("p1 (the regressed error rate) must be above p0")


def requests_needed(p0: float, p1: float, weight: float, alpha: float = 0.05, power: float = 0.8) -> dict:
    """Requests to detect ``p0 → p1`` on a canary at ``weight`` (one-sided z-test for two
    proportions, unpooled alternative variance, allocation w:(1−w)).

    Returns ``{"canary": n_c, "total": n_c / w}`` (rounded up)."""
    _check(p0, p1, weight)
    k = (1 - weight) / weight            # stable requests per canary request
    pbar = (p1 + k * p0) / (1 + k)
    za, zb = _N.inv_cdf(1 - alpha), _N.inv_cdf(power)
    n = (za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / k))
         + zb * math.sqrt(p1 * (1 - p1) + p0 * (1 - p0) / k)) ** 2 / (p1 - p0) ** 2
    return {"canary": math.ceil(n), "total": math.ceil(n / weight)}


def _q(weight: float, ratio: float) -> float:
    return weight * ratio / (weight * ratio + 1 - weight)


@dataclass
class SequentialTest:
    """Wald's SPRT on the canary's share of errors.

    H0: the canary's error rate equals the stable's (an error is the canary's with
    probability ``weight``); H1: it is ``ratio`` times higher. ``update(canary_errors,
    stable_errors)`` (cumulative counts) returns ``"regression"`` (abort), ``"ok"`` (the canary
    is no worse than H1 says) or ``"continue"``."""

    weight: float
    ratio: float = 2.0
    alpha: float = 0.05
    beta: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.weight < 1:
            raise ValueError("weight must be between 0 and 1 (exclusive)")
        if self.ratio <= 1:
            raise ValueError("ratio must be above 1 (the regression to detect)")
        self.q0 = self.weight
        self.q1 = _q(self.weight, self.ratio)
        self.upper = math.log((1 - self.beta) / self.alpha)
        self.lower = math.log(self.beta / (1 - self.alpha))
        self._a = math.log(self.q1 / self.q0)
        self._b = math.log((1 - self.q1) / (1 - self.q0))

    def llr(self, canary_errors, stable_errors):
        """log likelihood ratio H1:H0 (numpy arrays work too)."""
        return np.asarray(canary_errors) * self._a + np.asarray(stable_errors) * self._b

    def update(self, canary_errors: int, stable_errors: int) -> str:
        v = float(self.llr(canary_errors, stable_errors))
        if v >= self.upper:
            return "regression"
        if v <= self.lower:
            return "ok"
        return "continue"


def sequential_requests(p0: float, p1: float, weight: float, alpha: float = 0.05, power: float = 0.8) -> dict:
    """Expected requests for the SPRT to decide when the canary **has** regressed
    (Wald's approximation of the average sample number, counted in errors, then in requests)."""
    _check(p0, p1, weight)
    beta = 1 - power
    t = SequentialTest(weight, p1 / p0, alpha, beta)
    q1, q0 = t.q1, t.q0
    kl = q1 * math.log(q1 / q0) + (1 - q1) * math.log((1 - q1) / (1 - q0))
    errors = ((1 - beta) * t.upper + beta * t.lower) / kl
    error_rate = weight * p1 + (1 - weight) * p0
    total = errors / error_rate
    return {"errors": math.ceil(errors), "canary": math.ceil(total * weight), "total": math.ceil(total)}


def detection_table(p0: float, p1s=(0.015, 0.02, 0.05), weights=(0.01, 0.05, 0.1, 0.2, 0.5),
                    alpha: float = 0.05, power: float = 0.8):
    """Total requests needed, z-test and SPRT, for each regression and canary weight."""
    import pandas as pd
    rows = []
    for p1 in p1s:
        for w in weights:
            z = requests_needed(p0, p1, w, alpha, power)
            s = sequential_requests(p0, p1, w, alpha, power)
            rows.append({"baseline": p0, "canary": p1, "weight": w, "z-test canary": z["canary"],
                         "z-test total": z["total"], "SPRT total (avg)": s["total"]})
    return pd.DataFrame(rows)


def two_proportion_test(canary_errors, canary_requests, stable_errors, stable_requests):
    """One-sided z-test that the canary's error rate is higher: ``(z, p)`` (arrays work)."""
    xc, nc = np.asarray(canary_errors, float), np.asarray(canary_requests, float)
    xs, ns = np.asarray(stable_errors, float), np.asarray(stable_requests, float)
    pooled = (xc + xs) / np.maximum(nc + ns, 1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(nc, 1) + 1 / np.maximum(ns, 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (xc / np.maximum(nc, 1) - xs / np.maximum(ns, 1)) / np.where(se > 0, se, 1), 0.0)
    p = 1 - np.vectorize(_N.cdf)(z) if np.ndim(z) else 1 - _N.cdf(float(z))
    return z, p


def simulate_policies(stable_error: float = 0.005, canary_errors=(0.005, 0.0075, 0.01, 0.015, 0.02, 0.05),
                      weight: float = 0.1, requests_per_window: int = 1000, windows: int = 5, runs: int = 2000,
                      threshold: float = 0.99, failure_limit: int = 0, alpha: float = 0.05, ratio: float = 2.0,
                      seed: int = 0):
    """Simulate ``runs`` canaries per canary error rate; each gets ``windows`` measurement
    windows of ``requests_per_window`` requests (the canary gets ``weight`` of them).

    Policies (each decides "abort" or not):

    * ``threshold``: Argo's ``successCondition: result[0] >= threshold`` on the canary's success
      rate in each window, abort when failures > ``failure_limit``;
    * ``z-test per window``: a two-proportion z-test (level ``alpha``) after every window — peeking;
    * ``z-test at the end``: one test on all windows together;
    * ``SPRT``: :class:`SequentialTest` (``ratio``, ``alpha``, β = 0.2) after every window.

    Returns a DataFrame: policy, canary error rate, abort rate, ``false abort`` (abort rate when
    the canary is as good as the stable) and ``missed regression`` (1 − abort rate when it is
    worse)."""
    import pandas as pd
    rng = np.random.default_rng(seed)
    nc = int(round(requests_per_window * weight))
    ns = requests_per_window - nc
    if nc < 1 or ns < 1:
        raise ValueError("requests_per_window * weight must leave requests for both sides")
    sprt = SequentialTest(weight, ratio, alpha, 0.2)
    zcrit = _N.inv_cdf(1 - alpha)
    rows = []
    for pc in canary_errors:
        xc = rng.binomial(nc, pc, size=(runs, windows))
        xs = rng.binomial(ns, stable_error, size=(runs, windows))
        # fixed threshold on each window's success rate
        fails = ((1 - xc / nc) < threshold).sum(axis=1)
        thr = fails > failure_limit
        # z-test after each window (cumulative), and once at the end
        cxc, cxs = xc.cumsum(axis=1), xs.cumsum(axis=1)
        k = np.arange(1, windows + 1)
        z, _ = two_proportion_test(cxc, nc * k, cxs, ns * k)
        peek = (z > zcrit).any(axis=1)
        end = z[:, -1] > zcrit
        # SPRT after each window; undecided at the end → no abort
        llr = sprt.llr(cxc, cxs)
        up = llr >= sprt.upper
        down = llr <= sprt.lower
        first_up = np.where(up.any(axis=1), up.argmax(axis=1), windows)
        first_down = np.where(down.any(axis=1), down.argmax(axis=1), windows)
        seq = first_up < first_down
        for name, aborted in (("threshold", thr), ("z-test per window", peek), ("z-test at the end", end),
                              ("SPRT", seq)):
            rate = float(aborted.mean())
            rows.append({"policy": name, "canary error rate": pc, "abort rate": rate,
                         "false abort": rate if pc <= stable_error else None,
                         "missed regression": (1 - rate) if pc > stable_error else None})
    return pd.DataFrame(rows)
