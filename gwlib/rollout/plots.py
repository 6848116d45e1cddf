"""Plots of rollouts and of the statistics of canary analysis (matplotlib)."""
from __future__ import annotations

import math

__all__ = ["plot_policies", "plot_requests_needed", "plot_timeline"]

_COLORS = {"Successful": "tab:green", "Failed": "tab:red", "Inconclusive": "tab:orange", "Error": "tab:gray"}


def plot_timeline(timeline, ax=None):
    """Canary weight over logical time (top) and every measurement, coloured by its phase
    (bottom, one line per metric); an abort or a pause is marked."""
    import matplotlib.pyplot as plt
    if ax is None:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True,
                                          gridspec_kw={"height_ratios": [1, 1.2]})
    else:
        top, bottom = ax
    canary = timeline.versions.get("canary_service_key") or ""
    xs, ys = [0.0], [0.0]
    for s in timeline.steps:
        w = s.weights.get(canary, 0)
        xs += [s.start, s.end if s.end > s.start else s.start]
        ys += [w, w]
    end = timeline.steps[-1].end if timeline.steps else 0.0
    final = timeline.weights.get(canary, 0)
    xs.append(end)
    ys.append(final)
    top.plot([x / 60 for x in xs], ys, drawstyle="steps-post", color="k")
    top.set_ylabel("canary weight %")
    top.set_ylim(-5, 105)
    title = f"{timeline.rollout}: {timeline.phase}"
    if timeline.aborted_at_step is not None:
        title += f" (aborted at step {timeline.aborted_at_step})"
        top.axvline(end / 60, color="tab:red", ls="--")
        top.annotate("abort: weight 0", (end / 60, 50), xytext=(-6, 0), textcoords="offset points",
                     ha="right", color="tab:red", fontsize=8)
    elif timeline.phase == "Healthy":
        top.annotate("promoted: the stable Service\nselects the new pods", (end / 60, 50), xytext=(-6, 0),
                     textcoords="offset points", ha="right", fontsize=8)
    elif timeline.phase == "Paused":
        top.annotate("paused", (end / 60, ys[-1]), xytext=(4, 4), textcoords="offset points", fontsize=8)
    top.set_title(title)
    metrics: dict[str, list] = {}
    for s in timeline.steps:
        for m in (s.analysis or {}).get("measurements", []):
            metrics.setdefault(m["metric"], []).append(m)
    for i, (name, ms) in enumerate(sorted(metrics.items())):
        for m in ms:
            v = m.get("value")
            ok = isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))
            bottom.scatter(m["time"] / 60, i, color=_COLORS.get(m["phase"], "k"), s=60, zorder=3)
            if ok:
                bottom.annotate(f"{v:.3g}", (m["time"] / 60, i), textcoords="offset points", xytext=(0, 7),
                                ha="center", fontsize=7)
    bottom.set_yticks(range(len(metrics)))
    bottom.set_yticklabels(sorted(metrics) or [""])
    bottom.set_ylim(-0.7, max(len(metrics) - 0.3, 0.7))
    bottom.set_xlabel("simulated time (minutes)")
    for phase, color in _COLORS.items():
        bottom.scatter([], [], color=color, label=phase)
    bottom.legend(fontsize=7, loc="upper right", ncol=4)
    return top, bottom


def plot_requests_needed(table, ax=None):
    """Total requests to detect each regression, against the canary weight (log scale)."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for (p0, p1), g in table.groupby(["baseline", "canary"]):
        line, = ax.plot(g["weight"] * 100, g["z-test total"], marker="o", label=f"{p0:.1%} → {p1:.1%}: z-test")
        ax.plot(g["weight"] * 100, g["SPRT total (avg)"], marker="s", ls="--", color=line.get_color(),
                label=f"{p0:.1%} → {p1:.1%}: SPRT (average)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("canary weight %")
    ax.set_ylabel("total requests needed")
    ax.set_title("Requests to catch an error-rate regression (α=0.05, power 0.8)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def plot_policies(df, ax=None):
    """Abort probability against the canary's error rate, one line per analysis policy."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for name, g in df.groupby("policy", sort=False):
        ax.plot(g["canary error rate"] * 100, g["abort rate"], marker="o", label=name)
    base = df.loc[df["false abort"].notna(), "canary error rate"]
    if len(base):
        ax.axvline(float(base.iloc[0]) * 100, color="k", ls=":", label="canary as good as stable")
    ax.set_xlabel("canary error rate %")
    ax.set_ylabel("share of canaries aborted")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Healthy canaries should stay (left), bad ones should go (right)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax
