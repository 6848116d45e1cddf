"""Cells that make sense in one mode only.

A notebook reads its mode once, in its setup cell, and hands it to every guard::

    MODE = gwlib.mode()                 # GWLIB_MODE, default "lab"
    ...
    # NBVAL_SKIP
    # (cluster mode only)
    if only_in("cluster", MODE):
        cluster = gwlib.connect(MODE)
        ...

:func:`only_in` is an ordinary function in an ordinary ``if``: it hooks into nothing and
hides nothing. In the wrong mode it prints one sentence saying what the cell needs, so a
learner who runs every cell by hand sees why a cell did nothing, and nothing fails.

The guard only decides whether the cell runs. nbval, which checks the committed outputs in
the default mode, is told separately: a cluster-only cell starts with the comment line
``# NBVAL_SKIP`` (nbval matches the whole comment, so the explanation goes on the next
line), because its output in the default mode is only the sentence.
"""
from __future__ import annotations

from .connection import MODES

#: what each mode needs, as the sentence names it
_NEEDS = {
    "lab": "the lab (GWLIB_MODE=lab, the default)",
    "reference": "the reference mode (GWLIB_MODE=reference)",
    "cluster": "a cluster (GWLIB_MODE=cluster, see README 'Cluster mode')",
}


def _check(name: str, what: str) -> None:
    if name not in MODES:
        raise ValueError(f"{what} must be one of {', '.join(MODES)}, not {name!r}")


def only_in(needed: str, current: str) -> bool:
    """Whether a cell that needs mode ``needed`` runs in mode ``current``.

    ``needed`` and ``current`` are mode names as :func:`gwlib.mode` returns them
    (``"lab"``, ``"reference"`` or ``"cluster"``). Returns True when they are the same.
    Otherwise prints one plain sentence, for example::

        This cell needs a cluster (GWLIB_MODE=cluster, see README 'Cluster mode'); in lab mode it is skipped.

    and returns False, so ``if only_in("cluster", MODE):`` runs the cell's body in a
    cluster only. Raises ``ValueError`` for a name that is not a mode, so a misspelt guard
    fails loudly instead of skipping its cell for ever.
    """
    _check(needed, "the mode a cell needs")
    _check(current, "the current mode")
    if needed == current:
        return True
    print(f"This cell needs {_NEEDS[needed]}; in {current} mode it is skipped.")
    return False


__all__ = ["only_in"]
