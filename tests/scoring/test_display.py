"""The one rounding rule of every surface (half up), see okr_sync.scoring.display."""

from __future__ import annotations

import pytest

from okr_sync.scoring.display import delta_points, percent, percent_points


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [(0.325, "33%"), (0.285, "29%"), (0.125, "13%"), (0.005, "1%"), (0.0049, "0%"),
     (0.5333, "53%"), (1.0, "100%"), (0.0, "0%"), (-0.125, "-13%"), (None, "—")],
)
def test_percent_given_fraction_rounds_half_up(fraction: float | None, shown: str) -> None:
    assert percent(fraction) == shown


def test_percent_points_given_python_round_would_go_to_even_goes_up() -> None:
    # The cases the rule exists for: Python gives 32, 28 and 12 here.
    assert [round(x * 100) for x in (0.325, 0.285, 0.125)] == [32, 28, 12]
    assert [percent_points(x) for x in (0.325, 0.285, 0.125)] == [33, 29, 13]


def test_delta_points_given_two_scores_is_the_difference_of_what_is_shown() -> None:
    assert delta_points(0.285, 0.325) == 4  # "29%" -> "33%", not the raw 3.999...
