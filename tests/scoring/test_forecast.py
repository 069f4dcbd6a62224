"""Forecast confidence (issue 13 item 2): Monte Carlo over a KR's daily throughput, with
hand-checked cases.

The reference cycle runs 2026-10-01 to 2026-10-20 (UTC): it ends 2026-10-21 00:00. The
history holds one measurement a day at 00:00 from 2026-10-01, the pass runs at
2026-10-04 00:00 (f = 3/20 = 0.15), so 17 days remain. A history whose every day
moved by the same amount leaves no randomness: each run adds 17 times that amount.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from okr_sync.config.plan import Plan
from okr_sync.scoring.forecast import (
    Measurement,
    daily_series,
    forecast_seed,
    forecast_text,
)
from okr_sync.scoring.forecast_record import Forecast
from okr_sync.scoring.rollup import CheckIn, MeasuredValue, ScoringInput, build_scorecard
from okr_sync.scoring.scorecard import (
    ItemCounts,
    KeyResultScore,
    scorecard_from_json,
    scorecard_to_json,
)
from support.plan_builders import PlanBuilder, manual_kr, objective

START = datetime(2026, 10, 1, tzinfo=UTC)
AS_OF = datetime(2026, 10, 4, tzinfo=UTC)


def _ratio_kr(kr_id: str = "O.KR1", **extra: Any) -> dict[str, Any]:
    return {"id": kr_id, "title": "Ship it", "measure": {
        "kind": "done_ratio", "select": {"project": "ENT"}}, **extra}


def _count_kr(kr_id: str = "O.KR1", **extra: Any) -> dict[str, Any]:
    return {"id": kr_id, "title": "Count it", "measure": {
        "kind": "count", "select": {"project": "ENT"}}, **extra}


def _plan(*key_results: dict[str, Any], **forecast: Any) -> Plan:
    scoring: dict[str, Any] = {"confidence": "forecast"}
    if forecast:
        scoring["forecast"] = forecast
    return (PlanBuilder().with_cycle(start="2026-10-01", end="2026-10-20")
            .with_objective(objective("O", *key_results)).set("scoring", scoring)
            .set("jira", {"main": {"projects": ["ENT"]}}).build())


def _score(plan: Plan, values: list[float], *, done: list[int] | None = None,
           total: list[int] | None = None, checkin: CheckIn | None = None,
           kr_id: str = "O.KR1") -> KeyResultScore:
    """Score the plan at AS_OF: ``values`` are one per day up to 2026-10-04, the last
    being this pass's measurement (with its done/total items when given)."""
    history = []
    first = AS_OF - timedelta(days=len(values) - 1)
    for day, value in enumerate(values[:-1]):
        history.append(Measurement(first + timedelta(days=day), value,
                                   None if done is None else done[day],
                                   None if total is None else total[day]))
    items = None if done is None or total is None else ItemCounts(total[-1], done[-1])
    card = build_scorecard(ScoringInput(
        plan=plan, as_of=AS_OF, measured_at=AS_OF,
        measured={kr_id: MeasuredValue(values[-1], items=items)},
        checkins={kr_id: checkin} if checkin else {},
        history={kr_id: history},
    ))
    return card.key_result(kr_id)


def _forecast(kr: KeyResultScore) -> Forecast:
    assert kr.forecast is not None, kr.forecast_note
    return kr.forecast


def test_forecast_given_steady_throughput_lands_exactly_at_the_straight_line() -> None:
    # +1 done a day out of 25: 3 + 17 = 20 done, 20/25 = 0.8 in every run.
    done, total = [0, 1, 2, 3], [25] * 4
    kr = _score(_plan(_ratio_kr()), [d / 25 for d in done], done=done, total=total)

    forecast = _forecast(kr)
    assert forecast.model == "done_and_scope"
    assert forecast.remaining_days == 17
    assert (forecast.expected_score, forecast.p10, forecast.p90) == pytest.approx((0.8,) * 3)
    assert forecast.p_top_band == 1.0
    assert kr.confidence == "on_track"


def test_forecast_given_stalled_kr_is_off_track_where_pace_says_on_track() -> None:
    # 3 of 25 done for three days: nothing more lands. Pace: 0.12 / 0.15 = 0.8 on_track.
    done, total = [3, 3, 3, 3], [25] * 4
    kr = _score(_plan(_ratio_kr()), [0.12] * 4, done=done, total=total)

    forecast = _forecast(kr)
    assert forecast.expected_score == pytest.approx(0.12)
    assert forecast.p_top_band == 0.0
    assert kr.confidence == "off_track"


def test_forecast_given_growing_scope_counts_the_scope_added_per_day() -> None:
    # +1 done and +1 in scope a day: 20 done of 30 at the end = 0.6667 (without the
    # scope growth, 20 of 13 would be done). Pace: 3/13 / 0.15 -> on_track.
    done, total = [0, 1, 2, 3], [10, 11, 12, 13]
    kr = _score(_plan(_ratio_kr()), [d / t for d, t in zip(done, total, strict=True)],
                done=done, total=total)

    forecast = _forecast(kr)
    assert forecast.mean_daily == 1.0 and forecast.mean_daily_scope == 1.0
    assert forecast.expected_score == pytest.approx(20 / 30)
    assert forecast.p_top_band == 0.0
    assert kr.confidence == "off_track"


def test_forecast_given_decreasing_kr_projects_down_to_the_target() -> None:
    # Open bugs from 40 to 5, one fewer a day: 37 - 17 = 20, score (40-20)/(40-5) = 4/7.
    kr = _score(_plan(_count_kr(baseline=40, target=5)), [40, 39, 38, 37])

    forecast = _forecast(kr)
    assert forecast.model == "value" and forecast.mean_daily == -1.0
    assert forecast.expected_score == pytest.approx(4 / 7)
    assert kr.confidence == "off_track"
    # Two fewer a day: 34 - 34 = 0, below the target: score 1 in every run.
    fast = _forecast(_score(_plan(_count_kr(baseline=40, target=5)), [40, 38, 36, 34]))
    assert (fast.expected_score, fast.p_top_band) == (1.0, 1.0)


def test_forecast_given_mixed_days_matches_the_binomial_probability() -> None:
    # Daily deltas {0, +2}: after 17 drawn days the value is 2 + 2K, K ~ Binomial(17, 1/2).
    # Top band 0.7 of target 34 needs 2 + 2K >= 23.8, K >= 11:
    # P = (C(17,11) + ... + C(17,17)) / 2^17 = 21778 / 131072 = 0.1662.
    # Expected score: E[(2 + 2K) / 34] = 19/34 = 0.5588 (K = 17 capped at 1: negligible).
    plan = _plan(_count_kr(target=34), runs=20000)
    kr = _score(plan, [0, 0, 2])

    forecast = _forecast(kr)
    assert forecast.p_top_band == pytest.approx(21778 / 131072, abs=0.015)
    assert forecast.expected_score == pytest.approx(19 / 34, abs=0.01)
    # Nearest rank: P(K <= 5) = 0.072 < 0.1 <= P(K <= 6) = 0.166, so p10 is K = 6.
    assert forecast.p10 == pytest.approx(14 / 34)
    # P(K <= 10) = 0.834 < 0.9 <= P(K <= 11) = 0.928: p90 is K = 11.
    assert forecast.p90 == pytest.approx(24 / 34)
    assert kr.confidence == "off_track"
    # Configurable thresholds: 0.15 is enough for on_track.
    lenient = _score(_plan(_count_kr(target=34), runs=20000, on_track=0.15, at_risk=0.1),
                     [0, 0, 2])
    assert lenient.confidence == "on_track"
    # The same history and seed give the same forecast on every pass.
    assert _score(plan, [0, 0, 2]).forecast == forecast


def test_forecast_given_too_little_history_falls_back_to_pace_and_says_why() -> None:
    kr = _score(_plan(_ratio_kr()), [0.1, 0.12])

    assert kr.forecast is None
    assert kr.forecast_note == ("only 2 days of measured history (a forecast needs 3): "
                                "confidence by pace")
    assert kr.confidence == "on_track"  # pace: 0.12 / 0.15 = 0.8
    doc = kr.to_json()
    assert doc["forecast"] is None and "needs 3" in doc["forecast_note"]


def test_forecast_given_manual_kr_falls_back_to_pace() -> None:
    plan = _plan(manual_kr("O.KR1", target=10, current=5))
    card = build_scorecard(ScoringInput(plan=plan, as_of=AS_OF))

    kr = card.key_result("O.KR1")
    assert kr.forecast is None and kr.forecast_note is not None
    assert any(w.kr == "O.KR1" and w.message.startswith("no forecast: manual KR")
               for w in card.warnings)


def test_forecast_given_milestones_compares_with_the_next_milestone() -> None:
    # +5 a day to target 100: 15 + 85 = 100 lands at 1.0. The milestone of 2026-10-10
    # (80, score 0.8) is due 2026-10-11 00:00, 7 days on: 15 + 35 = 50, score 0.5 below
    # 0.7 * 0.8 = 0.56 in every run: off_track, though the landing is 100 %.
    kr = _score(_plan(_count_kr(target=100, milestones=[{"date": "2026-10-10", "target": 80}])),
                [0, 5, 10, 15])

    forecast = _forecast(kr)
    assert forecast.horizon == date(2026, 10, 10)
    assert forecast.threshold == pytest.approx(0.56)
    assert forecast.expected_score == 1.0 and forecast.p_top_band == 0.0
    assert kr.confidence == "off_track"
    plain = _score(_plan(_count_kr(target=100)), [0, 5, 10, 15])
    assert plain.confidence == "on_track"


def test_forecast_given_checkin_confidence_keeps_the_checkin() -> None:
    kr = _score(_plan(_ratio_kr()), [0.12] * 4, done=[3] * 4, total=[25] * 4,
                checkin=CheckIn(confidence="at_risk"))

    assert kr.forecast is not None and kr.confidence == "at_risk"


def test_forecast_given_pace_plan_is_absent_from_json() -> None:
    plan = (PlanBuilder().with_objective(objective("O", manual_kr("O.KR1", target=10,
                                                                  current=5))).build())
    card = build_scorecard(ScoringInput(plan=plan, as_of=AS_OF))

    assert "forecast" not in card.key_result("O.KR1").to_json()


def test_scorecard_codec_given_forecast_round_trips() -> None:
    plan = _plan(_count_kr(target=34))
    card = build_scorecard(ScoringInput(
        plan=plan, as_of=AS_OF, measured={"O.KR1": MeasuredValue(2)},
        history={"O.KR1": [Measurement(START + timedelta(days=2), 0),
                           Measurement(START + timedelta(days=1), 0)]}))

    back = scorecard_from_json(scorecard_to_json(card))
    assert back.key_result("O.KR1").forecast is not None
    assert scorecard_to_json(back) == scorecard_to_json(card)


def test_daily_series_given_passes_keeps_each_days_last_and_fills_quiet_days() -> None:
    series = daily_series([
        Measurement(START + timedelta(hours=20), 3),
        Measurement(START + timedelta(hours=9), 1),
        Measurement(START + timedelta(days=3, hours=1), 7),
    ], UTC, until=date(2026, 10, 5))

    assert [(p.day.day, p.value) for p in series] == [(1, 3), (2, 3), (3, 3), (4, 7), (5, 7)]


def test_forecast_text_given_numbers_rounds_half_up_like_every_surface() -> None:
    forecast = Forecast(0.8, 0.9, 0.625, 0.945, 100, 3, 17, "value", 1, None, 0.7,
                        date(2026, 10, 20), 1)

    assert forecast_text(forecast) == "likely to land at 80% (p10\u2013p90 63\u201395%)"


def test_forecast_seed_given_kr_and_cycle_is_fixed() -> None:
    assert forecast_seed("2026-Q4", "O.KR1") == forecast_seed("2026-Q4", "O.KR1")
    assert forecast_seed("2026-Q4", "O.KR1") != forecast_seed("2026-Q4", "O.KR2")
