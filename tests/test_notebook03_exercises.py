"""The exercises of notebooks/03-routing-deep-dive.ipynb: a right answer is correct, a wrong
one is wrong, ``...`` is unanswered. The right answers are written out here from the spec,
so a change in gwlib's routing that contradicts them fails this test."""
from __future__ import annotations

import pytest

from gwlib.exercises import check, question

# (exercise, right answers in the forms a learner may write them, wrong answers)
CASES = [
    ("03.exact-beats-method", ["shoes-landing", "shop/shoes-landing", " Shop/Shoes-Landing:80 "],
     ["catalog-admin", "shoes", "shop/catalog"]),
    ("03.and-within-a-match", ["catalog-sorted", "shop/catalog-sorted"],
     ["catalog-beta", "catalog-canary", "catalog"]),
    ("03.wildcard-listener", ["apps", "shop/apps"], ["cart", "web", 404]),
    ("03.redirect-location", ["http://old.example.com:8080/manual/intro?page=2"],
     ["http://old.example.com/manual/intro?page=2", "http://old.example.com:8080/manual/intro",
      "https://old.example.com:8080/manual/intro?page=2"]),
    ("03.error-share", [1 / 3, 0.333, "1/3", "33.3%", 33.33], [0.25, 0.5, 0, "1/4"]),
    ("03.grant-in-wrong-namespace", [500, "500"], [200, 404, "403", "yes"]),
]


@pytest.mark.parametrize("key, right, wrong", CASES, ids=[c[0] for c in CASES])
def test_right_answers_are_correct(key, right, wrong):
    for answer in right:
        feedback = check(key, answer)
        assert feedback.status == "correct", (answer, feedback)


@pytest.mark.parametrize("key, right, wrong", CASES, ids=[c[0] for c in CASES])
def test_wrong_answers_are_wrong_with_a_hint(key, right, wrong):
    for answer in wrong:
        feedback = check(key, answer)
        assert feedback.status == "wrong", (answer, feedback)
        assert "Hint:" in feedback.message


@pytest.mark.parametrize("key", [c[0] for c in CASES])
def test_unanswered(key):
    feedback = check(key, ...)
    assert feedback.status == "unanswered"
    assert question(key) in feedback.message


def test_every_03_exercise_is_covered():
    from gwlib.exercises import _REGISTRY
    assert sorted(k for k in _REGISTRY if k.startswith("03.")) == sorted(c[0] for c in CASES)
