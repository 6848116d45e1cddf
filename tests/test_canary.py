"""Weight experiments: exact splits, binomial intervals, Envoy's random picks and Traefik's WRR."""
from __future__ import annotations

import numpy as np
import pytest

import gwlib
from gwlib import canary as C

WEIGHTS = "data/rollouts/weights"


def req(path: str) -> dict:
    return {"gateway": "shop/edge", "host": "shop.example.com", "path": path}


@pytest.fixture(scope="module")
def ref():
    c = gwlib.connect("reference")
    c.apply(WEIGHTS)
    return c


def test_exact_splits_from_the_ir(ref):
    df = C.exact_splits(ref, [req(p) for p in ("/split", "/thirds", "/default", "/zero", "/ghost", "/ghost-zero")])
    got = {(r.request, r.backend): r.share for r in df.itertuples()}
    assert got == {("/split", "shop/canary"): 0.2, ("/split", "shop/stable"): 0.8,
                   ("/thirds", "shop/canary"): pytest.approx(1 / 3, abs=1e-6),
                   ("/thirds", "shop/stable"): pytest.approx(2 / 3, abs=1e-6),
                   ("/default", "shop/canary"): 0.5, ("/default", "shop/stable"): 0.5,   # default weight 1
                   ("/zero", "shop/stable"): 1.0,                                          # weight 0: no traffic
                   ("/ghost", "500"): 0.25, ("/ghost", "shop/stable"): 0.75,              # invalid backend: 500
                   ("/ghost-zero", "shop/stable"): 1.0}                                   # weight 0: no error
    assert C.exact_splits(ref, [{"gateway": "shop/edge", "host": "other.example.com", "path": "/"}]).empty


def test_binomial_intervals():
    lo, hi = C.binomial_ci(20, 100)
    assert (round(lo, 4), round(hi, 4)) == (0.1334, 0.2888)            # Wilson
    lo, hi = C.binomial_ci(20, 100, method="exact")
    assert (round(lo, 4), round(hi, 4)) == (0.1267, 0.2918)            # Clopper-Pearson
    assert C.binomial_ci(0, 10, method="exact") == (0.0, pytest.approx(0.3085, abs=1e-4))
    assert C.binomial_ci(10, 10, method="exact") == (pytest.approx(0.6915, abs=1e-4), 1.0)
    assert C.binomial_ci(0, 0) == (0.0, 1.0)
    assert C.binomial_ci(50, 100, level=0.99)[0] < C.binomial_ci(50, 100, level=0.95)[0]
    with pytest.raises(ValueError):
        C.binomial_ci(11, 10)
    with pytest.raises(ValueError):
        C.binomial_ci(1, 10, method="bayes")


def test_wilson_intervals_cover_about_95_percent():
    rng = np.random.default_rng(0)
    ks = rng.binomial(50, 0.2, size=2000)
    covered = np.mean([lo <= 0.2 <= hi for lo, hi in (C.binomial_ci(int(k), 50) for k in ks)])
    assert 0.93 <= covered <= 0.97


def test_observed_and_sample(ref):
    df = C.observed({"a": 20, "b": 80}, {"a": 0.2, "b": 0.8})
    assert list(df["inside"]) == [True, True] and list(df["count"]) == [20, 80]
    df = C.observed({"a": 5, "b": 95}, {"a": 0.2, "b": 0.8, "c": 0.0})
    assert list(df["backend"]) == ["a", "b", "c"] and not df["inside"].iloc[0]
    df = C.sample(ref, req("/split"), n=400)
    assert df["count"].sum() == 400 and df["inside"].all()


def test_traefik_round_robin_schedule():
    assert C.wrr_schedule([3, 1]) == [0, 0, 0, 1]
    seq = C.wrr_schedule([80, 20])
    assert len(seq) == 100 and seq.count(1) == 20
    assert seq[:10] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]                 # the canary every fifth request
    assert C.wrr_schedule([0, 2]) == [1, 1]


@pytest.mark.parametrize("n", [5, 10, 100, 1000, 12345])
def test_wrr_counts_are_exact_to_one_request(n):
    p = C.picks({"stable": 80, "canary": 20}, n, "wrr")
    assert abs(int((p == 1).sum()) - 0.2 * n) < 1


def test_random_picks_are_binomial_and_seeded():
    a = C.picks([80, 20], 100_000, "random", seed=1)
    assert abs((a == 1).mean() - 0.2) < 0.005
    assert (C.picks([80, 20], 50, "random", seed=1) == C.picks([80, 20], 50, "random", seed=1)).all()
    with pytest.raises(ValueError):
        C.picks([1, 1], 10, "fastest")
    with pytest.raises(ValueError):
        C.picks([0.5, 0.5], 10, "wrr")
    with pytest.raises(ValueError):
        C.picks([0, 0], 10)


def test_share_spread_small_counts_random_strays_wrr_does_not():
    df = C.share_spread((80, 20), ns=(10, 23, 1000), batches=100)
    env = df[df.dataplane.str.startswith("envoy")].set_index("n")
    tr = df[df.dataplane.str.startswith("traefik")].set_index("n")
    assert env.loc[10, "p95 |error|"] >= 0.1
    for n in (10, 23, 1000):
        assert tr.loc[n, "max |error|"] <= 1 / n + 1e-12
    assert env.loc[1000, "p95 |error|"] < env.loc[10, "p95 |error|"]


def test_weight_series_follows_the_weights(ref):
    c = gwlib.connect("reference")
    c.apply(WEIGHTS)
    df = C.weight_series(c, "shop/shop", req("/split"), weights=(0, 10, 50, 100), per_step=300)
    assert list(df["weight"]) == [0, 10, 50, 100]
    assert df["canary"].iloc[0] == 0 and df["canary"].iloc[-1] == 300
    assert ((df["ci low"] <= df["weight"] / 100) & (df["weight"] / 100 <= df["ci high"])).all()


def test_plots_draw():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    C.plot_share_spread(C.share_spread(ns=(10, 100), batches=20))
    c = gwlib.connect("reference")
    c.apply(WEIGHTS)
    C.plot_weight_series(C.weight_series(c, "shop/shop", req("/split"), weights=(0, 20), per_step=50))
    import pandas as pd
    C.plot_dataplane_shares(pd.DataFrame([{"dataplane": "envoy", "n": 10, "batch": 0, "canary": 2, "share": 0.2,
                                           "exact": 0.2, "ci low": 0.05, "ci high": 0.5}]))
    plt.close("all")


def test_real_traffic_envoy_random_traefik_exact():
    df = C.dataplane_shares(WEIGHTS, req("/split"), ns=(10, 100), batches=3)
    tr = df[df.dataplane == "traefik"]
    assert (tr["canary"] == tr["n"] * 0.2).all()                      # exactly 2 of 10, 20 of 100
    env = df[df.dataplane == "envoy"]
    assert len(env) == 6 and env["canary"].between(0, env["n"]).all()
    assert (df["exact"] == 0.2).all()
