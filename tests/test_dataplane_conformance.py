"""The semantics request tables through real Envoy and Traefik (issue 4, first acceptance item).

Every request of ``tests/test_router.py`` — its parametrize tables and the requests its other
tests send — is sent through a real Envoy and a real Traefik lab programmed from the same
manifests, and each answer is compared with the reference router's answer field by field
(:func:`gwlib.portability.compare`, with the exact split of weighted rules).

How the tables are read (nothing is copied from ``test_router.py``): the module is imported and
each of its ``test_*`` functions is called once per row of its parametrize table, with
``test_router.Router`` replaced by a recording subclass. Every ``route``/``split``/``explain``
call that returns records (manifests, request); the test's own assertions still run against the
reference router, so the tables are exactly what ``test_router.py`` checks. A *case* is one
distinct request on one distinct set of manifests; its ids are the ``test_router`` rows that send
it (``test_request_redirect[2]`` is row 2 of that table).

How the labs are driven: ONE Envoy lab and ONE Traefik lab for the module. Per table, each
set of manifests is applied once (objects of the previous set that are gone or changed are
deleted first, so creationTimestamps are the manifests' own), and every request of that set is
sent. The reference answer is the reference router's answer on exactly what the lab holds
(``lab.router``). For a rule that splits traffic the request is sent several times and each
answer is compared with a reference answer for the same choice (every answer must be a share
of the exact split).

What may differ:

* Envoy: nothing, except a case whose feature Envoy's driver reports as a Finding when the
  manifests are applied (:data:`EXPLAINED` ``["envoy"]``; the Finding must be there).
* Traefik: each differing case is listed in :data:`EXPLAINED` ``["traefik"]`` with the feature
  that explains it: a Finding emitted at apply time, or a row of
  :func:`gwlib.dataplanes.traefik.features` whose support is "approximated" or "no".
* :data:`LAB_CLIENT_GAPS`: requests the lab's *client* (``gwlib.lab``) cannot send yet; no data
  plane is involved, so they are listed apart, with the reason, for both data planes.

An unlisted difference fails, and so does a listed case that now agrees (remove it from the
list). ``test_summary`` prints the counts per data plane.

Run: ``.venv/bin/python -m pytest tests/test_dataplane_conformance.py -q -p no:nbval -o addopts="" -s``
"""
from __future__ import annotations

import copy
import importlib
import inspect
import itertools
import json
import sys
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import gwlib
from gwlib import binaries
from gwlib.portability import compare
from gwlib.router import RequestError, Router

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # how pytest imports test modules of a folder without __init__.py
    sys.path.insert(0, str(TESTS))
test_router = importlib.import_module("test_router")

DATAPLANES = ("envoy", "traefik")

#: How often a request whose rule splits traffic is sent (each answer must be a share of the split).
SPLIT_SENDS = 6

#: Differences explained by a feature: case id (``table[row]``, or ``table`` for all its
#: requests) -> the feature. Envoy: the ``feature`` of a Finding its driver emits at apply time.
#: Traefik: that, or the ``feature`` of a :func:`gwlib.dataplanes.traefik.features` row whose
#: support is "approximated" or "no".
EXPLAINED: dict[str, dict[str, str]] = {
    "envoy": {},
    "traefik": {
        # Traefik's Query() matches ANY value of a repeated parameter; the spec (and the
        # reference) use the first one: ?animal=dolphin&animal=whale matches animal=whale.
        "test_query_matching[4]": "Query parameter match",
        # The file provider has no header append: add is applied as set.
        "test_request_header_modifier_set_add_remove": "RequestHeaderModifier.add",
        "test_response_header_modifier_and_echo_set_header": "ResponseHeaderModifier.add",
        # Traefik only knows "permanent or not": GET gets 302 for 303 and 307, 301 for 308.
        "test_request_redirect[2]": "RequestRedirect.statusCode",
        "test_request_redirect[3]": "RequestRedirect.statusCode",
        "test_request_redirect[4]": "RequestRedirect.statusCode",
        # A weighted service cannot run middlewares per backend.
        "test_backend_ref_filters_apply_to_that_backend_only": "BackendRef.filters",
    },
}

#: Requests the lab's client (gwlib/lab.py) cannot send faithfully yet: case id -> why.
#: These are not data-plane differences; they apply to both data planes.
LAB_CLIENT_GAPS: dict[str, str] = {}


# =========================================================================== the tables

@dataclass
class Case:
    table: str                      # the test_router function that first sends it
    world: str                      # fingerprint of the manifests
    request: dict
    ids: list[str] = field(default_factory=list)  # every test_router row that sends it


@dataclass
class Tables:
    worlds: dict[str, list]         # fingerprint -> resources
    cases: dict[str, list[Case]]    # table -> its cases, in the order they were sent
    mesh: Counter                   # table -> mesh requests (no data plane involved)
    rows: dict[str, int]            # table -> rows called
    failed: dict[str, str]          # rows whose own assertions failed (test_router.py says so too)
    shared: dict[str, set]          # table -> cases it sends that an earlier table sent first


def _rows(fn) -> list[tuple[str, dict]] | None:
    """(case id, keyword arguments) per row of ``fn``'s parametrize table; None if skipped."""
    marks = list(getattr(fn, "pytestmark", []))
    for m in marks:
        if m.name == "skip" or (m.name == "skipif" and m.args and m.args[0]):
            return None
    axes = []
    for m in reversed([m for m in marks if m.name == "parametrize"]):
        names = m.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        rows = []
        for value in m.args[1]:
            value = value.values if type(value).__name__ == "ParameterSet" else value
            rows.append(dict(zip(names, value if len(names) > 1 else (value,))))
        axes.append(rows)
    if not axes:
        return [(fn.__name__, {})]
    out = []
    for i, combo in enumerate(itertools.product(*axes)):
        kwargs: dict = {}
        for part in combo:
            kwargs.update(part)
        out.append((f"{fn.__name__}[{i}]", kwargs))
    return out


def _fingerprint(objects: list) -> str:
    return json.dumps([o.to_dict() for o in objects], sort_keys=True, default=str)


_TABLES: Tables | None = None


def tables() -> Tables:
    """Call every test of test_router.py with a recording Router (once per session)."""
    global _TABLES
    if _TABLES is not None:
        return _TABLES
    sink: list[tuple[str, list, dict]] = []
    current = [""]

    class Recording(Router):
        def __init__(self, source, seed=0):
            super().__init__(source, seed=seed)
            if isinstance(source, (list, tuple)) and all(hasattr(o, "to_dict") for o in source):
                self._objects = list(source)
            else:
                self._objects = gwlib.load(source)

        def _record(self, request: dict) -> None:
            sink.append((current[0], self._objects, request))

        def route(self, request):
            sent = copy.deepcopy(request)
            answer = super().route(request)
            self._record(sent)
            return answer

        def split(self, request):
            sent = copy.deepcopy(request)
            answer = super().split(request)
            self._record(sent)
            return answer

        def explain(self, request):
            sent = copy.deepcopy(request)
            answer = super().explain(request)
            self._record(sent)
            return answer

    rows_called: Counter = Counter()
    failed: dict[str, str] = {}
    original = test_router.Router
    test_router.Router = Recording
    try:
        for name, fn in list(vars(test_router).items()):
            if not name.startswith("test_") or not inspect.isfunction(fn):
                continue
            rows = _rows(fn)
            if rows is None:
                continue
            params = set(inspect.signature(fn).parameters)
            for case_id, kwargs in rows:
                if set(kwargs) != params:
                    raise RuntimeError(f"test_router.{name} takes {sorted(params - set(kwargs))}, which the "
                                       "collector cannot give: extend tests/test_dataplane_conformance.py")
                current[0] = case_id
                try:
                    fn(**kwargs)
                except Exception as exc:  # noqa: BLE001 - test_router.py reports its own failures;
                    failed[case_id] = f"{type(exc).__name__}: {exc}"  # what it sent is still a case
                rows_called[name] += 1
    finally:
        test_router.Router = original

    worlds: dict[str, list] = {}
    by_key: dict[tuple[str, str], Case] = {}
    cases: dict[str, list[Case]] = defaultdict(list)
    mesh: Counter = Counter()
    shared: dict[str, set] = defaultdict(set)
    for case_id, objects, request in sink:
        table = case_id.split("[", 1)[0]
        if isinstance(request, dict) and "service" in request and "gateway" not in request:
            mesh[table] += 1  # a mesh request: answered by the reference router in every mode
            continue
        fp = _fingerprint(objects)
        worlds.setdefault(fp, objects)
        key = (fp, json.dumps(request, sort_keys=True))
        case = by_key.get(key)
        if case is None:
            case = by_key[key] = Case(table, fp, request)
            cases[table].append(case)
        if case_id not in case.ids:
            case.ids.append(case_id)
        if case.table != table:
            shared[table].add(case.ids[0])
    _TABLES = Tables(worlds, dict(cases), mesh, dict(rows_called), failed, dict(shared))
    return _TABLES


def _table_names() -> list[str]:
    return [n for n, fn in vars(test_router).items() if n.startswith("test_") and inspect.isfunction(fn)]


def _lookup(mapping: dict[str, str], ids: list[str]) -> tuple[str, str] | None:
    for case_id in ids:
        for key in (case_id, case_id.split("[", 1)[0]):
            if key in mapping:
                return key, mapping[key]
    return None


# =========================================================================== the labs

def _key(obj) -> tuple:
    group = obj.api_version.rsplit("/", 1)[0] if "/" in obj.api_version else ""
    return (group, obj.kind, obj.namespace, obj.name)


class LabRunner:
    """One lab, switched from one set of manifests to the next."""

    def __init__(self, dataplane: str):
        from gwlib.lab import Lab
        self.dataplane = dataplane
        self.lab = Lab(dataplane=dataplane, seed=0)
        self.world: str | None = None
        self.applied: dict[tuple, str] = {}   # object key -> its JSON as applied
        self.findings: list = []

    def switch(self, fp: str, objects: list) -> None:
        if fp == self.world:
            return
        from gwlib.lab import LabWarning
        new = {_key(o): json.dumps(o.to_dict(), sort_keys=True, default=str) for o in objects}
        # Delete what is gone AND what changed: an update would keep the old object's
        # creationTimestamp (as an API server does), and precedence depends on it.
        old = [o for o in self.lab.store.objects() if new.get(_key(o)) != self.applied.get(_key(o))]
        if old:
            self.lab.store.delete(old)  # applied below, in the same reprogramming
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LabWarning)  # kept in lab.findings, checked per case
            self.lab.apply(*objects)
        self.applied = new
        self.world = fp
        self.findings = list(self.lab.findings)

    def send(self, request: dict) -> dict:
        try:
            return self.lab.request(request)
        except Exception as exc:  # noqa: BLE001 - a client failure is an answer to compare
            return {"status": None, "backend": None, "request": None, "headers": {}, "location": None,
                    "mirrored_to": [], "route": None, "rule": None,
                    "error": f"lab client: {type(exc).__name__}: {exc}"}

    def close(self) -> None:
        self.lab.close()


@pytest.fixture(scope="module")
def labs():
    made: dict[str, LabRunner] = {}

    def get(dataplane: str) -> LabRunner:
        if not binaries.find(dataplane):
            pytest.skip(f"the {dataplane} binary is not installed")
        if dataplane not in made:
            made[dataplane] = LabRunner(dataplane)
        return made[dataplane]

    yield get
    for runner in made.values():
        runner.close()


# =========================================================================== one table

@dataclass
class Outcome:
    case: Case
    sent: int
    differences: list[str]              # of the first differing answer
    explained_by: str | None = None     # feature
    lab_gap: str | None = None          # reason


#: dataplane -> table -> outcomes (for the summary)
RESULTS: dict[str, dict[str, list[Outcome]]] = {d: {} for d in DATAPLANES}


def _choice(answer: dict) -> str:
    b = answer.get("backend")
    return f"{b['namespace']}/{b['name']}" if b else str(answer.get("status"))


def _reference_for(router: Router, request: dict, answer: dict) -> dict:
    """A reference answer that made the same weighted choice as ``answer`` (if any does)."""
    want = _choice(answer)
    ref = router.route(request)
    for _ in range(400):
        if _choice(ref) == want:
            break
        ref = router.route(request)
    return ref


def run_case(runner: LabRunner, case: Case) -> tuple[int, list[str]]:
    router = runner.lab.router
    request = case.request
    ref = router.route(request)
    try:
        split = router.split(request) if ref.get("status") is not None else {}
    except RequestError:
        split = {}
    weighted = len([k for k, p in split.items() if p > 0]) > 1
    sends = SPLIT_SENDS if weighted else 1
    first: list[str] = []
    for _ in range(sends):
        answer = runner.send(request)
        reference = _reference_for(router, request, answer) if weighted else ref
        diff = compare(reference, answer, split)
        if diff and not first:
            first = diff
    return sends, first


@pytest.mark.parametrize("table", _table_names())
@pytest.mark.parametrize("dataplane", DATAPLANES)
def test_table(dataplane, table, labs):
    t = tables()
    cases = t.cases.get(table, [])
    if not cases:
        if t.shared.get(table):
            why = f"every request it sends is a case of an earlier table: {', '.join(sorted(t.shared[table]))}"
        elif t.mesh.get(table):
            why = "only mesh requests (answered by the reference router in every mode; no data plane involved)"
        elif t.rows.get(table):
            why = "only malformed requests (RequestError before any data plane is involved)"
        else:
            why = "skipped in test_router.py"
        pytest.skip(why)
    runner = labs(dataplane)
    outcomes: list[Outcome] = []
    problems: list[str] = []
    features = _approximated_features(dataplane)
    for case in cases:
        runner.switch(case.world, t.worlds[case.world])
        sends, diff = run_case(runner, case)
        out = Outcome(case, sends, diff)
        outcomes.append(out)
        where = f"{case.ids[0]} {json.dumps(case.request, sort_keys=True)}"
        gap = _lookup(LAB_CLIENT_GAPS, case.ids)
        explained = _lookup(EXPLAINED[dataplane], case.ids)
        if gap is not None:
            out.lab_gap = gap[1]
            if not diff:
                problems.append(f"{where}: agrees now; remove {gap[0]!r} from LAB_CLIENT_GAPS")
            continue
        if explained is not None:
            key, feature = explained
            if not diff:
                problems.append(f"{where}: agrees now; remove {key!r} from EXPLAINED[{dataplane!r}]")
                continue
            emitted = {f.feature for f in runner.findings}
            if feature in emitted:
                out.explained_by = feature
            elif feature in features:
                out.explained_by = feature
            else:
                kind = "a Finding at apply time" if dataplane == "envoy" else \
                    "a Finding at apply time nor an approximated/unsupported features() row"
                problems.append(f"{where}: differs ({'; '.join(diff)}), and {feature!r} is not {kind} "
                                f"(findings: {sorted(emitted) or 'none'})")
            continue
        if diff:
            problems.append(f"{where}: {dataplane} differs from the reference: {'; '.join(diff)} "
                            f"(findings at apply: {[f.feature for f in runner.findings] or 'none'})")
    RESULTS[dataplane][table] = outcomes
    assert not problems, f"{len(problems)} unexplained:\n" + "\n".join(problems)


def _approximated_features(dataplane: str) -> set[str]:
    """Features that explain a difference without a Finding: Traefik's matrix rows that are
    not fully supported. Envoy's differences must come with a Finding."""
    if dataplane == "envoy":
        return set()
    from gwlib.dataplanes import traefik
    return {row["feature"] for row in traefik.features() if row["supported"] in ("approximated", "no")}


# =========================================================================== the mapping itself

def test_explanations_name_known_cases_and_features():
    """Every id in EXPLAINED and LAB_CLIENT_GAPS is a case of test_router.py; every Envoy
    feature is a Finding kind its driver documents (FINDINGS). (Whether the Finding or the
    features() row is really there is checked per case, where the difference is seen.)"""
    from gwlib.dataplanes import envoy
    for case_id, feature in EXPLAINED["envoy"].items():
        assert feature in envoy.FINDINGS, f"envoy: {case_id}: {feature!r} is not in envoy.FINDINGS"
    ids = {i for cases in tables().cases.values() for c in cases for i in c.ids}
    names = {i.split("[", 1)[0] for i in ids}
    for mapping in (*EXPLAINED.values(), LAB_CLIENT_GAPS):
        for case_id in mapping:
            assert case_id in ids or case_id in names, f"{case_id} is not a case of test_router.py"


# =========================================================================== fixes found here

def test_envoy_features_matrix():
    """Envoy's support matrix has Traefik's shape and names every Finding kind it documents."""
    from gwlib.dataplanes import envoy, traefik
    rows = envoy.features()
    assert rows and all(set(r) == {"feature", "supported", "note"} for r in rows)
    assert all(r["supported"] in ("yes", "approximated", "no") for r in rows)
    assert len({r["feature"] for r in rows}) == len(rows)
    notes = " ".join(r["note"] for r in rows)
    assert [k for k in envoy.FINDINGS if k not in notes] == []
    assert {r["feature"] for r in rows} & {r["feature"] for r in traefik.features()}  # comparable rows


@pytest.mark.parametrize("value", ["077225250917", "08", "1e5", "0o17", "0x1F", "1_000", "2024-01-01", "+1", ".5"])
def test_traefik_quotes_strings_go_reads_as_numbers(value):
    """PyYAML (YAML 1.1) writes these strings plain; Traefik (Go, YAML 1.2) would read numbers."""
    from gwlib.dataplanes.traefik import _dump
    assert _dump({"k": value}).strip() in (f"k: '{value}'", f'k: "{value}"')
    assert _dump({"k": "0s"}).strip() == "k: 0s" and _dump({"k": 5}).strip() == "k: 5"


def test_traefik_header_values_reach_the_backend_as_written(labs):
    """Live: header values that look like numbers arrive unchanged (they became 8, 100000 and
    15 when the dynamic file left them plain)."""
    import builders
    values = ["08", "1e5", "0o17", "077225250917"]
    mod = {"set": [{"name": f"X-V{i}", "value": v} for i, v in enumerate(values)]}
    objects = builders.base(
        builders.route("r", rules=[builders.rule(builders.bref("v1"), filters=[
            {"type": "RequestHeaderModifier", "requestHeaderModifier": mod}])]),
        services=test_router.SVCS)
    runner = labs("traefik")
    runner.switch(_fingerprint(objects), objects)
    answer = runner.send({"gateway": "infra/gw", "host": "example.com", "path": "/"})
    got = {k: v for k, v in (answer["request"] or {}).get("headers", {}).items() if k.startswith("X-V")}
    assert got == {f"X-V{i}": v for i, v in enumerate(values)}


# =========================================================================== summary

def test_summary():
    """Counts per data plane (run with -s to see them)."""
    lines = []
    total_rows = sum(tables().rows.values())
    lines.append(f"test_router.py: {total_rows} rows sent {sum(len(c) for c in tables().cases.values())} distinct "
                 f"data-plane requests on {len(tables().worlds)} sets of manifests "
                 f"({sum(tables().mesh.values())} mesh requests left to the reference router)")
    for dataplane in DATAPLANES:
        outcomes = [o for outs in RESULTS[dataplane].values() for o in outs]
        if not outcomes:
            lines.append(f"{dataplane}: not run")
            continue
        agree = [o for o in outcomes if not o.differences]
        explained = Counter(o.explained_by for o in outcomes if o.differences and o.explained_by)
        gaps = [o for o in outcomes if o.lab_gap and o.differences]
        unexplained = [o for o in outcomes if o.differences and not o.explained_by and not o.lab_gap]
        lines.append(f"{dataplane}: {len(outcomes)} cases ({sum(o.sent for o in outcomes)} requests) from "
                     f"{len(RESULTS[dataplane])} tables: {len(agree)} agree, {sum(explained.values())} explained "
                     f"differences, {len(gaps)} lab-client gaps, {len(unexplained)} unexplained")
        for feature, n in sorted(explained.items()):
            lines.append(f"    explained by {feature!r}: {n}")
        for o in gaps:
            lines.append(f"    lab-client gap: {o.case.ids[0]}: {o.lab_gap}")
        for o in unexplained:
            lines.append(f"    UNEXPLAINED: {o.case.ids[0]}: {'; '.join(o.differences)}")
    for case_id, why in sorted(tables().failed.items()):
        lines.append(f"note: test_router row {case_id} fails its own assertions ({why.splitlines()[0][:120]})")
    print("\n" + "\n".join(lines))
