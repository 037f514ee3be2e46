"""The champion gate's decision rule."""

from __future__ import annotations

import pytest

from ml_project.promotion import decide


@pytest.mark.parametrize(
    ("candidate", "champion", "margin", "greater", "force", "expected"),
    [
        (0.5, None, 0.0, True, False, (True, "no champion yet")),
        (0.91, 0.90, 0.0, True, False, (True, "better by 0.01")),
        (0.90, 0.90, 0.0, True, False, (False, "gain 0 is not more than 0")),
        (0.905, 0.90, 0.01, True, False, (False, "gain 0.005 is not more than 0.01")),
        (0.89, 0.90, 0.0, True, True, (True, "forced although the gain is -0.01")),
        (4.0, 5.0, 0.5, False, False, (True, "better by 1")),
        (5.5, 5.0, 0.0, False, False, (False, "gain -0.5 is not more than 0")),
        (float("nan"), 0.9, 0.0, True, False, (False, "gain nan is not more than 0")),
    ],
)
def test_a_candidate_must_beat_the_champion_by_more_than_the_margin(
    candidate: float, champion: float | None, margin: float, greater: bool, force: bool, expected: tuple[bool, str]
) -> None:
    promoted, reason = decide("metric", candidate, champion, margin, greater, force)
    assert (promoted, reason) == expected
