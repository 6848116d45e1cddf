"""The exercises of notebooks 06 and 07 check answers computed with gwlib."""
from __future__ import annotations

import pytest

from gwlib.exercises import check


@pytest.mark.parametrize("key, right, wrong", [
    ("06.default-weight-share", "50%", 0.2),
    ("06.ghost-error-share", 0.25, 0.5),
    ("06.traefik-canary-count", 2, 3),
    ("07.abort-step", 2, 3),
    ("07.flagger-weights", [20, 40, 60], [20, 40, 50]),
    ("07.requests-for-2x", 17000, 9000),
])
def test_exercises(key, right, wrong):
    assert check(key, right).correct
    assert check(key, wrong).status == "wrong"
    assert check(key, ...).status == "unanswered"
    assert not check("07.flagger-weights", "twenty").correct
