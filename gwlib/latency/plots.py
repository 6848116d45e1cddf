"""Latency plots: the percentile spectrum on the 1/(1−p) axis, and per-rate bars.

The spectrum plot is the one HdrHistogram popularised: the x axis is ``1/(1−p)`` on a log
scale, so 90 %, 99 %, 99.9 % ... are evenly spaced and the tail gets the room it deserves.
Maxima (percentile 100) sit at their own "max" tick at the right. Values read off a chart
are drawn hollow; values stated exactly are filled.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .histogram import Histogram
from .result import Result

_TICKS = {2: "50%", 10: "90%", 100: "99%", 1e3: "99.9%", 1e4: "99.99%", 1e5: "99.999%"}


def _inverse(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 - np.asarray(p, dtype=float) / 100.0)


def _series(data) -> dict[str, pd.DataFrame]:
    """Normalise inputs to {label: DataFrame(percentile, latency_ms[, quality])}."""
    out: dict[str, pd.DataFrame] = {}
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, (list, tuple)):
        items = [(r.run or f"{r.tool} {r.target or ''}".strip(), r) for r in data]
    else:
        items = [("", data)]
    for label, v in items:
        if isinstance(v, Histogram):
            sp = v.spectrum()
            out[label] = sp[["percentile", "latency_ms"]].assign(kind="histogram")
        elif isinstance(v, Result):
            if v.histogram is not None:
                sp = v.histogram.spectrum()
                out[label] = sp[["percentile", "latency_ms"]].assign(kind="histogram")
            else:
                out[label] = v.to_frame()[["percentile", "latency_ms"]].assign(kind="points")
        elif isinstance(v, pd.DataFrame):
            out[label] = v.assign(kind="points")
        else:
            raise TypeError(f"cannot plot {type(v).__name__}")
    return out


def plot_spectrum(data, by: str | None = None, ax=None, title: str | None = None, logy: bool = True,
                  show_max: bool = True):
    """Latency by percentile. ``data``: a tidy DataFrame (grouped by ``by``), a dict of
    label → Histogram/Result/DataFrame, or a list of Results. Returns the axes."""
    if isinstance(data, pd.DataFrame) and by is not None:
        data = {str(k): g for k, g in data.groupby(by, sort=False)}
    series = _series(data)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    finite_max = 10.0
    for df in series.values():
        x = _inverse(df["percentile"].to_numpy())
        if np.isfinite(x).any():
            finite_max = max(finite_max, float(np.nanmax(x[np.isfinite(x)])))
    max_x = 10 ** np.ceil(np.log10(finite_max) + 0.5)
    for label, df in series.items():
        df = df.sort_values("percentile")
        x = _inverse(df["percentile"].to_numpy())
        y = df["latency_ms"].to_numpy()
        is_max = ~np.isfinite(x)
        if df["kind"].iat[0] == "histogram":
            line, = ax.plot(x[~is_max], y[~is_max], label=label, drawstyle="steps-post")
        else:
            line, = ax.plot(x[~is_max], y[~is_max], "-", label=label, alpha=0.8)
            q = df["quality"].to_numpy() if "quality" in df else np.array(["exact"] * len(df))
            for hollow in (False, True):
                sel = (~is_max) & ((q == "chart") == hollow)
                ax.plot(x[sel], y[sel], "o", color=line.get_color(),
                        markerfacecolor="none" if hollow else line.get_color())
        if show_max and is_max.any():
            ax.plot([max_x], [y[is_max][-1]], "D", color=line.get_color())
    ticks = {k: v for k, v in _TICKS.items() if k <= finite_max * 1.01}
    if show_max:
        ticks[max_x] = "max"
    ax.set_xscale("log")
    ax.set_xticks(list(ticks), list(ticks.values()))
    ax.minorticks_off()
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("percentile (axis: 1/(1−p))")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title)
    if len(series) > 1 or next(iter(series)) != "":
        ax.legend(fontsize="small")
    return ax


def plot_rate_bars(df: pd.DataFrame, percentile: float = 99, by: str = "mesh", rate: str = "rps",
                   ax=None, title: str | None = None, logy: bool = False):
    """Grouped bars: one group per rate, one bar per ``by`` value; chart-read values hatched."""
    d = df[df["percentile"] == percentile]
    if d.empty:
        raise ValueError(f"no rows at percentile {percentile}")
    rates = sorted(d[rate].dropna().unique())
    groups = list(dict.fromkeys(d[by]))
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(groups)
    for gi, g in enumerate(groups):
        sub = d[d[by] == g].set_index(rate)
        xs, ys, hatch = [], [], []
        for ri, r in enumerate(rates):
            if r in sub.index:
                row = sub.loc[r]
                row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
                xs.append(ri + (gi - (len(groups) - 1) / 2) * width)
                ys.append(row["latency_ms"])
                hatch.append("//" if row.get("quality", "exact") == "chart" else "")
        bars = ax.bar(xs, ys, width * 0.95, label=str(g))
        for b, h in zip(bars, hatch):
            b.set_hatch(h)
    ax.set_xticks(range(len(rates)), [f"{r:g} rps" for r in rates])
    label = "max" if percentile >= 100 else f"p{percentile:g}"
    ax.set_ylabel(f"{label} latency (ms)")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax
