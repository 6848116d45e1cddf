"""Every notebook runs top to bottom with ``GWLIB_MODE=reference`` too.

The design promises that a notebook picks its mode once and that every later call is the
same in all three modes. nbval checks the committed outputs in the default mode (the lab);
this runs each notebook again in the reference mode, where gwlib's reference router answers
and lab-only cells print the sentence that says so, and fails on the first cell that raises.
(Cluster mode needs a cluster: see tests/cluster.)
"""
from __future__ import annotations

import pytest

from conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_reference_mode(path, monkeypatch):
    monkeypatch.setenv("GWLIB_MODE", "reference")   # the kernel inherits the environment
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} fails in reference mode:\n{str(exc)[-1500:]}")
    sentences = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if o.get("output_type") == "stream" and "in reference mode it is skipped" in o.get("text", "")]
    guarded = sum('only_in("' in c.source for c in nb.cells if c.cell_type == "code")
    assert len(sentences) == guarded, "every guarded cell said it was skipped in reference mode"
