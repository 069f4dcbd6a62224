from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okr_sync.config.plan import Band
from okr_sync.scoring.rules import (
    band_for,
    elapsed_fraction,
    is_too_easy,
    kpi_status,
    kr_confidence,
    kr_score,
    weighted_mean,
    worst_confidence,
)

BANDS = [Band(name="missed", min=0.0), Band(name="progress", min=0.4), Band(name="strong", min=0.7)]
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@pytest.mark.parametrize(
    ("value", "baseline", "target", "direction", "expected"),
    [
        (0.42, 0, 1, None, 0.42),
        (15, 10, 20, None, 0.5),
        (25, 10, 20, None, 1.0),  # clamped above
        (5, 10, 20, None, 0.0),  # clamped below
        (22.5, 40, 5, None, 0.5),  # decrease: 40 -> 5, at 22.5 half way
        (5, 40, 5, None, 1.0),
        (50, 40, 5, None, 0.0),
        (0, 40, 5, None, 1.0),
        (3, 0, 2, "at_most", 0.0),
        (2, 0, 2, "at_most", 1.0),
        (99.95, 0, 99.9, "at_least", 1.0),
        (99.8, 0, 99.9, "at_least", 0.0),
    ],
)
def test_kr_score_given_value_computes_contract_score(value, baseline, target, direction, expected):
    assert kr_score(value, baseline, target, direction) == pytest.approx(expected)


def test_kr_score_given_equal_baseline_and_target_refuses() -> None:
    with pytest.raises(ValueError):
        kr_score(1, 2, 2)


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0.0, "missed"), (0.3999, "missed"), (0.4, "progress"), (0.69, "progress"), (0.7, "strong"),
     (1.0, "strong")],
)
def test_band_for_given_score_picks_last_band_with_min_below(score: float, expected: str) -> None:
    assert band_for(score, BANDS) == expected
    assert band_for(score, list(reversed(BANDS))) == expected


@pytest.mark.parametrize(
    ("score", "elapsed", "checkin", "expected"),
    [
        (0.0, 0.1, None, "on_track"),  # too early to tell
        (1.0, 0.9, None, "on_track"),  # done
        (0.35, 0.5, None, "on_track"),  # projected 0.7 >= 0.7
        (0.3, 0.5, None, "at_risk"),  # projected 0.6
        (0.2, 0.5, None, "at_risk"),  # projected 0.4 >= 0.4
        (0.19, 0.5, None, "off_track"),  # projected 0.38
        (0.9, 0.5, "blocked", "blocked"),  # check-in wins
        (0.0, 0.05, "off_track", "off_track"),  # check-in wins even early
    ],
)
def test_kr_confidence_given_progress_and_time_follows_each_branch(
    score, elapsed, checkin, expected
):
    assert kr_confidence(score, elapsed, BANDS, checkin) == expected


def test_kr_confidence_given_custom_bands_uses_top_two_mins() -> None:
    bands = [Band(name="r", min=0), Band(name="y", min=0.5), Band(name="g", min=0.8)]
    assert kr_confidence(0.4, 0.5, bands) == "on_track"  # projected 0.8
    assert kr_confidence(0.3, 0.5, bands) == "at_risk"  # 0.6
    assert kr_confidence(0.2, 0.5, bands) == "off_track"  # 0.4 < 0.5


def test_worst_confidence_given_mixed_returns_worst() -> None:
    assert worst_confidence(["on_track", "at_risk"]) == "at_risk"
    assert worst_confidence(["at_risk", "blocked", "off_track"]) == "blocked"
    assert worst_confidence(["on_track"]) == "on_track"


def test_weighted_mean_given_zero_weights_leaves_them_out() -> None:
    assert weighted_mean([(1.0, 2), (0.0, 0), (0.4, 1)]) == pytest.approx(0.8)
    assert weighted_mean([(0.5, 0)]) is None


def test_elapsed_fraction_given_dates_counts_through_end_day() -> None:
    utc = ZoneInfo("UTC")
    start, end = date(2026, 10, 1), date(2026, 12, 31)  # 92 days
    assert elapsed_fraction(start, end, utc, datetime(2026, 10, 1, tzinfo=UTC)) == 0
    assert elapsed_fraction(start, end, utc, datetime(2026, 11, 16, tzinfo=UTC)) == pytest.approx(
        46 / 92)
    assert elapsed_fraction(start, end, utc, datetime(2027, 1, 1, tzinfo=UTC)) == 1
    assert elapsed_fraction(start, end, utc, datetime(2026, 9, 1, tzinfo=UTC)) == 0
    assert elapsed_fraction(start, end, utc, datetime(2027, 3, 1, tzinfo=UTC)) == 1


def test_elapsed_fraction_given_dst_change_uses_absolute_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-10-25 Berlin falls back: that day has 25 hours, the two days 49.
    start, end = date(2026, 10, 25), date(2026, 10, 26)
    noon_first_day_local = datetime(2026, 10, 25, 12, 0, tzinfo=berlin)
    # 00:00 CEST (22:00Z) to 12:00 CET (11:00Z) is 13 absolute hours of 49.
    assert elapsed_fraction(start, end, berlin, noon_first_day_local) == pytest.approx(13 / 49)


@pytest.mark.parametrize(
    ("value", "direction", "expected"),
    [(110, "increase", "green"), (104, "increase", "yellow"), (99, "increase", "red"),
     (2, "decrease", "green"), (3.5, "decrease", "yellow"), (4.5, "decrease", "red"),
     (None, "increase", None)],
)
def test_kpi_status_given_value_applies_thresholds(value, direction, expected) -> None:
    green, yellow = (110, 100) if direction == "increase" else (2, 4)
    assert kpi_status(value, green, yellow, direction) == expected


def test_is_too_easy_given_two_perfect_cycles_flags() -> None:
    assert is_too_easy([0.5, 1.0, 1.0])
    assert not is_too_easy([1.0, 0.99])
    assert not is_too_easy([1.0])
    assert not is_too_easy([1.0, 1.0, 0.8])


@given(value=finite, baseline=finite, target=finite)
def test_kr_score_given_any_numbers_stays_in_unit_interval(value, baseline, target) -> None:
    if baseline == target:
        return
    assert 0.0 <= kr_score(value, baseline, target) <= 1.0


@given(a=finite, b=finite, baseline=finite, target=finite)
def test_kr_score_given_better_value_never_scores_lower(a, b, baseline, target) -> None:
    if baseline == target:
        return
    low, high = sorted((a, b))
    if target > baseline:
        assert kr_score(high, baseline, target) >= kr_score(low, baseline, target)
    else:
        assert kr_score(low, baseline, target) >= kr_score(high, baseline, target)


@given(scores=st.lists(st.floats(0, 1), min_size=1, max_size=8),
       weight=st.floats(min_value=0.01, max_value=100))
def test_weighted_mean_given_equal_weights_equals_plain_mean(scores, weight) -> None:
    mean = weighted_mean((s, weight) for s in scores)
    assert mean == pytest.approx(sum(scores) / len(scores))


@given(score=st.floats(0, 1), weight=st.floats(min_value=0.01, max_value=100))
def test_weighted_mean_given_single_contributor_is_that_contributor(score, weight) -> None:
    assert weighted_mean([(score, weight)]) == pytest.approx(score)
