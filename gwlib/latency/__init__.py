"""Latency benchmarks: published Linkerd studies, result parsers, histograms and statistics.

Published data (``data/benchmarks/``, every value cited and flagged exact / chart / derived):

* :func:`published` — one tidy table of latency values; :func:`studies` — what each study
  measured and where it is weak; :func:`resources` — CPU and memory figures;
  :func:`side_by_side`, :func:`overhead_table` — the usual comparisons.

Your own results:

* :func:`load` — wrk2/wrk, fortio, k6, oha, hey (and ``.hgrm``) → :class:`Result`
  (percentiles in ms, a :class:`Histogram` where the tool printed a full distribution);
  :func:`frame` — many results as one tidy table (``tool, target, rate, connections,
  percentile, latency_ms, ...``). Bad files raise :class:`ParseError` naming the line.

Statistics (:mod:`gwlib.latency.stats`):

* :func:`percentile_ci` — bootstrap confidence intervals; :func:`overhead` — mesh minus
  baseline per percentile with intervals; :func:`merge` — pool runs by adding histograms;
  :func:`aggregations` — why averaging per-run percentiles misleads.

Demonstrations and plots: :func:`coordinated_omission` (a local server that stalls, measured
closed- and open-loop), :func:`plot_spectrum`, :func:`plot_rate_bars`.
Load generation lives in :mod:`gwlib.traffic`; the cluster recipe in :mod:`gwlib.latency.cluster`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .histogram import Histogram
from .parsers import TOOLS, detect, load
from .published import overhead_table, published, resources, side_by_side, studies
from .result import SCHEMA, ParseError, Result, frame
from .stats import aggregations, demo_runs, merge, overhead, percentile_ci

if TYPE_CHECKING:  # pragma: no cover
    from .demo import CODemo, coordinated_omission
    from .plots import plot_rate_bars, plot_spectrum

# matplotlib is imported only when a plot is asked for (gwlib.traffic imports this package)
_LAZY = {"plot_spectrum": "plots", "plot_rate_bars": "plots", "coordinated_omission": "demo", "CODemo": "demo"}
# the hop-overhead benchmark pulls in the lab's data planes: only when asked for
_SUBMODULES = ("hops",)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        import importlib
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'gwlib.latency' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CODemo", "Histogram", "ParseError", "Result", "SCHEMA", "TOOLS", "aggregations", "coordinated_omission",
    "demo_runs", "detect", "frame", "hops", "load", "merge", "overhead", "overhead_table", "percentile_ci",
    "plot_rate_bars", "plot_spectrum", "published", "resources", "side_by_side", "studies",
]
