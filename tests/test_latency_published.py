"""The published data sets: shape, units, provenance, and agreement with the research notes."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gwlib.latency as L
from gwlib.latency.published import DATA, FILES

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "benchmarks"


def test_one_tidy_csv_per_study_with_provenance():
    for study, name in FILES.items():
        df = pd.read_csv(DATA / name, keep_default_na=False)
        assert set(df["study"]) == {study}
        for col in ("source_url", "mesh", "mesh_version", "tool", "loop", "conditions", "percentile", "value",
                    "unit", "quality"):
            assert col in df.columns and (df[col].astype(str) != "").all(), (name, col)
        assert df["source_url"].str.startswith("https://").all()
        assert set(df["quality"]) <= {"exact", "chart", "derived"}
        assert set(df["unit"]) <= {"ms", "s"}


def test_published_converts_units_and_keeps_the_original():
    df = L.published()
    assert set(df["study"]) == set(FILES)
    assert np.allclose(df["latency_ms"], df["value"] * df["unit"].map({"ms": 1.0, "s": 1000.0}))
    lw = L.published("livewyer-2024")
    row = lw[(lw.mesh == "linkerd") & (lw.connections == 32) & (lw.path == "pod_to_service") & (lw.percentile == 50)]
    assert row["latency_ms"].item() == pytest.approx(216.4)   # 0.2164 s as printed by oha
    assert lw["rps"].isna().all() and set(lw["loop"]) == {"closed"}
    assert "gsd-2025" not in set(L.published(include_gsd=False)["study"])
    with pytest.raises(KeyError):
        L.published("nonesuch")


def test_stated_values_are_flagged_exact_and_chart_values_chart():
    df = L.published("buoyant-2021-11").set_index(["rps", "mesh", "percentile"])
    assert df.loc[(2000, "linkerd", 50.0), "latency_ms"] == 12 and df.loc[(2000, "linkerd", 50.0), "quality"] == "exact"
    assert df.loc[(2000, "linkerd", 100.0), "latency_ms"] == 126
    assert df.loc[(20, "istio", 99.0), "quality"] == "chart"      # "~240" in text, 242 read off the chart
    k = L.published("kinvolk-2019").set_index(["rps", "mesh", "percentile"])
    assert k.loc[(600, "istio-tuned", 99.0), "latency_ms"] == 264000 and k.loc[(600, "istio-tuned", 99.0), "quality"] == "exact"
    assert k.loc[(500, "linkerd", 99.9), "latency_ms"] == 679


def test_taskai_anomaly_is_kept_and_flagged():
    t = L.published("taskai-2025").set_index(["rps", "mesh", "percentile"])
    assert t.loc[(2000, "istio-sidecar", 50.0), "latency_ms"] > t.loc[(2000, "istio-sidecar", 90.0), "latency_ms"]
    assert "artifact" in t.loc[(2000, "istio-sidecar", 50.0), "note"]


def test_studies_resources_and_comparisons():
    s = L.studies()
    assert set(s.index) == set(FILES)
    assert (s["weaknesses"] != "").all() and s.loc["livewyer-2024", "loop"] == "closed"
    r = L.resources()
    assert {"kinvolk-2019", "buoyant-2021-05", "buoyant-2021-11"} == set(r["study"])
    assert r.query("study == 'buoyant-2021-11' and mesh == 'linkerd' and rps == 2000 and component == 'data_plane' "
                   "and metric == 'memory'")["value"].item() == pytest.approx(26.3)
    sbs = L.side_by_side(99)
    assert sbs.loc[("taskai-2025", "200 rps"), "istio-sidecar"] == pytest.approx(83.8)
    assert sbs.loc[("livewyer-2024", "32 conns (closed loop)"), "linkerd"] == pytest.approx(305.9)
    ov = L.overhead_table((50,)).set_index(["study", "rps"])
    assert ov.loc[("buoyant-2021-11", 2000.0), "overhead_ms"] == pytest.approx(6)


def _ref_rows(name):
    text = (REF / name).read_text()
    return list(csv.DictReader(io.StringIO("\n".join(l for l in text.splitlines() if not l.startswith("#")))))


@pytest.mark.skipif(not REF.is_dir(), reason="the research notes (shared/reference) are not beside the checkout")
def test_every_value_comes_from_the_reference_csvs():
    """No invented numbers: each published value appears in the reference CSV it came from."""
    pmap = {50: "p50", 75: "p75", 90: "p90", 95: "p95", 99: "p99", 99.9: "p999", 99.99: "p9999", 99.999: "p99999",
            100: "max"}
    checks = {"kinvolk-2019": "kinvolk_2019.csv", "buoyant-2021-05": "linkerd_2021_may_text_values.csv",
              "buoyant-2021-11": "linkerd_2021_redux_text_values.csv"}
    for study, ref in checks.items():
        rows = {(r["rps"], "baseline" if r["mesh"] == "bare" else r["mesh"]): r for r in _ref_rows(ref)}
        for x in L.published(study).itertuples():
            assert float(rows[(f"{x.rps:g}", x.mesh)][pmap[x.percentile]]) == x.value
    t = {(r["rps"], r["mesh"]): r for r in _ref_rows("taskai_2025_linkerd_vs_istio_ambient.csv")}
    for x in L.published("taskai-2025").itertuples():
        col = {50: "p50_ms", 90: "p90_ms", 95: "p95_ms", 99: "p99_ms"}[x.percentile]
        assert float(t[(f"{x.rps:g}", x.mesh)][col]) == x.value
    lw = {(r["path"], r["mesh"].rstrip("*"), r["connections"]): r for r in _ref_rows("livewyer_2024_pod_to_service.csv")}
    for x in L.published("livewyer-2024").itertuples():
        col = {50: "p50_s", 90: "p90_s", 99: "p99_s", 99.9: "p999_s"}[x.percentile]
        assert float(lw[(x.path, x.mesh, f"{x.connections:g}")][col]) == x.value
    g = _ref_rows("gsd_wrk2_summary.csv")
    gsd = L.published("gsd-2025")
    assert len(gsd) == 5 * len(g)
    p99 = sorted(float(r["p99_ms"]) for r in g)
    assert sorted(gsd.loc[gsd.percentile == 99, "value"]) == p99
