from __future__ import annotations

from datetime import UTC, datetime

from okr_sync.scoring.diff import PublishedKr, diff_scorecard, published_krs
from okr_sync.scoring.rollup import ScoringInput, build_scorecard
from support.plan_builders import PlanBuilder, manual_kr, objective

AS_OF = datetime(2026, 11, 16, tzinfo=UTC)


def _card(current: float):
    plan = PlanBuilder().with_objective(objective(
        "O", manual_kr("O.1", target=100, current=current),
        manual_kr("O.2", target=10, current=5))).build()
    return build_scorecard(ScoringInput(plan, AS_OF))


def test_diff_given_first_pass_reports_nothing() -> None:
    assert diff_scorecard(None, _card(40), 0.05) == ()


def test_diff_given_move_at_threshold_reports_it_with_reasons() -> None:
    before = published_krs(_card(40))
    changes = diff_scorecard(before, _card(45), 0.05, {"O.1": ("+5 done",)})
    assert [(c.kr, c.from_score, c.to_score, c.reasons) for c in changes] == [
        ("O.1", 0.4, 0.45, ("+5 done",))]


def test_diff_given_small_move_without_band_or_confidence_change_is_quiet() -> None:
    before = published_krs(_card(40))
    assert diff_scorecard(before, _card(44), 0.05) == ()


def test_diff_given_band_change_below_threshold_reports_transition_fields() -> None:
    before = {"O.1": PublishedKr(0.39, "missed", "on_track"),
              "O.2": PublishedKr(0.5, "progress", "on_track")}
    [change] = diff_scorecard(before, _card(40), 0.05)
    assert (change.kr, change.from_band, change.to_band, change.reasons) == (
        "O.1", "missed", "progress", ())
    assert change.to_json()["to_band"] == "progress"


def test_diff_given_new_kr_reports_it() -> None:
    before = {"O.1": PublishedKr(0.4, "progress", "on_track")}
    [change] = diff_scorecard(before, _card(40), 0.05)
    assert (change.kr, change.from_score, change.reasons) == ("O.2", None, ("new key result",))
