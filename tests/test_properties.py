"""Property tests: whatever comes in, gwlib.load/gwlib.validate answer with problems, never crash.

Valid objects from the fixture suites are mutated at random (a key dropped, a value replaced
by one of another type or shape, an unknown key added); the result is either valid — and
then load → dump → load is stable — or a list of problems with readable lines.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gwlib
from gwlib.loader import read_documents

FIXTURES = Path(__file__).parent / "fixtures" / "valid"
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_docs() -> list[dict]:
    docs = [d.data for d in read_documents(FIXTURES) if d.data is not None]
    return [d for d in docs if not gwlib.validate(d, channel="experimental")]


VALID = _valid_docs() if FIXTURES.exists() else []

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                      st.floats(allow_nan=False), st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _get_parent(doc, path):
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated(draw):
    doc = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _get_parent(doc, path)
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(json_value)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(json_value)
        else:
            parent.append(draw(json_value))
    return doc


def _never_crashes(source, channel):
    problems = gwlib.validate(source, channel=channel)
    assert all(isinstance(p, gwlib.Problem) and p.line() for p in problems)
    try:
        objs = gwlib.load(source, channel=channel)
    except gwlib.InvalidManifest as exc:
        assert exc.problems == problems
        return
    assert not problems
    for obj in objs:
        again = gwlib.load(obj.to_dict(), channel=channel)[0]
        assert again.to_dict() == obj.to_dict()


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text):
    _never_crashes(text, "standard")


@SETTINGS
@given(json_value)
def test_arbitrary_json_values_never_crash(value):
    problems = gwlib.validate([value] if not isinstance(value, list) else value)
    assert all(p.line() for p in problems)


@pytest.mark.skipif(not VALID, reason="no valid fixtures yet")
@SETTINGS
@given(mutated(), st.sampled_from(["standard", "experimental"]))
def test_mutated_valid_objects_give_problems_or_round_trip(doc, channel):
    _never_crashes(doc, channel)


@pytest.mark.skipif(not VALID, reason="no valid fixtures yet")
def test_every_valid_fixture_round_trips_clean_and_defaulted():
    for doc in VALID:
        (obj,) = gwlib.load(doc)
        assert obj.to_dict() == gwlib.load(obj.to_dict())[0].to_dict()
        defaulted = obj.to_dict(defaults=True)
        assert gwlib.load(defaulted)[0].to_dict(defaults=True) == defaulted
