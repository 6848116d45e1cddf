"""The published Linkerd latency benchmarks, as tidy tables (``data/benchmarks/``).

    gwlib.latency.published()                 # every study, one row per value
    gwlib.latency.published("buoyant-2021-11")
    gwlib.latency.studies()                   # what each study measured, and its weak points
    gwlib.latency.resources()                 # CPU and memory figures

Every value comes from the study's text, a chart's data labels, or (Great Sidecar Debate)
its raw wrk2 logs; ``quality`` says which: ``exact`` (a number stated in the text or printed
on a chart), ``chart`` (read off a chart by eye: approximate, often ±3 ms or worse on log
scales) or ``derived`` (computed from the study's raw logs). ``source_url`` cites it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "data" / "benchmarks"

#: study -> CSV file, in date order
FILES = {
    "kinvolk-2019": "kinvolk_2019.csv",
    "buoyant-2021-05": "buoyant_2021_05.csv",
    "buoyant-2021-11": "buoyant_2021_11.csv",
    "livewyer-2024": "livewyer_2024.csv",
    "taskai-2025": "taskai_2025.csv",
    "gsd-2025": "gsd_2025_runs.csv",
}

_UNIT_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001}

COLUMNS = ["study", "mesh", "mesh_version", "rps", "connections", "path", "run", "percentile", "latency_ms",
           "quality", "tool", "loop", "requests", "duration_s", "achieved_rps", "value", "unit", "note",
           "conditions", "source_url"]


@lru_cache(maxsize=None)
def _read(study: str) -> pd.DataFrame:
    df = pd.read_csv(DATA / FILES[study], dtype={"run": "string", "mesh_version": "string"},
                     keep_default_na=False, na_values={c: [""] for c in ("rps", "connections", "requests",
                                                                           "duration_s", "achieved_rps")})
    bad = set(df["unit"]) - set(_UNIT_MS)
    if bad:
        raise ValueError(f"{FILES[study]}: unknown unit(s) {sorted(bad)}")
    df["latency_ms"] = df["value"] * df["unit"].map(_UNIT_MS)
    return df[COLUMNS]


def published(study: str | list[str] | None = None, *, include_gsd: bool = True) -> pd.DataFrame:
    """The published latency values, one row per (study, mesh, rate, ..., percentile).

    ``percentile`` is 0–100 with 100 meaning *max*; ``latency_ms`` is the value converted
    to milliseconds (``value`` and ``unit`` keep it as published). ``rps`` is the requested
    rate (NaN for LiveWyer's closed-loop runs, which had none). The Great Sidecar Debate
    (``gsd-2025``) has one row per wrk2 log; its author says it is not a latency study.
    """
    if study is None:
        names = [s for s in FILES if include_gsd or s != "gsd-2025"]
    else:
        names = [study] if isinstance(study, str) else list(study)
        unknown = [s for s in names if s not in FILES]
        if unknown:
            raise KeyError(f"unknown study {unknown[0]!r}; known: {', '.join(FILES)}")
    return pd.concat([_read(s) for s in names], ignore_index=True)


def studies() -> pd.DataFrame:
    """One row per study: title, author, date, source, harness, conditions and weaknesses."""
    return pd.read_csv(DATA / "studies.csv", keep_default_na=False).set_index("study")


def resources() -> pd.DataFrame:
    """Published CPU and memory figures (Kinvolk 2019, Buoyant 2021), tidy."""
    return pd.read_csv(DATA / "resources.csv", keep_default_na=False,
                       na_values={"rps": [""], "value": [""]}, dtype={"mesh_version": "string"})


def side_by_side(percentile: float = 99, studies_: list[str] | None = None) -> pd.DataFrame:
    """One percentile of every (study, rate) with the meshes as columns, in ms.

    A cell marked ``*`` in :func:`quality_table` was read off a chart.
    """
    df = published(studies_, include_gsd=False)
    df = df[(df["percentile"] == percentile) & (df["path"] != "vm_to_ingress")]
    df = df[~df["note"].str.startswith("outlier")]
    key = [f"{r:g} rps" if r == r else f"{c:g} conns (closed loop)" for r, c in zip(df["rps"], df["connections"])]
    df = df.assign(load=key)
    table = df.pivot_table(index=["study", "load"], columns="mesh", values="latency_ms", aggfunc="first", sort=False)
    table.columns.name = None
    return table


def overhead_table(percentiles: tuple[float, ...] = (50, 99, 100), mesh: str = "linkerd") -> pd.DataFrame:
    """Mesh minus baseline (ms) and mesh / baseline per study, load and percentile.

    Published numbers are point values without their distributions, so these differences
    carry no confidence interval; ``quality`` is the worse of the two values' qualities.
    """
    df = published(include_gsd=False)
    df = df[(df["path"] != "vm_to_ingress") & ~df["note"].str.startswith("outlier")]
    df = df[df["percentile"].isin(percentiles)]
    keys = ["study", "rps", "connections", "percentile"]
    cols = keys + ["latency_ms", "quality"]
    j = pd.merge(df.loc[df["mesh"] == mesh, cols], df.loc[df["mesh"] == "baseline", cols], on=keys,
                 how="inner", suffixes=("", "_baseline")).set_index(keys)
    order = {"exact": 0, "derived": 1, "chart": 2}
    out = pd.DataFrame({
        "baseline_ms": j["latency_ms_baseline"], f"{mesh}_ms": j["latency_ms"],
        "overhead_ms": j["latency_ms"] - j["latency_ms_baseline"],
        "ratio": j["latency_ms"] / j["latency_ms_baseline"],
        "quality": [a if order[a] >= order[b] else b for a, b in zip(j["quality"], j["quality_baseline"])],
    })
    return out.reset_index()
