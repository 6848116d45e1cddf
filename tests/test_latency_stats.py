"""Histogram and statistics against direct numpy computations on known distributions."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gwlib.latency as L
from gwlib.latency import Histogram

REL = 1 / 1024   # 3 significant digits: bucket width relative to the value


def exact_percentile(values: np.ndarray, p: float) -> float:
    """The inverted-CDF sample percentile, with the rank computed exactly (no float noise)."""
    v = np.sort(values)
    rank = max(1, math.ceil(Fraction(str(p)) / 100 * len(v)))
    return float(v[rank - 1])


# -- histogram ----------------------------------------------------------------------------------

def test_histogram_matches_numpy_on_exponential():
    rng = np.random.default_rng(7)
    x = rng.exponential(2.0, 99_991)          # mean 2 ms
    h = Histogram.from_values(x)
    assert h.count == x.size
    for p in (0, 10, 50, 90, 99, 99.9, 99.99, 100):
        want = exact_percentile(x, p)
        got = h.percentile(p)
        assert want - 1e-6 <= got <= want * (1 + REL) + 1e-6, (p, got, want)
        # numpy's own inverted_cdf agrees where p*n is not an integer
        assert got == pytest.approx(np.percentile(x, p, method="inverted_cdf"), rel=REL, abs=1e-6)
    assert h.mean == pytest.approx(x.mean(), rel=1e-3)
    assert h.stdev == pytest.approx(x.std(), rel=1e-3)
    assert h.min == pytest.approx(x.min(), abs=1e-6) and h.max == pytest.approx(x.max(), rel=REL)


def test_known_percentiles_of_a_uniform_grid():
    # 1..1000 ms, each once: p50 = 500, p99 = 990, p99.9 = 999, max = 1000
    h = Histogram.from_values(np.arange(1, 1001, dtype=float))
    assert h.percentile(50) == pytest.approx(500, rel=REL)
    assert h.percentile(99) == pytest.approx(990, rel=REL)
    assert h.percentile(99.9) == pytest.approx(999, rel=REL)
    assert h.percentile(100) == pytest.approx(1000, rel=REL)
    assert h.cdf(500.0) == pytest.approx(0.5, abs=0.002)


def test_small_values_are_exact():
    h = Histogram.from_values([0.0005, 0.001, 0.002])   # 500 ns, 1 us, 2 us
    assert list(h.percentiles([0, 50, 100])) == pytest.approx([0.0005, 0.001, 0.002])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300),
       st.floats(0, 100))
def test_histogram_percentile_bounds_sample_percentile(values, p):
    x = np.round(np.array(values) * 1e6) / 1e6          # whole nanoseconds
    h = Histogram.from_values(x)
    want = exact_percentile(x, p)
    got = h.percentile(p)
    assert want - 1e-6 <= got <= want * (1 + REL) + 1e-6


def test_merge_equals_histogram_of_concatenation():
    rng = np.random.default_rng(3)
    parts = [rng.lognormal(1, s, n) for s, n in ((0.3, 5000), (0.8, 1200), (0.5, 30000))]
    merged = L.merge([Histogram.from_values(p) for p in parts])
    whole = Histogram.from_values(np.concatenate(parts))
    assert merged == whole
    assert merged.percentile(99) == whole.percentile(99)
    assert (Histogram.from_values(parts[0]) + Histogram.from_values(parts[1])).count == 6200


def test_spectrum_has_wrk2_shape():
    h = Histogram.from_values(np.random.default_rng(0).exponential(1, 10000))
    sp = h.spectrum()
    assert sp["percentile"].iloc[0] == 0 and sp["percentile"].iloc[-1] == 100
    assert np.isinf(sp["inverse"].iloc[-1])
    assert sp["total_count"].is_monotonic_increasing and sp["latency_ms"].is_monotonic_increasing
    assert sp["total_count"].iloc[-1] == 10000
    # 5 ticks per half distance: 0, 10, ..., 50, 55, ..., 75, 77.5, ...
    assert list(sp["percentile"].iloc[:8]) == pytest.approx([0, 10, 20, 30, 40, 50, 55, 60])


def test_record_rejects_bad_values():
    with pytest.raises(ValueError):
        Histogram.from_values([-1.0])
    with pytest.raises(ValueError):
        Histogram.from_values([float("nan")])
    with pytest.raises(ValueError):
        Histogram().percentile(50)


# -- bootstrap intervals ------------------------------------------------------------------------

def numpy_bootstrap(x: np.ndarray, p: float, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    reps = [np.percentile(rng.choice(x, x.size, replace=True), p, method="inverted_cdf") for _ in range(n_boot)]
    return tuple(np.quantile(reps, [0.025, 0.975]))


def test_percentile_ci_agrees_with_a_direct_numpy_bootstrap():
    rng = np.random.default_rng(11)
    x = rng.lognormal(np.log(6), 0.4, 4000)
    ci = L.percentile_ci(x, [50, 99], n_boot=600, seed=1).set_index("percentile")
    for p in (50, 99):
        lo, hi = numpy_bootstrap(x, p, 600, 2)
        width = hi - lo
        assert ci.loc[p, "low_ms"] == pytest.approx(lo, abs=0.25 * width + 1e-3)
        assert ci.loc[p, "high_ms"] == pytest.approx(hi, abs=0.25 * width + 1e-3)
        assert ci.loc[p, "low_ms"] <= ci.loc[p, "estimate_ms"] <= ci.loc[p, "high_ms"]
    assert ci.loc[99, "tail_count"] == 40


def test_percentile_ci_covers_the_true_percentile():
    # exponential with mean 1 ms: the true p90 is ln(10) ms; a 95 % interval should cover it ~95 % of the time
    true = math.log(10)
    rng = np.random.default_rng(5)
    hits = 0
    trials = 60
    for t in range(trials):
        x = rng.exponential(1.0, 800)
        ci = L.percentile_ci(x, [90], n_boot=300, seed=t).iloc[0]
        hits += ci["low_ms"] <= true <= ci["high_ms"]
    assert 0.8 <= hits / trials <= 1.0


def test_intervals_shrink_with_more_data_and_are_seeded():
    rng = np.random.default_rng(2)
    small = L.percentile_ci(rng.exponential(1, 500), [99], n_boot=300)
    big = L.percentile_ci(rng.exponential(1, 50_000), [99], n_boot=300)
    assert (big["high_ms"] - big["low_ms"]).iloc[0] < (small["high_ms"] - small["low_ms"]).iloc[0]
    x = rng.exponential(1, 2000)
    assert L.percentile_ci(x, seed=4).equals(L.percentile_ci(x, seed=4))


# -- overhead -----------------------------------------------------------------------------------

def test_overhead_recovers_a_known_shift():
    rng = np.random.default_rng(9)
    base = rng.lognormal(np.log(2), 0.3, 20_000)
    mesh = rng.lognormal(np.log(2), 0.3, 20_000) + 0.7       # every request 0.7 ms slower
    df = L.overhead(mesh, base, [50, 90, 99], n_boot=400).set_index("percentile")
    for p in (50, 90, 99):
        direct = np.percentile(mesh, p, method="inverted_cdf") - np.percentile(base, p, method="inverted_cdf")
        assert df.loc[p, "overhead_ms"] == pytest.approx(direct, abs=0.02)
        assert df.loc[p, "low_ms"] <= 0.7 <= df.loc[p, "high_ms"]
    assert df.loc[50, "ratio"] == pytest.approx((2 + 0.7) / 2, rel=0.03)


def test_overhead_of_identical_distributions_straddles_zero():
    rng = np.random.default_rng(10)
    a, b = rng.exponential(1, 5000), rng.exponential(1, 5000)
    df = L.overhead(a, b, [50, 99], n_boot=400)
    assert (df["low_ms"] <= 0).all() and (df["high_ms"] >= 0).all()


def test_overhead_accepts_results_and_lists_of_runs():
    runs = L.demo_runs(seed=1, runs=3, requests=2000, hiccup_fraction=0)
    r = L.Result(tool="gwlib", percentiles={50: 1.0}, histogram=runs[0])
    df = L.overhead([r, runs[1]], runs[2], [50], n_boot=100)
    assert len(df) == 1
    with pytest.raises(ValueError, match="percentiles only"):
        L.overhead(L.Result(tool="k6", percentiles={50: 1.0}), runs[0])


# -- aggregation ----------------------------------------------------------------------------------

def test_aggregations_show_why_averaging_percentiles_misleads():
    runs = L.demo_runs(seed=0)
    df = L.aggregations(runs, [50, 99, 99.9])
    pooled = np.concatenate([np.repeat(*h.values()) for h in runs])
    assert df.loc["merged", "p99.9"] == pytest.approx(np.percentile(pooled, 99.9, method="inverted_cdf"), rel=2e-3)
    mean_p99 = np.mean([h.percentile(99) for h in runs])
    assert df.loc["mean of runs", "p99"] == pytest.approx(mean_p99)
    # the hiccup run drags the mean of p99s up, while the worst-run-dropped mean hides it entirely
    assert df.loc["mean of runs", "p99"] > 2 * df.loc["merged", "p99"]
    assert df.loc["mean, 1 worst run dropped", "p99.9"] < 0.2 * df.loc["merged", "p99.9"]
    with pytest.raises(ValueError):
        L.aggregations(runs[:1])


def test_demo_runs_are_seeded():
    a, b = L.demo_runs(seed=3), L.demo_runs(seed=3)
    assert all(x == y for x, y in zip(a, b))
