"""The notebooks and the modes: each notebook reads the mode once, opens its real-traffic
connections in that mode, and guards the cells that make sense in one mode only.

Table-driven over every notebook's JSON (no kernel needed), plus behaviour: ``gwlib.mode()``,
``gwlib.notebook.only_in``, and the guarded cells themselves run through ``exec`` in the mode
they are *not* for, where they must print the one sentence and do nothing else.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import inspect
import io
import json
import textwrap
from pathlib import Path

import pytest
from nbval.plugin import find_comment_markers

import gwlib
from gwlib.connection import MODES, ReferenceConnection
from gwlib.notebook import only_in

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

#: notebook -> (reads the mode, fewest cluster-only cells). A new notebook must be listed.
EXPECTED = {
    "00-welcome": (False, 0),
    "01-ingress-limits": (True, 1),
    "02-gateway-resources": (True, 2),
    "03-routing-deep-dive": (True, 1),
    "04-beyond-http": (True, 1),
    "05-linkerd-mesh": (True, 2),
    "06-canary-weights": (True, 1),
    "07-progressive-delivery": (True, 2),
    "08-linkerd-latency-benchmarks": (False, 0),
    "09-operating-gateway-api": (True, 1),
}

SENTENCE = {
    "cluster": "This cell needs a cluster (GWLIB_MODE=cluster, see README 'Cluster mode'); in lab mode it is skipped.",
    "lab": "This cell needs the lab (GWLIB_MODE=lab, the default); in cluster mode it is skipped.",
}
#: the other mode each kind of guarded cell is checked in
OTHER = {"cluster": "lab", "lab": "cluster"}


# -- reading notebooks ------------------------------------------------------------------------

class Cell:
    """A code cell: its source, parsed, and which mode its guard asks for (None: none)."""

    def __init__(self, notebook: str, index: int, cell: dict):
        self.notebook, self.index = notebook, index
        self.source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        self.outputs = cell.get("outputs") or []
        self.tree = ast.parse(self.source)
        self.markers = dict(find_comment_markers(self.source))   # what nbval sees
        self.guard: str | None = None
        self.guard_node: ast.If | None = None
        for stmt in self.tree.body:
            mode = _guard_mode(stmt)
            if mode is not None:
                self.guard, self.guard_node = mode, stmt

    def __repr__(self) -> str:
        return f"{self.notebook} cell {self.index}"

    def statements(self, mode: str) -> list[ast.stmt]:
        """The top-level statements that run in ``mode``."""
        if self.guard is None or self.guard == mode:
            return list(self.tree.body)
        return [s for s in self.tree.body if s is not self.guard_node]


def _guard_mode(stmt: ast.stmt) -> str | None:
    """The mode of ``if only_in("<mode>", MODE):``; None for any other statement."""
    if not isinstance(stmt, ast.If):
        return None
    test = stmt.test
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "only_in" \
            and len(test.args) == 2 and isinstance(test.args[0], ast.Constant):
        return test.args[0].value
    return None


def _is_call(node: ast.AST, owner: str, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name \
        and isinstance(node.func.value, ast.Name) and node.func.value.id == owner


@functools.lru_cache(maxsize=None)
def load(name: str) -> tuple[list[dict], list[Cell]]:
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    cells = [Cell(name, i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    return nb["cells"], cells


def calls(cell: Cell, owner: str, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(cell.tree) if _is_call(n, owner, name)]


def only_in_calls(cell: Cell) -> list[ast.Call]:
    return [n for n in ast.walk(cell.tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "only_in"]


ALL = sorted(EXPECTED)
READING = [n for n in ALL if EXPECTED[n][0]]


def test_every_notebook_is_in_the_table():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == ALL


# -- the mode, read once ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_mode_is_read_once_in_the_setup_cell(name):
    _, cells = load(name)
    reads = [(c, n) for c in cells for n in calls(c, "gwlib", "mode")]
    if not EXPECTED[name][0]:
        assert reads == []
        return
    assert len(reads) == 1, f"gwlib.mode() read in {[c for c, _ in reads]}"
    cell, _ = reads[0]
    assert cell is cells[0], f"the mode is read in {cell}, not in the setup cell"
    assert any(isinstance(s, ast.Assign) and [ast.unparse(t) for t in s.targets] == ["MODE"]
               and _is_call(s.value, "gwlib", "mode") for s in cell.tree.body), "MODE = gwlib.mode()"
    assignments = [c for c in cells for n in ast.walk(c.tree)
                   if isinstance(n, ast.Name) and n.id == "MODE" and isinstance(n.ctx, ast.Store)]
    assert assignments == [cells[0]], "MODE is assigned once"
    assert not [c for c in cells for n in ast.walk(c.tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and "GWLIB_MODE" in n.value], \
        "no cell reads GWLIB_MODE itself"


@pytest.mark.parametrize("name", ALL)
def test_connections_use_the_mode_or_the_reference(name):
    _, cells = load(name)
    for cell in cells:
        for call in calls(cell, "gwlib", "connect"):
            assert call.args, f"{cell}: gwlib.connect() without a mode reads GWLIB_MODE a second time"
            first = call.args[0]
            assert not any(k.arg == "mode" for k in call.keywords), cell
            if isinstance(first, ast.Constant):
                assert first.value == "reference", f"{cell}: gwlib.connect({first.value!r}) is hard-coded"
            else:
                assert isinstance(first, ast.Name) and first.id == "MODE", f"{cell}: {ast.unparse(call)}"


# -- guards and nbval markers -------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_guards_have_one_plain_shape(name):
    _, cells = load(name)
    uses = [c for c in cells if only_in_calls(c)]
    if uses:
        assert "from gwlib.notebook import only_in" in cells[0].source, "imported in the setup cell"
    for cell in uses:
        assert len(only_in_calls(cell)) == 1 and cell.guard_node is not None, \
            f"{cell}: one `if only_in(...)` at the top level of the cell"
        test = cell.guard_node.test
        assert cell.guard in MODES and isinstance(test.args[1], ast.Name) and test.args[1].id == "MODE", cell
        assert not cell.guard_node.orelse, f"{cell}: a guard has no else"
        if cell.guard == "cluster":
            assert cell.tree.body == [cell.guard_node], f"{cell}: nothing runs outside a cluster-only guard"


@pytest.mark.parametrize("name", ALL)
def test_cluster_only_cells_are_exactly_the_nbval_skipped_ones(name):
    raw, cells = load(name)
    for cell in cells:
        skipped = cell.markers.get("skip", False)
        assert skipped == (cell.guard == "cluster"), \
            f"{cell}: NBVAL_SKIP {'without' if skipped else 'missing on'} a cluster-only guard"
        if skipped:
            assert cell.source.startswith("# NBVAL_SKIP\n# (cluster mode only)\n"), cell
            before = raw[cell.index - 1]
            assert before["cell_type"] == "markdown", f"{cell}: a sentence says what a cluster shows here"
    assert sum(c.guard == "cluster" for c in cells) >= EXPECTED[name][1]


@pytest.mark.parametrize("name", ALL)
def test_committed_output_of_cluster_only_cells_is_the_sentence(name):
    """The notebooks are committed as run in the default mode: GitHub shows the sentence."""
    _, cells = load(name)
    for cell in (c for c in cells if c.guard == "cluster"):
        text = "".join("".join(o.get("text", "")) for o in cell.outputs if o.get("output_type") == "stream")
        assert text == SENTENCE["cluster"] + "\n", cell
        assert all(o.get("output_type") == "stream" for o in cell.outputs), cell


# -- what runs in each mode ---------------------------------------------------------------------

def _stored(nodes) -> set[str]:
    out: set[str] = set()
    for top in nodes:
        for n in ast.walk(top):
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                out.add(n.id)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                out.update((a.asname or a.name).split(".")[0] for a in n.names)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(n.name)
            elif isinstance(n, ast.arg):
                out.add(n.arg)
            elif isinstance(n, ast.ExceptHandler) and n.name:
                out.add(n.name)
    return out


def _loaded(nodes) -> set[str]:
    return {n.id for top in nodes for n in ast.walk(top) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


KERNEL_NAMES = set(dir(builtins)) | {"display", "get_ipython"}


@pytest.mark.parametrize("mode", ["lab", "cluster"])
@pytest.mark.parametrize("name", READING)
def test_every_name_a_cell_uses_is_defined_in_that_mode(name, mode):
    """Run top to bottom in ``mode``, no cell reaches for a name only a skipped cell defines."""
    _, cells = load(name)
    defined = set(KERNEL_NAMES)
    for cell in cells:
        if mode == "lab" and cell.markers.get("skip"):
            continue   # nbval does not run it
        run = cell.statements(mode)
        missing = _loaded(run) - defined - _stored(run)
        assert not missing, f"{cell} in {mode} mode uses {sorted(missing)}, defined only in skipped cells"
        defined |= _stored(run)


def _attributes(cls) -> set[str]:
    """Class attributes and the ``self.x = ...`` of every class in the MRO."""
    names = set(dir(cls))
    for klass in cls.__mro__[:-1]:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) \
                    and isinstance(n.value, ast.Name) and n.value.id == "self":
                names.add(n.attr)
    return names


def _accepts(func, keywords: list[str]) -> list[str]:
    """The keywords ``func`` would refuse."""
    params = inspect.signature(func).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return []
    return [k for k in keywords if k not in params]


def _classes():
    from gwlib.cluster import ClusterConnection
    from gwlib.lab import Lab
    return {"lab": Lab, "cluster": ClusterConnection}


@pytest.mark.parametrize("mode", ["lab", "cluster"])
@pytest.mark.parametrize("name", READING)
def test_connections_are_used_only_as_that_mode_offers(name, mode):
    """Every ``conn.x`` / ``conn.x(k=...)`` on a connection opened with MODE, in the cells that
    run in ``mode``, exists on that mode's connection class and takes those keywords."""
    cls = _classes()[mode]
    attrs = _attributes(cls)
    _, cells = load(name)
    conns: set[str] = set()
    for cell in cells:
        run = cell.statements(mode)
        for top in run:
            for n in ast.walk(top):
                if isinstance(n, ast.Assign) and _is_call(n.value, "gwlib", "connect") \
                        and isinstance(n.value.args[0], ast.Name):
                    assert not (refused := _accepts(cls.__init__, [k.arg for k in n.value.keywords])), \
                        f"{cell}: {cls.__name__} takes no {refused}"
                    conns.update(t.id for t in n.targets if isinstance(t, ast.Name))
        for top in run:
            for n in ast.walk(top):
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in conns:
                    assert n.attr in attrs, f"{cell}: {cls.__name__} has no {n.attr!r} ({mode} mode)"
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                        and isinstance(n.func.value, ast.Name) and n.func.value.id in conns:
                    func = inspect.getattr_static(cls, n.func.attr, None)
                    if callable(func):
                        refused = _accepts(func, [k.arg for k in n.keywords if k.arg])
                        assert not refused, f"{cell}: {cls.__name__}.{n.func.attr} takes no {refused}"


# -- the guards, run --------------------------------------------------------------------------

GUARDED = [(c.notebook, c.index, c.guard) for n in READING for c in load(n)[1] if c.guard]


def test_there_are_guarded_cells_of_both_kinds():
    assert {g for _, _, g in GUARDED} == {"lab", "cluster"}


@pytest.mark.parametrize(("name", "index", "guard"), GUARDED)
def test_a_guarded_cell_in_the_other_mode_prints_the_sentence_and_nothing_else(name, index, guard, monkeypatch):
    """The setup cell, then the guard: exactly the sentence, no error, nothing else done."""
    from IPython.display import display

    _, cells = load(name)
    cell = next(c for c in cells if c.index == index)
    other = OTHER[guard]
    if other == "lab":
        monkeypatch.delenv("GWLIB_MODE", raising=False)
    else:
        monkeypatch.setenv("GWLIB_MODE", other)
    monkeypatch.chdir(NOTEBOOKS)
    namespace: dict = {"display": display}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(cells[0].source, f"{name} setup", "exec"), namespace)
    assert namespace["MODE"] == other

    def forbidden(*_a, **_k):
        raise AssertionError("a skipped cell opened a connection")

    monkeypatch.setattr(gwlib, "connect", forbidden)
    out = io.StringIO()
    guard_only = ast.Module(body=[cell.guard_node], type_ignores=[])
    with contextlib.redirect_stdout(out):
        exec(compile(guard_only, f"{cell}", "exec"), namespace)
    assert out.getvalue() == SENTENCE[guard] + "\n"


# -- gwlib.mode() -------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "want"), [
    (None, "lab"), ("", "lab"), ("lab", "lab"), ("reference", "reference"), ("cluster", "cluster"),
    (" Cluster\n", "cluster"), ("REFERENCE", "reference"),
])
def test_mode_reads_gwlib_mode(monkeypatch, env, want):
    if env is None:
        monkeypatch.delenv("GWLIB_MODE", raising=False)
    else:
        monkeypatch.setenv("GWLIB_MODE", env)
    assert gwlib.mode() == want


@pytest.mark.parametrize("env", ["labs", "kind", "   ", "envoy"])
def test_mode_refuses_what_connect_refuses_with_the_same_message(monkeypatch, env):
    monkeypatch.setenv("GWLIB_MODE", env)
    with pytest.raises(ValueError) as from_mode:
        gwlib.mode()
    with pytest.raises(ValueError) as from_connect:
        gwlib.connect()
    assert str(from_mode.value) == str(from_connect.value)
    assert "lab, reference, cluster" in str(from_mode.value)


def test_connect_without_a_mode_opens_the_mode_that_mode_names(monkeypatch):
    monkeypatch.setenv("GWLIB_MODE", " Reference ")
    assert gwlib.mode() == "reference"
    assert isinstance(gwlib.connect(), ReferenceConnection)


def test_mode_is_public():
    assert "mode" in gwlib.__all__ and gwlib.mode is gwlib.connection.mode
    assert gwlib.mode.__doc__ and "GWLIB_MODE" in gwlib.mode.__doc__


# -- only_in ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_only_in_the_same_mode_runs_silently(mode, capsys):
    assert only_in(mode, mode) is True
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("needed", "current", "sentence"), [
    ("cluster", "lab", SENTENCE["cluster"]),
    ("lab", "cluster", SENTENCE["lab"]),
    ("cluster", "reference", "This cell needs a cluster (GWLIB_MODE=cluster, see README 'Cluster mode'); "
                             "in reference mode it is skipped."),
    ("reference", "lab", "This cell needs the reference mode (GWLIB_MODE=reference); in lab mode it is skipped."),
])
def test_only_in_another_mode_says_so_in_one_sentence(needed, current, sentence, capsys):
    assert only_in(needed, current) is False
    assert capsys.readouterr().out == sentence + "\n"


@pytest.mark.parametrize(("needed", "current"), [("clusters", "lab"), ("lab", "Lab"), ("", "lab"), ("lab", None)])
def test_only_in_refuses_names_that_are_not_modes(needed, current, capsys):
    with pytest.raises(ValueError, match="must be one of lab, reference, cluster"):
        only_in(needed, current)
    assert capsys.readouterr().out == ""
