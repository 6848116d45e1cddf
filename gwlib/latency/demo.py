"""Coordinated omission, demonstrated on your own machine.

A local server answers in well under a millisecond, except that it **stalls** for
``stall_for`` seconds (as a process does during a GC pause or when it is stopped), starting
``stall_at`` seconds into the run. The same load — ``rate`` requests per second for
``duration`` seconds — is measured twice:

* **closed loop** (one connection, paced to the rate, like a JMeter thread or ``hey -q``):
  the client waits out the stall with the server, so the ~``rate × stall_for`` requests it
  should have sent meanwhile are never sent. One slow sample out of hundreds: p99 looks fine.
* **open loop** (wrk2-style): requests keep falling due during the stall and each waits;
  latency is measured from when it *should* have gone out. A fifth of the run is affected.

The open-loop run also yields the *uncorrected* latency (from the actual send time), which
is what a naive constant-rate tool would report.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .histogram import Histogram

PERCENTILES = (50, 90, 99, 99.9, 100)


@dataclass
class CODemo:
    closed: Histogram
    open_uncorrected: Histogram
    open_corrected: Histogram
    rate: float
    duration: float
    stall_at: float
    stall_for: float
    closed_connections: int

    def table(self, percentiles=PERCENTILES) -> pd.DataFrame:
        """Percentiles (ms) and request counts of the three measurements."""
        rows = {"closed loop": self.closed, "open loop, from actual send (uncorrected)": self.open_uncorrected,
                "open loop, from intended send (corrected)": self.open_corrected}
        df = pd.DataFrame({name: list(h.percentiles(percentiles)) + [h.count] for name, h in rows.items()},
                          index=[("max" if p >= 100 else f"p{p:g}") for p in percentiles] + ["requests"]).T
        df["requests"] = df["requests"].astype(int)
        return df

    def expected_affected(self) -> float:
        """The share of requests that fall due during the stall (what a correct p-tail shows)."""
        return self.stall_for / self.duration

    def verdict(self) -> dict[str, bool]:
        """Robust yes/no facts of the run (generous thresholds: for tests and notebooks)."""
        stall_ms = self.stall_for * 1e3
        return {
            "closed loop: p99 hides the stall": self.closed.percentile(99) < 0.2 * stall_ms,
            "closed loop: only max shows it": self.closed.max >= 0.8 * stall_ms,
            "open loop (corrected): p90 shows it": self.open_corrected.percentile(90) >= 0.2 * stall_ms,
            "open loop (corrected): p99 near the stall": self.open_corrected.percentile(99) >= 0.6 * stall_ms,
        }


def coordinated_omission(rate: float = 200, duration: float = 2.5, stall_at: float = 1.0,
                         stall_for: float = 0.5, connections: int = 8, closed_connections: int = 1) -> CODemo:
    """Run the demonstration (about ``2 × duration`` seconds, all on 127.0.0.1)."""
    from .. import traffic

    if stall_at + stall_for >= duration:
        raise ValueError("the stall must end before the run does")
    with traffic.local_server(stall=(stall_at, stall_for)) as srv:
        closed = traffic.closed_loop(srv.address, connections=closed_connections, rate=rate, duration=duration,
                                     warmup=0, timeout=stall_for + 5)
    with traffic.local_server(stall=(stall_at, stall_for)) as srv:
        opened = traffic.open_loop(srv.address, rate=rate, duration=duration, connections=connections,
                                   warmup=0, timeout=stall_for + 5)
    assert closed.histogram is not None and opened.histogram is not None and opened.uncorrected is not None
    return CODemo(closed=closed.histogram, open_uncorrected=opened.uncorrected, open_corrected=opened.histogram,
                  rate=rate, duration=duration, stall_at=stall_at, stall_for=stall_for,
                  closed_connections=closed_connections)
