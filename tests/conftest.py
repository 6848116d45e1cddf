"""pytest configuration shared by the unit tests and nbval."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pytest_collectstart(collector):
    # HTML renderings of DataFrames change across pandas versions: compare text/plain only.
    if getattr(collector, "fspath", None) and str(collector.fspath).endswith(".ipynb"):
        collector.skip_compare += ("text/html", "application/javascript", "stderr")
