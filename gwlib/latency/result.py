"""One load-test run in one shape, whoever measured it (wrk2, fortio, k6, oha, hey, gwlib).

:class:`Result` holds the percentiles the tool reported (ms), the full distribution as a
:class:`~gwlib.latency.histogram.Histogram` where the tool printed one, and the run's
metadata. :meth:`Result.to_frame` gives the **tidy schema**, one row per percentile::

    tool, target, rate, connections, percentile, latency_ms,
    run, mode, corrected, requests, errors, duration_s, achieved_rate, source

``rate`` is the *requested* rate in requests/s (NaN when the tool sent as fast as it could);
``mode`` is ``"open"`` (requests sent on a schedule) or ``"closed"`` (each connection waits
for its answer before sending again); ``corrected`` says whether latency was measured from
the *intended* send time (wrk2, gwlib's open loop), i.e. free of coordinated omission.
Percentile 100 is the maximum.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .histogram import Histogram

SCHEMA = ["tool", "target", "rate", "connections", "percentile", "latency_ms", "run", "mode",
          "corrected", "requests", "errors", "duration_s", "achieved_rate", "source"]


class ParseError(ValueError):
    """A result file that a parser cannot read; the message names the tool, file and line."""

    def __init__(self, tool: str, message: str, line: int | None = None, source: str | None = None):
        self.tool, self.line, self.source, self.reason = tool, line, source, message
        where = source or "<text>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {tool}: {message}")


@dataclass
class Result:
    """One run: reported percentiles (ms), maybe a full histogram, and metadata."""

    tool: str
    percentiles: dict[float, float]
    histogram: Histogram | None = None
    target: str | None = None
    rate: float | None = None
    connections: int | None = None
    mode: str | None = None
    corrected: bool | None = None
    requests: int | None = None
    errors: int | None = None
    duration_s: float | None = None
    achieved_rate: float | None = None
    run: str | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def percentile(self, p: float) -> float:
        """Latency (ms) at ``p``: as the tool reported it, else read from the histogram."""
        for k, v in self.percentiles.items():
            if abs(k - p) < 1e-9:
                return v
        if self.histogram is not None:
            return self.histogram.percentile(p)
        have = ", ".join(f"{k:g}" for k in sorted(self.percentiles))
        raise KeyError(f"{self.tool} reported no p{p:g} and no histogram (it has: {have})")

    def replace(self, **changes: Any) -> Result:
        """A copy with some fields changed (``run=``, ``target=``, ``rate=`` ...)."""
        return dataclasses.replace(self, **changes)

    def to_frame(self) -> pd.DataFrame:
        rows = [{"tool": self.tool, "target": self.target,
                 "rate": np.nan if self.rate is None else float(self.rate),
                 "connections": self.connections, "percentile": float(p), "latency_ms": float(v),
                 "run": self.run, "mode": self.mode, "corrected": self.corrected,
                 "requests": self.requests, "errors": self.errors, "duration_s": self.duration_s,
                 "achieved_rate": self.achieved_rate, "source": self.source}
                for p, v in sorted(self.percentiles.items())]
        df = pd.DataFrame(rows, columns=SCHEMA)
        return df.astype({"percentile": float, "latency_ms": float, "rate": float})

    def __repr__(self) -> str:
        bits = [f"tool={self.tool!r}"]
        for name in ("target", "rate", "connections", "mode", "run"):
            v = getattr(self, name)
            if v is not None:
                bits.append(f"{name}={v!r}")
        ps = ", ".join(f"p{p:g}={v:.3f}" if p < 100 else f"max={v:.3f}" for p, v in sorted(self.percentiles.items()))
        bits.append(f"ms: {ps}")
        if self.histogram is not None:
            bits.append(f"histogram of {self.histogram.count}")
        return f"Result({', '.join(bits)})"


def frame(results: Iterable[Result] | Result) -> pd.DataFrame:
    """The tidy table of one or many results (one row per run and percentile)."""
    if isinstance(results, Result):
        results = [results]
    parts = [r.to_frame() for r in results]
    if not parts:
        return pd.DataFrame(columns=SCHEMA)
    return pd.concat(parts, ignore_index=True)
