"""Statistics of canary analysis: requests needed, the SPRT, simulated policies."""
from __future__ import annotations

import pytest

from gwlib.rollout import stats as S


@pytest.mark.parametrize("p0, p1, w, canary, total", [
    (0.01, 0.02, 0.01, 804, 80330), (0.01, 0.02, 0.05, 850, 16983), (0.01, 0.02, 0.5, 1826, 3652),
    (0.01, 0.015, 0.1, 3199, 31984), (0.001, 0.002, 0.2, 10723, 53614), (0.001, 0.005, 0.05, 872, 17435),
])
def test_requests_needed_two_proportions(p0, p1, w, canary, total):
    # the reference table (one-sided alpha 0.05, power 0.8, allocation w:(1-w)), rounded up
    assert S.requests_needed(p0, p1, w) == {"canary": canary, "total": total}


def test_requests_needed_input_checks():
    with pytest.raises(ValueError):
        S.requests_needed(0.02, 0.01, 0.1)
    with pytest.raises(ValueError):
        S.requests_needed(0.01, 0.02, 1.0)


def test_sequential_needs_fewer_requests_on_average():
    for w in (0.01, 0.05, 0.2):
        assert S.sequential_requests(0.01, 0.02, w)["total"] < S.requests_needed(0.01, 0.02, w)["total"]
    assert S.sequential_requests(0.01, 0.02, 0.05) == {"errors": 111, "canary": 528, "total": 10542}


def test_sprt_on_where_errors_land():
    t = S.SequentialTest(weight=0.1, ratio=2.0)
    assert t.q0 == 0.1 and t.q1 == pytest.approx(0.2 / 1.1)
    assert t.update(0, 0) == "continue"
    assert t.update(30, 70) == "regression"       # 30 % of the errors on a 10 % canary
    assert t.update(5, 95) == "ok"
    with pytest.raises(ValueError):
        S.SequentialTest(weight=0.1, ratio=1.0)


def test_two_proportion_test():
    z, p = S.two_proportion_test(20, 1000, 10, 1000)
    assert z > 1.8 and p < 0.05
    z, p = S.two_proportion_test(10, 1000, 10, 1000)
    assert z == 0 and p == pytest.approx(0.5)


def test_simulated_policies():
    df = S.simulate_policies(runs=1000, seed=3)
    assert df.equals(S.simulate_policies(runs=1000, seed=3))
    piv = df.pivot(index="canary error rate", columns="policy", values="abort rate")
    # a fixed 99 % threshold on 100 canary requests aborts many healthy canaries ...
    assert piv.loc[0.005, "threshold"] > 0.3
    # ... the SPRT and a single z-test keep false aborts near or below alpha; peeking inflates them
    assert piv.loc[0.005, "SPRT"] < 0.05 and piv.loc[0.005, "z-test at the end"] < 0.09
    assert piv.loc[0.005, "z-test per window"] > piv.loc[0.005, "z-test at the end"]
    # everything catches a 10x regression
    assert (piv.loc[0.05] > 0.99).all()
    for name in piv.columns:                        # more errors, more aborts
        assert piv[name].is_monotonic_increasing
    assert set(df.columns) == {"policy", "canary error rate", "abort rate", "false abort", "missed regression"}


def test_detection_table_and_plots():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gwlib.rollout import plots
    t = S.detection_table(0.01, p1s=(0.02,), weights=(0.05, 0.5))
    assert list(t["z-test total"]) == [16983, 3652]
    plots.plot_requests_needed(t)
    plots.plot_policies(S.simulate_policies(runs=100))
    plt.close("all")
