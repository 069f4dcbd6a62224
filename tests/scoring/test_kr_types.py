"""KR types (issue 13 item 4): range targets, phased targets (milestones) and
score_cap, with hand-computed reference numbers.

The reference cycle is 2026-Q4 in UTC: 2026-10-01 00:00 to 2027-01-01 00:00, 92 days.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from okr_sync.config.plan import Plan
from okr_sync.scoring.arithmetic import explain_scorecard
from okr_sync.scoring.rollup import CheckIn, ScoringInput, build_scorecard
from okr_sync.scoring.rules import (
    confidence_trace,
    expected_score,
    expected_value,
    is_too_easy,
    kr_score,
    milestone_path,
    range_score,
)
from okr_sync.scoring.scorecard import (
    TargetRange,
    scorecard_from_json,
    scorecard_to_json,
)
from support.plan_builders import PlanBuilder, manual_kr, objective

#: 45.5 days into the 92-day cycle: f = 45.5 / 92 = 0.4946.
MID_NOVEMBER = datetime(2026, 11, 15, 12, tzinfo=UTC)
#: Milestones due at the end of 2026-10-30 (day 30) and of 2026-11-30 (day 61).
MILESTONES = [{"date": "2026-10-30", "target": 40}, {"date": "2026-11-30", "target": 70}]


def _plan(*key_results: dict[str, Any], **scoring: Any) -> Plan:
    builder = PlanBuilder().with_objective(objective("O", *key_results))
    if scoring:
        builder.set("scoring", scoring)
    return builder.build()


def _range_kr(kr_id: str, current: float, **extra: Any) -> dict[str, Any]:
    kr = manual_kr(kr_id, target=0, current=current, direction="range", **extra)
    kr["target"] = {"min": 10, "max": 20}
    return kr


# -- range ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "tolerance", "expected"), [
    (15, None, 1.0), (10, None, 1.0), (20, None, 1.0), (9.99, None, 0.0), (21, None, 0.0),
    (22, 5, 0.6),   # 2 above max: 1 - 2/5
    (7, 5, 0.4),    # 3 below min: 1 - 3/5
    (25, 5, 0.0),   # exactly tolerance beyond the edge
    (40, 5, 0.0),   # further: never below 0
    (20, 5, 1.0),
])
def test_range_score_given_value_and_tolerance_scores_by_distance_to_the_range(
    value: float, tolerance: float | None, expected: float
) -> None:
    assert range_score(value, 10, 20, tolerance) == pytest.approx(expected)


def test_build_scorecard_given_range_kr_scores_it_and_reports_min_max_target() -> None:
    plan = _plan(_range_kr("O.in", 15), _range_kr("O.out", 22, tolerance=5))
    card = build_scorecard(ScoringInput(plan, MID_NOVEMBER))
    inside, outside = card.key_result("O.in"), card.key_result("O.out")
    assert (inside.score, inside.band, inside.target) == (1.0, "strong", TargetRange(10, 20))
    assert outside.score == pytest.approx(0.6)
    doc = card.to_json()["objectives"][0]["key_results"][1]
    assert (doc["target"], doc["baseline"], doc["direction"], doc["tolerance"]) == (
        {"min": 10, "max": 20}, None, "range", 5)
    # Pace as for the other threshold KRs: 0.6 / 0.4946 = 1 (capped) -> on_track.
    assert outside.confidence == "on_track"
    assert card.objective("O").score == pytest.approx(0.8)


def test_scorecard_codec_given_range_milestones_and_cap_round_trips() -> None:
    plan = _plan(_range_kr("O.r", 7, tolerance=5),
                 manual_kr("O.m", target=100, current=36, milestones=MILESTONES),
                 manual_kr("O.c", target=100, current=110, score_cap=1.25))
    card = build_scorecard(ScoringInput(plan, MID_NOVEMBER))
    back = scorecard_from_json(scorecard_to_json(card))
    assert back.to_json() == card.to_json()
    assert back.key_result("O.r").target == TargetRange(10, 20)
    assert back.key_result("O.m").milestones == card.key_result("O.m").milestones
    assert (back.key_result("O.c").score_cap, back.key_result("O.c").score) == (1.25, 1.1)


# -- score_cap -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "baseline", "target", "cap", "expected"), [
    (110, 0, 100, 1.25, 1.1), (150, 0, 100, 1.25, 1.25), (150, 0, 100, 1.0, 1.0),
    (30, 100, 50, 1.5, 1.4),  # decrease: (100 - 30) / (100 - 50)
    (-10, 0, 100, 1.25, 0.0),
])
def test_kr_score_given_score_cap_clamps_to_it(
    value: float, baseline: float, target: float, cap: float, expected: float
) -> None:
    assert kr_score(value, baseline, target, None, cap) == pytest.approx(expected)


def test_build_scorecard_given_score_cap_shows_over_achievement_but_caps_objective_mean() -> None:
    krs = (manual_kr("O.over", target=100, current=125, score_cap=1.25),
           manual_kr("O.half", target=10, current=5))
    card = build_scorecard(ScoringInput(_plan(*krs), MID_NOVEMBER))
    over = card.key_result("O.over")
    assert (over.score, over.band, over.confidence) == (1.25, "strong", "on_track")
    assert card.to_json()["objectives"][0]["key_results"][0]["score_cap"] == 1.25
    assert card.objective("O").score == pytest.approx((1 + 0.5) / 2)
    uncapped = build_scorecard(ScoringInput(_plan(*krs, cap_objectives=False), MID_NOVEMBER))
    assert uncapped.objective("O").score == pytest.approx((1.25 + 0.5) / 2)


# -- milestones ------------------------------------------------------------------------------


def test_expected_value_given_milestones_interpolates_between_them() -> None:
    plan = _plan(manual_kr("O.m", target=100, current=0, milestones=MILESTONES))
    path = milestone_path(plan.key_result("O.m"), plan.cycle)
    assert [(t.isoformat(), v) for t, v in path] == [
        ("2026-10-01T00:00:00+00:00", 0), ("2026-10-31T00:00:00+00:00", 40),
        ("2026-12-01T00:00:00+00:00", 70), ("2027-01-01T00:00:00+00:00", 100)]
    assert expected_value(path, datetime(2026, 10, 16, tzinfo=UTC)) == pytest.approx(20)
    assert expected_value(path, datetime(2026, 10, 31, tzinfo=UTC)) == pytest.approx(40)
    # 15.5 of the 31 days from 40 to 70: 40 + 30 * 0.5
    assert expected_value(path, MID_NOVEMBER) == pytest.approx(55)
    assert expected_value(path, datetime(2027, 3, 1, tzinfo=UTC)) == 100
    assert expected_value(path, datetime(2026, 9, 1, tzinfo=UTC)) == 0


def test_expected_value_given_milestone_on_last_day_ends_there() -> None:
    plan = _plan(manual_kr("O.m", target=100, current=0, milestones=[
        {"date": "2026-12-31", "target": 100}]))
    path = milestone_path(plan.key_result("O.m"), plan.cycle)
    assert [v for _, v in path] == [0, 100]


def test_build_scorecard_given_milestones_compares_pace_with_the_milestone_path() -> None:
    plan = _plan(manual_kr("O.m", target=100, current=36, milestones=MILESTONES),
                 manual_kr("O.line", target=100, current=36))
    card = build_scorecard(ScoringInput(plan, MID_NOVEMBER))
    phased, straight = card.key_result("O.m"), card.key_result("O.line")
    # Milestones: 0.36 / 0.55 = 0.6545 < 0.7 -> at_risk; the straight line of A3 says
    # 0.36 / 0.4946 = 0.7279 -> on_track.
    assert (phased.score, phased.expected, phased.confidence) == (0.36, pytest.approx(55),
                                                                  "at_risk")
    assert straight.confidence == "on_track"
    doc = card.to_json()["objectives"][0]["key_results"][0]
    assert doc["milestones"] == [{"date": "2026-10-30", "target": 40},
                                 {"date": "2026-11-30", "target": 70}]
    assert doc["expected"] == 55
    assert "expected" not in card.to_json()["objectives"][0]["key_results"][1]


def test_build_scorecard_given_ramp_up_milestone_expecting_nothing_yet_is_on_track() -> None:
    plan = _plan(manual_kr("O.m", target=100, current=0, milestones=[
        {"date": "2026-11-30", "target": 0}]))
    kr = build_scorecard(ScoringInput(plan, MID_NOVEMBER)).key_result("O.m")
    assert (kr.score, kr.expected, kr.confidence) == (0, 0, "on_track")


def test_build_scorecard_given_decreasing_kr_with_milestones_uses_their_score() -> None:
    # From 40 down to 0, 20 by the end of 2026-10-30: at day 15 expected 30, score 0.25.
    plan = _plan(manual_kr("O.d", baseline=40, target=0, current=37, milestones=[
        {"date": "2026-10-30", "target": 20}]))
    as_of = datetime(2026, 10, 16, tzinfo=UTC)  # f = 15/92 = 0.163
    assert expected_score(plan.key_result("O.d"), plan.cycle, as_of) == pytest.approx((30, 0.25))
    # score (40 - 37) / 40 = 0.075; 0.075 / 0.25 = 0.3 < 0.4 -> off_track
    assert build_scorecard(ScoringInput(plan, as_of)).key_result("O.d").confidence == "off_track"


def test_confidence_trace_given_no_expected_score_keeps_the_straight_line() -> None:
    bands = _plan(manual_kr("O.x", target=1)).scoring.bands
    assert confidence_trace(0.3, 0.5, bands).projected == pytest.approx(0.6)
    assert confidence_trace(0.3, 0.5, bands, expected=0.6).projected == pytest.approx(0.5)
    assert confidence_trace(0.3, 0.05, bands, expected=0.6).rule == "early"


# -- explain ------------------------------------------------------------------------------


def test_explain_scorecard_given_kr_types_writes_their_formulas() -> None:
    plan = _plan(_range_kr("O.in", 15), _range_kr("O.tol", 7, tolerance=5),
                 _range_kr("O.out", 21),
                 manual_kr("O.m", target=100, current=36, milestones=MILESTONES),
                 manual_kr("O.c", target=100, current=125, score_cap=1.25))
    card = build_scorecard(ScoringInput(plan, MID_NOVEMBER))
    explained = explain_scorecard(plan, card)
    krs = explained.key_results
    assert krs["O.in"].score_formula == "range: 15 in [10, 20] -> 1"
    assert krs["O.out"].score_formula == "range: 21 outside [10, 20] -> 0"
    assert krs["O.tol"].score_formula == (
        "range: 7 is 3 outside [10, 20]; max(0, 1 - d/tolerance) = max(0, 1 - 3/5) = 0.4")
    assert krs["O.m"].confidence_formula == (
        "milestones expect 55 by now (score e = 0.55); projected = min(1, 0.36/0.55) = "
        "0.6545 < 0.7 (strong), >= 0.4 (progress) -> at_risk")
    assert krs["O.c"].score_formula == (
        "(v - b)/(t - b) = (125 - 0)/(100 - 0) = 1.25 (score_cap 1.25 allows over-achievement)")
    objective_score = (1 + 0.4 + 0 + 0.36 + 1) / 5
    assert explained.objectives["O"].score == pytest.approx(objective_score)
    assert explained.objectives["O"].score_formula == (
        "(1*1 + 0.4*1 + 0*1 + 0.36*1 + min(1.25, 1)*1) / (1 + 1 + 1 + 1 + 1) = 0.552")
    assert card.objective("O").score == pytest.approx(objective_score)


def test_explain_scorecard_given_checkin_on_phased_kr_keeps_checkin_rule() -> None:
    plan = _plan(manual_kr("O.m", target=100, current=36, milestones=MILESTONES))
    checkins = {"O.m": CheckIn(confidence="blocked")}
    card = build_scorecard(ScoringInput(plan, MID_NOVEMBER, checkins=checkins))
    kr = explain_scorecard(plan, card, checkins=checkins).key_results["O.m"]
    assert (kr.confidence, card.key_result("O.m").confidence) == ("blocked", "blocked")


def test_is_too_easy_given_over_achievement_twice_flags() -> None:
    assert is_too_easy([1.25, 1.0])
    assert is_too_easy([1.1, 1.25])
    assert not is_too_easy([1.25, 0.9])
