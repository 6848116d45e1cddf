"""Conditions (expr-lang as Argo Rollouts evaluates them)."""
from __future__ import annotations

import math

import pytest

from gwlib.rollout.expr import ExprError, evaluate, evaluate_condition


@pytest.mark.parametrize("cond, result, expected", [
    ("result[0] >= 0.99", [0.995], True),
    ("result[0] >= 0.99", [0.95], False),
    ("len(result) > 0 && result[0] >= 0.99", [], False),         # lazy: never indexes []
    ("len(result) == 0 || result[0] >= 0.99", [], True),
    ("result[0] < 0.5 or result[0] > 0.9", [0.95], True),
    ("not (result[0] < 1)", [1], True),
    ("!(result[0] < 1)", [0.5], False),
    ("result[-1] == 3", [1, 2, 3], True),
    ("isNaN(result[0])", [math.nan], True),
    ("result[0] >= 0.99", [math.nan], False),                     # comparisons with NaN are false
    ("isInf(result)", math.inf, True),
    ("all(result, # < 50)", [10.0, 20.0], True),
    ("all(result, {# < 50})", [10.0, 60.0], False),
    ("any(result, # > 50)", [10.0, 60.0], True),
    ("none(result, # > 100)", [10.0, 60.0], True),
    ("len(filter(result, # > 15)) == 1", [10.0, 20.0], True),
    ("count(result, # > 5) == 2", [10.0, 20.0], True),
    ("default(result, 0) >= 0", None, True),
    ("isNil(result)", None, True),
    ("asFloat(result) > 0.5", "0.7", True),
    ("asInt(result) == 7", "7", True),
    ("result.ok == 'true'", {"ok": "true"}, True),
    ("result == 'true'", "true", True),
    ("result > 0 ? true : false", 1, True),
    ("1 in [1, 2] and 'x' not in ['a']", None, True),
    ("2 ** 3 == 8 && 7 % 3 == 1 && 10 / 4 == 2.5", None, True),
    ("max(result) <= 3 && min(result) >= 1 && sum(result) == 6", [1, 2, 3], True),
    ("mean(result) == 2 && median(result) == 2", [1, 2, 3], True),
    ("'abc' contains 'b' && 'abc' startsWith 'a' && 'abc' endsWith 'c' && 'abc' matches '^a.c$'", None, True),
    ("result ?? true", None, True),
])
def test_conditions(cond, result, expected):
    assert evaluate_condition(cond, result) is expected


@pytest.mark.parametrize("cond, result, message", [
    ("result >= 0.95", [0.9], "invalid operation: []float64 >= float64"),   # a vector is not a number
    ("result[0] >= 0.95", [], "index out of range: 0 (array length is 0)"),
    ("result[0]", [0.9], "expected bool, but got float64"),
    ("result[0] >= ", [0.9], "unexpected end"),
    ("foo(result)", [0.9], "unknown func foo"),
    ("bar > 1", [0.9], "unknown name bar"),
    ("result[0] && true", [0.9], "operand must be bool"),
    ("isNaN(result)", [0.9], "cannot use []float64 as argument"),
    ("'a' < 1", None, "invalid operation: string < int"),
    ("result @ 1", [1], "unexpected character"),
])
def test_errors(cond, result, message):
    with pytest.raises(ExprError, match=None) as exc:
        evaluate_condition(cond, result)
    assert message in str(exc.value)


def test_evaluate_returns_values():
    assert evaluate("result[0] * 100", {"result": [0.5]}) == 50.0
    assert evaluate("[1, 2][1]", {}) == 2
    assert evaluate("map(result, # * 2)", {"result": [1, 2]}) == [2, 4]
